//! One prune pass: finished notifications in small batches (each exported, when asked,
//! before its delete commits), then emptied batches, then old audit rows. A pass stopped
//! anywhere leaves only whole batches deleted; the next pass continues where it stopped.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::store::prune::PruneCounts;
use crate::store::{Store, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot write the export: {0}")]
    Export(#[from] std::io::Error),
}

/// What a pass deletes: rows untouched for longer than the periods (None keeps them).
#[derive(Clone, Copy, Debug)]
pub struct PrunePlan {
    pub period: Option<Duration>,
    pub audit_period: Option<Duration>,
    pub batch_size: i64,
    /// Most notifications deleted per second (None: as fast as PostgreSQL goes).
    pub max_rate: Option<f64>,
    pub dry_run: bool,
}

impl PrunePlan {
    /// The plan the retention settings describe.
    pub fn of(s: &crate::config::Settings, dry_run: bool) -> PrunePlan {
        PrunePlan {
            period: s.retention_period,
            audit_period: s.audit_retention_period,
            batch_size: s.prune_batch_size,
            max_rate: s.prune_max_rate,
            dry_run,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PruneReport {
    pub dry_run: bool,
    /// Notifications untouched since this instant were eligible (absent: retention off).
    pub cutoff: Option<DateTime<Utc>>,
    pub audit_cutoff: Option<DateTime<Utc>>,
    /// Deleted, or with dry_run what would be.
    #[serde(flatten)]
    pub counts: PruneCounts,
    pub transactions: u64,
    pub interrupted: bool,
    pub duration_ms: u64,
}

/// The instant `period` before `now` (None: no period, or one too long to subtract).
pub fn cutoff(period: Option<Duration>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let period = chrono::Duration::from_std(period?).ok()?;
    now.checked_sub_signed(period)
}

/// Receives each batch's rows (as JSON) before the batch commits.
pub type ExportFn<'a> = &'a mut (dyn FnMut(&[serde_json::Value]) -> std::io::Result<()> + Send);

/// Runs one pass. `export` receives each batch's rows before the batch commits (an error
/// there rolls the batch back); `progress` sees the running totals after each batch.
pub async fn prune(
    store: &Store,
    plan: PrunePlan,
    cancel: &CancellationToken,
    mut export: Option<ExportFn<'_>>,
    progress: &mut (dyn FnMut(&PruneCounts) + Send),
) -> Result<PruneReport, PruneError> {
    let started = std::time::Instant::now();
    let now = Utc::now();
    let mut report = PruneReport {
        dry_run: plan.dry_run,
        cutoff: cutoff(plan.period, now),
        audit_cutoff: cutoff(plan.audit_period, now),
        ..Default::default()
    };
    let limit = plan.batch_size.max(1);
    if plan.dry_run {
        report.counts = store.prune_counts(report.cutoff, report.audit_cutoff).await?;
        report.duration_ms = started.elapsed().as_millis() as u64;
        return Ok(report);
    }
    if let Some(cutoff) = report.cutoff {
        let pace = std::time::Instant::now();
        loop {
            if cancel.is_cancelled() {
                report.interrupted = true;
                break;
            }
            let batch = store.prune_batch(cutoff, limit, export.is_some()).await?;
            if batch.is_empty() {
                break;
            }
            if let Some(write) = export.as_mut() {
                write(&batch.rows)?;
            }
            let done = batch.commit().await?;
            report.counts.merge(&done);
            report.transactions += 1;
            progress(&report.counts);
            // Every delete writes WAL that the creates' commits flush behind it, so an
            // unpaced prune raises their latency; pausing between batches spreads it out.
            if let Some(rate) = plan.max_rate {
                let due = Duration::from_secs_f64(report.counts.notification_total() as f64 / rate);
                if let Some(wait) = due.checked_sub(pace.elapsed()) {
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = cancel.cancelled() => {}
                    }
                }
            }
        }
        in_batches(
            &mut report,
            cancel,
            progress,
            |c| &mut c.batches,
            || store.prune_empty_batches(cutoff, limit),
        )
        .await?;
    }
    if let Some(cutoff) = report.audit_cutoff {
        in_batches(
            &mut report,
            cancel,
            progress,
            |c| &mut c.audit,
            || store.prune_audit(cutoff, limit),
        )
        .await?;
    }
    report.duration_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

/// Runs `delete` (one short transaction that returns how many rows it removed) until it
/// removes nothing or `cancel` fires, adding each batch to the total `tally` picks.
async fn in_batches<F, Fut>(
    report: &mut PruneReport,
    cancel: &CancellationToken,
    progress: &mut (dyn FnMut(&PruneCounts) + Send),
    tally: fn(&mut PruneCounts) -> &mut u64,
    mut delete: F,
) -> Result<(), PruneError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    while !report.interrupted {
        if cancel.is_cancelled() {
            report.interrupted = true;
            break;
        }
        let n = delete().await?;
        if n == 0 {
            break;
        }
        *tally(&mut report.counts) += n;
        report.transactions += 1;
        progress(&report.counts);
    }
    Ok(())
}
