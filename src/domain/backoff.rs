//! Retry delay: `base · 2^(attempt−1)`, capped, plus 0–250 ms of jitter so that retries of a
//! burst do not arrive at the provider in lockstep; and the reconnect policy of every
//! connection that is retried.

use std::time::Duration;

pub const MAX_JITTER: Duration = Duration::from_millis(250);

#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Backoff {
    /// Delay before the retry that follows failed attempt number `attempt` (1-based).
    /// `jitter` is a fraction in `[0, 1)` supplied by the caller, which keeps this pure.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let raw = self.base.saturating_mul(1u32 << exponent);
        raw.min(self.max) + MAX_JITTER.mul_f64(jitter.clamp(0.0, 1.0))
    }

    /// A provider's `Retry-After` wins over a shorter backoff but never exceeds the cap.
    pub fn delay_honouring(&self, attempt: u32, jitter: f64, retry_after: Option<Duration>) -> Duration {
        let backoff = self.delay(attempt, jitter);
        retry_after.map_or(backoff, |after| backoff.max(after.min(self.max)))
    }
}

/// The one reconnect policy, for RabbitMQ (publisher and consumers) and Redis: wait 200 ms
/// after a failed attempt, doubling up to 5 s; a connection that worked starts it afresh.
#[derive(Clone, Copy, Debug)]
pub struct Reconnect {
    next: Duration,
}

impl Reconnect {
    const FIRST: Duration = Duration::from_millis(200);
    const MAX: Duration = Duration::from_secs(5);

    pub const fn new() -> Reconnect {
        Reconnect { next: Self::FIRST }
    }

    /// Another attempt failed: how long to wait before the next one.
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (wait * 2).min(Self::MAX);
        wait
    }

    pub fn succeeded(&mut self) {
        *self = Self::new();
    }
}

impl Default for Reconnect {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const B: Backoff = Backoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(60),
    };

    #[test]
    fn reconnects_back_off_to_five_seconds_and_start_afresh() {
        let mut r = Reconnect::new();
        let waits: Vec<u64> = (0..7).map(|_| r.failed().as_millis() as u64).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
        r.succeeded();
        assert_eq!(r.failed(), Duration::from_millis(200));
    }

    #[test]
    fn doubles_per_attempt_and_caps() {
        assert_eq!(B.delay(1, 0.0), Duration::from_secs(1));
        assert_eq!(B.delay(2, 0.0), Duration::from_secs(2));
        assert_eq!(B.delay(4, 0.0), Duration::from_secs(8));
        assert_eq!(B.delay(7, 0.0), Duration::from_secs(60));
        assert_eq!(B.delay(500, 0.0), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_250ms() {
        assert_eq!(B.delay(1, 0.5), Duration::from_millis(1125));
        assert!(B.delay(1, 0.999_999) < Duration::from_millis(1250));
    }

    #[test]
    fn retry_after_is_honoured_up_to_the_cap() {
        assert_eq!(
            B.delay_honouring(1, 0.0, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
        assert_eq!(
            B.delay_honouring(1, 0.0, Some(Duration::from_secs(600))),
            Duration::from_secs(60)
        );
        assert_eq!(
            B.delay_honouring(3, 0.0, Some(Duration::from_millis(10))),
            Duration::from_secs(4)
        );
    }
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn delay_grows_and_stays_bounded(base_ms in 1u64..5_000, max_ms in 1u64..120_000, attempt in 1u32..200, jitter in 0.0f64..1.0) {
            let b = Backoff { base: Duration::from_millis(base_ms), max: Duration::from_millis(max_ms) };
            let d = b.delay(attempt, jitter);
            prop_assert!(d <= b.max + MAX_JITTER);
            prop_assert!(b.delay(attempt + 1, 0.0) >= b.delay(attempt, 0.0));
        }
    }
}
