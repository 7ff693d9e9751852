//! The rate-limit decision shared by the Redis script and the local fallback limiter, so
//! both enforce the same spacing. It is a reservation (GCRA as a virtual queue): each caller
//! gets its own start time in one round-trip and sleeps until then, instead of polling.

/// Reserves one slot at `now_us` given the stored theoretical arrival time `tat_us` and the
/// emission interval (1 s / rate). Returns the new stored time and how long the caller must
/// wait before it may go. An idle limiter banks no credit: slots stay `interval_us` apart.
pub fn reserve(tat_us: Option<u64>, now_us: u64, interval_us: u64) -> (u64, u64) {
    let start = tat_us.unwrap_or(now_us).max(now_us);
    (start + interval_us, start - now_us)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spaces_reservations_by_the_interval() {
        let (tat, wait) = reserve(None, 1_000, 100);
        assert_eq!((tat, wait), (1_100, 0));
        let (tat, wait) = reserve(Some(tat), 1_040, 100);
        assert_eq!((tat, wait), (1_200, 60));
        let (_, wait) = reserve(Some(tat), 1_050, 100);
        assert_eq!(wait, 150);
        // An idle limiter does not bank credit for a burst.
        assert_eq!(reserve(Some(1_200), 9_000, 100), (9_100, 0));
    }
}
