//! Per-channel delivery rate shared by every worker through Redis: one script call reserves
//! a slot and says how long to wait for it, so waiting is a single sleep, not a poll. When
//! Redis is unreachable the worker keeps its own limiter at the same rate, says so once, and
//! counts the decisions it took alone.
//!
//! The two limiters hand over to each other so that N processes never exceed N × the rate,
//! even at the switch: the local one starts after the last slot this process reserved in
//! Redis (those slots are still being used), and the shared one, when Redis returns (perhaps
//! a promoted replica that lost the key), starts after the last slot this process took alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{rate, Channel, PerChannel};
use crate::metrics::Metrics;
use crate::redis_client::RedisHandle;

/// Mirrors `domain::rate::reserve` on the server's clock, which all replicas share.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]))
local start = now + (tonumber(ARGV[2]) or 0)
if tat and tat > start then start = tat end
local new_tat = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return start - now
";

const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(500);

/// A channel's slots as this process saw them, on `epoch`'s clock.
#[derive(Clone, Copy, Default)]
struct OwnSlots {
    /// After the last slot either limiter gave this process: the local limiter's state.
    next_us: u64,
    /// Whether that slot was taken alone, so Redis must not hand out an earlier one. Only
    /// then is a floor sent: while shared, Redis's own state is exact and a floor measured
    /// on this clock would only add the round-trip's jitter to each slot.
    alone: bool,
}

pub struct RateLimiter {
    redis: Arc<RedisHandle>,
    limits: PerChannel<u32>,
    script: redis::Script,
    own: Mutex<HashMap<Channel, OwnSlots>>,
    epoch: Instant,
    fallback_announced: AtomicBool,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    /// `limits` per channel index; 0 means unlimited.
    pub fn new(redis: Arc<RedisHandle>, limits: PerChannel<u32>, metrics: Arc<Metrics>) -> Self {
        RateLimiter {
            redis,
            limits,
            script: redis::Script::new(RESERVE),
            own: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            fallback_announced: AtomicBool::new(false),
            metrics,
        }
    }

    /// Waits until this channel may send once more; returns how long it waited.
    pub async fn acquire(&self, channel: Channel) -> Duration {
        let limit = *self.limits.of(channel);
        if limit == 0 {
            return Duration::ZERO;
        }
        let interval_us = 1_000_000 / u64::from(limit);
        let wait_us = match self.reserve_shared(channel, interval_us).await {
            Ok(wait) => {
                if self.fallback_announced.swap(false, Ordering::Relaxed) {
                    tracing::info!("Redis is back: rate limiting is shared again");
                }
                wait
            }
            Err(reason) => {
                if !self.fallback_announced.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%reason, "Redis unreachable: rate limiting per process until it returns");
                }
                self.metrics
                    .rate_limit_fallback
                    .with_label_values(&[channel.lower()])
                    .inc();
                self.reserve_local(channel, interval_us)
            }
        };
        let wait = Duration::from_micros(wait_us);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        self.metrics
            .rate_limit_wait
            .with_label_values(&[channel.lower()])
            .observe(wait.as_secs_f64());
        wait
    }

    async fn reserve_shared(&self, channel: Channel, interval_us: u64) -> Result<u64, String> {
        let mut conn = self.redis.connection().await.map_err(|e| e.to_string())?;
        let key = format!("{}ratelimit:{}", self.redis.prefix, channel.lower());
        let mut invocation = self.script.key(key);
        let sent_us = self.now_us();
        let own = self.own_slots(channel);
        // Relative, because Redis's clock is not this process's.
        let floor_us = if own.alone {
            own.next_us.saturating_sub(sent_us)
        } else {
            0
        };
        invocation.arg(interval_us).arg(floor_us);
        let call = invocation.invoke_async::<i64>(&mut conn);
        let answer = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(Ok(wait)) => {
                let wait = wait.max(0) as u64;
                // Measured from the send, so never later than the slot Redis gave.
                self.record_shared_slot(channel, sent_us + wait + interval_us);
                return Ok(wait);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_CALL_TIMEOUT:?}"),
        };
        self.redis.call_failed().await;
        Err(answer)
    }

    fn reserve_local(&self, channel: Channel, interval_us: u64) -> u64 {
        let now = self.now_us();
        let mut own = self.lock_own();
        let slots = own.entry(channel).or_default();
        let (next, wait) = rate::reserve(Some(slots.next_us), now, interval_us);
        *slots = OwnSlots {
            next_us: next,
            alone: true,
        };
        wait
    }

    fn record_shared_slot(&self, channel: Channel, next_us: u64) {
        let mut own = self.lock_own();
        let slots = own.entry(channel).or_default();
        *slots = OwnSlots {
            next_us: slots.next_us.max(next_us),
            alone: false,
        };
    }

    fn own_slots(&self, channel: Channel) -> OwnSlots {
        self.lock_own().get(&channel).copied().unwrap_or_default()
    }

    fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// std Mutex: a map lookup and store, never held across an await.
    fn lock_own(&self) -> std::sync::MutexGuard<'_, HashMap<Channel, OwnSlots>> {
        self.own.lock().unwrap_or_else(|p| p.into_inner())
    }
}
