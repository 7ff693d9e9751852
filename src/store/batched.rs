//! Group commit on the hot paths: creates, QUEUED marks, claims and attempt outcomes from
//! concurrent requests and deliveries share transactions (see `crate::batch`). Each item
//! runs the very statement it would run alone, so every state rule holds as before; only
//! the commit is shared. If any statement of a batch fails, the whole transaction rolls
//! back and every item of it gets the error, which its caller handles as it would its own
//! failure (a 5xx, a requeue, a lease left to expire).

use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{
    apply_outcome, claim_on, insert_attempt, insert_notification_on, mark_queued_on, AttemptRecord, ClaimRefusal,
    OutcomeUpdate, Store, StoreError, StoreResult,
};
use crate::batch::Batcher;
use crate::domain::{NewNotification, Notification};

const MAX_BATCH: usize = 64;
const LANES: usize = 4;

type Claimed = Result<Notification, ClaimRefusal>;

pub struct OutcomeJob {
    pub id: Uuid,
    pub token: Uuid,
    pub attempt: AttemptRecord,
    pub update: OutcomeUpdate,
}

#[derive(Clone)]
pub struct BatchedWrites {
    inserts: Batcher<NewNotification, StoreResult<(Notification, bool)>>,
    marks: Batcher<Uuid, StoreResult<()>>,
    claims: Batcher<(Uuid, Uuid, Duration), StoreResult<Claimed>>,
    outcomes: Batcher<OutcomeJob, StoreResult<bool>>,
}

/// Runs `each` for every item inside one transaction. If a statement fails for a reason
/// other than an unreachable database, the batch is rerun one item per transaction, so one
/// bad item fails alone instead of taking the commits of its neighbours with it.
///
/// `single_statement` says that an item runs one statement, which alone may autocommit.
async fn in_one_transaction<I, T, F>(
    store: &Store,
    items: Vec<I>,
    each: F,
    single_statement: bool,
) -> Vec<StoreResult<T>>
where
    F: for<'c> AsyncEach<'c, I, T>,
{
    match run_together(store, &items, &each, single_statement).await {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(e) if items.len() > 1 && !e.is_unavailable() => {
            let mut out = Vec::with_capacity(items.len());
            for item in &items {
                let alone = run_together(store, std::slice::from_ref(item), &each, single_statement).await;
                out.push(alone.map(|mut v| v.remove(0)));
            }
            out
        }
        Err(e) => {
            let shared = Arc::new(e);
            (0..items.len())
                .map(|_| Err(StoreError::Shared(shared.clone())))
                .collect()
        }
    }
}

async fn run_together<I, T, F>(store: &Store, items: &[I], each: &F, single_statement: bool) -> StoreResult<Vec<T>>
where
    F: for<'c> AsyncEach<'c, I, T>,
{
    if let ([item], true) = (items, single_statement) {
        // Alone and one statement: autocommit saves the BEGIN and COMMIT round-trips.
        let mut conn = store.pool().acquire().await?;
        return Ok(vec![each.call(&mut conn, item).await?]);
    }
    let mut tx = store.begin().await?;
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(each.call(&mut tx, item).await?);
    }
    tx.commit().await?;
    Ok(out)
}

/// An async closure over one item and the batch's connection.
pub trait AsyncEach<'c, I, T>: Send + Sync {
    fn call(
        &self,
        conn: &'c mut sqlx::PgConnection,
        item: &'c I,
    ) -> futures_util::future::BoxFuture<'c, StoreResult<T>>;
}

macro_rules! each {
    ($name:ident, $item:ty, $out:ty, |$conn:ident, $it:ident| $body:expr) => {
        struct $name;
        impl<'c> AsyncEach<'c, $item, $out> for $name {
            fn call(
                &self,
                $conn: &'c mut sqlx::PgConnection,
                $it: &'c $item,
            ) -> futures_util::future::BoxFuture<'c, StoreResult<$out>> {
                Box::pin(async move { $body })
            }
        }
    };
}

each!(Insert, NewNotification, (Notification, bool), |conn, n| {
    insert_notification_on(conn, n).await
});
each!(Mark, Uuid, (), |conn, id| mark_queued_on(
    conn,
    std::slice::from_ref(id)
)
.await);
each!(Claim, (Uuid, Uuid, Duration), Claimed, |conn, job| claim_on(
    conn, job.0, job.1, job.2
)
.await);
each!(Outcome, OutcomeJob, bool, |conn, job| {
    insert_attempt(conn, job.id, &job.attempt).await?;
    apply_outcome(conn, job.id, Some(job.token), &job.update).await
});

impl BatchedWrites {
    /// Spawns the batching lanes; needs a running tokio runtime.
    pub fn spawn(store: &Store) -> BatchedWrites {
        let s = store.clone();
        let inserts = Batcher::spawn(MAX_BATCH, LANES, move |items| {
            let s = s.clone();
            async move { in_one_transaction(&s, items, Insert, true).await }
        });
        let s = store.clone();
        let marks = Batcher::spawn(MAX_BATCH, LANES, move |items| {
            let s = s.clone();
            async move { in_one_transaction(&s, items, Mark, true).await }
        });
        let s = store.clone();
        // Claims lock rows until the batch commits: sorted by id, two batches that share
        // rows (duplicate messages) take their locks in the same order and cannot deadlock.
        let claims = Batcher::spawn(MAX_BATCH, LANES, move |items: Vec<(Uuid, Uuid, Duration)>| {
            let s = s.clone();
            async move {
                let mut order: Vec<usize> = (0..items.len()).collect();
                order.sort_by_key(|&i| items[i].0);
                let sorted: Vec<_> = order.iter().map(|&i| items[i]).collect();
                let results = in_one_transaction(&s, sorted, Claim, true).await;
                let mut out: Vec<Option<StoreResult<Claimed>>> = (0..items.len()).map(|_| None).collect();
                for (slot, result) in order.into_iter().zip(results) {
                    out[slot] = Some(result);
                }
                out.into_iter()
                    .map(|r| r.unwrap_or_else(|| Err(StoreError::Database(sqlx::Error::RowNotFound))))
                    .collect()
            }
        });
        let s = store.clone();
        let outcomes = Batcher::spawn(MAX_BATCH, LANES, move |items| {
            let s = s.clone();
            async move { in_one_transaction(&s, items, Outcome, false).await }
        });
        BatchedWrites {
            inserts,
            marks,
            claims,
            outcomes,
        }
    }

    pub async fn insert_notification(&self, n: NewNotification) -> StoreResult<(Notification, bool)> {
        self.inserts.submit(n).await.map_err(stopped)?
    }

    pub async fn mark_queued(&self, id: Uuid) -> StoreResult<()> {
        self.marks.submit(id).await.map_err(stopped)?
    }

    pub async fn claim(&self, id: Uuid, token: Uuid, lease: Duration) -> StoreResult<Claimed> {
        self.claims.submit((id, token, lease)).await.map_err(stopped)?
    }

    pub async fn record_outcome(&self, job: OutcomeJob) -> StoreResult<bool> {
        self.outcomes.submit(job).await.map_err(stopped)?
    }
}

fn stopped(_: crate::batch::Stopped) -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}
