//! The wire formats on the broker: the work message the Go service published, and dead
//! letters with their reason in headers.

use chrono::{DateTime, Utc};
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Topology;
use crate::domain::{truncate_chars, Channel, DeadLetterReason, Notification, Priority};

/// `{"notificationId","correlationId","channel","priority"}`, as the Go service published it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkMessage {
    pub notification_id: Uuid,
    pub correlation_id: String,
    pub channel: Channel,
    pub priority: Priority,
    /// The W3C `traceparent` the message carries as an AMQP header (not in the body).
    #[serde(skip)]
    pub traceparent: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid work message: {0}")]
pub struct InvalidMessage(pub String);

impl WorkMessage {
    pub fn new(notification_id: Uuid, correlation_id: String, channel: Channel, priority: Priority) -> WorkMessage {
        WorkMessage {
            notification_id,
            correlation_id,
            channel,
            priority,
            traceparent: None,
        }
    }

    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain strings and a UUID cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Decodes a body from the queue. Only the notification id is essential: the database
    /// row is the truth for everything else.
    pub fn parse(body: &[u8]) -> Result<Uuid, InvalidMessage> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Loose {
            notification_id: Option<String>,
        }
        let loose: Loose = serde_json::from_slice(body).map_err(|e| InvalidMessage(e.to_string()))?;
        let id = loose
            .notification_id
            .ok_or_else(|| InvalidMessage("missing notificationId".into()))?;
        Uuid::parse_str(&id).map_err(|_| InvalidMessage(format!("notificationId {id:?} is not a UUID")))
    }
}

pub const H_REASON: &str = "x-dispatch-reason";
pub const H_ATTEMPTS: &str = "x-dispatch-attempts";
pub const H_LAST_STATUS: &str = "x-dispatch-last-status-code";
pub const H_LAST_ERROR: &str = "x-dispatch-last-error";
pub const H_FAILED_AT: &str = "x-dispatch-failed-at";
pub const H_ORIGINAL_QUEUE: &str = "x-dispatch-original-queue";
pub const H_REPLAY_ID: &str = "x-dispatch-replay-id";
pub const H_REPLAYED_AT: &str = "x-dispatch-replayed-at";
pub const H_REPLAYED_BY: &str = "x-dispatch-replayed-by";

const MAX_ERROR_CHARS: usize = 512;

/// A final failure on its way to `dlq.<channel>`.
#[derive(Clone, Debug)]
pub struct DeadLetter {
    pub notification_id: Option<Uuid>,
    pub channel: Channel,
    pub reason: DeadLetterReason,
    pub attempts: i32,
    pub last_status_code: Option<i32>,
    pub last_error: Option<String>,
    pub failed_at: DateTime<Utc>,
    pub original_queue: String,
    /// The work message for known notifications; the original bytes for poison messages.
    pub body: Vec<u8>,
}

impl DeadLetter {
    /// A notification's final failure: its work message, from the queue it was (or would
    /// have been) on, stamped now.
    pub fn of_notification(
        topology: &Topology,
        work: &WorkMessage,
        reason: DeadLetterReason,
        attempts: i32,
        last_status_code: Option<i32>,
        last_error: Option<String>,
    ) -> DeadLetter {
        DeadLetter {
            notification_id: Some(work.notification_id),
            channel: work.channel,
            reason,
            attempts,
            last_status_code,
            last_error,
            failed_at: Utc::now(),
            original_queue: topology.work_queue(work.channel, work.priority),
            body: work.to_json(),
        }
    }

    /// A message with no notification to deliver (unreadable, or an unknown id): its bytes
    /// as they came from `queue`.
    pub fn of_message(
        channel: Channel,
        queue: &str,
        body: &[u8],
        reason: DeadLetterReason,
        error: String,
    ) -> DeadLetter {
        DeadLetter {
            notification_id: None,
            channel,
            reason,
            attempts: 0,
            last_status_code: None,
            last_error: Some(error),
            failed_at: Utc::now(),
            original_queue: queue.to_string(),
            body: body.to_vec(),
        }
    }

    pub fn headers(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(H_REASON.into(), long_string(self.reason.as_str()));
        t.insert(H_ATTEMPTS.into(), AMQPValue::LongInt(self.attempts));
        if let Some(code) = self.last_status_code {
            t.insert(H_LAST_STATUS.into(), AMQPValue::LongInt(code));
        }
        if let Some(err) = &self.last_error {
            t.insert(H_LAST_ERROR.into(), long_string(&truncate_chars(err, MAX_ERROR_CHARS)));
        }
        t.insert(H_FAILED_AT.into(), long_string(&self.failed_at.to_rfc3339()));
        t.insert(H_ORIGINAL_QUEUE.into(), long_string(&self.original_queue));
        t
    }
}

impl From<&Notification> for WorkMessage {
    fn from(n: &Notification) -> WorkMessage {
        WorkMessage {
            traceparent: n.traceparent.clone(),
            ..WorkMessage::new(n.id, n.correlation_id.clone(), n.channel, n.priority)
        }
    }
}

/// Who replayed a work message, and when: headers on the message put back on its queue.
#[derive(Clone, Debug)]
pub struct ReplayStamp {
    pub replay_id: Uuid,
    pub operator: String,
}

impl ReplayStamp {
    pub fn headers(&self) -> FieldTable {
        let mut t = FieldTable::default();
        t.insert(H_REPLAY_ID.into(), long_string(&self.replay_id.to_string()));
        t.insert(H_REPLAYED_AT.into(), long_string(&Utc::now().to_rfc3339()));
        t.insert(H_REPLAYED_BY.into(), long_string(&self.operator));
        t
    }
}

pub fn long_string(s: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(s.as_bytes().to_vec()))
}

/// A header value as text, whichever AMQP type it was sent with.
pub fn header_text(headers: Option<&FieldTable>, key: &str) -> Option<String> {
    let value = headers?.inner().get(key)?;
    Some(match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        other => format!("{other:?}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_message_matches_the_go_format() {
        let id = Uuid::nil();
        let m = WorkMessage::new(id, "c".into(), Channel::Sms, Priority::High);
        let json: serde_json::Value = serde_json::from_slice(&m.to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"notificationId": id.to_string(), "correlationId": "c", "channel": "SMS", "priority": "HIGH"})
        );
        assert_eq!(WorkMessage::parse(&m.to_json()).unwrap(), id);
    }

    #[test]
    fn poison_bodies_are_rejected_with_a_reason() {
        assert!(WorkMessage::parse(b"not json").unwrap_err().0.contains("expected"));
        assert!(WorkMessage::parse(b"{}")
            .unwrap_err()
            .0
            .contains("missing notificationId"));
        assert!(WorkMessage::parse(br#"{"notificationId":"42"}"#)
            .unwrap_err()
            .0
            .contains("not a UUID"));
    }
}
