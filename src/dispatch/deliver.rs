//! One work message, start to finish: rate-limit, claim under a lease, call the provider,
//! record the attempt and its outcome in one transaction, dead-letter a final failure with a
//! confirm, and only then ack. Any crash in between leaves the message unacked or the lease
//! to expire, so a later delivery or the scanner completes the work.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicNackOptions};
use rand::Rng;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::app::App;
use crate::broker::messages::{truncate_chars, InvalidMessage};
use crate::broker::{DeadLetter, WorkMessage};
use crate::domain::outcome::NextStep;
use crate::domain::{Channel, DeadLetterReason, DeliveryResult, Notification};
use crate::provider::Provider;
use crate::ratelimit::RateLimiter;
use crate::store::{AttemptRecord, ClaimRefusal, OutcomeRecord, OutcomeUpdate};

/// How long a message waits before it is processed again when PostgreSQL or RabbitMQ failed
/// under it, doubling up to `RETRY_IN_PLACE_MAX`, so an outage does not spin.
const RETRY_IN_PLACE_FIRST: Duration = Duration::from_secs(1);
const RETRY_IN_PLACE_MAX: Duration = Duration::from_secs(30);

pub struct Deliverer {
    app: App,
    provider: Provider,
    limiter: RateLimiter,
}

/// What became of one message, for logs and tests.
#[derive(Debug, PartialEq)]
pub enum Handled {
    Sent,
    Retrying,
    DeadLettered(DeadLetterReason),
    Skipped,
    TryAgain,
}

impl Deliverer {
    pub fn new(app: App, provider: Provider) -> Arc<Deliverer> {
        let s = &app.settings;
        let limits = [
            s.rate_limit_for(Channel::Sms),
            s.rate_limit_for(Channel::Email),
            s.rate_limit_for(Channel::Push),
        ];
        let limiter = RateLimiter::new(app.redis.clone(), limits, app.metrics.clone());
        Arc::new(Deliverer { app, provider, limiter })
    }

    /// Handles one delivery and acks it, or on shutdown requeues it; never panics on bad
    /// input. When PostgreSQL or RabbitMQ fails under it, the message is processed again here
    /// rather than returned to the queue: a quorum queue counts every return towards its
    /// delivery limit, and an outage must not push work into the DLQ.
    pub async fn handle(self: Arc<Self>, channel: Channel, delivery: Delivery, shutdown: CancellationToken) {
        let queue = delivery.routing_key.as_str();
        let mut pause = RETRY_IN_PLACE_FIRST;
        let requeue = loop {
            if self.process(channel, queue, &delivery.data).await != Handled::TryAgain {
                break false;
            }
            tokio::select! {
                _ = shutdown.cancelled() => break true,
                _ = tokio::time::sleep(pause) => {}
            }
            pause = (pause * 2).min(RETRY_IN_PLACE_MAX);
        };
        let acked = if requeue {
            delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
        } else {
            delivery.ack(BasicAckOptions::default()).await
        };
        if let Err(e) = acked {
            // The broker will redeliver; the claim makes the repeat harmless.
            tracing::warn!(error = %e, "could not settle message; it will be redelivered");
        }
    }

    /// Everything but the ack; `queue` is where the message came from.
    pub async fn process(&self, channel: Channel, queue: &str, body: &[u8]) -> Handled {
        let id = match WorkMessage::parse(body) {
            Ok(id) => id,
            Err(InvalidMessage(reason)) => {
                tracing::warn!(channel = channel.lower(), %reason, "poison message");
                return self
                    .dead_letter_raw(channel, queue, body, DeadLetterReason::InvalidMessage, reason)
                    .await;
            }
        };
        self.limiter.acquire(channel).await;
        let token = Uuid::new_v4();
        let n = match self.app.writes.claim(id, token, self.app.settings.lease_timeout).await {
            Ok(Ok(n)) => n,
            Ok(Err(ClaimRefusal::NotFound)) => {
                tracing::warn!(notification.id = %id, "work message for an unknown notification");
                return self
                    .dead_letter_raw(
                        channel,
                        queue,
                        body,
                        DeadLetterReason::NotFound,
                        format!("notification {id} does not exist"),
                    )
                    .await;
            }
            Ok(Err(ClaimRefusal::NotClaimable(status))) => {
                tracing::debug!(notification.id = %id, %status, "not claimable; skipped");
                self.app
                    .metrics
                    .skipped
                    .with_label_values(&[channel.lower(), status.as_str()])
                    .inc();
                return Handled::Skipped;
            }
            Err(e) => {
                tracing::warn!(notification.id = %id, error = %e, "claim failed; requeueing");
                return Handled::TryAgain;
            }
        };
        let gauge = self.app.metrics.inflight.with_label_values(&[n.channel.lower()]);
        gauge.inc();
        let handled = self.deliver_claimed(&n, token).await;
        gauge.dec();
        handled
    }

    async fn deliver_claimed(&self, n: &Notification, token: Uuid) -> Handled {
        let metrics = &self.app.metrics;
        let ch = n.channel.lower();
        let attempt = n.attempt_count + 1;
        let started = Instant::now();
        let result = self.provider.deliver(n, attempt).await;
        let elapsed = started.elapsed();
        metrics
            .send_duration
            .with_label_values(&[ch])
            .observe(elapsed.as_secs_f64());
        let jitter = rand::thread_rng().gen::<f64>();
        let step = result.next_step(attempt as u32, n.max_retries.max(1) as u32, &self.app.backoff(), jitter);
        let record = attempt_record(attempt, &result, elapsed);
        let update = match &step {
            NextStep::Sent { provider_message_id } => OutcomeUpdate::Sent {
                provider_message_id: provider_message_id.clone(),
            },
            NextStep::RetryAfter(after) => OutcomeUpdate::Retry {
                after: *after,
                error: result.error().unwrap_or_default().to_string(),
            },
            NextStep::Fail(reason) => OutcomeUpdate::Failed {
                reason: *reason,
                error: result.error().map(str::to_string),
            },
        };
        let outcome = OutcomeRecord {
            id: n.id,
            token,
            attempt: record,
            update,
        };
        match self.app.writes.record_outcome(outcome).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(notification.id = %n.id, "lease lost during the attempt; outcome left to the scanner's recovery");
                return Handled::Skipped;
            }
            Err(e) => {
                // Unrecorded: the lease will expire and the scanner will retry it.
                tracing::error!(notification.id = %n.id, error = %e, "could not record the outcome");
                return Handled::TryAgain;
            }
        }
        match step {
            NextStep::Sent { .. } => {
                metrics.sent.with_label_values(&[ch]).inc();
                tracing::info!(notification.id = %n.id, attempt, duration_ms = elapsed.as_millis() as u64, "sent");
                Handled::Sent
            }
            NextStep::RetryAfter(after) => {
                metrics.retry_scheduled.with_label_values(&[ch]).inc();
                tracing::info!(notification.id = %n.id, attempt, retry_in_ms = after.as_millis() as u64, error = result.error().unwrap_or_default(), "retry scheduled");
                Handled::Retrying
            }
            NextStep::Fail(reason) => {
                metrics.failed.with_label_values(&[ch, reason.as_str()]).inc();
                tracing::warn!(notification.id = %n.id, attempt, reason = reason.as_str(), error = result.error().unwrap_or_default(), "failed");
                let letter = DeadLetter {
                    notification_id: Some(n.id),
                    channel: n.channel,
                    reason,
                    attempts: attempt,
                    last_status_code: result.status_code().map(i32::from),
                    last_error: result.error().map(str::to_string),
                    failed_at: Utc::now(),
                    original_queue: self.app.broker.topology().work_queue(n.channel, n.priority),
                    body: WorkMessage {
                        notification_id: n.id,
                        correlation_id: n.correlation_id.clone(),
                        channel: n.channel,
                        priority: n.priority,
                    }
                    .to_json(),
                };
                self.publish_dead_letter(&letter).await
            }
        }
    }

    async fn dead_letter_raw(
        &self,
        channel: Channel,
        queue: &str,
        body: &[u8],
        reason: DeadLetterReason,
        error: String,
    ) -> Handled {
        let letter = DeadLetter {
            notification_id: None,
            channel,
            reason,
            attempts: 0,
            last_status_code: None,
            last_error: Some(error),
            failed_at: Utc::now(),
            original_queue: queue.to_string(),
            body: body.to_vec(),
        };
        self.app
            .metrics
            .failed
            .with_label_values(&[channel.lower(), reason.as_str()])
            .inc();
        self.publish_dead_letter(&letter).await
    }

    async fn publish_dead_letter(&self, letter: &DeadLetter) -> Handled {
        if let Err(e) = self.app.broker.publish_dead_letter(letter).await {
            // Not acked: the redelivery (or the scanner's dead-letter sweep) tries again.
            tracing::error!(error = %e, reason = letter.reason.as_str(), "dead letter not confirmed; message requeued");
            return Handled::TryAgain;
        }
        self.app
            .metrics
            .dead_lettered
            .with_label_values(&[letter.channel.lower(), letter.reason.as_str()])
            .inc();
        if let Some(id) = letter.notification_id {
            if let Err(e) = self.app.store.mark_dead_lettered(id).await {
                // A second dead letter may follow from the sweep; replay skips duplicates.
                tracing::warn!(notification.id = %id, error = %e, "dead letter confirmed but not recorded");
            }
        }
        Handled::DeadLettered(letter.reason)
    }
}

fn attempt_record(attempt: i32, result: &DeliveryResult, elapsed: Duration) -> AttemptRecord {
    let body = result.body();
    AttemptRecord {
        attempt_number: attempt,
        outcome: match result {
            DeliveryResult::Success { .. } => "SUCCESS",
            DeliveryResult::Transient { .. } => "TRANSIENT",
            DeliveryResult::Permanent { .. } => "PERMANENT",
        },
        status_code: result.status_code().map(i32::from),
        response_body: (!body.is_empty()).then(|| body.to_string()),
        error: result.error().map(|e| truncate_chars(e, 1024)),
        duration_ms: elapsed.as_millis().min(i32::MAX as u128) as i32,
    }
}
