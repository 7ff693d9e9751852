//! Statements of `dispatchctl notifications`: one notification with its attempts, or a
//! filtered list, read straight from PostgreSQL (the source of truth).

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::{Store, StoreResult};
use crate::domain::{Channel, Status};

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRow {
    pub id: Uuid,
    pub correlation_id: String,
    pub batch_id: Option<Uuid>,
    pub channel: Channel,
    pub priority: String,
    pub recipient: String,
    pub status: Status,
    pub attempt_count: i32,
    pub max_retries: i32,
    pub provider_message_id: Option<String>,
    pub last_error: Option<String>,
    pub failure_reason: Option<String>,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    pub dead_lettered_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Still owes its first work message (its work row unpublished): not on its queue yet.
    pub awaiting_publish: bool,
}

#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
#[serde(rename_all = "camelCase")]
pub struct AttemptRow {
    pub attempt_number: i32,
    pub outcome: String,
    pub status_code: Option<i32>,
    pub error: Option<String>,
    /// An excerpt of the provider's answer (see `domain::response_excerpt`).
    pub response_body: Option<String>,
    pub duration_ms: i32,
    pub created_at: DateTime<Utc>,
    /// Kind and host of the provider (`smtp mail.example.com:587`); None for attempts
    /// recorded before it was kept, and for expired leases.
    pub provider: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct LookupFilter {
    pub status: Option<Status>,
    pub channel: Option<Channel>,
    pub recipient: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: i64,
}

pub(super) const ROW: &str =
    "id, correlation_id, batch_id, channel, priority, recipient, status, attempt_count, max_retries, \
     provider_message_id, last_error, failure_reason, scheduled_at, next_retry_at, lease_expires_at, \
     dead_lettered_at, created_at, updated_at, \
     (next_retry_at IS NULL AND EXISTS (SELECT 1 FROM notification_outbox w WHERE w.notification_id = notifications.id \
        AND w.published_at IS NULL AND w.claimed_at IS NULL)) AS awaiting_publish";

impl Store {
    pub async fn lookup(&self, id: Uuid) -> StoreResult<Option<(NotificationRow, Vec<AttemptRow>)>> {
        let row: Option<NotificationRow> = sqlx::query_as(&format!("SELECT {ROW} FROM notifications WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let attempts = sqlx::query_as(
            "SELECT attempt_number, outcome, status_code, error, response_body, duration_ms, created_at, provider \
             FROM notification_attempts WHERE notification_id = $1 ORDER BY created_at, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        Ok(Some((row, attempts)))
    }

    /// Newest first.
    pub async fn lookup_list(&self, f: &LookupFilter) -> StoreResult<Vec<NotificationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ROW} FROM notifications \
             WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2) \
               AND ($3::text IS NULL OR recipient = $3) \
               AND ($4::timestamptz IS NULL OR created_at >= $4) AND ($5::timestamptz IS NULL OR created_at <= $5) \
             ORDER BY created_at DESC, id DESC LIMIT $6"
        ))
        .bind(f.status)
        .bind(f.channel)
        .bind(&f.recipient)
        .bind(f.since)
        .bind(f.until)
        .bind(f.limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
