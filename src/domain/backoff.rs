//! Retry delay: `base · 2^(attempt−1)`, capped, plus 0–250 ms of jitter so that retries of a
//! burst do not arrive at the provider in lockstep.

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
        match retry_after {
            Some(after) => backoff.max(after.min(self.max)),
            None => backoff,
        }
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
