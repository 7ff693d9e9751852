//! What one delivery attempt means for the notification: sent, retried later, or failed
//! for good and dead-lettered. `Outcome` is the one name for it from the provider's answer
//! (or the scanner's finding that a lease expired) to the row the store writes.

use std::time::Duration;

use super::backoff::Backoff;
use super::Status;

/// One finished attempt: what happened (`result`) and what comes next (`next`). The worker
/// builds it from the provider's answer, the scanner's lease recovery from a lease that
/// expired; the store records both with one statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The number of this attempt (1-based).
    pub attempt: i32,
    pub result: DeliveryResult,
    pub duration: Duration,
    pub next: NextStep,
}

impl Outcome {
    /// Decides what follows `result`, the answer to attempt number `attempt` out of a budget
    /// of `max_attempts` (at least one is always allowed).
    pub fn decide(
        result: DeliveryResult,
        attempt: i32,
        max_attempts: i32,
        duration: Duration,
        backoff: &Backoff,
        jitter: f64,
    ) -> Outcome {
        let next = result.next_step(attempt.max(1) as u32, max_attempts.max(1) as u32, backoff, jitter);
        Outcome {
            attempt,
            result,
            duration,
            next,
        }
    }

    /// A worker died (or stalled) mid-send: the lost attempt counts as a transient failure.
    pub fn lease_expired(attempt: i32, max_attempts: i32, backoff: &Backoff, jitter: f64) -> Outcome {
        let lost = DeliveryResult::Transient {
            status: None,
            error: LostAttempt::LeaseExpired.as_str().into(),
            body: String::new(),
            retry_after: None,
        };
        Outcome::decide(lost, attempt, max_attempts, Duration::ZERO, backoff, jitter)
    }

    /// The state the notification moves to.
    pub fn status(&self) -> Status {
        match self.next {
            NextStep::Sent { .. } => Status::Sent,
            NextStep::RetryAfter(_) => Status::Queued,
            NextStep::Fail(_) => Status::Failed,
        }
    }

    /// The notification's `last_error` afterwards: none once sent.
    pub fn last_error(&self) -> Option<&str> {
        match self.next {
            NextStep::Sent { .. } => None,
            NextStep::RetryAfter(_) => Some(self.result.error().unwrap_or_default()),
            NextStep::Fail(_) => self.result.error(),
        }
    }

    pub fn provider_message_id(&self) -> Option<&str> {
        match &self.next {
            NextStep::Sent { provider_message_id } => provider_message_id.as_deref(),
            _ => None,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self.next {
            NextStep::RetryAfter(after) => Some(after),
            _ => None,
        }
    }

    /// The reason of a final failure, which goes to the dead-letter queue.
    pub fn dead_letter_reason(&self) -> Option<DeadLetterReason> {
        match self.next {
            NextStep::Fail(reason) => Some(reason),
            _ => None,
        }
    }
}

super::named_enum! {
    /// An attempt that ended without an answer from the provider, for a reason of our own.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub enum LostAttempt {
        /// The lease ran out before its holder recorded an outcome.
        LeaseExpired = "lease expired",
    }
}

/// The provider's answer to one attempt, already classified.
#[derive(Clone, Debug, PartialEq)]
pub enum DeliveryResult {
    Success {
        status: u16,
        provider_message_id: Option<String>,
        body: String,
    },
    /// Connect errors, timeouts, 408, 429, 5xx: worth another attempt.
    Transient {
        status: Option<u16>,
        error: String,
        body: String,
        retry_after: Option<Duration>,
    },
    /// Any other 4xx (an SMTP 5xx, an address no server accepts): the provider will never
    /// accept this notification.
    Permanent {
        status: Option<u16>,
        error: String,
        body: String,
    },
}

super::named_enum! {
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    #[serde(rename_all = "snake_case")]
    pub enum DeadLetterReason {
        PermanentError = "permanent_error",
        RetryExhausted = "retry_exhausted",
        InvalidMessage = "invalid_message",
        NotFound = "not_found",
    }
}

impl DeadLetterReason {
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == text)
    }

    /// A stored `failure_reason`: one this version does not know (another version's, an
    /// operator's UPDATE) counts as exhausted, so its row is still dead-lettered.
    pub fn from_stored(text: &str) -> Self {
        Self::parse(text).unwrap_or(DeadLetterReason::RetryExhausted)
    }
}

/// The state an attempt moves the notification to.
#[derive(Clone, Debug, PartialEq)]
pub enum NextStep {
    Sent { provider_message_id: Option<String> },
    RetryAfter(Duration),
    Fail(DeadLetterReason),
}

/// The longest error an adapter puts in a result (a line for the attempt and the log).
const MAX_RESULT_ERROR_CHARS: usize = 512;

impl DeliveryResult {
    /// A failure worth another attempt, with no body and no Retry-After to honour.
    pub fn transient(status: Option<u16>, error: &str) -> DeliveryResult {
        DeliveryResult::Transient {
            status,
            error: super::truncate_chars(error, MAX_RESULT_ERROR_CHARS),
            body: String::new(),
            retry_after: None,
        }
    }

    /// A refusal no further attempt can change, with no body.
    pub fn permanent(status: Option<u16>, error: &str) -> DeliveryResult {
        DeliveryResult::Permanent {
            status,
            error: super::truncate_chars(error, MAX_RESULT_ERROR_CHARS),
            body: String::new(),
        }
    }

    /// How the attempt ended, as `notification_attempts.outcome` records it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Success { .. } => "SUCCESS",
            Self::Transient { .. } => "TRANSIENT",
            Self::Permanent { .. } => "PERMANENT",
        }
    }

    pub fn status_code(&self) -> Option<u16> {
        match self {
            Self::Success { status, .. } => Some(*status),
            Self::Transient { status, .. } | Self::Permanent { status, .. } => *status,
        }
    }

    pub fn error(&self) -> Option<&str> {
        match self {
            Self::Success { .. } => None,
            Self::Transient { error, .. } | Self::Permanent { error, .. } => Some(error),
        }
    }

    pub fn body(&self) -> &str {
        match self {
            Self::Success { body, .. } | Self::Transient { body, .. } | Self::Permanent { body, .. } => body,
        }
    }

    /// `attempt` is the number of the attempt just made (1-based); `max_attempts` the budget.
    fn next_step(&self, attempt: u32, max_attempts: u32, backoff: &Backoff, jitter: f64) -> NextStep {
        match self {
            Self::Success {
                provider_message_id, ..
            } => NextStep::Sent {
                provider_message_id: provider_message_id.clone(),
            },
            Self::Permanent { .. } => NextStep::Fail(DeadLetterReason::PermanentError),
            Self::Transient { .. } if attempt >= max_attempts => NextStep::Fail(DeadLetterReason::RetryExhausted),
            Self::Transient { retry_after, .. } => {
                NextStep::RetryAfter(backoff.delay_honouring(attempt, jitter, *retry_after))
            }
        }
    }
}

/// Classifies an HTTP status the provider answered with.
pub fn classify_status(status: u16) -> StatusClass {
    match status {
        200..=299 => StatusClass::Success,
        408 | 429 | 500..=599 => StatusClass::Transient,
        _ => StatusClass::Permanent,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusClass {
    Success,
    Transient,
    Permanent,
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    fn transient() -> DeliveryResult {
        DeliveryResult::Transient {
            status: Some(500),
            error: "HTTP 500".into(),
            body: String::new(),
            retry_after: None,
        }
    }

    #[test]
    fn classification_follows_the_contract() {
        assert_eq!(classify_status(204), StatusClass::Success);
        for s in [408, 429, 500, 502, 503] {
            assert_eq!(classify_status(s), StatusClass::Transient, "{s}");
        }
        for s in [300, 400, 401, 404, 422] {
            assert_eq!(classify_status(s), StatusClass::Permanent, "{s}");
        }
    }

    #[test]
    fn transient_retries_until_the_budget_is_spent() {
        assert_eq!(
            transient().next_step(1, 5, &B, 0.0),
            NextStep::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            transient().next_step(5, 5, &B, 0.0),
            NextStep::Fail(DeadLetterReason::RetryExhausted)
        );
    }

    #[test]
    fn an_expired_lease_is_a_transient_failure_that_spends_an_attempt() {
        let retried = Outcome::lease_expired(1, 3, &B, 0.0);
        assert_eq!(retried.next, NextStep::RetryAfter(Duration::from_secs(1)));
        assert_eq!(retried.result.kind(), "TRANSIENT");
        assert_eq!(retried.result.error(), Some("lease expired"));
        assert_eq!(
            Outcome::lease_expired(3, 3, &B, 0.0).dead_letter_reason(),
            Some(DeadLetterReason::RetryExhausted)
        );
    }

    #[test]
    fn permanent_fails_at_once() {
        let r = DeliveryResult::Permanent {
            status: Some(400),
            error: "HTTP 400".into(),
            body: String::new(),
        };
        assert_eq!(
            r.next_step(1, 5, &B, 0.0),
            NextStep::Fail(DeadLetterReason::PermanentError)
        );
    }
}
