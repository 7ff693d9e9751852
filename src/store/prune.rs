//! Retention: deletes finished notifications (SENT and CANCELED) with their attempts in one
//! statement, batches none of whose items is left, and old audit rows.
//!
//! FAILED notifications are never pruned: nothing records whether their dead letter is still
//! in `dlq.<channel>` (discard removes letters without touching the row), so deleting one
//! could leave a letter pointing at nothing. A replayed FAILED row becomes QUEUED and, once
//! SENT, is pruned like any other.
//!
//! Every batch is its own short transaction that locks its rows with SKIP LOCKED, so a prune
//! never waits for a worker's or scanner's row lock and they wait for it only for one batch.
//! The selection walks `idx_notifications_created_at` from the oldest end: a finished row's
//! `updated_at` is never before its `created_at`, so `created_at < cutoff` is implied and lets
//! the index bound the scan.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use super::{status_from, Store, StoreResult};
use crate::domain::Transition;

/// The notifications a prune deletes: finished, untouched since `$1`, and not waiting for a
/// scheduled time after it.
fn prunable() -> String {
    format!(
        "{} AND created_at < $1 AND updated_at < $1 AND (scheduled_at IS NULL OR scheduled_at < $1)",
        status_from(Transition::Prune)
    )
}

/// Rows counted or deleted, by status and channel, plus batches and audit rows.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PruneCounts {
    /// status → channel → notifications.
    pub notifications: BTreeMap<String, BTreeMap<String, u64>>,
    pub attempts: u64,
    pub batches: u64,
    pub audit: u64,
}

impl PruneCounts {
    pub fn notification_total(&self) -> u64 {
        self.notifications.values().flat_map(|c| c.values()).sum()
    }

    pub fn total(&self) -> u64 {
        self.notification_total() + self.attempts + self.batches + self.audit
    }

    fn add(&mut self, status: String, channel: String, n: u64) {
        *self
            .notifications
            .entry(status)
            .or_default()
            .entry(channel)
            .or_default() += n;
    }

    pub fn merge(&mut self, other: &PruneCounts) {
        for (status, channels) in &other.notifications {
            for (channel, n) in channels {
                self.add(status.clone(), channel.clone(), *n);
            }
        }
        self.attempts += other.attempts;
        self.batches += other.batches;
        self.audit += other.audit;
    }
}

impl Store {
    /// What a prune with these cutoffs would delete (a dry run: nothing changes).
    pub async fn prune_counts(
        &self,
        cutoff: Option<DateTime<Utc>>,
        audit_cutoff: Option<DateTime<Utc>>,
    ) -> StoreResult<PruneCounts> {
        let mut counts = PruneCounts::default();
        if let Some(cutoff) = cutoff {
            let rows = sqlx::query(&format!(
                "SELECT status, channel, count(*) AS n, \
                   sum((SELECT count(*) FROM notification_attempts a WHERE a.notification_id = n.id))::bigint AS attempts \
                 FROM notifications n WHERE {} GROUP BY status, channel",
                prunable()
            ))
            .bind(cutoff)
            .fetch_all(&self.pool)
            .await?;
            for r in rows {
                let n: i64 = r.try_get("n")?;
                let attempts: Option<i64> = r.try_get("attempts")?;
                counts.add(r.try_get("status")?, r.try_get("channel")?, n.max(0) as u64);
                counts.attempts += attempts.unwrap_or(0).max(0) as u64;
            }
            // Batches that would be empty once the prunable items are gone.
            let n: i64 = sqlx::query_scalar(&format!(
                "SELECT count(*) FROM batches b WHERE b.created_at < $1 AND NOT EXISTS \
                 (SELECT 1 FROM notifications n WHERE n.batch_id = b.id AND NOT ({}))",
                prunable()
            ))
            .bind(cutoff)
            .fetch_one(&self.pool)
            .await?;
            counts.batches = n.max(0) as u64;
        }
        if let Some(cutoff) = audit_cutoff {
            let n: i64 =
                sqlx::query_scalar("SELECT count(*) FROM replay_audit WHERE COALESCE(finished_at, started_at) < $1")
                    .bind(cutoff)
                    .fetch_one(&self.pool)
                    .await?;
            counts.audit = n.max(0) as u64;
        }
        Ok(counts)
    }

    /// Locks up to `limit` prunable notifications (skipping any another transaction holds)
    /// and returns them with the open transaction; `with_rows` adds each row and its attempts
    /// as JSON, for an export written before `PruneBatch::commit`.
    pub async fn prune_batch(&self, cutoff: DateTime<Utc>, limit: i64, with_rows: bool) -> StoreResult<PruneBatch> {
        let mut tx = self.pool.begin().await?;
        // Never let one batch hold its locks for long, whatever the server's default.
        sqlx::query("SET LOCAL lock_timeout = '2s'").execute(&mut *tx).await?;
        let rows = sqlx::query(&format!(
            "SELECT n.id, n.status, n.channel, \
               (SELECT count(*) FROM notification_attempts a WHERE a.notification_id = n.id) AS attempts, \
               CASE WHEN $3 THEN to_jsonb(n) || jsonb_build_object('attempts', COALESCE( \
                 (SELECT jsonb_agg(to_jsonb(a) ORDER BY a.attempt_number, a.id) FROM notification_attempts a \
                  WHERE a.notification_id = n.id), '[]'::jsonb)) END AS row \
             FROM notifications n WHERE {} ORDER BY created_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            prunable()
        ))
        .bind(cutoff)
        .bind(limit)
        .bind(with_rows)
        .fetch_all(&mut *tx)
        .await?;
        let mut batch = PruneBatch {
            tx,
            ids: Vec::with_capacity(rows.len()),
            rows: Vec::new(),
            counts: PruneCounts::default(),
        };
        for r in rows {
            batch.ids.push(r.try_get("id")?);
            let attempts: i64 = r.try_get("attempts")?;
            batch.counts.attempts += attempts.max(0) as u64;
            batch.counts.add(r.try_get("status")?, r.try_get("channel")?, 1);
            if let Some(row) = r.try_get::<Option<serde_json::Value>, _>("row")? {
                batch.rows.push(row);
            }
        }
        Ok(batch)
    }

    /// Deletes up to `limit` batches created before `cutoff` none of whose items is left.
    pub async fn prune_empty_batches(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM batches WHERE id IN (SELECT b.id FROM batches b WHERE b.created_at < $1 \
               AND NOT EXISTS (SELECT 1 FROM notifications n WHERE n.batch_id = b.id) \
               ORDER BY b.created_at, b.id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// Deletes up to `limit` replay/discard audit rows that finished (or, interrupted,
    /// started) before `cutoff`.
    pub async fn prune_audit(&self, cutoff: DateTime<Utc>, limit: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM replay_audit WHERE id IN (SELECT id FROM replay_audit \
               WHERE COALESCE(finished_at, started_at) < $1 ORDER BY started_at, id LIMIT $2 FOR UPDATE SKIP LOCKED)",
        )
        .bind(cutoff)
        .bind(limit)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    /// When the oldest finished (SENT or CANCELED) notification was created, for the age
    /// gauge (the created_at index finds it without a scan).
    pub async fn oldest_finished(&self) -> StoreResult<Option<DateTime<Utc>>> {
        Ok(sqlx::query_scalar(&format!(
            "SELECT min(created_at) FROM notifications WHERE {}",
            status_from(Transition::Prune)
        ))
        .fetch_one(&self.pool)
        .await?)
    }
}

/// One locked batch of prunable notifications inside its own transaction. Dropping it
/// without `commit` rolls back: nothing is deleted.
pub struct PruneBatch {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    pub ids: Vec<Uuid>,
    /// Each row as JSON with its `attempts`, when asked for.
    pub rows: Vec<serde_json::Value>,
    pub counts: PruneCounts,
}

impl PruneBatch {
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Deletes the batch's notifications with their attempts (and any work row left of them) and commits.
    pub async fn commit(mut self) -> StoreResult<PruneCounts> {
        sqlx::query(
            "WITH attempts AS (DELETE FROM notification_attempts WHERE notification_id = ANY($1)), \
                  owed AS (DELETE FROM notification_outbox WHERE notification_id = ANY($1)) \
             DELETE FROM notifications WHERE id = ANY($1)",
        )
        .bind(&self.ids)
        .execute(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(self.counts)
    }
}
