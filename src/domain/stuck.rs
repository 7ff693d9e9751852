//! Why an unfinished notification still waits, and what will move it on: the words of
//! `dispatchctl notifications --stuck`. The rules are the scanner's (`store::scan`), told
//! from one row and what its work queue holds.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Status;

/// What a passive look at a notification's work queue found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueState {
    /// The broker did not answer; the reason.
    Unknown(String),
    /// The queue does not exist: whatever it held is gone.
    Missing,
    Holds {
        /// Messages ready in it (not those a worker holds unacked).
        ready: u32,
        consumers: u32,
        /// How many of the notifications that waited longer than REQUEUE_LOST_AFTER for a
        /// message on it have none there: waiting minus ready, or 0.
        missing: i64,
    },
}

/// One unfinished notification's facts.
#[derive(Clone, Debug)]
pub struct Waiting<'a> {
    pub status: Status,
    pub attempt_count: i32,
    pub scheduled_at: Option<DateTime<Utc>>,
    pub next_retry_at: Option<DateTime<Utc>>,
    pub lease_expires_at: Option<DateTime<Utc>>,
    /// Its first work message is not confirmed yet (its work row unpublished).
    pub awaiting_publish: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub queue: &'a str,
    pub queue_state: &'a QueueState,
}

/// The scanner's settings that decide when it acts.
#[derive(Clone, Copy, Debug)]
pub struct ScanRules {
    pub unpublished_grace: Duration,
    pub requeue_lost_after: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnosis {
    pub why: String,
    pub next: String,
}

impl Waiting<'_> {
    /// Since when it has waited: its last change, or when its schedule or retry came due.
    pub fn waiting_since(&self) -> DateTime<Utc> {
        [self.scheduled_at, self.next_retry_at]
            .into_iter()
            .flatten()
            .fold(self.updated_at, DateTime::max)
    }
}

fn at(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn after(base: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    base + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

/// The scanner acts at `when`, or at its next pass when that has come.
fn scanner_at(when: DateTime<Utc>, now: DateTime<Utc>, what: &str) -> String {
    if when <= now {
        format!("the scanner {what} at its next pass (serve's, or scan-retries)")
    } else {
        format!("the scanner {what} at {}", at(when))
    }
}

pub fn diagnose(w: &Waiting<'_>, rules: ScanRules, now: DateTime<Utc>) -> Diagnosis {
    let d = |why: String, next: String| Diagnosis { why, next };
    match w.status {
        Status::Sending => match w.lease_expires_at {
            Some(expiry) if expiry < now => d(
                format!("its worker stopped mid-delivery: the lease expired at {}", at(expiry)),
                "the scanner records the attempt as lost and retries it at its next pass".into(),
            ),
            expiry => d(
                format!(
                    "a worker is delivering it (lease until {})",
                    expiry.map_or_else(|| "-".into(), at)
                ),
                "the worker records the outcome; if it dies, the scanner recovers it when the lease expires".into(),
            ),
        },
        _ if w.scheduled_at.is_some_and(|s| s > now) => d(
            format!("scheduled for {}", w.scheduled_at.map_or_else(String::new, at)),
            "the scanner publishes it when it is due".into(),
        ),
        Status::Queued if w.next_retry_at.is_some() => {
            let due = w.next_retry_at.unwrap_or(now);
            d(
                format!("attempt {} failed; its retry is due at {}", w.attempt_count, at(due)),
                scanner_at(due, now, "publishes the retry"),
            )
        }
        Status::Accepted => {
            let due = w
                .scheduled_at
                .unwrap_or_else(|| after(w.created_at, rules.unpublished_grace));
            d(
                "stored; its work message was never published".into(),
                scanner_at(due, now, "publishes it"),
            )
        }
        Status::Queued if w.awaiting_publish => d(
            "its first work message is not confirmed by the broker yet (in the outbox)".into(),
            scanner_at(after(w.created_at, rules.unpublished_grace), now, "publishes it"),
        ),
        Status::Queued => queued(w, rules, now),
        // Final rows are never listed; say so rather than guess.
        _ => d(format!("{}: final", w.status), "nothing".into()),
    }
}

/// A QUEUED notification whose work message was confirmed: it is in its queue, or lost.
fn queued(w: &Waiting<'_>, rules: ScanRules, now: DateTime<Utc>) -> Diagnosis {
    let republish = || {
        scanner_at(
            after(w.updated_at, rules.requeue_lost_after),
            now,
            "publishes it again (REQUEUE_LOST_AFTER) if it is among the oldest missing",
        )
    };
    let q = w.queue;
    match w.queue_state {
        QueueState::Missing => Diagnosis {
            why: format!("its message is lost: the queue {q} does not exist"),
            next: republish(),
        },
        QueueState::Holds { ready, missing, .. } if *missing > 0 => Diagnosis {
            why: format!(
                "its message is probably lost: {q} holds {ready} ready messages, {missing} fewer than the notifications that have waited longer than REQUEUE_LOST_AFTER for it"
            ),
            next: republish(),
        },
        QueueState::Holds { ready, consumers: 0, .. } => Diagnosis {
            why: format!("waits in {q} ({ready} ready messages), which no worker consumes"),
            next: "a worker delivers it once one runs (dispatchctl worker, or serve)".into(),
        },
        QueueState::Holds { ready, consumers, .. } => Diagnosis {
            why: format!("waits in {q} behind up to {ready} ready messages ({consumers} consumers)"),
            next: "a worker delivers it; had the broker lost its message, the scanner would publish it again".into(),
        },
        QueueState::Unknown(e) => Diagnosis {
            why: format!("waits for a message on {q} (the queue's depth is unknown: {e})"),
            next: republish(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: ScanRules = ScanRules {
        unpublished_grace: Duration::from_secs(30),
        requeue_lost_after: Duration::from_secs(120),
    };

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().expect("test time")
    }

    fn queued<'a>(state: &'a QueueState) -> Waiting<'a> {
        Waiting {
            status: Status::Queued,
            attempt_count: 0,
            scheduled_at: None,
            next_retry_at: None,
            lease_expires_at: None,
            awaiting_publish: false,
            created_at: t("2026-12-06T10:00:00Z"),
            updated_at: t("2026-12-06T10:00:00Z"),
            queue: "sms.normal",
            queue_state: state,
        }
    }

    #[test]
    fn a_message_missing_from_its_queue_is_called_lost_and_the_requeue_time_is_given() {
        let state = QueueState::Holds {
            ready: 3,
            consumers: 1,
            missing: 5,
        };
        let early = diagnose(&queued(&state), RULES, t("2026-12-06T10:01:00Z"));
        assert!(early.why.contains("probably lost"), "{early:?}");
        assert!(early.next.contains("at 2026-12-06T10:02:00Z"), "{early:?}");
        let late = diagnose(&queued(&state), RULES, t("2026-12-06T10:05:00Z"));
        assert!(late.next.contains("at its next pass"), "{late:?}");
        let gone = diagnose(&queued(&QueueState::Missing), RULES, t("2026-12-06T10:05:00Z"));
        assert!(gone.why.contains("sms.normal does not exist"), "{gone:?}");
    }

    #[test]
    fn a_message_its_queue_holds_waits_for_a_worker() {
        let served = QueueState::Holds {
            ready: 9,
            consumers: 2,
            missing: 0,
        };
        let now = t("2026-12-06T10:05:00Z");
        assert!(diagnose(&queued(&served), RULES, now).why.contains("behind up to 9"));
        let idle = QueueState::Holds {
            ready: 9,
            consumers: 0,
            missing: 0,
        };
        assert!(diagnose(&queued(&idle), RULES, now).why.contains("no worker consumes"));
    }

    #[test]
    fn retries_leases_and_unpublished_rows_name_the_pass_that_moves_them() {
        let state = QueueState::Missing;
        let now = t("2026-12-06T10:05:00Z");
        let mut w = queued(&state);
        w.next_retry_at = Some(t("2026-12-06T10:06:00Z"));
        w.attempt_count = 2;
        let retry = diagnose(&w, RULES, now);
        assert!(retry.why.contains("attempt 2 failed"), "{retry:?}");
        assert!(
            retry.next.contains("publishes the retry at 2026-12-06T10:06:00Z"),
            "{retry:?}"
        );

        let mut w = queued(&state);
        w.awaiting_publish = true;
        assert!(diagnose(&w, RULES, now).why.contains("outbox"));

        let mut w = queued(&state);
        w.status = Status::Sending;
        w.lease_expires_at = Some(t("2026-12-06T10:04:00Z"));
        assert!(diagnose(&w, RULES, now).why.contains("lease expired"));
        w.lease_expires_at = Some(t("2026-12-06T10:06:00Z"));
        assert!(diagnose(&w, RULES, now).why.contains("a worker is delivering it"));
    }

    #[test]
    fn waiting_counts_from_the_latest_of_change_schedule_and_retry() {
        let state = QueueState::Missing;
        let mut w = queued(&state);
        w.next_retry_at = Some(t("2026-12-06T10:03:00Z"));
        assert_eq!(w.waiting_since(), t("2026-12-06T10:03:00Z"));
        w.next_retry_at = None;
        assert_eq!(w.waiting_since(), w.updated_at);
    }
}
