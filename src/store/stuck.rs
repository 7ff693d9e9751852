//! Statements behind the unfinished-age gauge and `dispatchctl notifications --stuck`: what
//! is not final yet, and for how long it has waited.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::lookup::{NotificationRow, ROW};
use super::{Store, StoreResult};
use crate::domain::{Channel, Status};

/// Not final: the statuses a notification leaves on its own (a worker or the scanner moves it).
/// No index names `status`: the candidates are the work table's rows (QUEUED, SENDING) and
/// the ACCEPTED ones' `due_at` index.
const UNFINISHED: &str = "status IN ('ACCEPTED', 'QUEUED', 'SENDING')";

/// Since when a row has waited: its last change, or when its schedule or retry came due if
/// later (GREATEST skips NULLs).
const WAITING_SINCE: &str = "GREATEST(updated_at, scheduled_at, next_retry_at)";

impl Store {
    /// For each channel and unfinished status, since when its oldest due notification (by
    /// creation) has existed: its creation, or its schedule for a scheduled one. None when
    /// there is none. QUEUED and SENDING walk the work table's (queue_channel,
    /// notification_id) index from its old end (ids are UUIDv7), ACCEPTED the `due_at`
    /// index, so a deep backlog costs about one row per pair; no index names `status`
    /// (migrations/20261209000001).
    pub async fn oldest_unfinished(&self) -> StoreResult<Vec<(Channel, Status, Option<DateTime<Utc>>)>> {
        let statuses = ["ACCEPTED", "QUEUED", "SENDING"];
        let channels: Vec<&str> = Channel::ALL.iter().map(|c| c.as_str()).collect();
        Ok(sqlx::query_as(
            "SELECT c.channel, s.status, COALESCE(w.since, a.since) AS since \
             FROM unnest($1::text[]) s(status) CROSS JOIN unnest($2::text[]) c(channel) \
             LEFT JOIN LATERAL ( \
               SELECT COALESCE(n.scheduled_at, n.created_at) AS since \
               FROM notification_outbox w JOIN notifications n ON n.id = w.notification_id \
               WHERE s.status IN ('QUEUED', 'SENDING') AND w.queue_channel = c.channel \
                 AND (w.claimed_at IS NOT NULL) = (s.status = 'SENDING') AND n.status = s.status \
                 AND (n.scheduled_at IS NULL OR n.scheduled_at <= now()) \
               ORDER BY w.notification_id LIMIT 1) w ON true \
             LEFT JOIN LATERAL ( \
               SELECT n.due_at AS since FROM notifications n \
               WHERE s.status = 'ACCEPTED' AND n.due_at <= now() AND n.status = 'ACCEPTED' AND n.channel = c.channel \
               ORDER BY n.due_at LIMIT 1) a ON true",
        )
        .bind(&statuses[..])
        .bind(&channels)
        .fetch_all(&self.pool)
        .await?)
    }

    /// The unfinished notifications that have waited longer than `older_than` (see
    /// `WAITING_SINCE`), longest first.
    pub async fn stuck(
        &self,
        older_than: Duration,
        channel: Option<Channel>,
        limit: i64,
    ) -> StoreResult<Vec<NotificationRow>> {
        Ok(sqlx::query_as(&format!(
            "SELECT {ROW} FROM notifications \
             WHERE id IN (SELECT notification_id FROM notification_outbox \
                          UNION ALL SELECT id FROM notifications WHERE due_at IS NOT NULL) \
               AND {UNFINISHED} AND ($1::text IS NULL OR channel = $1) \
               AND {WAITING_SINCE} < now() - ($2::bigint * interval '1 millisecond') \
             ORDER BY {WAITING_SINCE}, id LIMIT $3"
        ))
        .bind(channel)
        .bind(older_than.as_millis() as i64)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?)
    }
}
