//! RabbitMQ adapter: topology, the confirmed publisher shared by the API, scanner and worker,
//! and the message formats. One long-lived connection and channel per process publishes,
//! with publisher confirms; it reconnects on demand with backoff when the broker goes away,
//! and fails fast meanwhile so that callers can fall back on PostgreSQL.

pub mod consumer;
pub mod dlq;
pub mod messages;

use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel as AmqpChannel, Connection, ConnectionProperties, ExchangeKind};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Channel, Priority};
pub use messages::{DeadLetter, WorkMessage};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const RECONNECT_MIN: Duration = Duration::from_millis(200);
const RECONNECT_MAX: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ is unreachable: {0}")]
    Unavailable(String),
    #[error("RabbitMQ did not confirm the publish within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("RabbitMQ refused the publish: {0}")]
    Rejected(String),
    #[error("RabbitMQ error: {0}")]
    Amqp(#[from] lapin::Error),
}

/// Queue and exchange names, optionally prefixed so environments (and tests) can share a broker.
#[derive(Clone, Debug)]
pub struct Topology {
    prefix: String,
}

impl Topology {
    pub fn new(prefix: impl Into<String>) -> Self {
        Topology { prefix: prefix.into() }
    }

    pub fn work_queue(&self, channel: Channel) -> String {
        format!("{}{}", self.prefix, channel.lower())
    }

    pub fn dead_letter_queue(&self, channel: Channel) -> String {
        format!("{}dlq.{}", self.prefix, channel.lower())
    }

    /// Shown in the broker's connection list: the role, and the prefix when there is one.
    pub fn connection_name(&self, role: &str) -> String {
        if self.prefix.is_empty() {
            format!("dispatchctl-{role}")
        } else {
            format!("dispatchctl-{role} {}", self.prefix)
        }
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}dispatch.dlx", self.prefix)
    }

    /// Declares the exchange and queues; idempotent, so every process does it at start-up.
    pub async fn declare(&self, ch: &AmqpChannel) -> Result<(), lapin::Error> {
        let durable_exchange = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        let dlx = self.dead_letter_exchange();
        ch.exchange_declare(&dlx, ExchangeKind::Direct, durable_exchange, FieldTable::default())
            .await?;
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        for channel in Channel::ALL {
            let mut args = FieldTable::default();
            args.insert("x-max-priority".into(), AMQPValue::LongInt(3));
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.as_str().into()),
            );
            args.insert(
                "x-dead-letter-routing-key".into(),
                AMQPValue::LongString(channel.lower().into()),
            );
            ch.queue_declare(&self.work_queue(*channel), durable, args).await?;
            let dlq = self.dead_letter_queue(*channel);
            ch.queue_declare(&dlq, durable, FieldTable::default()).await?;
            ch.queue_bind(
                &dlq,
                &dlx,
                channel.lower(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        }
        Ok(())
    }
}

pub async fn connect(url: &SecretString, name: &str) -> Result<Connection, BrokerError> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    match tokio::time::timeout(CONNECT_TIMEOUT, Connection::connect(url.expose_secret(), props)).await {
        Ok(Ok(conn)) => Ok(conn),
        // lapin's errors do not carry the URL, so they are safe to show.
        Ok(Err(e)) => Err(BrokerError::Unavailable(e.to_string())),
        Err(_) => Err(BrokerError::Unavailable(format!(
            "no answer within {CONNECT_TIMEOUT:?}"
        ))),
    }
}

struct Link {
    connection: Connection,
    channel: AmqpChannel,
}

struct Backoff {
    next_attempt: Instant,
    delay: Duration,
    /// Why the last attempt failed, so callers turned away during the backoff see the cause.
    last_error: String,
}

/// The process's publisher: cheap to share behind an `Arc`.
pub struct Broker {
    url: SecretString,
    topology: Topology,
    publish_timeout: Duration,
    link: RwLock<Option<Link>>,
    // Serialises reconnects so a burst of requests during an outage makes one attempt.
    connecting: tokio::sync::Mutex<()>,
    // std Mutex: held for a few instructions, never across an await.
    backoff: Mutex<Backoff>,
}

impl Broker {
    pub fn new(url: SecretString, topology: Topology, publish_timeout: Duration) -> Self {
        Broker {
            url,
            topology,
            publish_timeout,
            link: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff {
                next_attempt: Instant::now(),
                delay: RECONNECT_MIN,
                last_error: String::new(),
            }),
        }
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// True when the publisher's channel is open.
    pub fn is_connected(&self) -> bool {
        self.current().is_some()
    }

    fn current(&self) -> Option<AmqpChannel> {
        let guard = self.link.read().unwrap_or_else(|p| p.into_inner());
        guard
            .as_ref()
            .filter(|l| l.channel.status().connected())
            .map(|l| l.channel.clone())
    }

    /// The open channel, connecting (and declaring the topology) when needed. During an
    /// outage it fails at once until the backoff allows another attempt.
    pub async fn channel(&self) -> Result<AmqpChannel, BrokerError> {
        if let Some(ch) = self.current() {
            return Ok(ch);
        }
        let _serial = self.connecting.lock().await;
        if let Some(ch) = self.current() {
            return Ok(ch);
        }
        {
            let backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
            if Instant::now() < backoff.next_attempt {
                return Err(BrokerError::Unavailable(format!(
                    "{} (the last attempt; retrying shortly)",
                    backoff.last_error
                )));
            }
        }
        match self.open().await {
            Ok(link) => {
                let ch = link.channel.clone();
                *self.link.write().unwrap_or_else(|p| p.into_inner()) = Some(link);
                let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                backoff.delay = RECONNECT_MIN;
                tracing::info!(broker = %crate::config::redact_url(self.url.expose_secret()), "connected to RabbitMQ");
                Ok(ch)
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                backoff.next_attempt = Instant::now() + backoff.delay;
                backoff.delay = (backoff.delay * 2).min(RECONNECT_MAX);
                backoff.last_error = match &e {
                    BrokerError::Unavailable(reason) => reason.clone(),
                    other => other.to_string(),
                };
                tracing::warn!(error = %e, retry_in_ms = backoff.delay.as_millis() as u64, "RabbitMQ connection failed");
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<Link, BrokerError> {
        let connection = connect(&self.url, &self.topology.connection_name("publisher")).await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        self.topology.declare(&channel).await?;
        Ok(Link { connection, channel })
    }

    /// Closes the publisher connection (at exit, so the runtime does not stop under it).
    pub async fn close(&self) {
        let link = self.link.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(link) = link {
            let _ = link.channel.close(200, "bye").await;
            let _ = link.connection.close(200, "bye").await;
        }
    }

    fn forget(&self) {
        *self.link.write().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Publishes work messages and waits for all their confirms at once (pipelined, not one
    /// round-trip each). The result has one entry per message, in order.
    pub async fn publish_work(&self, messages: &[WorkMessage]) -> Vec<Result<(), BrokerError>> {
        let publishes = messages.iter().map(|m| {
            let props = BasicProperties::default()
                .with_delivery_mode(2)
                .with_priority(m.priority.amqp_priority())
                .with_message_id(ShortString::from(m.notification_id.to_string()))
                .with_content_type("application/json".into());
            (String::new(), self.topology.work_queue(m.channel), m.to_json(), props)
        });
        self.publish_all(publishes.collect()).await
    }

    /// Publishes one dead letter to `dlq.<channel>` through the dead-letter exchange and
    /// waits for its confirm.
    pub async fn publish_dead_letter(&self, letter: &DeadLetter) -> Result<(), BrokerError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_headers(letter.headers());
        let props = match letter.notification_id {
            Some(id) => props.with_message_id(ShortString::from(id.to_string())),
            None => props,
        };
        let exchange = self.topology.dead_letter_exchange();
        let key = letter.channel.lower().to_string();
        let mut results = self
            .publish_all(vec![(exchange, key, letter.body.clone(), props)])
            .await;
        results.pop().unwrap_or(Ok(()))
    }

    /// Republishes a message with the given properties to a work queue (used by replay).
    pub async fn republish(
        &self,
        channel: Channel,
        priority: Priority,
        body: Vec<u8>,
        headers: FieldTable,
        message_id: &str,
    ) -> Result<(), BrokerError> {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_priority(priority.amqp_priority())
            .with_message_id(message_id.into())
            .with_content_type("application/json".into())
            .with_headers(headers);
        let mut results = self
            .publish_all(vec![(String::new(), self.topology.work_queue(channel), body, props)])
            .await;
        results.pop().unwrap_or(Ok(()))
    }

    async fn publish_all(
        &self,
        items: Vec<(String, String, Vec<u8>, BasicProperties)>,
    ) -> Vec<Result<(), BrokerError>> {
        let count = items.len();
        let channel = match self.channel().await {
            Ok(ch) => ch,
            Err(e) => {
                return (0..count)
                    .map(|_| Err(BrokerError::Unavailable(e.to_string())))
                    .collect()
            }
        };
        let timeout = self.publish_timeout;
        let work = async {
            let mut confirms = Vec::with_capacity(count);
            for (exchange, key, body, props) in items {
                let sent = channel
                    .basic_publish(
                        &exchange,
                        &key,
                        BasicPublishOptions {
                            mandatory: true,
                            ..Default::default()
                        },
                        &body,
                        props,
                    )
                    .await;
                confirms.push(sent);
            }
            join_all(confirms.into_iter().map(|sent| async move {
                match sent {
                    Ok(confirm) => match confirm.await {
                        Ok(Confirmation::Ack(None)) | Ok(Confirmation::NotRequested) => Ok(()),
                        Ok(Confirmation::Ack(Some(returned))) => Err(BrokerError::Rejected(format!(
                            "unroutable ({}); is the topology declared?",
                            returned.reply_text
                        ))),
                        Ok(Confirmation::Nack(_)) => Err(BrokerError::Rejected("nack".into())),
                        Err(e) => Err(BrokerError::Amqp(e)),
                    },
                    Err(e) => Err(BrokerError::Amqp(e)),
                }
            }))
            .await
        };
        let results = match tokio::time::timeout(timeout, work).await {
            Ok(results) => results,
            Err(_) => (0..count).map(|_| Err(BrokerError::ConfirmTimeout(timeout))).collect(),
        };
        if results
            .iter()
            .any(|r| matches!(r, Err(BrokerError::Amqp(_)) | Err(BrokerError::ConfirmTimeout(_))))
        {
            // The channel may be closed or wedged: start afresh on the next publish.
            self.forget();
        }
        results
    }

    /// Messages waiting in a queue (passive declare: never creates one).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        let ch = self.channel().await?;
        let q = ch
            .queue_declare(
                queue,
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            )
            .await;
        match q {
            Ok(q) => Ok(q.message_count()),
            Err(e) => {
                // A failed passive declare closes the channel.
                self.forget();
                Err(e.into())
            }
        }
    }
}
