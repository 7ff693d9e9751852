//! The scanner's statements. Each pass locks its rows with `FOR UPDATE SKIP LOCKED` inside
//! the caller's transaction, so concurrent scanners (cron on several hosts) split the work
//! instead of both publishing it; the caller publishes, updates and commits.

use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use super::{status_from, Store, StoreResult};
use crate::domain::{Channel, Priority, Status, Transition};

crate::domain::named_enum! {
    /// What a scan pass looks for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ScanKind {
        /// QUEUED with `next_retry_at` due.
        Retry = "retry",
        /// ACCEPTED with `scheduled_at` due.
        Scheduled = "scheduled",
        /// ACCEPTED, unscheduled, older than the grace period: the broker was down at create time.
        Unpublished = "unpublished",
        /// SENDING with an expired lease: the worker died mid-send.
        ExpiredLease = "expired_lease",
        /// FAILED whose dead letter was never confirmed (a crash between commit and publish).
        DeadLetterPending = "dead_letter",
    }
}

impl ScanKind {
    /// The transition a pass makes: its source states select the rows.
    pub fn transition(self) -> Transition {
        match self {
            Self::Retry => Transition::Retry,
            Self::Scheduled | Self::Unpublished => Transition::Publish,
            Self::ExpiredLease => Transition::RecordOutcome,
            Self::DeadLetterPending => Transition::DeadLetter,
        }
    }

    /// The rows due; `$1` is the grace period in milliseconds.
    fn predicate(self) -> String {
        let due = match self {
            Self::Retry => "next_retry_at <= now()",
            Self::Scheduled => "scheduled_at IS NOT NULL AND scheduled_at <= now()",
            Self::Unpublished => {
                "scheduled_at IS NULL AND created_at < now() - ($1::bigint * interval '1 millisecond')"
            }
            Self::ExpiredLease => "lease_expires_at < now()",
            Self::DeadLetterPending => {
                "dead_lettered_at IS NULL AND updated_at < now() - ($1::bigint * interval '1 millisecond')"
            }
        };
        format!("{} AND {due}", status_from(self.transition()))
    }

    fn order(self) -> &'static str {
        match self {
            Self::Retry => "next_retry_at",
            Self::Scheduled => "scheduled_at",
            Self::Unpublished => "created_at",
            Self::ExpiredLease => "lease_expires_at",
            Self::DeadLetterPending => "updated_at",
        }
    }
}

/// A row a scan pass acts on.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct DueRow {
    pub id: Uuid,
    pub correlation_id: String,
    pub channel: Channel,
    pub priority: Priority,
    pub attempt_count: i32,
    pub max_retries: i32,
    pub failure_reason: Option<String>,
    pub last_error: Option<String>,
}

/// Locks up to `limit` due rows of `kind` in the caller's transaction.
pub async fn lock_due(
    conn: &mut PgConnection,
    kind: ScanKind,
    grace: Duration,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    Ok(sqlx::query_as(&format!(
        "SELECT id, correlation_id, channel, priority, attempt_count, max_retries, failure_reason, last_error \
         FROM notifications WHERE {} AND $1::bigint IS NOT NULL ORDER BY {} LIMIT $2 FOR UPDATE SKIP LOCKED",
        kind.predicate(),
        kind.order()
    ))
    .bind(grace.as_millis() as i64)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// After the broker confirmed their work messages: the rows are QUEUED and no longer due.
pub async fn mark_enqueued(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<()> {
    sqlx::query(&format!(
        "UPDATE notifications SET status = '{}', next_retry_at = NULL, updated_at = now() WHERE id = ANY($1)",
        Status::Queued
    ))
    .bind(ids)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn mark_dead_lettered(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<()> {
    sqlx::query("UPDATE notifications SET dead_lettered_at = now() WHERE id = ANY($1)")
        .bind(ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// The backlog gauge saturates here (documented with the metric).
pub const BACKLOG_CAP: i64 = 100_000;

impl Store {
    /// How many rows of each kind are due now (the backlog gauge), ignoring scan limits, up
    /// to `BACKLOG_CAP` each. One count per kind, so each reads only its due rows through
    /// its partial index: a count over every live row read each queued notification on
    /// every pass, which with a deep queue took seconds and starved the deliveries.
    pub async fn due_backlog(&self, grace: Duration) -> StoreResult<Vec<(ScanKind, i64)>> {
        let counts: Vec<String> = ScanKind::ALL
            .iter()
            .map(|k| {
                format!(
                    "(SELECT count(*) FROM (SELECT 1 FROM notifications WHERE {} AND $1::bigint IS NOT NULL LIMIT $2) d)",
                    k.predicate()
                )
            })
            .collect();
        let row: (i64, i64, i64, i64, i64) = sqlx::query_as(&format!("SELECT {}", counts.join(", ")))
            .bind(grace.as_millis() as i64)
            .bind(BACKLOG_CAP)
            .fetch_one(&self.pool)
            .await?;
        Ok(ScanKind::ALL
            .iter()
            .copied()
            .zip([row.0, row.1, row.2, row.3, row.4])
            .collect())
    }
}
