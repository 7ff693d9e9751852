//! The scanner's statements. Each pass locks its rows with `FOR UPDATE SKIP LOCKED` inside
//! the caller's transaction, so concurrent scanners (cron on several hosts) split the work
//! instead of both publishing it; the caller publishes, updates and commits.

use std::time::Duration;

use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::{status_from, Store, StoreResult};
use crate::domain::{Channel, DeadLetterReason, Priority, Status, Transition};

crate::domain::named_enum! {
    /// What a scan pass looks for.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum ScanKind {
        /// QUEUED with `next_retry_at` due.
        Retry = "retry",
        /// ACCEPTED with `scheduled_at` due.
        Scheduled = "scheduled",
        /// QUEUED, still owing its first work message (its work row unpublished) past the
        /// grace period: the broker was down, or the process died between the 202 and the
        /// publish.
        Unpublished = "unpublished",
        /// ACCEPTED, unscheduled, older than the grace period: made by a version before the
        /// outbox (during a rolling upgrade) whose publish failed.
        Accepted = "accepted",
        /// SENDING with an expired lease: the worker died mid-send.
        ExpiredLease = "expired_lease",
        /// FAILED whose dead letter was never confirmed (a crash between commit and publish).
        DeadLetterPending = "dead_letter",
        /// QUEUED whose confirmed work message its queue no longer holds (purged, deleted
        /// with its queue, lost with a node's disk, dropped by a policy): see `lock_lost`.
        Lost = "lost",
        /// FAILED whose confirmed dead letter its DLQ no longer holds (the same losses):
        /// see `lock_lost_letters`. Its letter is published again by the dead-letter pass.
        LostDeadLetter = "lost_dead_letter",
    }
}

impl ScanKind {
    /// The kinds whose due rows the predicate alone decides (the backlog gauge counts them).
    /// A lost message is decided by the predicate together with its queue's depth.
    /// A lost letter is decided by the predicate together with its DLQ's depth.
    pub const DUE_BY_ROW: &'static [ScanKind] = &[
        Self::Retry,
        Self::Scheduled,
        Self::Unpublished,
        Self::Accepted,
        Self::ExpiredLease,
        Self::DeadLetterPending,
    ];
}

/// A work row's notification still waits for its first work message: neither claimed,
/// canceled nor waiting for a retry (which the retry pass publishes) since.
fn owes_first_message() -> String {
    format!(
        "published_at IS NULL AND claimed_at IS NULL AND {} AND next_retry_at IS NULL",
        status_from(Transition::Enqueue)
    )
}

const PAST_GRACE: &str = "created_at < now() - ($1::bigint * interval '1 millisecond')";

/// The rows a pass reads through the work table (`notification_outbox w`), joined to their
/// notification. Its columns are named unlike notifications', so predicates need no qualifier.
const WORK: &str = "notification_outbox w JOIN notifications n ON n.id = w.notification_id";

impl ScanKind {
    /// The transition a pass makes: its source states select the rows.
    pub fn transition(self) -> Transition {
        match self {
            Self::Retry => Transition::Retry,
            Self::Scheduled | Self::Accepted => Transition::Publish,
            Self::Unpublished => Transition::Enqueue,
            Self::ExpiredLease => Transition::RecordOutcome,
            Self::DeadLetterPending => Transition::DeadLetter,
            Self::Lost => Transition::Requeue,
            Self::LostDeadLetter => Transition::DeadLetter,
        }
    }

    /// The rows due; `$1` is the grace period in milliseconds. Each reads one partial index
    /// whose columns the claim and the outcome leave alone (so both stay HOT updates:
    /// migrations/20261209000001), or the work table; the status condition is checked on
    /// the row.
    fn predicate(self) -> String {
        let from = status_from(self.transition());
        let ago = "now() - ($1::bigint * interval '1 millisecond')";
        match self {
            Self::Retry => format!("{from} AND next_retry_at <= now()"),
            // `due_at` is the schedule, or for an unscheduled one the creation.
            Self::Scheduled => format!("{from} AND scheduled_at IS NOT NULL AND due_at <= now()"),
            Self::Unpublished => format!("{} AND {PAST_GRACE}", owes_first_message()),
            Self::Accepted => format!("{from} AND scheduled_at IS NULL AND due_at < {ago}"),
            Self::ExpiredLease => format!("claimed_at IS NOT NULL AND {from} AND lease_expires_at < now()"),
            // Every FAILED row has its reason (constraint notifications_failed_has_reason).
            Self::DeadLetterPending => {
                format!("failure_reason IS NOT NULL AND dead_lettered_at IS NULL AND {from} AND updated_at < {ago}")
            }
            // Its message was confirmed (its work row stamped, not claimed since, no retry
            // pending) more than `$1` ago: every confirm of a work message stamps
            // `published_at` (the create's, a retry's, a replay's, this pass's).
            Self::Lost => format!("claimed_at IS NULL AND published_at < {ago} AND {from} AND next_retry_at IS NULL"),
            // Its letter was confirmed more than `$1` ago and never discarded.
            Self::LostDeadLetter => format!(
                "failure_reason IS NOT NULL AND letter_discarded_at IS NULL AND {from} AND dead_lettered_at < {ago}"
            ),
        }
    }

    /// Where the pass looks: the work table for what is QUEUED or SENDING (status is in no
    /// index), the notifications' partial indexes for the rest.
    fn source(self) -> &'static str {
        match self {
            Self::Unpublished | Self::ExpiredLease | Self::Lost => WORK,
            _ => "notifications",
        }
    }

    /// What the pass locks. The unpublished pass locks only the work row: a worker may
    /// claim the notification meanwhile, and the message then published is refused by the
    /// claim. The others lock the notification they change.
    fn lock(self) -> &'static str {
        match self {
            Self::Unpublished => "FOR UPDATE OF w SKIP LOCKED",
            Self::ExpiredLease | Self::Lost => "FOR UPDATE OF n SKIP LOCKED",
            _ => "FOR UPDATE SKIP LOCKED",
        }
    }

    fn order(self) -> &'static str {
        match self {
            Self::Retry => "next_retry_at",
            Self::Scheduled | Self::Accepted => "due_at",
            // Ids are UUIDv7, so the work table's keys walk it oldest first.
            Self::Unpublished | Self::Lost => "w.notification_id",
            Self::ExpiredLease => "lease_expires_at",
            Self::DeadLetterPending => "id",
            Self::LostDeadLetter => "dead_lettered_at",
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
    pub failure_reason: Option<DeadLetterReason>,
    pub last_error: Option<String>,
}

/// Locks up to `limit` due rows of `kind` in the caller's transaction. For the unpublished
/// pass it first deletes (up to `limit`) work rows whose notification is gone or no longer
/// QUEUED or SENDING: rows an older version left (its triggers keep the rest in step).
pub async fn lock_due(
    conn: &mut PgConnection,
    kind: ScanKind,
    grace: Duration,
    limit: i64,
) -> StoreResult<Vec<DueRow>> {
    let grace_ms = grace.as_millis() as i64;
    if kind == ScanKind::Unpublished {
        sqlx::query(
            "DELETE FROM notification_outbox WHERE notification_id IN ( \
               SELECT w.notification_id FROM notification_outbox w \
               LEFT JOIN notifications n ON n.id = w.notification_id \
               WHERE n.id IS NULL OR n.status NOT IN ('QUEUED', 'SENDING') \
               LIMIT $1 FOR UPDATE OF w SKIP LOCKED)",
        )
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

/// The notifications that wait for a message on one work queue: its channel and the
/// priorities that share it (all three on a classic queue, one on a quorum queue).
#[derive(Clone, Debug)]
pub struct QueueWaiters {
    pub channel: Channel,
    pub priorities: Vec<Priority>,
}

/// The lost-message rule for one work queue holding `depth` ready messages: counts (up to
/// `depth + cap`) the notifications that have waited longer than `lost_after` for a message
/// on it, and when they outnumber the messages, locks the oldest of them, at most `limit`
/// and at most the difference. Each message on the queue belongs to at most one waiting
/// notification (young ones', duplicates' and canceled ones' count too, which only makes the
/// rule slower to fire), so a difference means messages are missing. A message that a
/// worker has taken but not yet claimed is not among the ready ones either: that notification
/// may be picked too, and its second message is refused by the claim (ARCHITECTURE.md).
/// Returns the count of waiting notifications and the locked rows.
pub async fn lock_lost(
    conn: &mut PgConnection,
    waiters: &QueueWaiters,
    lost_after: Duration,
    depth: i64,
    cap: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<DueRow>)> {
    let waiting = count_waiting(conn, waiters, lost_after, depth.saturating_add(cap)).await?;
    let missing = (waiting - depth).min(limit);
    if missing <= 0 {
        return Ok((waiting, Vec::new()));
    }
    let kind = ScanKind::Lost;
    let rows = sqlx::query_as(&format!(
        "SELECT id, correlation_id, channel, priority, attempt_count, max_retries, failure_reason, last_error \
         FROM {WORK} WHERE {} ORDER BY {} LIMIT $4 {}",
        of_queue(),
        kind.order(),
        kind.lock()
    ))
    .bind(lost_after.as_millis() as i64)
    .bind(waiters.channel)
    .bind(waiters.priorities_text())
    .bind(missing)
    .fetch_all(conn)
    .await?;
    Ok((waiting, rows))
}

/// The lost-message predicate of one queue: `$2` the channel, `$3` its priorities (the
/// work table's copies, which its index on (queue_channel, notification_id) reads).
fn of_queue() -> String {
    format!(
        "queue_channel = $2 AND queue_priority = ANY($3) AND {}",
        ScanKind::Lost.predicate()
    )
}

/// How many notifications have waited longer than `lost_after` for a message on the
/// queue of `waiters`, counted up to `cap` (so a deep backlog costs at most that many rows).
pub async fn count_waiting(
    conn: &mut PgConnection,
    waiters: &QueueWaiters,
    lost_after: Duration,
    cap: i64,
) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT 1 FROM {WORK} WHERE {} LIMIT $4) waiting",
        of_queue()
    ))
    .bind(lost_after.as_millis() as i64)
    .bind(waiters.channel)
    .bind(waiters.priorities_text())
    .bind(cap)
    .fetch_one(conn)
    .await?)
}

impl QueueWaiters {
    fn priorities_text(&self) -> Vec<&'static str> {
        self.priorities.iter().map(|p| p.as_str()).collect()
    }
}

/// The lost-message rule for one channel's DLQ holding `depth` letters: when fewer letters
/// are there than FAILED notifications whose letter was confirmed more than `lost_after`
/// ago (and not discarded), marks the oldest of the difference (at most `limit`) as owing
/// their letter again, for the dead-letter pass to publish. A copy of a letter that was in
/// fact there (an operator's `inspect-dlq` held it unacked) is one more letter in the DLQ;
/// replay takes the first and skips the rest. Returns the expected count and the rows marked.
pub async fn reclaim_lost_letters(
    conn: &mut PgConnection,
    channel: Channel,
    lost_after: Duration,
    depth: i64,
    limit: i64,
) -> StoreResult<(i64, Vec<DueRow>)> {
    let kind = ScanKind::LostDeadLetter;
    let lost_ms = lost_after.as_millis() as i64;
    let of_channel = format!("{} AND channel = $2", kind.predicate());
    let expected: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE {of_channel} LIMIT $3) w"
    ))
    .bind(lost_ms)
    .bind(channel)
    .bind(depth.saturating_add(limit))
    .fetch_one(&mut *conn)
    .await?;
    let missing = (expected - depth).min(limit);
    if missing <= 0 {
        return Ok((expected, Vec::new()));
    }
    let rows = sqlx::query_as(&format!(
        "UPDATE notifications SET dead_lettered_at = NULL WHERE id IN ( \
           SELECT id FROM notifications WHERE {of_channel} ORDER BY {} LIMIT $3 {}) \
         RETURNING id, correlation_id, channel, priority, attempt_count, max_retries, failure_reason, last_error",
        kind.order(),
        kind.lock()
    ))
    .bind(lost_ms)
    .bind(channel)
    .bind(missing)
    .fetch_all(conn)
    .await?;
    Ok((expected, rows))
}

/// After the broker confirmed the work messages of rows `kind` locked: the others' rows are
/// QUEUED and no longer due, and every row's work row is stamped published (the status
/// change's trigger wrote the work row of an ACCEPTED one before the stamp).
pub async fn mark_enqueued(conn: &mut PgConnection, kind: ScanKind, ids: &[Uuid]) -> StoreResult<()> {
    if kind != ScanKind::Unpublished {
        sqlx::query(&format!(
            "UPDATE notifications SET status = '{}', next_retry_at = NULL, updated_at = now() WHERE id = ANY($1)",
            Status::Queued
        ))
        .bind(ids)
        .execute(&mut *conn)
        .await?;
    }
    super::mark_published_in(conn, ids).await
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
        let counts: Vec<String> = ScanKind::DUE_BY_ROW
            .iter()
            .map(|k| {
                format!(
                    "(SELECT count(*) FROM (SELECT 1 FROM {} WHERE {} AND $1::bigint IS NOT NULL LIMIT $2) d)",
                    k.source(),
                    k.predicate()
                )
            })
            .collect();
        let row = sqlx::query(&format!("SELECT {}", counts.join(", ")))
            .bind(grace.as_millis() as i64)
            .bind(BACKLOG_CAP)
            .fetch_one(&self.pool)
            .await?;
        ScanKind::DUE_BY_ROW
            .iter()
            .enumerate()
            .map(|(i, &kind)| Ok((kind, row.try_get::<i64, _>(i)?)))
            .collect()
    }
}
