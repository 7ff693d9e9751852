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
//! every worker of the deployment; between two readings the estimate adds what was admitted
//! and takes off what the workers drain at the rate the last readings showed. A depth that cannot be read (RabbitMQ down) never refuses
//! a create: a 202 promises PostgreSQL, not the broker, and the outbox holds the message.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{watch, Mutex};
use tokio_util::sync::CancellationToken;

use crate::broker::{Broker, QueueStats};
use crate::domain::{Channel, PerChannel};
use crate::metrics::Metrics;

/// How often the API reads the queue depths: one passive declare per work queue each time.
/// Between two readings the estimate follows the drain, so the interval bounds how long a
/// wrong rate lasts (100 ms of 3,000 deliveries/s is 300 messages), not how long creates wait.
const POLL_EVERY: Duration = Duration::from_millis(100);

/// How often a create first in line looks again while its channel is full: between two
/// readings the workers' measured drain makes room. Waiting for the next reading instead held
/// each of a closed-loop client's creates up to `POLL_EVERY`, and at c=32 a limit of 300 cost
/// 35–45 % of the deliveries/s (docs/PERFORMANCE.md, "Waiting in line").
const LOOK_AGAIN: Duration = Duration::from_millis(5);

/// What the API knows of one channel's backlog: the ready messages of its work queues (all
/// priorities) at the last reading, None when unknown; the messages admitted since, which the
/// broker may not hold yet (the outbox publishes them after the commit) but soon will; and
/// how fast the workers took messages off the queues between the last two readings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Reading {
    depth: Option<u32>,
    admitted: u32,
    at: Option<Instant>,
    drain_per_s: f64,
}

impl Reading {
    /// What the queues hold at `now`: the reading, plus what was admitted since, less what
    /// the workers have taken since at the rate they took messages before.
    fn estimate(&self, now: Instant) -> Option<u32> {
        let depth = self.depth?;
        let since = self
            .at
            .map_or(0.0, |at| now.saturating_duration_since(at).as_secs_f64());
        let drained = (self.drain_per_s * since).min(f64::from(u32::MAX)) as u32;
        Some(depth.saturating_add(self.admitted).saturating_sub(drained))
    }

    /// A create is admitted while its channel holds fewer than `limit`, so a batch larger
    /// than the room left still goes when its turn comes: it overshoots the limit by one
    /// batch at most, where waiting for room for all of it could wait for ever.
    fn has_room(&self, limit: u32, now: Instant) -> bool {
        self.estimate(now).is_none_or(|n| n < limit)
    }

    /// The next reading, the queues' `stats` at `now`: the drain is what left the queues
    /// since the last one (that depth plus what was admitted, less this depth), per second. A
    /// drain is only seen while the queues hold messages; an empty queue's lower figure does
    /// no harm, as nothing waits on an empty queue. Nor is one seen while nobody consumes:
    /// then what looks like a drain is admitted messages still on their way to the queue
    /// (the publisher's batch not yet confirmed), and counting it would admit over the limit.
    fn next(&self, stats: Option<QueueStats>, now: Instant) -> Reading {
        let depth = stats.map(|s| s.messages);
        let consumed = stats.is_some_and(|s| s.consumers > 0);
        let drain_per_s = match (self.depth, depth, self.at) {
            (Some(before), Some(after), Some(at)) if now > at && consumed => {
                let left = before.saturating_add(self.admitted).saturating_sub(after);
                let observed = f64::from(left) / (now - at).as_secs_f64();
                // Smoothed over about two readings: one slow pass of the workers (a commit
                // that waited) does not close the gate at once.
                if self.drain_per_s > 0.0 {
                    (self.drain_per_s + observed) / 2.0
                } else {
                    observed
                }
            }
            _ => 0.0,
        };
        Reading {
            depth,
            admitted: 0,
            at: Some(now),
            drain_per_s,
        }
    }
}

type Readings = PerChannel<Reading>;

/// One FIFO line per channel: tokio's Mutex serves its waiters in the order they came.
type Lines = PerChannel<Mutex<()>>;

/// A create refused because its channel's backlog stayed over the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the {channel} work queues hold {depth} {messages}, at or over BACKLOG_LIMIT ({limit}), and did not drain below it within BACKLOG_WAIT ({wait}); nothing was stored, retry later",
    channel = channel.lower(),
    messages = if *depth == 1 { "message" } else { "messages" },
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
    readings: Arc<watch::Sender<Readings>>,
    lines: Arc<Lines>,
    /// 0: no back-pressure.
    limit: u32,
    wait: Duration,
    metrics: Arc<Metrics>,
}

impl Backlog {
    pub fn new(limit: u32, wait: Duration, metrics: Arc<Metrics>) -> Backlog {
        Backlog {
            readings: Arc::new(watch::channel(Readings::default()).0),
            lines: Arc::default(),
            limit,
            wait,
            metrics,
        }
    }

    pub fn enabled(&self) -> bool {
        self.limit > 0
    }

    /// Admits `joining` (how many messages each channel would get at once), waiting
    /// `BACKLOG_WAIT` at most in all while a channel is full. Creates wait their turn per
    /// channel, first come first served: when the workers make room, the create that has
    /// waited longest takes it, and a batch is not passed by the single creates that arrive
    /// after it (when every waiter rushed in at once, 100-item batches were the ones left
    /// past the wait). Between two readings, the room the workers make at their measured rate
    /// is given out as it appears. Channels are taken in the order given, so callers give
    /// `Channel::ALL`'s order, and two batches never hold each other's line.
    pub async fn admit(&self, joining: &[(Channel, u32)]) -> Result<(), BacklogFull> {
        if !self.enabled() {
            return Ok(());
        }
        let deadline = tokio::time::Instant::now() + self.wait;
        for &(channel, count) in joining {
            let label = [channel.lower()];
            let line = self.lines.of(channel);
            let mut counted = false;
            let _turn = match line.try_lock() {
                Ok(turn) => turn,
                Err(_) => {
                    counted = true;
                    self.metrics.backlog_waits.with_label_values(&label).inc();
                    match tokio::time::timeout_at(deadline, line.lock()).await {
                        Ok(turn) => turn,
                        Err(_) => return Err(self.refuse(channel)),
                    }
                }
            };
            let mut readings = self.readings.subscribe();
            loop {
                let mut admitted = false;
                let mut draining = false;
                self.readings.send_if_modified(|r| {
                    let reading = r.of_mut(channel);
                    draining = reading.drain_per_s > 0.0;
                    if reading.has_room(self.limit, Instant::now()) {
                        reading.admitted = reading.admitted.saturating_add(count);
                        admitted = true;
                    }
                    // Nobody waits for an admission: only the first in line looks, and it
                    // looks again by itself.
                    false
                });
                if admitted {
                    break;
                }
                if !counted {
                    counted = true;
                    self.metrics.backlog_waits.with_label_values(&label).inc();
                }
                let look_again = async {
                    if draining {
                        tokio::time::sleep(LOOK_AGAIN).await;
                    } else {
                        // An Err (the sender gone) cannot happen: `self` holds it.
                        let _ = readings.changed().await;
                    }
                };
                if tokio::time::timeout_at(deadline, look_again).await.is_err() {
                    // Room taken on an earlier channel of this batch stays taken until the
                    // next reading: the backlog is underfilled for a moment, never overfilled.
                    return Err(self.refuse(channel));
                }
            }
        }
        Ok(())
    }

    fn refuse(&self, channel: Channel) -> BacklogFull {
        self.metrics.backlog_refused.with_label_values(&[channel.lower()]).inc();
        BacklogFull {
            channel,
            depth: self
                .readings
                .borrow()
                .of(channel)
                .estimate(Instant::now())
                .unwrap_or(self.limit),
            limit: self.limit,
            wait: self.wait,
        }
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
            let mut depths = Vec::with_capacity(Channel::ALL.len());
            for channel in Channel::ALL {
                let stats = broker.channel_stats(*channel).await.ok();
                if let Some(s) = stats {
                    self.metrics
                        .queue_depth
                        .with_label_values(&[channel.lower()])
                        .set(i64::from(s.messages));
                }
                depths.push((*channel, stats));
            }
            // What was admitted before this reading is in it, or nearly (the outbox publishes
            // within milliseconds of the commit): counting starts again. One update, so no
            // admission between the copy and the write is lost.
            let now = Instant::now();
            let mut before = Readings::default();
            self.readings.send_modify(|r| {
                before = *r;
                for &(channel, depth) in &depths {
                    *r.of_mut(channel) = before.of(channel).next(depth, now);
                }
            });
            let fresh = *self.readings.borrow();
            for channel in Channel::ALL {
                let full = |r: &Readings| r.of(*channel).depth.is_some_and(|n| n >= self.limit);
                let depth = fresh.of(*channel).depth;
                match (full(&before), full(&fresh)) {
                    (false, true) => tracing::warn!(
                        channel = channel.lower(),
                        depth,
                        limit = self.limit,
                        "the workers are behind: creates on this channel are held back (BACKLOG_LIMIT), and refused with 503 after BACKLOG_WAIT"
                    ),
                    (true, false) => tracing::info!(channel = channel.lower(), depth, "backlog below BACKLOG_LIMIT again; creates flow"),
                    _ => {}
                }
            }
        }
        // Creates that still arrive while the API drains are not held behind a frozen depth.
        self.readings.send_replace(Readings::default());
    }

    /// Stands in for the watcher's reading of the broker (a queue the workers do not drain).
    #[cfg(test)]
    fn report(&self, channel: Channel, depth: Option<u32>) {
        self.report_draining(channel, depth, 0.0);
    }

    #[cfg(test)]
    fn report_draining(&self, channel: Channel, depth: Option<u32>, drain_per_s: f64) {
        let mut fresh = Readings::default();
        *fresh.of_mut(channel) = Reading {
            depth,
            admitted: 0,
            at: Some(Instant::now()),
            drain_per_s,
        };
        self.readings.send_replace(fresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMAIL: Channel = Channel::Email;

    fn backlog(limit: u32, wait_ms: u64) -> (Backlog, Arc<Metrics>) {
        let metrics = Arc::new(Metrics::new());
        (
            Backlog::new(limit, Duration::from_millis(wait_ms), metrics.clone()),
            metrics,
        )
    }

    fn waits(m: &Metrics) -> u64 {
        m.backlog_waits.with_label_values(&["email"]).get()
    }

    async fn until_waiting(m: &Metrics, n: u64) {
        while waits(m) < n {
            tokio::task::yield_now().await;
        }
    }

    fn spawn_admit(b: &Backlog, joining: Vec<(Channel, u32)>) -> tokio::task::JoinHandle<Result<(), BacklogFull>> {
        let b = b.clone();
        tokio::spawn(async move { b.admit(&joining).await })
    }

    #[tokio::test]
    async fn a_create_is_admitted_at_once_below_the_limit_or_when_the_depth_is_unknown() {
        let (b, m) = backlog(100, 10_000);
        assert_eq!(b.admit(&[(EMAIL, 1)]).await, Ok(()));
        b.report(EMAIL, Some(99));
        assert_eq!(b.admit(&[(EMAIL, 1)]).await, Ok(()));
        b.report(EMAIL, None);
        assert_eq!(b.admit(&[(EMAIL, 1_000)]).await, Ok(()));
        assert_eq!(waits(&m), 0);
    }

    #[tokio::test]
    async fn a_full_backlog_refuses_after_the_wait_and_names_channel_depth_and_limit() {
        let (b, m) = backlog(100, 50);
        b.report(EMAIL, Some(250));
        let refused = b.admit(&[(EMAIL, 1)]).await.unwrap_err();
        assert_eq!((refused.channel, refused.depth, refused.limit), (EMAIL, 250, 100));
        let text = refused.to_string();
        assert!(
            text.contains("email work queues hold 250 messages") && text.contains("BACKLOG_LIMIT (100)"),
            "{text}"
        );
        assert_eq!(m.backlog_refused.with_label_values(&["email"]).get(), 1);
        // Another channel's backlog does not hold SMS back.
        assert_eq!(b.admit(&[(Channel::Sms, 1)]).await, Ok(()));
        let (b, _) = backlog(1, 10);
        b.report(EMAIL, Some(1));
        let one = b.admit(&[(EMAIL, 1)]).await.unwrap_err().to_string();
        assert!(one.contains("hold 1 message,"), "{one}");
    }

    #[tokio::test]
    async fn a_waiting_create_goes_through_once_the_backlog_drains() {
        let (b, m) = backlog(100, 10_000);
        b.report(EMAIL, Some(100));
        let waiting = spawn_admit(&b, vec![(EMAIL, 1)]);
        until_waiting(&m, 1).await;
        assert!(!waiting.is_finished());
        b.report(EMAIL, Some(40));
        assert_eq!(waiting.await.ok(), Some(Ok(())));
        assert_eq!(m.backlog_refused.with_label_values(&["email"]).get(), 0);
    }

    #[tokio::test]
    async fn creates_admitted_since_the_last_reading_count_against_the_limit() {
        let (b, _) = backlog(100, 30);
        b.report(EMAIL, Some(0));
        // Room for one more: a batch larger than what is left still goes, and fills it.
        assert_eq!(b.admit(&[(EMAIL, 60)]).await, Ok(()));
        assert_eq!(b.admit(&[(EMAIL, 60)]).await, Ok(()));
        let refused = b.admit(&[(EMAIL, 1)]).await.unwrap_err();
        assert_eq!(refused.depth, 120);
        // The next reading counts what the broker holds, and counting starts again.
        b.report(EMAIL, Some(10));
        assert_eq!(b.admit(&[(EMAIL, 1)]).await, Ok(()));
    }

    #[tokio::test]
    async fn a_waiting_batch_is_not_passed_by_a_create_that_came_after_it() {
        let (b, m) = backlog(100, 10_000);
        b.report(EMAIL, Some(100));
        let batch = spawn_admit(&b, vec![(EMAIL, 50)]);
        until_waiting(&m, 1).await;
        let single = spawn_admit(&b, vec![(EMAIL, 1)]);
        until_waiting(&m, 2).await;
        // Room for one: the batch, first in line, takes it (99 + 50), and the single waits on.
        b.report(EMAIL, Some(99));
        assert_eq!(batch.await.ok(), Some(Ok(())));
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        assert!(!single.is_finished(), "the single create went past the limit");
        b.report(EMAIL, Some(10));
        assert_eq!(single.await.ok(), Some(Ok(())));
    }

    #[tokio::test]
    async fn a_create_still_in_line_at_the_deadline_is_refused() {
        let (b, m) = backlog(100, 100);
        b.report(EMAIL, Some(100));
        let first = spawn_admit(&b, vec![(EMAIL, 1)]);
        until_waiting(&m, 1).await;
        let second = b.admit(&[(EMAIL, 1)]).await;
        assert!(second.is_err());
        assert!(first.await.ok().is_some_and(|r| r.is_err()));
        assert_eq!(m.backlog_refused.with_label_values(&["email"]).get(), 2);
    }

    #[test]
    fn the_drain_between_two_readings_makes_room_before_the_next_one() {
        let t0 = Instant::now();
        let first = Reading {
            depth: Some(100),
            admitted: 0,
            at: Some(t0),
            drain_per_s: 0.0,
        };
        assert_eq!(
            first.estimate(t0 + Duration::from_secs(5)),
            Some(100),
            "no drain seen yet"
        );
        // 100 held, 100 admitted, 100 held 100 ms later: 100 left in 0.1 s.
        let second = Reading { admitted: 100, ..first }.next(consumed(100), t0 + Duration::from_millis(100));
        assert_eq!((second.admitted, second.drain_per_s.round()), (0, 1_000.0));
        // Seconds are floats: 20 ms at 1,000/s is 19.99… or 20.
        assert!(matches!(
            second.estimate(t0 + Duration::from_millis(120)),
            Some(80..=81)
        ));
        assert!(second.has_room(100, t0 + Duration::from_millis(105)));
        assert!(!second.has_room(100, t0 + Duration::from_millis(100)));
        assert_eq!(second.estimate(t0 + Duration::from_secs(60)), Some(0));
        // The next is smoothed with it: 0 left in the next 0.1 s halves it.
        let third = second.next(consumed(100), t0 + Duration::from_millis(200));
        assert_eq!(third.drain_per_s.round(), 500.0);
        // A depth that cannot be read forgets the drain.
        assert_eq!(third.next(None, t0 + Duration::from_millis(300)).drain_per_s, 0.0);
        // With nobody consuming, the admitted that are not in the queue yet are on their way.
        let unconsumed = QueueStats {
            messages: 1,
            consumers: 0,
        };
        let lagging = Reading { admitted: 2, ..first }.next(Some(unconsumed), t0 + Duration::from_millis(100));
        assert_eq!(lagging.drain_per_s, 0.0);
        assert!(!lagging.has_room(1, t0 + Duration::from_secs(60)));
    }

    fn consumed(messages: u32) -> Option<QueueStats> {
        Some(QueueStats { messages, consumers: 1 })
    }

    #[tokio::test]
    async fn a_create_waiting_on_a_draining_queue_goes_before_the_next_reading() {
        let (b, m) = backlog(100, 10_000);
        // 1,000 a second: room for one within about a millisecond; no reading follows.
        b.report_draining(EMAIL, Some(100), 1_000.0);
        let started = Instant::now();
        assert_eq!(b.admit(&[(EMAIL, 1)]).await, Ok(()));
        assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
        assert_eq!(waits(&m), 1);
    }

    #[tokio::test]
    async fn a_zero_limit_never_holds_a_create() {
        let (b, _) = backlog(0, 10);
        b.report(EMAIL, Some(1_000_000));
        assert_eq!(b.admit(&[(EMAIL, 1)]).await, Ok(()));
    }
}
