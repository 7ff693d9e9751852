//! Group commit on the hot paths: creates, QUEUED marks, claims and attempt outcomes from
//! concurrent requests and deliveries are gathered (see `crate::batch`) and written with one
//! set-based statement per batch, so one round trip and one commit serve them all. The
//! statements apply the same per-row rules as for a single row, so every state rule holds as
//! before. If a batch's statement fails for a reason other than an unreachable database, the
//! batch is rerun one item at a time, so that one bad item fails alone; each caller handles
//! its error as it would its own failure (a 5xx, a requeue, a lease left to expire).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{
    claim_on, insert_notifications_on, mark_queued_on, record_outcomes_on, ClaimRefusal, ClaimRequest, OutcomeRecord,
    Store, StoreError, StoreResult,
};
use crate::batch::Batcher;
use crate::domain::{NewNotification, Notification};

const MAX_BATCH: usize = 128;
/// One lane per kind of write: while its statement runs, the next batch gathers. Four lanes
/// split the same load into four times as many statements and commits, which cost
/// PostgreSQL more than twice the CPU per notification and doubled the create latency
/// (docs/PERFORMANCE.md).
const LANES: usize = 1;

type Claimed = Result<Notification, ClaimRefusal>;

#[derive(Clone)]
pub struct BatchedWrites {
    inserts: Batcher<NewNotification, StoreResult<(Notification, bool)>>,
    marks: Batcher<Uuid, StoreResult<()>>,
    claims: Batcher<ClaimRequest, StoreResult<Claimed>>,
    outcomes: Batcher<OutcomeRecord, StoreResult<bool>>,
}

/// Runs `write` for the whole batch; on a statement error (not an outage) reruns it for
/// each item alone, so that a bad item does not take its neighbours down with it.
async fn with_fallback<I, T, F, Fut>(items: Vec<I>, write: F) -> Vec<StoreResult<T>>
where
    I: Clone,
    F: Fn(Vec<I>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let n = items.len();
    match write(items.clone()).await {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(e) if n > 1 && !e.is_unavailable() => {
            let mut out = Vec::with_capacity(n);
            for item in items {
                out.push(write(vec![item]).await.map(|mut v| v.remove(0)));
            }
            out
        }
        Err(e) => {
            let shared = Arc::new(e);
            (0..n).map(|_| Err(StoreError::Shared(shared.clone()))).collect()
        }
    }
}

impl BatchedWrites {
    /// Spawns the batching lanes; needs a running tokio runtime.
    pub fn spawn(store: &Store) -> BatchedWrites {
        let pool = store.pool().clone();
        let inserts = Batcher::spawn(MAX_BATCH, LANES, move |items: Vec<NewNotification>| {
            let pool = pool.clone();
            with_fallback(items, move |items| {
                let pool = pool.clone();
                async move { insert_notifications_on(&mut *pool.acquire().await?, None, &items).await }
            })
        });
        let pool = store.pool().clone();
        let marks = Batcher::spawn(MAX_BATCH, LANES, move |ids: Vec<Uuid>| {
            let pool = pool.clone();
            async move {
                let n = ids.len();
                let done = async { mark_queued_on(&mut *pool.acquire().await?, &ids).await }.await;
                match done {
                    Ok(()) => (0..n).map(|_| Ok(())).collect(),
                    Err(e) => {
                        let shared = Arc::new(e);
                        (0..n).map(|_| Err(StoreError::Shared(shared.clone()))).collect()
                    }
                }
            }
        });
        let pool = store.pool().clone();
        let claims = Batcher::spawn(MAX_BATCH, LANES, move |items: Vec<ClaimRequest>| {
            let pool = pool.clone();
            with_fallback(items, move |items| {
                let pool = pool.clone();
                async move { claim_on(&mut *pool.acquire().await?, &items).await }
            })
        });
        let pool = store.pool().clone();
        let outcomes = Batcher::spawn(MAX_BATCH, LANES, move |items: Vec<OutcomeRecord>| {
            let pool = pool.clone();
            with_fallback(items, move |items| {
                let pool = pool.clone();
                async move { record_outcomes_on(&mut *pool.acquire().await?, &items).await }
            })
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
        self.claims
            .submit(ClaimRequest { id, token, lease })
            .await
            .map_err(stopped)?
    }

    pub async fn record_outcome(&self, record: OutcomeRecord) -> StoreResult<bool> {
        self.outcomes.submit(record).await.map_err(stopped)?
    }
}

fn stopped(_: crate::batch::Stopped) -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}
