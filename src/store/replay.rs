//! Statements of the replay tooling: the FAILED → QUEUED reset (inside the caller's
//! transaction, so a crash before the publish is confirmed rolls it back), the stream of
//! FAILED rows for `--from-db`, and the audit trail.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use serde::Serialize;
use sqlx::PgConnection;
use uuid::Uuid;

use super::{status_from, Store, StoreResult};
use crate::domain::{Channel, DeadLetterReason, Priority, Status, Transition};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ReplayTarget {
    pub id: Uuid,
    pub correlation_id: String,
    pub channel: Channel,
    pub priority: Priority,
}

/// FAILED → QUEUED with a fresh budget (`reset_attempts`) or one more attempt. Returns None
/// when the notification is not FAILED (already replayed, or unknown).
pub async fn reset_failed(
    conn: &mut PgConnection,
    id: Uuid,
    reset_attempts: bool,
) -> StoreResult<Option<ReplayTarget>> {
    Ok(sqlx::query_as(&format!(
        "UPDATE notifications SET status = '{}', next_retry_at = NULL, lease_token = NULL, lease_expires_at = NULL, \
           failure_reason = NULL, dead_lettered_at = NULL, letter_discarded_at = NULL, \
           attempt_count = CASE WHEN $2 THEN 0 ELSE attempt_count END, \
           max_retries = CASE WHEN $2 THEN max_retries ELSE GREATEST(max_retries, attempt_count + 1) END, \
           updated_at = now() \
         WHERE id = $1 AND {} \
         RETURNING id, correlation_id, channel, priority",
        Status::Queued,
        status_from(Transition::Replay)
    ))
    .bind(id)
    .bind(reset_attempts)
    .fetch_optional(conn)
    .await?)
}

/// The rows a `FailedFilter` selects (those a replay may take), with its binds $1–$6 (see
/// `FailedFilter::bind`).
fn failed_selection() -> String {
    format!(
        "{} AND (cardinality($1::uuid[]) = 0 OR id = ANY($1)) \
         AND ($2::text IS NULL OR channel = $2) AND ($3::text IS NULL OR failure_reason = $3) \
         AND ($4::timestamptz IS NULL OR updated_at >= $4) AND ($5::timestamptz IS NULL OR updated_at <= $5)",
        status_from(Transition::Replay)
    )
}

/// Built once: a stream of ids borrows its statement for as long as it runs.
static FAILED_IDS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT id FROM notifications WHERE {} ORDER BY updated_at, id LIMIT $6",
        failed_selection()
    )
});

/// Filters of `replay --from-db`.
#[derive(Clone, Debug, Default)]
pub struct FailedFilter {
    pub ids: Vec<Uuid>,
    pub channel: Option<Channel>,
    pub reason: Option<DeadLetterReason>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AuditRow {
    pub id: Uuid,
    pub operator: String,
    pub source: String,
    pub selection: serde_json::Value,
    pub dry_run: bool,
    pub replayed: i32,
    pub skipped: i32,
    pub errors: i32,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl FailedFilter {
    /// Binds $1–$6 of `failed_selection` (the row limit is $6).
    fn bind<'q, O>(
        &'q self,
        q: sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::QueryScalar<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments> {
        q.bind(&self.ids)
            .bind(self.channel)
            .bind(self.reason.map(DeadLetterReason::as_str))
            .bind(self.since)
            .bind(self.until)
            .bind(self.limit.unwrap_or(i64::MAX))
    }
}

impl Store {
    /// FAILED notifications matching `f`, streamed oldest failure first (bounded memory).
    pub fn failed_ids<'a>(&'a self, f: &'a FailedFilter) -> BoxStream<'a, Result<Uuid, sqlx::Error>> {
        f.bind(sqlx::query_scalar(FAILED_IDS.as_str())).fetch(&self.pool)
    }

    /// A notification still waiting for a delivery (ACCEPTED or QUEUED): its dead letter
    /// came from the broker (a quorum queue's delivery limit), not from a final failure.
    pub async fn waiting_target(&self, id: Uuid) -> StoreResult<Option<ReplayTarget>> {
        // Waiting: a claim would still take it.
        Ok(sqlx::query_as(&format!(
            "SELECT id, correlation_id, channel, priority FROM notifications WHERE id = $1 AND {}",
            status_from(Transition::Claim)
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// How many FAILED notifications `f` selects (the total of `replay --from-db`'s progress).
    /// A FAILED notification's dead letter is being discarded: it is meant to be gone from
    /// its DLQ, so the lost-letter rule no longer counts it.
    pub async fn mark_letter_discarded(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query(&format!(
            "UPDATE notifications SET letter_discarded_at = now() WHERE id = $1 AND {}",
            status_from(Transition::DeadLetter)
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn count_failed(&self, f: &FailedFilter) -> StoreResult<u64> {
        let sql = format!(
            "SELECT count(*) FROM (SELECT 1 FROM notifications WHERE {} LIMIT $6) AS selected",
            failed_selection()
        );
        let n: i64 = f.bind(sqlx::query_scalar(&sql)).fetch_one(&self.pool).await?;
        Ok(n.max(0) as u64)
    }

    pub async fn status_of(&self, id: Uuid) -> StoreResult<Option<Status>> {
        Ok(sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?)
    }

    pub async fn audit_start(
        &self,
        id: Uuid,
        operator: &str,
        source: &str,
        selection: &serde_json::Value,
        dry_run: bool,
    ) -> StoreResult<()> {
        sqlx::query("INSERT INTO replay_audit (id, operator, source, selection, dry_run) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(operator)
            .bind(source)
            .bind(selection)
            .bind(dry_run)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Records progress; `finished` marks the run complete (an interrupted run keeps NULL).
    pub async fn audit_progress(
        &self,
        id: Uuid,
        replayed: i32,
        skipped: i32,
        errors: i32,
        finished: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE replay_audit SET replayed = $2, skipped = $3, errors = $4, \
               finished_at = CASE WHEN $5 THEN now() ELSE finished_at END WHERE id = $1",
        )
        .bind(id)
        .bind(replayed)
        .bind(skipped)
        .bind(errors)
        .bind(finished)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn audit_history(&self, limit: i64) -> StoreResult<Vec<AuditRow>> {
        Ok(
            sqlx::query_as("SELECT * FROM replay_audit ORDER BY started_at DESC LIMIT $1")
                .bind(limit)
                .fetch_all(&self.pool)
                .await?,
        )
    }
}
