//! One scan pass: put due retries, due scheduled notifications and never-published ones
//! back on the queues; recover expired leases; publish dead letters that a crash left
//! unconfirmed. Rows are locked with SKIP LOCKED, published with confirms, then updated and
//! committed, so concurrent scanners never publish a row twice and a failed publish leaves
//! the row due for the next pass.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use chrono::Utc;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::app::App;
use crate::broker::{DeadLetter, WorkMessage};
use crate::domain::{DeadLetterReason, DeliveryResult, NextStep};
use crate::store::scan::{self as scanning, DueRow, ScanKind};
use crate::store::{OutcomeUpdate, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ScanError {
    #[error("PostgreSQL: {0}")]
    Store(#[from] StoreError),
    #[error("RabbitMQ: publishes not confirmed: {failed} ({reason}); those rows stay due")]
    Publish { failed: usize, reason: String },
}

#[derive(Debug, Default, Serialize, Clone)]
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
                .entry(r.channel.lower().into())
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
}

pub struct Scanner {
    app: App,
}

impl Scanner {
    pub fn new(app: App) -> Scanner {
        Scanner { app }
    }

    /// One pass over the kinds in `scope`. A broker failure is reported after the other kinds
    /// had their turn, so one outage does not starve lease recovery.
    pub async fn pass(&self, scope: ScanScope, dry_run: bool) -> Result<PassReport, ScanError> {
        let started = Instant::now();
        let mut report = PassReport {
            dry_run,
            ..Default::default()
        };
        let s = &self.app.settings;
        let mut kinds = Vec::new();
        if scope.retries {
            kinds.extend([
                (ScanKind::ExpiredLease, s.retry_scan_limit),
                (ScanKind::Retry, s.retry_scan_limit),
            ]);
        }
        if scope.scheduled {
            kinds.extend([
                (ScanKind::Scheduled, s.scheduler_scan_limit),
                (ScanKind::Unpublished, s.scheduler_scan_limit),
            ]);
        }
        if scope.retries {
            kinds.push((ScanKind::DeadLetterPending, s.retry_scan_limit));
        }
        let mut publish_error = None;
        for (kind, limit) in kinds {
            let kind_started = Instant::now();
            let outcome = match kind {
                ScanKind::ExpiredLease => self.recover_leases(limit, dry_run, &mut report).await,
                ScanKind::DeadLetterPending => self.republish_dead_letters(limit, dry_run, &mut report).await,
                _ => self.enqueue_due(kind, limit, dry_run, &mut report).await,
            };
            self.app
                .metrics
                .scan_duration
                .with_label_values(&[kind.as_str()])
                .observe(kind_started.elapsed().as_secs_f64());
            match outcome {
                Ok(()) => {}
                Err(ScanError::Publish { failed, reason }) => {
                    report.unconfirmed += failed as u64;
                    publish_error.get_or_insert(reason);
                }
                Err(e) => return Err(e),
            }
        }
        report.duration_ms = started.elapsed().as_millis() as u64;
        if let Ok(backlog) = self.app.store.due_backlog(s.unpublished_grace).await {
            for (kind, n) in backlog {
                self.app.metrics.due_backlog.with_label_values(&[kind.as_str()]).set(n);
            }
        }
        match publish_error {
            Some(reason) => Err(ScanError::Publish {
                failed: report.unconfirmed as usize,
                reason,
            }),
            None => Ok(report),
        }
    }

    async fn enqueue_due(
        &self,
        kind: ScanKind,
        limit: i64,
        dry_run: bool,
        report: &mut PassReport,
    ) -> Result<(), ScanError> {
        let mut tx = self.app.store.begin().await?;
        let rows = scanning::lock_due(&mut tx, kind, self.app.settings.unpublished_grace, limit).await?;
        if rows.is_empty() || dry_run {
            report.add(kind, &rows);
            tx.rollback().await.map_err(StoreError::from)?;
            return Ok(());
        }
        let messages: Vec<WorkMessage> = rows.iter().map(work_message).collect();
        let results = self.app.broker.publish_work(&messages).await;
        let mut confirmed = Vec::new();
        let mut failure = None;
        for (row, result) in rows.iter().zip(results) {
            match result {
                Ok(()) => confirmed.push(row.clone()),
                Err(e) => {
                    failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        let ids: Vec<Uuid> = confirmed.iter().map(|r| r.id).collect();
        scanning::mark_enqueued(&mut tx, &ids).await?;
        tx.commit().await.map_err(StoreError::from)?;
        report.add(kind, &confirmed);
        for r in &confirmed {
            self.app
                .metrics
                .scanner_enqueued
                .with_label_values(&[kind.as_str(), r.channel.lower()])
                .inc();
        }
        match failure {
            Some(reason) => Err(ScanError::Publish {
                failed: rows.len() - confirmed.len(),
                reason,
            }),
            None => Ok(()),
        }
    }

    /// A worker died mid-send: count the lost attempt as a transient failure, then retry it
    /// or, out of attempts, fail and dead-letter it like any other.
    async fn recover_leases(&self, limit: i64, dry_run: bool, report: &mut PassReport) -> Result<(), ScanError> {
        let mut tx = self.app.store.begin().await?;
        let rows = scanning::lock_due(&mut tx, ScanKind::ExpiredLease, Duration::ZERO, limit).await?;
        if rows.is_empty() || dry_run {
            report.add(ScanKind::ExpiredLease, &rows);
            tx.rollback().await.map_err(StoreError::from)?;
            return Ok(());
        }
        let lost = DeliveryResult::Transient {
            status: None,
            error: "lease expired".into(),
            body: String::new(),
            retry_after: None,
        };
        let mut failed = Vec::new();
        for row in &rows {
            let attempt = (row.attempt_count + 1) as u32;
            let jitter = rand::thread_rng().gen::<f64>();
            let update = match lost.next_step(attempt, row.max_retries.max(1) as u32, &self.app.backoff(), jitter) {
                NextStep::RetryAfter(after) => OutcomeUpdate::Retry {
                    after,
                    error: "lease expired".into(),
                },
                _ => OutcomeUpdate::Failed {
                    reason: DeadLetterReason::RetryExhausted,
                    error: Some("lease expired".into()),
                },
            };
            if scanning::recover_lease(&mut tx, row, &update).await? && matches!(update, OutcomeUpdate::Failed { .. }) {
                failed.push(DueRow {
                    attempt_count: row.attempt_count + 1,
                    last_error: Some("lease expired".into()),
                    ..row.clone()
                });
            }
        }
        tx.commit().await.map_err(StoreError::from)?;
        report.add(ScanKind::ExpiredLease, &rows);
        for r in &rows {
            self.app
                .metrics
                .scanner_enqueued
                .with_label_values(&[ScanKind::ExpiredLease.as_str(), r.channel.lower()])
                .inc();
        }
        for r in &failed {
            self.app
                .metrics
                .failed
                .with_label_values(&[r.channel.lower(), DeadLetterReason::RetryExhausted.as_str()])
                .inc();
        }
        // Dead letters of the rows that just failed; unconfirmed ones are swept later.
        let confirmed = self
            .publish_dead_letters(&failed, DeadLetterReason::RetryExhausted)
            .await;
        if !confirmed.is_empty() {
            let mut conn = self.app.store.pool().acquire().await.map_err(StoreError::from)?;
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
        let mut tx = self.app.store.begin().await?;
        let rows = scanning::lock_due(
            &mut tx,
            ScanKind::DeadLetterPending,
            self.app.settings.unpublished_grace,
            limit,
        )
        .await?;
        if rows.is_empty() || dry_run {
            report.add(ScanKind::DeadLetterPending, &rows);
            tx.rollback().await.map_err(StoreError::from)?;
            return Ok(());
        }
        let confirmed = self.publish_dead_letters(&rows, DeadLetterReason::RetryExhausted).await;
        scanning::mark_dead_lettered(&mut tx, &confirmed).await?;
        tx.commit().await.map_err(StoreError::from)?;
        let done: Vec<DueRow> = rows.iter().filter(|r| confirmed.contains(&r.id)).cloned().collect();
        report.add(ScanKind::DeadLetterPending, &done);
        if done.len() < rows.len() {
            return Err(ScanError::Publish {
                failed: rows.len() - done.len(),
                reason: "dead letters not confirmed".into(),
            });
        }
        Ok(())
    }

    /// Publishes one dead letter per row; returns the ids the broker confirmed.
    async fn publish_dead_letters(&self, rows: &[DueRow], default_reason: DeadLetterReason) -> Vec<Uuid> {
        let mut confirmed = Vec::new();
        for row in rows {
            let reason = row
                .failure_reason
                .as_deref()
                .and_then(DeadLetterReason::parse)
                .unwrap_or(default_reason);
            let letter = DeadLetter {
                notification_id: Some(row.id),
                channel: row.channel,
                reason,
                attempts: row.attempt_count.max(1),
                last_status_code: None,
                last_error: row.last_error.clone().or_else(|| Some("lease expired".into())),
                failed_at: Utc::now(),
                original_queue: self.app.broker.topology().work_queue(row.channel, row.priority),
                body: work_message(row).to_json(),
            };
            match self.app.broker.publish_dead_letter(&letter).await {
                Ok(()) => {
                    self.app
                        .metrics
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
    WorkMessage {
        notification_id: row.id,
        correlation_id: row.correlation_id.clone(),
        channel: row.channel,
        priority: row.priority,
    }
}
