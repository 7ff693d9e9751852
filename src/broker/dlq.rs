//! Reading a dead-letter queue without consuming it: messages are fetched with `basic.get`
//! and left unacknowledged, so the broker keeps them and, when the channel closes (or the
//! process dies), puts every one back at its original position. Only the caller's explicit
//! `ack` removes a message. Memory stays bounded: the broker holds the unacked messages, we
//! hold one at a time.
//!
//! A quorum queue on RabbitMQ 4 puts the unacked messages back a moment after the channel
//! closed, not at once: `close` waits until they are counted again, so that the command
//! after this one (or the operator's next look) never sees a DLQ emptier than it is.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use lapin::acker::Acker;
use lapin::options::{BasicAckOptions, BasicGetOptions};
use lapin::{Channel as AmqpChannel, Connection};
use serde::Serialize;
use uuid::Uuid;

use super::messages::{header_text, H_ATTEMPTS, H_FAILED_AT, H_LAST_ERROR, H_LAST_STATUS, H_ORIGINAL_QUEUE, H_REASON};
use super::{passive_depth, BrokerError, Endpoints, Topology};
use crate::domain::{Channel, Priority};

/// One dead letter as an operator sees it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    pub queue: String,
    pub channel: Channel,
    /// Position in the queue when read (1 = head).
    pub position: u64,
    pub notification_id: Option<Uuid>,
    pub priority: Option<Priority>,
    pub reason: Option<String>,
    pub attempts: Option<i64>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub failed_at: Option<DateTime<Utc>>,
    pub original_queue: Option<String>,
    /// All headers as text, for exports.
    pub headers: serde_json::Map<String, serde_json::Value>,
    /// The body as text (lossy for binary poison messages).
    pub body: String,
}

/// How long `close` waits for the returned messages to be counted again.
const RETURN_WAIT: Duration = Duration::from_secs(5);

pub struct Fetched {
    pub view: DeadLetterView,
    acker: Acker,
    acked: Arc<AtomicU32>,
}

impl Fetched {
    /// Removes the message from the queue for good.
    pub async fn ack(self) -> Result<(), BrokerError> {
        self.acker.ack(BasicAckOptions::default()).await?;
        self.acked.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

pub struct DlqCursor {
    connection: Connection,
    ch: AmqpChannel,
    queue: String,
    channel: Channel,
    position: u64,
    pub depth: u32,
    acked: Arc<AtomicU32>,
}

impl DlqCursor {
    pub async fn open(endpoints: &Endpoints, topology: &Topology, channel: Channel) -> Result<DlqCursor, BrokerError> {
        let (connection, _node) = endpoints.connect(&topology.connection_name("dlq")).await?;
        let ch = connection.create_channel().await?;
        let queue = topology.dead_letter_queue(channel);
        let Some(depth) = passive_depth(&ch, &queue).await? else {
            let _ = connection.close(200, "no such queue").await;
            return Err(BrokerError::MissingQueue {
                queue,
                prefix: topology.prefix().into(),
            });
        };
        // A failed passive declare closes the channel; open a fresh one either way.
        let ch = if ch.status().connected() {
            ch
        } else {
            connection.create_channel().await?
        };
        Ok(DlqCursor {
            connection,
            ch,
            queue,
            channel,
            position: 0,
            depth,
            acked: Arc::new(AtomicU32::new(0)),
        })
    }

    /// The next message in queue order, or None at the end. It stays in the queue unless
    /// the caller acks it.
    pub async fn next(&mut self) -> Result<Option<Fetched>, BrokerError> {
        if self.position >= u64::from(self.depth) {
            // Stop at the depth seen when opening: later arrivals (and our own requeues) wait
            // for the next run, which keeps one pass finite.
            return Ok(None);
        }
        let Some(message) = self
            .ch
            .basic_get(&self.queue, BasicGetOptions { no_ack: false })
            .await?
        else {
            return Ok(None);
        };
        self.position += 1;
        let d = message.delivery;
        let view = view(&self.queue, self.channel, self.position, &d.properties, &d.data);
        Ok(Some(Fetched {
            view,
            acker: d.acker,
            acked: self.acked.clone(),
        }))
    }

    /// Closes the channel: every message not acked returns to the queue, in order. Returns
    /// once the queue counts them again (or after RETURN_WAIT: the broker has them either way).
    pub async fn close(self) {
        let _ = self.ch.close(200, "done").await;
        let expected = self.depth.saturating_sub(self.acked.load(Ordering::Relaxed));
        if self.position > 0 {
            if let Ok(ch) = self.connection.create_channel().await {
                let deadline = tokio::time::Instant::now() + RETURN_WAIT;
                while tokio::time::Instant::now() < deadline {
                    match passive_depth(&ch, &self.queue).await {
                        Ok(Some(depth)) if depth < expected => tokio::time::sleep(Duration::from_millis(20)).await,
                        _ => break,
                    }
                }
            }
        }
        let _ = self.connection.close(200, "done").await;
    }
}

fn view(queue: &str, channel: Channel, position: u64, props: &lapin::BasicProperties, data: &[u8]) -> DeadLetterView {
    let headers = props.headers().as_ref();
    let text = |k: &str| header_text(headers, k);
    let number = |k: &str| text(k).and_then(|v| v.parse::<i64>().ok());
    let body: Option<serde_json::Value> = serde_json::from_slice(data).ok();
    let field = |k: &str| body.as_ref()?.get(k)?.as_str();
    let message_id = || Uuid::parse_str(props.message_id().as_ref()?.as_str()).ok();
    let notification_id = field("notificationId")
        .and_then(|s| Uuid::parse_str(s).ok())
        .or_else(message_id);
    let priority = field("priority").and_then(|s| s.parse().ok());
    let all = headers
        .iter()
        .flat_map(|h| h.inner().keys())
        .filter_map(|k| Some((k.as_str().to_string(), header_text(headers, k.as_str())?.into())))
        .collect();
    DeadLetterView {
        queue: queue.to_string(),
        channel,
        position,
        notification_id,
        priority,
        // A letter the broker dead-lettered itself (a quorum queue's delivery limit) has no
        // reason of ours, only RabbitMQ's.
        reason: text(H_REASON).or_else(|| text("x-first-death-reason")),
        attempts: number(H_ATTEMPTS),
        last_status_code: number(H_LAST_STATUS),
        last_error: text(H_LAST_ERROR),
        failed_at: text(H_FAILED_AT)
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
        original_queue: text(H_ORIGINAL_QUEUE).or_else(|| text("x-first-death-queue")),
        headers: all,
        body: String::from_utf8_lossy(data).into_owned(),
    }
}
