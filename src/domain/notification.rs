//! Channels, priorities, statuses and the validation of a create request.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A named enum that goes over the wire and into the database under its upper-case name
/// (`store::codec` reads and writes it).
macro_rules! wire_enum {
    ($(#[$m:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        super::named_enum! {
            $(#[$m])*
            #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
            #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
            pub enum $name { $($variant = $text),+ }
        }

        /// Case-insensitive, as the Go service accepted `sms`, `SMS` and `Sms` alike.
        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let upper = s.trim().to_ascii_uppercase();
                $name::ALL.iter().copied().find(|v| v.as_str() == upper).ok_or_else(|| {
                    let accepted: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("\"{}\" is not one of {}", s, accepted.join(", "))
                })
            }
        }
    };
}

wire_enum!(Channel { Sms = "SMS", Email = "EMAIL", Push = "PUSH" });
wire_enum!(Priority { High = "HIGH", Normal = "NORMAL", Low = "LOW" });
wire_enum!(
    /// The life of a notification: ACCEPTED (durable) → QUEUED (on the broker, or waiting for
    /// a retry) → SENDING (claimed under a lease) → SENT | FAILED, or CANCELED before SENDING.
    Status {
        Accepted = "ACCEPTED",
        Queued = "QUEUED",
        Sending = "SENDING",
        Sent = "SENT",
        Failed = "FAILED",
        Canceled = "CANCELED",
    }
);
wire_enum!(BatchStatus { Processing = "PROCESSING", Completed = "COMPLETED", PartialFailure = "PARTIAL_FAILURE" });

impl Channel {
    /// The position in `Channel::ALL` (the order of the variants).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The lower-case name used for queues and in the provider payload.
    pub fn lower(self) -> &'static str {
        ["sms", "email", "push"][self.index()]
    }

    /// Content limit in characters (Unicode scalar values), as the Go service counted them.
    pub fn max_content_chars(self) -> usize {
        match self {
            Channel::Sms => 160,
            Channel::Push => 240,
            Channel::Email => 10_000,
        }
    }
}

impl Priority {
    /// The lower-case name used in queue names (in the order of the variants).
    pub fn lower(self) -> &'static str {
        ["high", "normal", "low"][self as usize]
    }

    /// The priority a work message was published with, if it is one of ours.
    pub fn from_amqp(priority: u8) -> Option<Priority> {
        Priority::ALL.iter().copied().find(|p| p.amqp_priority() == priority)
    }

    /// AMQP message priority (HIGH 3, NORMAL 2, LOW 1); the work queues are declared with
    /// `x-max-priority=3`.
    pub fn amqp_priority(self) -> u8 {
        [3, 2, 1][self as usize]
    }
}

impl Status {
    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Sent | Status::Failed | Status::Canceled)
    }
}

impl BatchStatus {
    /// PROCESSING while any item is not terminal; COMPLETED when all are terminal and none
    /// FAILED; PARTIAL_FAILURE otherwise.
    pub fn from_counts(counts: &[(Status, i64)]) -> BatchStatus {
        let live = |s: Status| counts.iter().any(|(st, n)| *st == s && *n > 0);
        if Status::ALL.iter().any(|s| !s.is_terminal() && live(*s)) {
            BatchStatus::Processing
        } else if live(Status::Failed) {
            BatchStatus::PartialFailure
        } else {
            BatchStatus::Completed
        }
    }
}

/// A create request as clients send it; every field is checked by [`NotificationRequest::validate`].
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NotificationRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    // A missing field is None (serde's rule for Option), and validate() says it is required.
    pub channel: Option<String>,
    pub priority: Option<String>,
    pub recipient: Option<String>,
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheduled_at: Option<String>,
}

/// A validated notification, ready to be stored.
#[derive(Clone, Debug, PartialEq)]
pub struct NewNotification {
    pub id: Uuid,
    pub correlation_id: String,
    pub idempotency_key: Option<String>,
    pub channel: Channel,
    pub priority: Priority,
    pub recipient: String,
    pub content: String,
    pub max_retries: i32,
    pub scheduled_at: Option<DateTime<Utc>>,
    /// The caller's trace (its `traceparent` header), continued on every provider call.
    pub trace: Option<super::TraceContext>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    pub field: &'static str,
    pub reason: String,
}

/// Bounds that keep a request far from what a database row or a log line should carry.
pub const MAX_RECIPIENT_CHARS: usize = 320;
pub const MAX_KEY_CHARS: usize = 255;
/// The largest attempt budget a request may ask for. More would keep a failing notification
/// retrying for days and is far more likely a client bug than an intent.
pub const MAX_RETRIES: i64 = 100;

fn field_error(field: &'static str, reason: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        reason: reason.into(),
    }
}

impl NotificationRequest {
    /// Applies the contract's rules. `fallback_correlation_id` is the request's X-Request-ID,
    /// used when the body names none; a UUID is generated when neither exists.
    pub fn validate(
        &self,
        fallback_correlation_id: Option<&str>,
        default_max_retries: i32,
    ) -> Result<NewNotification, ValidationError> {
        let channel: Channel = required(&self.channel, "channel")?
            .parse()
            .map_err(|e: String| field_error("channel", e))?;
        let priority: Priority = required(&self.priority, "priority")?
            .parse()
            .map_err(|e: String| field_error("priority", e))?;
        let recipient = required(&self.recipient, "recipient")?.trim().to_string();
        no_nul(&recipient, "recipient")?;
        if recipient.is_empty() {
            return Err(field_error("recipient", "must not be empty"));
        }
        if recipient.chars().count() > MAX_RECIPIENT_CHARS {
            return Err(field_error(
                "recipient",
                format!("is longer than {MAX_RECIPIENT_CHARS} characters"),
            ));
        }
        let content = required(&self.content, "content")?.trim().to_string();
        no_nul(&content, "content")?;
        if content.is_empty() {
            return Err(field_error("content", "must not be empty"));
        }
        let chars = content.chars().count();
        if chars > channel.max_content_chars() {
            return Err(field_error(
                "content",
                format!(
                    "is {chars} characters; {channel} accepts at most {}",
                    channel.max_content_chars()
                ),
            ));
        }
        let max_retries = match self.max_retries {
            Some(n) if n > MAX_RETRIES => {
                return Err(field_error(
                    "maxRetries",
                    format!(
                    "{n} is above the limit of {MAX_RETRIES}; send 1 to {MAX_RETRIES}, or 0 or null for the default"
                ),
                ))
            }
            Some(n @ 1..=MAX_RETRIES) => n as i32,
            _ => default_max_retries,
        };
        let scheduled_at = match self.scheduled_at.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                DateTime::parse_from_rfc3339(text)
                    .map_err(|_| {
                        field_error(
                            "scheduledAt",
                            format!("\"{text}\" is not an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"),
                        )
                    })?
                    .with_timezone(&Utc),
            ),
        };
        let correlation_id = bounded_key(self.correlation_id.as_deref(), "correlationId")?
            .or_else(|| {
                fallback_correlation_id
                    .map(str::trim)
                    .filter(|s| !s.is_empty() && !s.contains('\0') && s.chars().count() <= MAX_KEY_CHARS)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| Uuid::new_v4().to_string());
        let idempotency_key = bounded_key(self.idempotency_key.as_deref(), "idempotencyKey")?;
        Ok(NewNotification {
            id: Uuid::now_v7(),
            correlation_id,
            idempotency_key,
            channel,
            priority,
            recipient,
            content,
            max_retries,
            scheduled_at,
            trace: None,
        })
    }
}

fn required<'a>(value: &'a Option<String>, field: &'static str) -> Result<&'a str, ValidationError> {
    value.as_deref().ok_or_else(|| field_error(field, "is required"))
}

/// PostgreSQL text cannot hold NUL; refusing it here makes it a 400, not a failed insert.
fn no_nul(value: &str, field: &'static str) -> Result<(), ValidationError> {
    if value.contains('\0') {
        return Err(field_error(field, "must not contain the NUL character (\\u0000)"));
    }
    Ok(())
}

fn bounded_key(value: Option<&str>, field: &'static str) -> Result<Option<String>, ValidationError> {
    let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    no_nul(v, field)?;
    if v.chars().count() > MAX_KEY_CHARS {
        return Err(field_error(field, format!("is longer than {MAX_KEY_CHARS} characters")));
    }
    Ok(Some(v.to_string()))
}

/// A stored notification, as the API returns it (camelCase on the wire).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notification {
    pub id: Uuid,
    pub correlation_id: String,
    pub idempotency_key: Option<String>,
    pub batch_id: Option<Uuid>,
    pub channel: Channel,
    pub priority: Priority,
    pub recipient: String,
    pub content: String,
    pub status: Status,
    pub provider_message_id: Option<String>,
    pub attempt_count: i32,
    pub max_retries: i32,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The last delivery attempt's error (an addition to the contract's fields, present only
    /// when there is one): what a script needs to tell why a notification failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Why a FAILED notification was dead-lettered (permanent_error, retry_exhausted, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    /// The W3C trace context the create request brought (not part of the API's JSON).
    #[serde(skip)]
    pub traceparent: Option<String>,
    #[serde(skip)]
    pub tracestate: Option<String>,
    /// The span id of the last attempt's provider call (16 hex digits), for the next one's link.
    #[serde(skip)]
    pub trace_last_span: Option<String>,
}

impl Notification {
    /// The trace the provider call continues, if the create request brought one.
    pub fn trace(&self) -> Option<super::TraceContext> {
        super::TraceContext::parse(self.traceparent.as_deref()?, self.tracestate.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(channel: &str, content: &str) -> NotificationRequest {
        NotificationRequest {
            channel: Some(channel.into()),
            priority: Some("normal".into()),
            recipient: Some(" +905551234567 ".into()),
            content: Some(content.into()),
            ..Default::default()
        }
    }

    #[test]
    fn trims_before_checking_emptiness() {
        let v = request("sms", "  hi  ").validate(None, 5).unwrap();
        assert_eq!((v.recipient.as_str(), v.content.as_str()), ("+905551234567", "hi"));
        assert_eq!(request("sms", "   ").validate(None, 5).unwrap_err().field, "content");
    }

    #[test]
    fn max_retries_zero_or_negative_means_default() {
        let mut r = request("sms", "x");
        r.max_retries = Some(0);
        assert_eq!(r.validate(None, 5).unwrap().max_retries, 5);
        r.max_retries = Some(-2);
        assert_eq!(r.validate(None, 5).unwrap().max_retries, 5);
        r.max_retries = Some(3);
        assert_eq!(r.validate(None, 5).unwrap().max_retries, 3);
    }

    /// The request id and the body's own id win before it, as
    /// `api::correlation_id_falls_back_to_the_request_id` proves.
    #[test]
    fn correlation_id_without_a_request_id_is_a_new_uuid() {
        let generated = request("sms", "x").validate(None, 5).unwrap().correlation_id;
        assert!(Uuid::parse_str(&generated).is_ok());
    }

    #[test]
    fn nul_characters_are_refused_by_field() {
        for field in ["recipient", "content", "correlationId", "idempotencyKey"] {
            let mut r = request("sms", "x");
            match field {
                "recipient" => r.recipient = Some("a\0b".into()),
                "content" => r.content = Some("a\0b".into()),
                "correlationId" => r.correlation_id = Some("a\0b".into()),
                _ => r.idempotency_key = Some("a\0b".into()),
            }
            assert_eq!(r.validate(None, 5).unwrap_err().field, field);
        }
        let generated = request("sms", "x").validate(Some("req\0id"), 5).unwrap().correlation_id;
        assert!(
            !generated.contains('\0'),
            "a NUL request id is not used as the correlation id"
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    fn channel() -> impl Strategy<Value = Channel> {
        prop_oneof![Just(Channel::Sms), Just(Channel::Email), Just(Channel::Push)]
    }

    proptest! {
        #[test]
        fn validation_never_panics(
            channel in proptest::option::of(".{0,8}"),
            priority in proptest::option::of(".{0,8}"),
            recipient in proptest::option::of(".{0,40}"),
            content in proptest::option::of(".{0,300}"),
            max_retries in proptest::option::of(any::<i64>()),
            scheduled_at in proptest::option::of(".{0,30}"),
        ) {
            let r = NotificationRequest { channel, priority, recipient, content, max_retries, scheduled_at, ..Default::default() };
            if let Ok(v) = r.validate(None, 5) {
                prop_assert!(!v.recipient.contains('\0') && !v.content.contains('\0'));
            }
        }

        #[test]
        fn content_limit_counts_characters(c in channel(), text in "\\PC{1,300}") {
            let r = NotificationRequest {
                channel: Some(c.lower().to_string()),
                priority: Some("low".into()),
                recipient: Some("r".into()),
                content: Some(text.clone()),
                ..Default::default()
            };
            let trimmed = text.trim();
            let result = r.validate(None, 5);
            if trimmed.is_empty() || trimmed.chars().count() > c.max_content_chars() {
                prop_assert_eq!(result.unwrap_err().field, "content");
            } else {
                prop_assert_eq!(result.unwrap().content, trimmed);
            }
        }

        #[test]
        fn enums_parse_in_any_case(c in channel(), flips in proptest::collection::vec(any::<bool>(), 5)) {
            let mixed: String = c.as_str().chars().zip(flips.iter().cycle())
                .map(|(ch, up)| if *up { ch.to_ascii_uppercase() } else { ch.to_ascii_lowercase() })
                .collect();
            prop_assert_eq!(mixed.parse::<Channel>().unwrap(), c);
        }

        #[test]
        fn max_retries_is_in_range_or_refused(n in any::<i64>()) {
            let r = NotificationRequest {
                channel: Some("sms".into()), priority: Some("high".into()), recipient: Some("x".into()),
                content: Some("y".into()), max_retries: Some(n), ..Default::default()
            };
            match r.validate(None, 5) {
                Ok(v) => prop_assert!(n <= MAX_RETRIES && v.max_retries >= 1 && i64::from(v.max_retries) <= MAX_RETRIES),
                Err(e) => prop_assert!(n > MAX_RETRIES && e.field == "maxRetries"),
            }
        }
    }
}
