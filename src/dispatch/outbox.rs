//! The create path's publisher. A create answers 202 once its row and its work row have
//! committed together (invariant 1 needs nothing more); its work message goes out from here,
//! in the background and batched: published with confirms, then the batch's work rows are
//! stamped published with one statement (in a lane of its own, so publishing goes on
//! meanwhile). Whatever is not confirmed stays unpublished, and the scanner's unpublished pass publishes it
//! once it is older than `UNPUBLISHED_GRACE`; a notification already on a queue is stamped,
//! so a queue backlog is never republished.
//! A crash between the 202 and the publish leaves exactly that unpublished row.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use crate::batch::Pipeline;
use crate::broker::{Broker, WorkMessage};
use crate::domain::TraceContext;
use crate::metrics::Metrics;
use crate::otel::Span;
use crate::store::Store;
use opentelemetry::trace::SpanKind;

/// Work messages waiting for the publisher; creates wait for room beyond this (back-pressure).
const CAPACITY: usize = 4096;
/// How long a create waits for room at most. A broker slower than the creates should slow
/// them down, not push their messages to the scanner (which waits `UNPUBLISHED_GRACE`
/// first): with a 2 s limit, batch creates beyond the broker's pace left 86 of 50,000 to it
/// (docs/PERFORMANCE.md). A broker that fails makes the publisher drop its batches at once
/// (`PAUSE_AFTER_FAILURE`), so only a broker that is up and stalled makes creates wait this
/// long. Half the request timeout at most, so that the 202 of a durable create is sent.
const HAND_OVER_LIMIT: Duration = Duration::from_secs(10);
/// Messages per publish (one round of confirms), and work rows per stamping statement. Under
/// light load a batch is whatever arrived during the last round trip; only creates beyond
/// the broker's pace fill it. With 256, batch creates at c=32 were accepted at 6,900/s with
/// a p99 of 2.3 s; with 1,024, at 9,500/s with 0.9 s (docs/PERFORMANCE.md). Four publishes
/// in flight did as well for batches but cost single creates 9 % of their rate; two
/// (`PUBLISHES_IN_FLIGHT`) cost nothing measurable (docs/PERFORMANCE.md, issue 29).
const MAX_BATCH: usize = 1024;
/// Batches published while earlier ones wait for their confirms (on the same channel): a
/// message is delivered as soon as the broker routes it, so a create's message need not wait
/// for the last batch's confirms to go out (at one client it waited 0.2–0.4 ms for them).
const PUBLISHES_IN_FLIGHT: usize = 2;
/// After a failed publish the broker is left alone this long: batches meanwhile are left
/// to the scanner at once, so that an outage drains the pipeline instead of stalling creates
/// behind one connection attempt after another.
const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Publisher {
    pipeline: Pipeline<WorkMessage>,
    /// The ids of confirmed messages, whose work rows are stamped in a lane of their own: the
    /// next publish does not wait for the last one's stamp to commit.
    stamping: Pipeline<Uuid>,
    wait: Duration,
    metrics: Arc<Metrics>,
}

impl Publisher {
    /// Starts the publishing tasks; needs a running tokio runtime. `request_timeout` bounds
    /// how long a create waits for room.
    pub fn spawn(broker: Arc<Broker>, store: Store, metrics: Arc<Metrics>, request_timeout: Duration) -> Publisher {
        let wait = HAND_OVER_LIMIT.min(request_timeout / 2);
        let sizes = metrics.write_batch_size.with_label_values(&["outbox_clear"]);
        let stamping = Pipeline::spawn(CAPACITY, MAX_BATCH, 1, move |ids: Vec<Uuid>| {
            sizes.observe(ids.len() as f64);
            let store = store.clone();
            async move {
                if let Err(e) = store.mark_published(&ids).await {
                    // Their messages are on the queues; the scanner publishes them once more
                    // and the worker's claim refuses the second of each.
                    tracing::warn!(error = %e, published = ids.len(), "could not mark published notifications in the outbox");
                }
            }
        });
        let lane = PublishLane {
            broker,
            metrics: metrics.clone(),
            paused_until: Arc::default(),
            stamping: stamping.clone(),
            wait,
        };
        let pipeline = Pipeline::spawn(CAPACITY, MAX_BATCH, PUBLISHES_IN_FLIGHT, move |messages| {
            lane.clone().publish(messages)
        });
        Publisher {
            pipeline,
            stamping,
            wait,
            metrics,
        }
    }

    /// Hands the work messages of committed creates over. Waits while the pipeline is full;
    /// what it still cannot take after `HAND_OVER_LIMIT` stays in the outbox for the scanner.
    pub async fn hand_over(&self, messages: Vec<WorkMessage>) {
        if messages.is_empty() {
            return;
        }
        let left = self.pipeline.hand_over(messages, self.wait).await;
        if !left.is_empty() {
            tracing::warn!(
                left = left.len(),
                "the publisher stayed full; the scanner publishes these once UNPUBLISHED_GRACE has passed"
            );
            count(&self.metrics, "deferred", left.len());
        }
    }

    /// Waits until every message handed over is published or left to the scanner, at most
    /// `limit`: a graceful stop publishes what its last creates accepted.
    pub async fn drain(&self, limit: Duration) -> bool {
        let started = Instant::now();
        self.pipeline.drain(limit).await && self.stamping.drain(limit.saturating_sub(started.elapsed())).await
    }
}

/// What publishing one batch needs; each batch gets its own copy.
#[derive(Clone)]
struct PublishLane {
    broker: Arc<Broker>,
    metrics: Arc<Metrics>,
    /// Until when the broker is left alone after a failed publish.
    paused_until: Arc<Mutex<Option<Instant>>>,
    stamping: Pipeline<Uuid>,
    wait: Duration,
}

impl PublishLane {
    async fn publish(self, mut messages: Vec<WorkMessage>) {
        let paused = self
            .paused_until
            .lock()
            .map(|p| p.is_some_and(|until| Instant::now() < until))
            .unwrap_or(false);
        if paused {
            count(&self.metrics, "deferred", messages.len());
            return;
        }
        self.metrics
            .write_batch_size
            .with_label_values(&["publish"])
            .observe(messages.len() as f64);
        // A span for each traced message, whose context its AMQP header then carries.
        let spans: Vec<(usize, Span)> = messages
            .iter_mut()
            .enumerate()
            .filter_map(|(i, m)| {
                let parent = TraceContext::parse(m.traceparent.as_deref()?, None)?;
                let span = Span::start("outbox publish", SpanKind::Producer, Some(&parent));
                if span.recording() {
                    span.set("notification.id", m.notification_id.to_string());
                }
                if let Some(own) = span.context() {
                    m.traceparent = Some(own.traceparent);
                }
                Some((i, span))
            })
            .collect();
        let published = self.broker.publish_work(&messages).await;
        for (i, span) in spans {
            // `confirmed` holds positions in order.
            let confirmed = published.confirmed.binary_search(&i).is_ok();
            span.set("dispatch.confirmed", confirmed);
            if !confirmed {
                span.fail("not confirmed by the broker; left to the scanner");
            }
        }
        if let Some(e) = &published.error {
            let left = messages.len() - published.confirmed.len();
            tracing::warn!(error = %e, unconfirmed = left, "publish failed; the scanner publishes these once UNPUBLISHED_GRACE has passed");
            count(&self.metrics, "unconfirmed", left);
            if let Ok(mut p) = self.paused_until.lock() {
                *p = Some(Instant::now() + PAUSE_AFTER_FAILURE);
            }
        }
        count(&self.metrics, "confirmed", published.confirmed.len());
        let ids: Vec<Uuid> = published
            .confirmed
            .iter()
            .map(|&i| messages[i].notification_id)
            .collect();
        let left = self.stamping.hand_over(ids, self.wait).await;
        if !left.is_empty() {
            tracing::warn!(published = left.len(), "the outbox stamping lane stayed full; the scanner publishes these once more and the worker refuses the repeats");
        }
    }
}

/// Counts `n` first work messages under `outcome` (`dispatch_engine_outbox_published_total`).
fn count(metrics: &Metrics, outcome: &str, n: usize) {
    metrics.outbox_published.with_label_values(&[outcome]).inc_by(n as u64);
}
