//! Per-channel delivery rate shared by every worker through Redis: one script call reserves
//! a slot and says how long to wait for it, so waiting is a single sleep, not a poll. When
//! Redis is unreachable the worker keeps its own limiter at the same rate, says so once, and
//! counts the decisions it took alone.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::{rate, Channel};
use crate::metrics::Metrics;
use crate::redis_client::RedisHandle;

/// Mirrors `domain::rate::reserve` on the server's clock, which all replicas share.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1]))
local start = now
if tat and tat > now then start = tat end
local new_tat = start + interval
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', math.floor((new_tat - now) / 1000) + 1000)
return start - now
";

const REDIS_CALL_TIMEOUT: Duration = Duration::from_millis(500);

pub struct RateLimiter {
    redis: Arc<RedisHandle>,
    limits: [u32; 3],
    script: redis::Script,
    local: Mutex<HashMap<Channel, u64>>,
    epoch: Instant,
    fallback_announced: AtomicBool,
    metrics: Arc<Metrics>,
}

impl RateLimiter {
    /// `limits` per channel index; 0 means unlimited.
    pub fn new(redis: Arc<RedisHandle>, limits: [u32; 3], metrics: Arc<Metrics>) -> Self {
        RateLimiter {
            redis,
            limits,
            script: redis::Script::new(RESERVE),
            local: Mutex::new(HashMap::new()),
            epoch: Instant::now(),
            fallback_announced: AtomicBool::new(false),
            metrics,
        }
    }

    /// Waits until this channel may send once more; returns how long it waited.
    pub async fn acquire(&self, channel: Channel) -> Duration {
        let limit = self.limits[channel.index()];
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
        invocation.arg(interval_us);
        let call = invocation.invoke_async::<i64>(&mut conn);
        let answer = match tokio::time::timeout(REDIS_CALL_TIMEOUT, call).await {
            Ok(Ok(wait)) => return Ok(wait.max(0) as u64),
            Ok(Err(e)) => e.to_string(),
            Err(_) => format!("no answer within {REDIS_CALL_TIMEOUT:?}"),
        };
        self.redis.call_failed().await;
        Err(answer)
    }

    fn reserve_local(&self, channel: Channel, interval_us: u64) -> u64 {
        let now = self.epoch.elapsed().as_micros() as u64;
        // std Mutex: a map lookup and store, never held across an await.
        let mut local = self.local.lock().unwrap_or_else(|p| p.into_inner());
        let (tat, wait) = rate::reserve(local.get(&channel).copied(), now, interval_us);
        local.insert(channel, tat);
        wait
    }
}
