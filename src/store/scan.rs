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
        /// QUEUED, still owing its first work message (in the outbox) past the grace period:
        /// the broker was down, or the process died between the 202 and the publish.
        Unpublished = "unpublished",
        /// ACCEPTED, unscheduled, older than the grace period: made by a version before the
        /// outbox (during a rolling upgrade) whose publish failed.
        Accepted = "accepted",
        /// SENDING with an expired lease: the worker died mid-send.
        ExpiredLease = "expired_lease",
        /// FAILED whose dead letter was never confirmed (a crash between commit and publish).
        DeadLetterPending = "dead_letter",
    }
}

/// An outbox entry's notification still waits for its first work message: neither claimed,
/// canceled nor waiting for a retry (which the retry pass publishes) since.
fn owes_first_message() -> String {
    format!("{} AND next_retry_at IS NULL", status_from(Transition::Enqueue))
}

const PAST_GRACE: &str = "created_at < now() - ($1::bigint * interval '1 millisecond')";

impl ScanKind {
    /// The transition a pass makes: its source states select the rows.
    pub fn transition(self) -> Transition {
        match self {
            Self::Retry => Transition::Retry,
            Self::Scheduled | Self::Accepted => Transition::Publish,
            Self::Unpublished => Transition::Enqueue,
            Self::ExpiredLease => Transition::RecordOutcome,
            Self::DeadLetterPending => Transition::DeadLetter,
        }
    }

    /// The rows due; `$1` is the grace period in milliseconds.
    fn predicate(self) -> String {
        let from = status_from(self.transition());
        match self {
            Self::Retry => format!("{from} AND next_retry_at <= now()"),
            Self::Scheduled => format!("{from} AND scheduled_at IS NOT NULL AND scheduled_at <= now()"),
            Self::Unpublished => format!("{} AND {PAST_GRACE}", owes_first_message()),
            Self::Accepted => format!("{from} AND scheduled_at IS NULL AND {PAST_GRACE}"),
            Self::ExpiredLease => format!("{from} AND lease_expires_at < now()"),
            Self::DeadLetterPending => format!(
                "{from} AND dead_lettered_at IS NULL AND updated_at < now() - ($1::bigint * interval '1 millisecond')"
            ),
        }
    }

    /// Where the pass looks: the outbox's entries for the unpublished pass (the outbox has
    /// no column named like one of notifications', so the predicates need no qualifier).
    fn source(self) -> &'static str {
        match self {
            Self::Unpublished => "notification_outbox o JOIN notifications n ON n.id = o.notification_id",
            _ => "notifications",
        }
    }

    /// What the pass locks: only the outbox entry for the unpublished pass. A worker may
    /// claim the notification meanwhile; the message then published is refused by the claim.
    fn lock(self) -> &'static str {
        match self {
            Self::Unpublished => "FOR UPDATE OF o SKIP LOCKED",
            _ => "FOR UPDATE SKIP LOCKED",
        }
    }

    fn order(self) -> &'static str {
        match self {
            Self::Retry => "next_retry_at",
            Self::Scheduled => "scheduled_at",
            // Ids are UUIDv7, so the outbox's primary key walks it oldest first.
            Self::Unpublished => "o.notification_id",
            Self::Accepted => "created_at",
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

/// Locks up to `limit` due rows of `kind` in the caller's transaction. For the unpublished
/// pass it first clears (up to `limit`) outbox entries past the grace period whose
/// notification moved on without them or is gone: nothing is owed for those.
pub async fn lock_due(
    conn: &mut PgConnection,
    kind: ScanKind,
    grace: Duration,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    let grace_ms = grace.as_millis() as i64;
    if kind == ScanKind::Unpublished {
        sqlx::query(&format!(
            "DELETE FROM notification_outbox WHERE notification_id IN ( \
               SELECT o.notification_id FROM notification_outbox o \
               LEFT JOIN notifications n ON n.id = o.notification_id \
               WHERE n.id IS NULL OR ({PAST_GRACE} AND NOT ({owes})) \
               LIMIT $2 FOR UPDATE OF o SKIP LOCKED)",
            owes = owes_first_message()
        ))
        .bind(grace_ms)
        .bind(limit)
        .execute(&mut *conn)
        .await?;
    }
    Ok(sqlx::query_as(&format!(
        "SELECT id, correlation_id, channel, priority, attempt_count, max_retries, failure_reason, last_error \
         FROM {} WHERE {} AND $1::bigint IS NOT NULL ORDER BY {} LIMIT $2 {}",
        kind.source(),
        kind.predicate(),
        kind.order(),
        kind.lock()
    ))
    .bind(grace_ms)
    .bind(limit)
    .fetch_all(conn)
    .await?)
}

/// After the broker confirmed the work messages of rows `kind` locked: the unpublished
/// pass's rows owe none any more; the others' rows are QUEUED and no longer due.
pub async fn mark_enqueued(conn: &mut PgConnection, kind: ScanKind, ids: &[Uuid]) -> StoreResult<()> {
    if kind == ScanKind::Unpublished {
        return super::clear_outbox_on(conn, ids).await;
    }
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
                    "(SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} AND $1::bigint IS NOT NULL LIMIT $2) d)",
                    k.source(),
                    k.predicate()
                )
            })
            .collect();
        let row: (i64, i64, i64, i64, i64, i64) = sqlx::query_as(&format!("SELECT {}", counts.join(", ")))
            .bind(grace.as_millis() as i64)
            .bind(BACKLOG_CAP)
            .fetch_one(&self.pool)
            .await?;
        Ok(ScanKind::ALL
            .iter()
            .copied()
            .zip([row.0, row.1, row.2, row.3, row.4, row.5])
            .collect())
    }
}
