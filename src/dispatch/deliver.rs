//! One work message, start to finish: rate-limit, claim under a lease, call the provider,
//! record the attempt and its outcome (one statement, group-committed with other
//! deliveries'), and dead-letter a final failure with a confirm. It then tells the consumer
//! what to do with the message (`Disposition`): ack it only when all of that is done. Any
//! crash in between leaves the message unacked or the lease to expire, so a later delivery
//! or the scanner completes the work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::broker::consumer::Disposition;
use crate::broker::messages::InvalidMessage;
use crate::broker::{Broker, DeadLetter, WorkMessage};
use crate::domain::backoff::Backoff;
use crate::domain::{Channel, DeadLetterReason, NextStep, Outcome, PerChannel, TraceContext};
use crate::metrics::Metrics;
use crate::otel::Span;
use crate::provider::{Provider, Providers};
use crate::ratelimit::RateLimiter;
use crate::store::batched::BatchedWrites;
use crate::store::{ClaimRefusal, Claimed, OutcomeRecord, Store};
use opentelemetry::trace::SpanKind;

/// What a delivery uses besides its providers.
pub struct Handles {
    pub store: Store,
    pub broker: Arc<Broker>,
    pub writes: BatchedWrites,
    pub metrics: Arc<Metrics>,
    /// Per channel, RATE_LIMIT_PER_SEC or its `<CHANNEL>_` override.
    pub limiter: RateLimiter,
    /// LEASE_TIMEOUT: how long a claim holds a notification.
    pub lease_timeout: Duration,
    pub backoff: Backoff,
}

pub struct Deliverer {
    h: Handles,
    providers: Providers,
    /// `Provider::name` of each channel, shared by its attempts' records.
    provider_names: PerChannel<Arc<str>>,
}

impl Deliverer {
    pub fn new(handles: Handles, providers: Providers) -> Arc<Deliverer> {
        let provider_names =
            PerChannel::from_fn(|c| Arc::from(providers.get(c).map(Provider::name).unwrap_or_default()));
        Arc::new(Deliverer {
            h: handles,
            providers,
            provider_names,
        })
    }

    /// The channels this deliverer has a provider for: the ones a worker may consume.
    pub fn channels(&self) -> Vec<Channel> {
        self.providers.channels()
    }

    /// Handles one message from `queue`; never panics on bad input. `TryAgain` when
    /// PostgreSQL or RabbitMQ failed under it: nothing was recorded that a second run
    /// would repeat (the claim refuses what is already done).
    pub async fn process(&self, channel: Channel, queue: &str, body: &[u8]) -> Disposition {
        let id = match WorkMessage::parse(body) {
            Ok(id) => id,
            Err(InvalidMessage(reason)) => {
                tracing::warn!(channel = channel.lower(), %reason, "poison message");
                let letter = DeadLetter::of_message(channel, queue, body, DeadLetterReason::InvalidMessage, reason);
                return self.dead_letter_message(letter).await;
            }
        };
        let Some(provider) = self.providers.get(channel) else {
            // Workers consume only the channels they have a provider for (`channels`).
            tracing::error!(
                channel = channel.lower(),
                "a message for a channel without a provider; left to another worker"
            );
            return Disposition::TryAgain;
        };
        let arrived = std::time::SystemTime::now();
        self.h.limiter.acquire(channel).await;
        let claimed = match self.h.writes.claim(id, self.h.lease_timeout).await {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(ClaimRefusal::NotFound)) => {
                tracing::warn!(notification.id = %id, "work message for an unknown notification");
                let error = format!("notification {id} does not exist");
                let letter = DeadLetter::of_message(channel, queue, body, DeadLetterReason::NotFound, error);
                return self.dead_letter_message(letter).await;
            }
            Ok(Err(ClaimRefusal::NotClaimable(status))) => {
                tracing::debug!(notification.id = %id, %status, "not claimable; skipped");
                self.h
                    .metrics
                    .skipped
                    .with_label_values(&[channel.lower(), status.as_str()])
                    .inc();
                return Disposition::Ack;
            }
            Err(e) => {
                tracing::warn!(notification.id = %id, error = %e, "claim failed; requeueing");
                return Disposition::TryAgain;
            }
        };
        let gauge = self
            .h
            .metrics
            .inflight
            .with_label_values(&[claimed.notification().channel.lower()]);
        gauge.inc();
        // Only the claim tells which trace the notification belongs to: its span starts
        // when the message arrived.
        let trace = claimed.notification().trace();
        let claim_span = Span::start_at("consume and claim", SpanKind::Consumer, trace.as_ref(), Some(arrived));
        if claim_span.recording() {
            claim_span.set("notification.id", id.to_string());
            claim_span.set("messaging.destination.name", queue.to_string());
            claim_span.set("dispatch.attempt", i64::from(claimed.attempt()));
        }
        claim_span.end();
        let disposition = self.deliver(provider, claimed, trace).await;
        gauge.dec();
        disposition
    }

    async fn deliver(&self, provider: &Provider, claimed: Claimed, trace: Option<TraceContext>) -> Disposition {
        let metrics = &self.h.metrics;
        let n = claimed.notification().clone();
        let ch = n.channel.lower();
        let started = Instant::now();
        let call = Span::start_linked(
            "provider call",
            SpanKind::Client,
            trace.as_ref(),
            n.trace_last_span.as_deref(),
        );
        if call.recording() {
            call.set("dispatch.provider", provider.name().to_string());
            call.set("dispatch.attempt", i64::from(claimed.attempt()));
        }
        // Without a span of ours (tracing off), the caller's trace still reaches the provider.
        let own = call.context().filter(|_| call.recording());
        // The next attempt's provider call links to this one.
        let sent_span = own.as_ref().map(|c| c.parent_id().to_string());
        let sent = own.or_else(|| trace.as_ref().map(TraceContext::child));
        let result = provider.deliver(&claimed, sent.as_ref()).await;
        let elapsed = started.elapsed();
        if let Some(code) = result.status_code() {
            call.set(provider.code_attribute(), i64::from(code));
        }
        call.set("dispatch.outcome", result.kind());
        if let Some(error) = result.error().filter(|_| call.recording()) {
            call.fail(error.to_string());
        }
        call.end();
        metrics
            .send_duration
            .with_label_values(&[ch])
            .observe(elapsed.as_secs_f64());
        let jitter = rand::thread_rng().gen::<f64>();
        let outcome = Outcome::decide(
            result,
            claimed.attempt(),
            n.max_retries,
            elapsed,
            &self.h.backoff,
            jitter,
        );
        let attempt = outcome.attempt;
        let error = outcome.result.error().unwrap_or_default().to_string();
        let provider_name = self.provider_names.of(n.channel).clone();
        let commit = Span::start("outcome commit", SpanKind::Internal, trace.as_ref());
        commit.set("dispatch.next_status", outcome.status().as_str());
        let record = OutcomeRecord::held(claimed, outcome.clone(), provider_name).traced(sent_span);
        let recorded = self.h.writes.record(record).await;
        if let Err(e) = &recorded {
            commit.fail(e.to_string());
        }
        commit.end();
        match recorded {
            Ok(true) => {}
            Ok(false) => return self.lease_lost(n.id).await,
            Err(e) => {
                // Unrecorded: the lease will expire and the scanner will retry it.
                tracing::error!(notification.id = %n.id, error = %e, "could not record the outcome");
                return Disposition::TryAgain;
            }
        }
        match outcome.next {
            NextStep::Sent { .. } => {
                metrics.sent.with_label_values(&[ch]).inc();
                tracing::info!(notification.id = %n.id, attempt, duration_ms = elapsed.as_millis() as u64, "sent");
                Disposition::Ack
            }
            NextStep::RetryAfter(after) => {
                metrics.retry_scheduled.with_label_values(&[ch]).inc();
                tracing::info!(notification.id = %n.id, attempt, retry_in_ms = after.as_millis() as u64, error, "retry scheduled");
                Disposition::Ack
            }
            NextStep::Fail(reason) => {
                metrics.failed.with_label_values(&[ch, reason.as_str()]).inc();
                tracing::warn!(notification.id = %n.id, attempt, reason = reason.as_str(), error, "failed");
                let letter = DeadLetter::of_notification(
                    self.h.broker.topology(),
                    &WorkMessage::from(&n),
                    reason,
                    attempt,
                    outcome.result.status_code().map(i32::from),
                    outcome.result.error().map(str::to_string),
                );
                self.publish_dead_letter(&letter).await
            }
        }
    }

    /// What to do with the message of an attempt whose outcome its lease no longer allowed.
    /// Usually the scanner recovered the expired lease, and its recovery owns what follows.
    /// A claim is committed without waiting for its WAL flush (`store::lease::claim_on`), so
    /// a PostgreSQL crash or fail-over can also undo it: the row is then waiting again, and
    /// this message (not acked) is what delivers it once more.
    async fn lease_lost(&self, id: uuid::Uuid) -> Disposition {
        match self.h.store.waiting_target(id).await {
            Ok(Some(_)) => {
                tracing::warn!(notification.id = %id, "the claim was undone (PostgreSQL restarted or failed over); message requeued");
                Disposition::TryAgain
            }
            Ok(None) => {
                tracing::warn!(notification.id = %id, "lease lost during the attempt; outcome left to the scanner's recovery");
                Disposition::Ack
            }
            Err(e) => {
                tracing::warn!(notification.id = %id, error = %e, "lease lost during the attempt and its state unknown; message requeued");
                Disposition::TryAgain
            }
        }
    }

    /// Dead-letters a message that has no notification to deliver.
    async fn dead_letter_message(&self, letter: DeadLetter) -> Disposition {
        self.h
            .metrics
            .failed
            .with_label_values(&[letter.channel.lower(), letter.reason.as_str()])
            .inc();
        self.publish_dead_letter(&letter).await
    }

    async fn publish_dead_letter(&self, letter: &DeadLetter) -> Disposition {
        if let Err(e) = self.h.broker.publish_dead_letter(letter).await {
            // Not acked: the redelivery (or the scanner's dead-letter sweep) tries again.
            tracing::error!(error = %e, reason = letter.reason.as_str(), "dead letter not confirmed; message requeued");
            return Disposition::TryAgain;
        }
        self.h
            .metrics
            .dead_lettered
            .with_label_values(&[letter.channel.lower(), letter.reason.as_str()])
            .inc();
        if let Some(id) = letter.notification_id {
            if let Err(e) = self.h.store.mark_dead_lettered(id).await {
                // A second dead letter may follow from the sweep; replay skips duplicates.
                tracing::warn!(notification.id = %id, error = %e, "dead letter confirmed but not recorded");
            }
        }
        Disposition::Ack
    }
}
