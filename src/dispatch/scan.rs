//! One scan pass: put due retries, due scheduled notifications and never-published ones
//! back on the queues; recover expired leases; publish dead letters that a crash left
//! unconfirmed. Rows are locked with SKIP LOCKED, published with confirms, then updated and
//! committed, so concurrent scanners never publish a row twice and a failed publish leaves
//! the row due for the next pass.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde::Serialize;
use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use crate::broker::Broker;
use crate::broker::{DeadLetter, WorkMessage};
use crate::domain::backoff::Backoff;
use crate::domain::{Channel, DeadLetterReason, LostAttempt, Outcome};
use crate::metrics::Metrics;
use crate::store::lease::record_outcomes_on;
use crate::store::scan::{self as scanning, DueRow, QueueWaiters, ScanKind};
use crate::store::Store;
use crate::store::{OutcomeRecord, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("PostgreSQL: {0}")]
    Store(#[from] StoreError),
    #[error("RabbitMQ: publishes not confirmed: {failed} ({reason}); those rows stay due")]
    Publish { failed: usize, reason: String },
    /// The lost-message rules need each queue's depth; without it they wait for a pass that
    /// can read it, and this one is incomplete.
    #[error("RabbitMQ: queue depths unreadable, so lost messages were not looked for ({reason})")]
    Unchecked { reason: String },
}

#[derive(Debug, Default, Serialize, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PassReport {
    /// Rows handled per kind and channel.
    pub handled: BTreeMap<String, BTreeMap<String, u64>>,
    pub duration_ms: u64,
    pub dry_run: bool,
    /// Rows that stay due because the broker did not confirm them.
    pub unconfirmed: u64,
}

impl PassReport {
    pub fn total(&self) -> u64 {
        self.handled.values().flat_map(|m| m.values()).sum()
    }

    fn add(&mut self, kind: ScanKind, rows: &[DueRow]) {
        for r in rows {
            *self
                .handled
                .entry(kind.as_str().into())
                .or_default()
                .entry(r.channel.as_str().into())
                .or_default() += 1;
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct ScanScope {
    pub retries: bool,
    pub scheduled: bool,
}

impl ScanScope {
    pub const ALL: ScanScope = ScanScope {
        retries: true,
        scheduled: true,
    };
    /// Due retries, expired leases and the dead-letter sweep.
    pub const RETRIES: ScanScope = ScanScope {
        retries: true,
        scheduled: false,
    };
    /// Due scheduled and never-published notifications.
    pub const SCHEDULED: ScanScope = ScanScope {
        retries: false,
        scheduled: true,
    };

    /// The name of a pass's span.
    pub fn span_name(self) -> &'static str {
        match (self.retries, self.scheduled) {
            (true, true) => "scan",
            (true, false) => "scan retries",
            _ => "scan scheduled",
        }
    }
}

/// What a scanner reads of the settings.
#[derive(Clone, Debug)]
pub struct ScanSettings {
    /// REQUEUE_LOST_AFTER.
    pub requeue_lost_after: Duration,
    /// RETRY_SCAN_LIMIT: rows per pass of each retry-side kind.
    pub retry_scan_limit: i64,
    /// SCHEDULER_SCAN_LIMIT: rows per pass of each schedule-side kind.
    pub scheduler_scan_limit: i64,
    /// UNPUBLISHED_GRACE.
    pub unpublished_grace: Duration,
    /// The retry delays an expired lease's attempt is rescheduled with.
    pub backoff: Backoff,
}

pub struct Scanner {
    store: Store,
    broker: Arc<Broker>,
    metrics: Arc<Metrics>,
    settings: ScanSettings,
    /// When the lost-message rule last ran: it reads every waiting notification of a queue
    /// (up to the queue's depth), so a loop runs it a few times per REQUEUE_LOST_AFTER rather
    /// than on every pass.
    lost_checked: Mutex<Option<Instant>>,
}

/// How many times the lost-message rule runs per REQUEUE_LOST_AFTER in a loop.
const LOST_CHECKS_PER_PERIOD: u32 = 4;
/// At most this many scan limits of lost messages are republished per queue and pass.
const LOST_PER_PASS: i64 = 10;

impl Scanner {
    pub fn new(store: Store, broker: Arc<Broker>, metrics: Arc<Metrics>, settings: ScanSettings) -> Scanner {
        Scanner {
            store,
            broker,
            metrics,
            settings,
            lost_checked: Mutex::new(None),
        }
    }

    /// Whether the lost-message rule is due in this pass (always on a scanner's first).
    fn lost_check_due(&self) -> bool {
        let every = self.settings.requeue_lost_after / LOST_CHECKS_PER_PERIOD;
        let mut last = self.lost_checked.lock().unwrap_or_else(|p| p.into_inner());
        if last.is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// One pass over the kinds in `scope`. A broker failure is reported after the other kinds
    /// had their turn, so one outage does not starve lease recovery.
    pub async fn pass(&self, scope: ScanScope, dry_run: bool) -> Result<PassReport, ScanError> {
        let started = Instant::now();
        let mut report = PassReport {
            dry_run,
            ..Default::default()
        };
        let s = &self.settings;
        let lost_due = scope.retries && self.lost_check_due();
        let kinds = [
            (ScanKind::ExpiredLease, scope.retries, s.retry_scan_limit),
            (ScanKind::Retry, scope.retries, s.retry_scan_limit),
            (ScanKind::Scheduled, scope.scheduled, s.scheduler_scan_limit),
            (ScanKind::Unpublished, scope.scheduled, s.scheduler_scan_limit),
            (ScanKind::Accepted, scope.scheduled, s.scheduler_scan_limit),
            // Before the dead-letter pass, which publishes the letters it reclaims.
            (ScanKind::LostDeadLetter, lost_due, s.retry_scan_limit),
            (ScanKind::DeadLetterPending, scope.retries, s.retry_scan_limit),
            (ScanKind::Lost, lost_due, s.retry_scan_limit),
        ];
        let mut publish_error = None;
        let mut unchecked = None;
        for (kind, _, limit) in kinds.into_iter().filter(|(_, in_scope, _)| *in_scope) {
            let kind_started = Instant::now();
            let outcome = match kind {
                ScanKind::ExpiredLease => self.recover_leases(limit, dry_run, &mut report).await,
                ScanKind::DeadLetterPending => self.republish_dead_letters(limit, dry_run, &mut report).await,
                ScanKind::Lost => self.requeue_lost(limit, dry_run, &mut report).await,
                ScanKind::LostDeadLetter => self.reclaim_lost_letters(limit, dry_run, &mut report).await,
                _ => self.enqueue_due(kind, limit, dry_run, &mut report).await,
            };
            self.metrics
                .scan_duration
                .with_label_values(&[kind.as_str()])
                .observe(kind_started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {}
                Err(ScanError::Publish { failed, reason }) => {
                    report.unconfirmed += failed as u64;
                    publish_error.get_or_insert(reason);
                }
                Err(ScanError::Unchecked { reason }) => {
                    unchecked.get_or_insert(reason);
                }
                Err(e) => return Err(e),
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        if let Ok(backlog) = self.store.due_backlog(s.unpublished_grace).await {
            for (kind, n) in backlog {
                self.metrics.due_backlog.with_label_values(&[kind.as_str()]).set(n);
            }
        }
        match (publish_error, unchecked) {
            (Some(reason), _) => Err(ScanError::Publish {
                failed: report.unconfirmed as usize,
                reason,
            }),
            (None, Some(reason)) => Err(ScanError::Unchecked { reason }),
            (None, None) => Ok(report),
        }
    }

    /// The opening of every step: locks up to `limit` due rows of `kind` in a new
    /// transaction. None when there is nothing to do, or on a dry run (which only counts).
    async fn lock_step(
        &self,
        kind: ScanKind,
        limit: i64,
        dry_run: bool,
        report: &mut PassReport,
    ) -> Result<Option<(Transaction<'static, Postgres>, Vec<DueRow>)>, ScanError> {
        let mut tx = self.store.begin().await?;
        let rows = scanning::lock_due(&mut tx, kind, self.settings.unpublished_grace, limit).await?;
        if rows.is_empty() || dry_run {
            report.add(kind, &rows);
            tx.rollback().await.map_err(StoreError::from)?;
            return Ok(None);
        }
        Ok(Some((tx, rows)))
    }

    async fn enqueue_due(
        &self,
        kind: ScanKind,
        limit: i64,
        dry_run: bool,
        report: &mut PassReport,
    ) -> Result<(), ScanError> {
        let Some((tx, rows)) = self.lock_step(kind, limit, dry_run, report).await? else {
            return Ok(());
        };
        let (confirmed, error) = self.publish_and_mark(tx, kind, &rows, report).await?;
        match error {
            Some(reason) => Err(ScanError::Publish {
                failed: rows.len() - confirmed.len(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// Publishes the work messages of `rows` (locked in `tx`), marks those the broker
    /// confirmed as enqueued and commits; returns them, and why the others were not.
    async fn publish_and_mark(
        &self,
        mut tx: sqlx::Transaction<'static, sqlx::Postgres>,
        kind: ScanKind,
        rows: &[DueRow],
        report: &mut PassReport,
    ) -> Result<(Vec<DueRow>, Option<String>), ScanError> {
        let messages: Vec<WorkMessage> = rows.iter().map(work_message).collect();
        let published = self.broker.publish_work(&messages).await;
        let confirmed: Vec<DueRow> = published.confirmed.iter().map(|&i| rows[i].clone()).collect();
        let ids: Vec<Uuid> = confirmed.iter().map(|r| r.id).collect();
        scanning::mark_enqueued(&mut tx, kind, &ids).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.handled(report, kind, &confirmed);
        Ok((confirmed, published.error.map(|e| e.to_string())))
    }

    /// Publishes again the work messages the broker lost, queue by queue (the rule and its
    /// failure cases: `store::scan::lock_lost`, ARCHITECTURE.md). Without a depth there is no
    /// evidence, so a queue whose depth cannot be read is left for the next pass.
    async fn requeue_lost(&self, limit: i64, dry_run: bool, report: &mut PassReport) -> Result<(), ScanError> {
        let kind = ScanKind::Lost;
        let topology = self.broker.topology().clone();
        let lost_after = self.settings.requeue_lost_after;
        let cap = limit.saturating_mul(LOST_PER_PASS);
        let mut publish_error = None;
        let mut unchecked = None;
        let mut unconfirmed = 0;
        for &channel in Channel::ALL {
            let mut missing_in_channel = 0;
            for (queue, priorities) in topology.work_queues_by_priority(channel) {
                // A queue that is gone holds nothing (the worker declares it again).
                let depth = match self.broker.queue_stats(&queue).await {
                    Ok(stats) => i64::from(stats.map_or(0, |q| q.messages)),
                    Err(e) => {
                        unchecked.get_or_insert(e.to_string());
                        continue;
                    }
                };
                let waiters = QueueWaiters { channel, priorities };
                let mut requeued = 0;
                loop {
                    let mut tx = self.store.begin().await?;
                    // The depth was read once, and what this pass requeued is young again (no
                    // longer waiting), so each round takes the next oldest of what is missing.
                    let left = (cap - requeued).min(limit);
                    let (waiting, rows) = scanning::lock_lost(&mut tx, &waiters, lost_after, depth, cap, left).await?;
                    if requeued == 0 {
                        missing_in_channel += (waiting - depth).max(0);
                    }
                    if rows.is_empty() || dry_run {
                        report.add(kind, &rows);
                        tx.rollback().await.map_err(StoreError::from)?;
                        break;
                    }
                    let (confirmed, error) = self.publish_and_mark(tx, kind, &rows, report).await?;
                    requeued += confirmed.len() as i64;
                    if !confirmed.is_empty() {
                        tracing::warn!(
                            queue,
                            requeued = confirmed.len(),
                            depth,
                            waiting,
                            "work messages missing from their queue (the broker lost them); published again"
                        );
                    }
                    if let Some(reason) = error {
                        unconfirmed += rows.len() - confirmed.len();
                        publish_error.get_or_insert(reason);
                        break;
                    }
                    if (rows.len() as i64) < left || requeued >= cap {
                        break;
                    }
                }
            }
            self.metrics
                .lost_messages
                .with_label_values(&[channel.lower()])
                .set(missing_in_channel);
        }
        match (publish_error, unchecked) {
            (Some(reason), _) => Err(ScanError::Publish {
                failed: unconfirmed,
                reason,
            }),
            (None, Some(reason)) => Err(ScanError::Unchecked { reason }),
            (None, None) => Ok(()),
        }
    }

    /// Marks the FAILED rows whose dead letters their DLQ lost as owing their letter again,
    /// channel by channel, for the dead-letter pass to publish (the rule:
    /// `store::scan::reclaim_lost_letters`). A DLQ whose depth cannot be read is left alone.
    async fn reclaim_lost_letters(&self, limit: i64, dry_run: bool, report: &mut PassReport) -> Result<(), ScanError> {
        let kind = ScanKind::LostDeadLetter;
        let lost_after = self.settings.requeue_lost_after;
        let mut unchecked = None;
        for &channel in Channel::ALL {
            let dlq = self.broker.topology().dead_letter_queue(channel);
            let depth = match self.broker.queue_stats(&dlq).await {
                Ok(stats) => i64::from(stats.map_or(0, |q| q.messages)),
                Err(e) => {
                    unchecked.get_or_insert(e.to_string());
                    continue;
                }
            };
            let mut tx = self.store.begin().await?;
            let (expected, rows) = scanning::reclaim_lost_letters(&mut tx, channel, lost_after, depth, limit).await?;
            if dry_run || rows.is_empty() {
                tx.rollback().await.map_err(StoreError::from)?;
                report.add(kind, &rows);
                continue;
            }
            tx.commit().await.map_err(StoreError::from)?;
            tracing::warn!(
                queue = dlq,
                reclaimed = rows.len(),
                depth,
                expected,
                "dead letters missing from their DLQ (the broker lost them); published again"
            );
            self.handled(report, kind, &rows);
        }
        unchecked.map_or(Ok(()), |reason| Err(ScanError::Unchecked { reason }))
    }

    /// Counts `rows` as put back on the queues: in the pass's report and the metric.
    fn handled(&self, report: &mut PassReport, kind: ScanKind, rows: &[DueRow]) {
        report.add(kind, rows);
        let enqueued = &self.metrics.scanner_enqueued;
        for r in rows {
            enqueued.with_label_values(&[kind.as_str(), r.channel.lower()]).inc();
        }
    }

    /// A worker died mid-send: count the lost attempt as a transient failure, then retry it
    /// or, out of attempts, fail and dead-letter it like any other.
    async fn recover_leases(&self, limit: i64, dry_run: bool, report: &mut PassReport) -> Result<(), ScanError> {
        let kind = ScanKind::ExpiredLease;
        let Some((mut tx, rows)) = self.lock_step(kind, limit, dry_run, report).await? else {
            return Ok(());
        };
        let backoff = self.settings.backoff;
        let records: Vec<OutcomeRecord> = rows
            .iter()
            .map(|row| {
                let jitter = rand::thread_rng().gen::<f64>();
                let outcome = Outcome::lease_expired(row.attempt_count + 1, row.max_retries, &backoff, jitter);
                OutcomeRecord::expired(row.id, outcome)
            })
            .collect();
        let applied = record_outcomes_on(&mut tx, &records).await?;
        tx.commit().await.map_err(StoreError::from)?;
        self.handled(report, kind, &rows);
        let mut failed = Vec::new();
        for ((row, record), applied) in rows.iter().zip(&records).zip(applied) {
            let outcome = record.outcome();
            if let (true, Some(reason)) = (applied, outcome.dead_letter_reason()) {
                self.metrics
                    .failed
                    .with_label_values(&[row.channel.lower(), reason.as_str()])
                    .inc();
                failed.push(DueRow {
                    attempt_count: outcome.attempt,
                    failure_reason: Some(reason),
                    last_error: outcome.result.error().map(str::to_string),
                    ..row.clone()
                });
            }
        }
        // Dead letters of the rows that just failed; unconfirmed ones are swept later.
        let confirmed = self.publish_dead_letters(&failed).await;
        if !confirmed.is_empty() {
            let mut conn = self.store.pool().acquire().await.map_err(StoreError::from)?;
            scanning::mark_dead_lettered(&mut conn, &confirmed).await?;
        }
        Ok(())
    }

    async fn republish_dead_letters(
        &self,
        limit: i64,
        dry_run: bool,
        report: &mut PassReport,
    ) -> Result<(), ScanError> {
        let kind = ScanKind::DeadLetterPending;
        let Some((mut tx, rows)) = self.lock_step(kind, limit, dry_run, report).await? else {
            return Ok(());
        };
        let confirmed = self.publish_dead_letters(&rows).await;
        scanning::mark_dead_lettered(&mut tx, &confirmed).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let done: Vec<DueRow> = rows.iter().filter(|r| confirmed.contains(&r.id)).cloned().collect();
        report.add(kind, &done);
        if done.len() < rows.len() {
            return Err(ScanError::Publish {
                failed: rows.len() - done.len(),
                reason: "dead letters not confirmed".into(),
            });
        }
        Ok(())
    }

    /// Publishes one dead letter per FAILED row; returns the ids the broker confirmed.
    async fn publish_dead_letters(&self, rows: &[DueRow]) -> Vec<Uuid> {
        let mut confirmed = Vec::new();
        for row in rows {
            // Rows fail with a reason (a constraint says so); none would be a row in no pass.
            let reason = row.failure_reason.unwrap_or(DeadLetterReason::RetryExhausted);
            let last_error = row
                .last_error
                .clone()
                .or_else(|| Some(LostAttempt::LeaseExpired.as_str().into()));
            let letter = DeadLetter::of_notification(
                self.broker.topology(),
                &work_message(row),
                reason,
                row.attempt_count.max(1),
                None,
                last_error,
            );
            match self.broker.publish_dead_letter(&letter).await {
                Ok(()) => {
                    self.metrics
                        .dead_lettered
                        .with_label_values(&[row.channel.lower(), reason.as_str()])
                        .inc();
                    confirmed.push(row.id);
                }
                Err(e) => {
                    tracing::warn!(notification.id = %row.id, error = %e, "dead letter not confirmed; will retry next pass")
                }
            }
        }
        confirmed
    }
}

fn work_message(row: &DueRow) -> WorkMessage {
    WorkMessage::new(row.id, row.correlation_id.clone(), row.channel, row.priority)
}
