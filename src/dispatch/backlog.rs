//! Back-pressure on creates. When the workers fall behind, the messages of accepted
//! notifications pile up on the work queues, and each new notification waits behind all of
//! them: at saturation the API accepted 10–18 % more than the workers delivered, and a
//! notification waited half a second or more (docs/PERFORMANCE.md, issue 29). So a create
//! that would be due at once waits while its channel's queues hold `BACKLOG_LIMIT` ready
//! messages or more, and is refused with 503 `backlog_full` (nothing stored) if that lasts
//! `BACKLOG_WAIT`. The backlog stays bounded, and its pressure is visible: the waits and the
//! refusals are counted per channel, next to the queue depth.
//!
//! The depths come from the broker (passive declares, every `POLL_EVERY`), so they count
//! every worker of the deployment. A depth that cannot be read (RabbitMQ down) never refuses
//! a create: a 202 promises PostgreSQL, not the broker, and the outbox holds the message.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::domain::Channel;
use crate::metrics::Metrics;

/// How often the API reads the queue depths. At 3,000 deliveries/s a tenth of a second is
/// 300 messages, small beside the default limit; it costs one passive declare per work queue.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// Ready messages on each channel's work queues (all priorities), or None when unknown.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Depths {
    sms: Option<u32>,
    email: Option<u32>,
    push: Option<u32>,
}

impl Depths {
    pub fn of(&self, channel: Channel) -> Option<u32> {
        match channel {
            Channel::Sms => self.sms,
            Channel::Email => self.email,
            Channel::Push => self.push,
        }
    }

    fn set(&mut self, channel: Channel, depth: Option<u32>) {
        match channel {
            Channel::Sms => self.sms = depth,
            Channel::Email => self.email = depth,
            Channel::Push => self.push = depth,
        }
    }
}

/// A create refused because its channel's backlog stayed over the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {channel} work queues hold {depth} messages, at or over BACKLOG_LIMIT ({limit}), and did not drain below it within BACKLOG_WAIT ({wait}); nothing was stored, retry later",
    channel = channel.lower(),
    wait = humantime::format_duration(*wait)
)]
pub struct BacklogFull {
    pub channel: Channel,
    pub depth: u32,
    pub limit: u32,
    pub wait: Duration,
}

#[derive(Clone)]
pub struct Backlog {
    depths: Arc<watch::Sender<Depths>>,
    /// 0: no back-pressure.
    limit: u32,
    wait: Duration,
    metrics: Arc<Metrics>,
}

impl Backlog {
    pub fn new(limit: u32, wait: Duration, metrics: Arc<Metrics>) -> Backlog {
        Backlog {
            depths: Arc::new(watch::channel(Depths::default()).0),
            limit,
            wait,
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Returns at once while the backlog of each of `channels` is below the limit or
    /// unknown; otherwise waits for them to drain below, `BACKLOG_WAIT` at most in all (a
    /// batch that spans channels waits no longer than a single create).
    pub async fn admit(&self, channels: &[Channel]) -> Result<(), BacklogFull> {
        if !self.enabled() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        let limit = self.limit;
        for &channel in channels {
            let below = |d: &Depths| d.of(channel).is_none_or(|n| n < limit);
            let mut depths = self.depths.subscribe();
            if below(&depths.borrow_and_update()) {
                continue;
            }
            let label = [channel.lower()];
            self.metrics.backlog_waits.with_label_values(&label).inc();
            // An Err inside the Ok (the sender gone) leaves nothing to wait for either.
            if tokio::time::timeout_at(deadline, depths.wait_for(below)).await.is_err() {
                self.metrics.backlog_refused.with_label_values(&label).inc();
                return Err(BacklogFull {
                    channel,
                    depth: depths.borrow().of(channel).unwrap_or(limit),
                    limit,
                    wait: self.wait,
                });
            }
        }
        Ok(())
    }

    /// Reads the depths until `shutdown` (in the API's process, when the limit is set), and
    /// publishes them to waiting creates and to the `queue_depth` gauge.
    pub async fn watch(self, broker: Arc<Broker>, shutdown: CancellationToken) {
        let mut every = tokio::time::interval(POLL_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = every.tick() => {}
            }
            let mut depths = Depths::default();
            for channel in Channel::ALL {
                let depth = broker.channel_depth(*channel).await.ok();
                if let Some(n) = depth {
                    self.metrics
                        .queue_depth
                        .with_label_values(&[channel.lower()])
                        .set(i64::from(n));
                }
                depths.set(*channel, depth);
            }
            let before = self.depths.send_replace(depths);
            for channel in Channel::ALL {
                let full = |d: &Depths| d.of(*channel).is_some_and(|n| n >= self.limit);
                match (full(&before), full(&depths)) {
                    (false, true) => tracing::warn!(
                        channel = channel.lower(),
                        depth = depths.of(*channel),
                        limit = self.limit,
                        "the workers are behind: creates on this channel are held back (BACKLOG_LIMIT), and refused with 503 after BACKLOG_WAIT"
                    ),
                    (true, false) => tracing::info!(channel = channel.lower(), depth = depths.of(*channel), "backlog below BACKLOG_LIMIT again; creates flow"),
                    _ => {}
                }
            }
        }
        // Creates that still arrive while the API drains are not held behind a frozen depth.
        self.depths.send_replace(Depths::default());
    }

    #[cfg(test)]
    fn report(&self, depths: Depths) {
        self.depths.send_replace(depths);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backlog(limit: u32, wait_ms: u64) -> (Backlog, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (
            Backlog::new(limit, Duration::from_millis(wait_ms), metrics.clone()),
            metrics,
        )
    }

    fn depths(email: Option<u32>) -> Depths {
        Depths {
            email,
            ..Depths::default()
        }
    }

    #[tokio::test]
    async fn a_create_is_admitted_at_once_below_the_limit_or_when_the_depth_is_unknown() {
        let (b, m) = backlog(100, 10_000);
        assert_eq!(b.admit(&[Channel::Email]).await, Ok(()));
        b.report(depths(Some(99)));
        assert_eq!(b.admit(&[Channel::Email]).await, Ok(()));
        assert_eq!(m.backlog_waits.with_label_values(&["email"]).get(), 0);
    }

    #[tokio::test]
    async fn a_full_backlog_refuses_after_the_wait_and_names_channel_depth_and_limit() {
        let (b, m) = backlog(100, 50);
        b.report(depths(Some(250)));
        let refused = b.admit(&[Channel::Email]).await.unwrap_err();
        assert_eq!(
            (refused.channel, refused.depth, refused.limit),
            (Channel::Email, 250, 100)
        );
        let text = refused.to_string();
        assert!(
            text.contains("email") && text.contains("250") && text.contains("BACKLOG_LIMIT (100)"),
            "{text}"
        );
        assert_eq!(m.backlog_refused.with_label_values(&["email"]).get(), 1);
        // Another channel's backlog does not hold SMS back.
        assert_eq!(b.admit(&[Channel::Sms]).await, Ok(()));
    }

    #[tokio::test]
    async fn a_waiting_create_goes_through_once_the_backlog_drains() {
        let (b, m) = backlog(100, 10_000);
        b.report(depths(Some(100)));
        let waiting = tokio::spawn({
            let b = b.clone();
            async move { b.admit(&[Channel::Email]).await }
        });
        while m.backlog_waits.with_label_values(&["email"]).get() == 0 {
            tokio::task::yield_now().await;
        }
        assert!(!waiting.is_finished());
        b.report(depths(Some(40)));
        assert_eq!(waiting.await.ok(), Some(Ok(())));
        assert_eq!(m.backlog_refused.with_label_values(&["email"]).get(), 0);
    }

    #[tokio::test]
    async fn a_zero_limit_never_holds_a_create() {
        let (b, _) = backlog(0, 10);
        b.report(depths(Some(1_000_000)));
        assert_eq!(b.admit(&[Channel::Email]).await, Ok(()));
    }
}
