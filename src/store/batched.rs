//! Group commit on the hot paths: creates, claims and attempt outcomes from
//! concurrent requests and deliveries are gathered (see `crate::batch`) and written with one
//! set-based statement per batch, so one round trip and one commit serve them all. The
//! statements apply the same per-row rules as for a single row, so every state rule holds as
//! before. If a batch's statement fails for a reason other than an unreachable database, the
//! batch is rerun one item at a time, so that one bad item fails alone; each caller handles
//! its error as it would its own failure (a 5xx, a requeue, a lease left to expire).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use prometheus::Histogram;
use sqlx::PgPool;
use uuid::Uuid;

use super::lease::{claim_on, record_outcomes_on, ClaimRequest};
use super::{insert_notifications_on, ClaimRefusal, Claimed, OutcomeRecord, Store, StoreError, StoreResult};
use crate::batch::Batcher;
use crate::domain::{NewNotification, Notification, Outcome};
use crate::metrics::Metrics;

/// One batch in flight per kind of write: while its statement runs, the next batch gathers.
/// Four in flight split the same load into four times as many statements and commits, which
/// cost PostgreSQL more than twice the CPU per notification and doubled the create latency
/// (docs/PERFORMANCE.md).
const MAX_BATCH: usize = 128;

#[derive(Clone)]
pub struct BatchedWrites {
    inserts: Batcher<NewNotification, StoreResult<(Notification, bool)>>,
    claims: Batcher<ClaimRequest, StoreResult<Result<Claimed, ClaimRefusal>>>,
    outcomes: Batcher<OutcomeRecord, StoreResult<bool>>,
}

/// Runs `write` for the whole batch; on a statement error (not an outage) reruns it for
/// each item alone, so that a bad item does not take its neighbours down with it. The
/// items are shared, not copied, on the way in: only a rerun copies an item.
async fn with_fallback<I, T, F, Fut>(items: Vec<I>, write: F) -> Vec<StoreResult<T>>
where
    I: Clone,
    F: Fn(Arc<[I]>) -> Fut,
    Fut: Future<Output = StoreResult<Vec<T>>>,
{
    let items: Arc<[I]> = items.into();
    match write(items.clone()).await {
        Ok(out) => out.into_iter().map(Ok).collect(),
        Err(e) if items.len() > 1 && !e.is_unavailable() => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                let alone: Arc<[I]> = Arc::from(vec![item.clone()]);
                out.push(write(alone).await.map(|mut v| v.remove(0)));
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

/// A batcher whose batches `write` stores with one statement on a pooled connection; the
/// size of each batch goes to `sizes`, which shows how much group commit is sharing.
fn set_writer<I, T, F, Fut>(pool: &PgPool, sizes: Histogram, write: F) -> Batcher<I, StoreResult<T>>
where
    I: Clone + Send + Sync + 'static,
    T: Send + 'static,
    F: Fn(PgPool, Arc<[I]>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = StoreResult<Vec<T>>> + Send + 'static,
{
    let pool = pool.clone();
    Batcher::spawn(MAX_BATCH, move |items: Vec<I>| {
        sizes.observe(items.len() as f64);
        let (pool, write) = (pool.clone(), write.clone());
        with_fallback(items, move |items| write(pool.clone(), items))
    })
}

impl BatchedWrites {
    /// Spawns the batching tasks; needs a running tokio runtime.
    pub fn spawn(store: &Store, metrics: &Metrics) -> BatchedWrites {
        let pool = store.pool();
        let sizes = |kind: &str| metrics.write_batch_size.with_label_values(&[kind]);
        BatchedWrites {
            inserts: set_writer(
                pool,
                sizes("insert"),
                |pool, items: Arc<[NewNotification]>| async move {
                    insert_notifications_on(&mut *pool.acquire().await?, None, &items).await
                },
            ),
            claims: set_writer(pool, sizes("claim"), |pool, items: Arc<[ClaimRequest]>| async move {
                claim_on(&mut *pool.acquire().await?, &items).await
            }),
            outcomes: set_writer(pool, sizes("outcome"), |pool, items: Arc<[OutcomeRecord]>| async move {
                record_outcomes_on(&mut *pool.acquire().await?, &items).await
            }),
        }
    }

    pub async fn insert_notification(&self, n: NewNotification) -> StoreResult<(Notification, bool)> {
        self.inserts.submit(n).await.map_err(stopped)?
    }

    /// ACCEPTED|QUEUED (and due) → SENDING under a new lease of length `lease`.
    pub async fn claim(&self, id: Uuid, lease: Duration) -> StoreResult<Result<Claimed, ClaimRefusal>> {
        self.claims
            .submit(ClaimRequest::new(id, lease))
            .await
            .map_err(stopped)?
    }

    /// Records the attempt made under `claimed` and, while its lease still holds, moves the
    /// notification to the outcome's state; false when the lease was lost meanwhile.
    pub async fn record_outcome(&self, claimed: Claimed, outcome: Outcome, provider: Arc<str>) -> StoreResult<bool> {
        self.record(OutcomeRecord::held(claimed, outcome, provider)).await
    }

    /// `record_outcome` of a record made by the caller (a traced one, say).
    pub async fn record(&self, record: OutcomeRecord) -> StoreResult<bool> {
        self.outcomes.submit(record).await.map_err(stopped)?
    }
}

fn stopped(_: crate::batch::Stopped) -> StoreError {
    StoreError::Database(sqlx::Error::PoolClosed)
}
