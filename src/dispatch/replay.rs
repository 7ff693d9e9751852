//! Replaying dead letters. For each selected message: in one transaction, reset the
//! notification FAILED → QUEUED and publish its work message with a confirm, commit, and only
//! then ack the dead letter. A crash before the commit leaves the notification FAILED and the
//! letter in the DLQ (a work message that got out is refused by the claim); a crash after it
//! leaves a stale letter that the next run recognises (the notification is no longer FAILED)
//! and acks. So an interrupted replay loses nothing, never makes our workers send twice, and
//! running it again is harmless.

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use uuid::Uuid;

use tokio_util::sync::CancellationToken;

use crate::broker::dlq::{DeadLetterView, DlqCursor};
use crate::broker::{BrokerError, ReplayStamp, WorkMessage};
use crate::dispatch::Backends;
use crate::domain::{Channel, DeadLetterReason, Status};
use crate::store::replay::{reset_failed, FailedFilter, ReplayTarget};
use crate::store::StoreError;

/// Which dead letters to act on. Every criterion given must match.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Selection {
    pub ids: Vec<Uuid>,
    pub channels: Vec<Channel>,
    pub reason: Option<DeadLetterReason>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<usize>,
    pub all: bool,
}

impl Selection {
    /// True when nothing narrows the selection and `--all` was not given.
    pub fn is_unbounded(&self) -> bool {
        !self.all
            && self.ids.is_empty()
            && self.channels.is_empty()
            && self.reason.is_none()
            && self.since.is_none()
            && self.until.is_none()
    }

    pub fn channels(&self) -> Vec<Channel> {
        if self.channels.is_empty() {
            Channel::ALL.to_vec()
        } else {
            self.channels.clone()
        }
    }

    pub fn matches(&self, v: &DeadLetterView) -> bool {
        (self.ids.is_empty() || v.notification_id.is_some_and(|id| self.ids.contains(&id)))
            && self.reason.is_none_or(|r| v.reason.as_deref() == Some(r.as_str()))
            && self.since.is_none_or(|s| v.failed_at.is_some_and(|at| at >= s))
            && self.until.is_none_or(|u| v.failed_at.is_some_and(|at| at <= u))
    }
}

/// A dry run lists at most this many letters (and counts all), to keep memory bounded.
pub const MAX_LISTED: usize = 1000;

#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub dry_run: bool,
    pub reset_attempts: bool,
    /// Replays per second; None = as fast as confirms allow.
    pub rate: Option<f64>,
    pub replay_id: Uuid,
    pub operator: String,
    /// Stops the run between two letters (Ctrl-C); what was done is kept and reported.
    pub cancel: CancellationToken,
    /// Keep every replayed id (for `replay --wait`), not only the requested ones.
    pub track_ids: bool,
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplaySummary {
    pub replay_id: Uuid,
    pub dry_run: bool,
    pub replayed: u64,
    /// Letters whose notification was already replayed or is unknown.
    pub skipped: u64,
    /// Letters not selected; they stay in the DLQ in their order.
    pub left: u64,
    pub errors: u64,
    /// With --dry-run: how many would be replayed, and the first of them.
    pub would_replay_count: u64,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub would_replay: Vec<DeadLetterView>,
    /// True when the run was stopped (Ctrl-C, SIGTERM) before it examined everything.
    pub interrupted: bool,
    /// With --id: the requested notifications that were not replayed, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_replayed: Vec<NotReplayed>,
    /// With --id: which requested ids were replayed, and which had a dead letter.
    #[serde(skip)]
    pub replayed_ids: Vec<Uuid>,
    #[serde(skip)]
    pub seen_ids: Vec<Uuid>,
    /// With --wait: what became of the replayed notifications.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<WaitOutcome>,
    #[serde(skip)]
    pub pace: Pace,
}

/// When letters were let through the pacer: the rate that `--rate` limits, measured between
/// the starts of their replays, so that a slow first one (a cold connection) does not make
/// the next look early.
#[derive(Clone, Copy, Debug, Default)]
pub struct Pace {
    first: Option<std::time::Instant>,
    last: Option<std::time::Instant>,
    count: u64,
}

impl Pace {
    fn started(&mut self) {
        let now = std::time::Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        self.count += 1;
    }

    /// Letters per second between the first start and the last; None before the second.
    pub fn per_second(&self) -> Option<f64> {
        let span = self.last?.duration_since(self.first?).as_secs_f64();
        (self.count > 1 && span > 0.0).then(|| (self.count - 1) as f64 / span)
    }
}

#[derive(Clone, Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WaitOutcome {
    pub sent: u64,
    pub failed_again: u64,
    /// Not finished when --timeout ran out.
    pub pending: u64,
    pub failures: Vec<FailedAgain>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FailedAgain {
    pub id: Uuid,
    pub status: String,
    pub reason: Option<String>,
    pub last_error: Option<String>,
}

/// Polls PostgreSQL until every replayed notification is SENT, FAILED or CANCELED, or until
/// `deadline`; returns what became of them.
pub async fn wait_for_outcomes(
    backends: &Backends,
    ids: &[Uuid],
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
    mut on_progress: impl FnMut(u64, u64),
) -> Result<WaitOutcome, ReplayError> {
    let mut delay = Duration::from_millis(100);
    loop {
        let mut outcome = WaitOutcome::default();
        for chunk in ids.chunks(1000) {
            for n in backends.store.failure_details(chunk).await? {
                match n.status {
                    Status::Sent => outcome.sent += 1,
                    Status::Failed | Status::Canceled => {
                        outcome.failed_again += 1;
                        outcome.failures.push(FailedAgain {
                            id: n.id,
                            status: n.status.to_string(),
                            reason: n.failure_reason,
                            last_error: n.last_error,
                        });
                    }
                    _ => outcome.pending += 1,
                }
            }
        }
        on_progress(outcome.sent + outcome.failed_again, ids.len() as u64);
        if outcome.pending == 0 || tokio::time::Instant::now() + delay > deadline || cancel.is_cancelled() {
            return Ok(outcome);
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = cancel.cancelled() => {}
        }
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotReplayed {
    pub id: Uuid,
    pub reason: String,
}

impl ReplaySummary {
    fn starting(opts: &ReplayOptions) -> ReplaySummary {
        ReplaySummary {
            replay_id: opts.replay_id,
            dry_run: opts.dry_run,
            ..Default::default()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
}

/// Progress callbacks for the terminal: (letters examined, total in the queues).
pub type OnProgress<'a> = &'a mut (dyn FnMut(&ReplaySummary, u64) + Send);

enum One {
    Replayed,
    AlreadyDone(Status),
    Unknown,
}

/// Runs a replay, from the dead-letter queues or (with `from_db`) from FAILED rows, with its
/// audit row: started before the first letter, kept current after each one (so a killed
/// run's row says what it did), finished unless the run was interrupted.
pub async fn run(
    backends: &Backends,
    sel: &Selection,
    from_db: Option<&FailedFilter>,
    opts: &ReplayOptions,
    on_progress: OnProgress<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let source = if from_db.is_some() { "db" } else { "dlq" };
    let selection = serde_json::to_value(sel).unwrap_or_default();
    backends
        .store
        .audit_start(opts.replay_id, &opts.operator, source, &selection, opts.dry_run)
        .await?;
    let summary = match from_db {
        Some(filter) => replay_failed_rows(backends, filter, opts, on_progress).await?,
        None => replay_dlq(backends, sel, opts, on_progress).await?,
    };
    backends
        .store
        .audit_progress(
            summary.replay_id,
            summary.replayed as i32,
            summary.skipped as i32,
            summary.errors as i32,
            !summary.interrupted,
        )
        .await?;
    Ok(summary)
}

async fn replay_dlq(
    backends: &Backends,
    sel: &Selection,
    opts: &ReplayOptions,
    on_progress: OnProgress<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::starting(opts);
    let mut pacer = Pacer::new(opts.rate);
    let mut examined = 0u64;
    let mut selected = 0usize;
    for channel in sel.channels() {
        let mut cursor = DlqCursor::open(backends.broker.endpoints(), backends.broker.topology(), channel).await?;
        // Whether the whole run stops here (interrupted, or the limit reached).
        let stop = loop {
            if opts.cancel.is_cancelled() {
                summary.interrupted = true;
                break Ok(true);
            }
            let fetched = match cursor.next().await {
                Ok(Some(f)) => f,
                Ok(None) => break Ok(false),
                Err(e) => break Err(e),
            };
            examined += 1;
            if sel.limit.is_some_and(|l| selected >= l) {
                summary.left += 1;
                break Ok(true);
            }
            if !sel.matches(&fetched.view) {
                summary.left += 1;
                continue;
            }
            selected += 1;
            if let Some(id) = fetched.view.notification_id.filter(|id| sel.ids.contains(id)) {
                summary.seen_ids.push(id);
            }
            if opts.dry_run {
                summary.would_replay_count += 1;
                if summary.would_replay.len() < MAX_LISTED {
                    summary.would_replay.push(fetched.view);
                }
                on_progress(&summary, examined);
                continue;
            }
            let Some(id) = fetched.view.notification_id else {
                // A poison message has no notification to replay; it stays for an operator.
                summary.skipped += 1;
                continue;
            };
            if !pacer.wait(&opts.cancel).await {
                summary.interrupted = true;
                break Ok(true);
            }
            summary.pace.started();
            match replay_one(backends, id, opts).await {
                Ok(One::Replayed) => {
                    summary.replayed += 1;
                    if !sel.ids.is_empty() || opts.track_ids {
                        summary.replayed_ids.push(id);
                    }
                    if let Err(e) = fetched.ack().await {
                        // The notification is replayed; the stale letter is acked next run.
                        tracing::warn!(notification.id = %id, error = %e, "replayed but the dead letter was not acked");
                    }
                }
                Ok(One::AlreadyDone(status)) => {
                    tracing::info!(notification.id = %id, %status, "dead letter of a notification already replayed; removed");
                    summary.skipped += 1;
                    let _ = fetched.ack().await;
                }
                Ok(One::Unknown) => summary.skipped += 1,
                Err(e) => {
                    tracing::error!(notification.id = %id, error = %e, "replay failed; the dead letter stays");
                    summary.errors += 1;
                }
            }
            record(backends, &summary).await;
            on_progress(&summary, examined);
        };
        cursor.close().await;
        if stop? {
            break;
        }
    }
    Ok(summary)
}

/// `replay --from-db`: FAILED notifications whose dead letter may be gone.
async fn replay_failed_rows(
    backends: &Backends,
    filter: &FailedFilter,
    opts: &ReplayOptions,
    on_progress: OnProgress<'_>,
) -> Result<ReplaySummary, ReplayError> {
    let mut summary = ReplaySummary::starting(opts);
    let mut pacer = Pacer::new(opts.rate);
    let mut ids = backends.store.failed_ids(filter);
    let mut examined = 0;
    while let Some(id) = ids.next().await {
        let id = id.map_err(StoreError::from)?;
        examined += 1;
        summary.seen_ids.push(id);
        if opts.dry_run {
            summary.would_replay_count += 1;
            on_progress(&summary, examined);
            continue;
        }
        if !pacer.wait(&opts.cancel).await {
            summary.interrupted = true;
            break;
        }
        summary.pace.started();
        match replay_one(backends, id, opts).await {
            Ok(One::Replayed) => {
                summary.replayed += 1;
                if !filter.ids.is_empty() || opts.track_ids {
                    summary.replayed_ids.push(id);
                }
            }
            Ok(_) => summary.skipped += 1,
            Err(e) => {
                tracing::error!(notification.id = %id, error = %e, "replay failed");
                summary.errors += 1;
            }
        }
        record(backends, &summary).await;
        on_progress(&summary, examined);
    }
    if filter.ids.is_empty() {
        summary.seen_ids.clear();
    }
    Ok(summary)
}

async fn replay_one(backends: &Backends, id: Uuid, opts: &ReplayOptions) -> Result<One, ReplayError> {
    let mut tx = backends.store.begin().await?;
    let Some(target) = reset_failed(&mut tx, id, opts.reset_attempts).await? else {
        tx.rollback().await.map_err(StoreError::from)?;
        if let Some(waiting) = backends.store.waiting_target(id).await? {
            // The broker dead-lettered a message whose notification never failed (a quorum
            // queue's delivery limit): dropping the letter would strand the row, so it goes
            // back on its queue as it is; the claim keeps a duplicate from sending twice.
            tracing::info!(notification.id = %id, "dead letter of a notification still waiting for delivery; put back on its queue");
            republish(backends, waiting, opts).await?;
            return Ok(One::Replayed);
        }
        return Ok(match backends.store.status_of(id).await? {
            Some(status) => One::AlreadyDone(status),
            None => One::Unknown,
        });
    };
    // Published while the row is locked: a worker that gets the message first waits for
    // the commit; if the commit never comes, its claim is refused.
    republish(backends, target, opts).await?;
    crate::store::mark_published_in(&mut tx, &[id]).await?;
    tx.commit().await.map_err(StoreError::from)?;
    Ok(One::Replayed)
}

async fn republish(backends: &Backends, target: ReplayTarget, opts: &ReplayOptions) -> Result<(), ReplayError> {
    let stamp = ReplayStamp {
        replay_id: opts.replay_id,
        operator: opts.operator.clone(),
    };
    let work = WorkMessage::new(target.id, target.correlation_id, target.channel, target.priority);
    backends.broker.republish(&work, &stamp).await?;
    Ok(())
}

async fn record(backends: &Backends, s: &ReplaySummary) {
    record_progress(backends, s.replay_id, [s.replayed, s.skipped, s.errors], "replay").await;
}

/// Keeps an audit row current after every letter, so that an interrupted or killed run's
/// row says what it did. A failed update is logged; the final one reports the error.
pub(super) async fn record_progress(backends: &Backends, id: Uuid, [done, skipped, errors]: [u64; 3], what: &str) {
    let update = backends
        .store
        .audit_progress(id, done as i32, skipped as i32, errors as i32, false);
    if let Err(e) = update.await {
        tracing::warn!(error = %e, "could not record the {what}'s progress");
    }
}

/// Why each requested id was not replayed: unknown, not FAILED, or FAILED without a letter.
pub async fn explain_not_replayed(
    backends: &Backends,
    ids: &[Uuid],
    s: &mut ReplaySummary,
    from_db: bool,
) -> Result<(), ReplayError> {
    for id in ids {
        if s.replayed_ids.contains(id) {
            continue;
        }
        let reason = match backends.store.status_of(*id).await? {
            None => "unknown: no notification has this id".to_string(),
            Some(status) if s.seen_ids.contains(id) && !from_db && status != Status::Failed => format!(
                "its dead letter was stale (the notification is {status}, already replayed); the letter was removed"
            ),
            Some(Status::Failed) if !from_db && !s.seen_ids.contains(id) => {
                "FAILED but not in the selected dead-letter queues (purged?); replay it with --from-db".to_string()
            }
            Some(Status::Failed) if s.interrupted => "not reached before the interruption".to_string(),
            Some(Status::Failed) => "FAILED, but the replay did not succeed (see the error above)".to_string(),
            Some(status) => format!("not FAILED (it is {status}); only FAILED notifications are replayed"),
        };
        s.not_replayed.push(NotReplayed { id: *id, reason });
    }
    Ok(())
}

/// Spaces replays to at most `rate` per second.
struct Pacer {
    interval: Option<tokio::time::Interval>,
}

impl Pacer {
    fn new(rate: Option<f64>) -> Pacer {
        let interval = rate.filter(|r| *r > 0.0).map(|r| {
            let mut i = tokio::time::interval(Duration::from_secs_f64(1.0 / r));
            i.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            i
        });
        Pacer { interval }
    }

    /// False when `cancel` fired first.
    async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        if cancel.is_cancelled() {
            return false;
        }
        match self.interval.as_mut() {
            Some(i) => tokio::select! {
                _ = i.tick() => true,
                _ = cancel.cancelled() => false,
            },
            None => true,
        }
    }
}
