//! RabbitMQ adapter: topology, the confirmed publisher shared by the API, scanner and worker,
//! and the message formats. One long-lived connection and channel per process publishes,
//! with publisher confirms; it reconnects on demand with backoff when the broker goes away,
//! and fails fast meanwhile so that callers can fall back on PostgreSQL.

pub mod consumer;
pub mod convert;
pub mod dlq;
pub mod messages;
pub mod topology;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Channel as AmqpChannel, Connection, ConnectionProperties};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::backoff::Reconnect;
use crate::domain::Channel;
use crate::tls::amqp::AmqpTls;

pub use messages::{DeadLetter, ReplayStamp, WorkMessage};
pub use topology::{QueueType, Topology};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("RabbitMQ is unreachable: {0}")]
    Unavailable(String),
    /// Every node answered and refused the credentials: retrying will not help.
    #[error("RabbitMQ refused the login: {0}")]
    LoginRefused(String),
    /// An operator command found no queue where the settings point (it never declares one).
    #[error("RabbitMQ has no queue {queue}: nothing was declared under QUEUE_PREFIX=\"{prefix}\"")]
    MissingQueue { queue: String, prefix: String },
    #[error("RabbitMQ did not confirm the publish within {0:?}")]
    ConfirmTimeout(Duration),
    #[error("RabbitMQ refused the publish: {0}")]
    Rejected(String),
    #[error("RabbitMQ error: {0}")]
    Amqp(#[from] lapin::Error),
    #[error(
        "queue {queue} already exists on RabbitMQ with another {argument} than QUEUE_TYPE={wanted} declares \
         ({broker_says}); set QUEUE_TYPE={other} to use it as it is, or move it with \
         `dispatchctl convert-queues --to {wanted}` (see docs/OPERATIONS.md, \"Outgrowing one broker\")",
        other = wanted.other()
    )]
    QueueMismatch {
        queue: String,
        argument: String,
        broker_says: String,
        wanted: QueueType,
    },
}

/// The broker's nodes, from a comma-separated RABBITMQ_URL. Connections go to the node that
/// last answered and, when it does not, to the next ones in turn, so a process follows a
/// cluster through the loss of any node.
pub struct Endpoints {
    urls: Vec<SecretString>,
    // Built only when a node is amqps://.
    tls: Option<AmqpTls>,
    // The index of the node that last accepted a connection.
    preferred: AtomicUsize,
}

impl Endpoints {
    /// Splits RABBITMQ_URL on commas. An entry without a scheme (`host:port`) takes the
    /// scheme, credentials, vhost and query of the first entry; config validated them.
    pub fn parse(value: &SecretString, tls_files: &crate::tls::ClientTlsFiles) -> Endpoints {
        let urls = crate::config::rabbitmq_nodes(value.expose_secret())
            .unwrap_or_else(|_| vec![value.expose_secret().to_string()]);
        let tls = urls
            .iter()
            .any(|u| u.starts_with("amqps://"))
            .then(|| AmqpTls::new(tls_files));
        Endpoints {
            urls: urls.into_iter().map(SecretString::from).collect(),
            tls,
            preferred: AtomicUsize::new(0),
        }
    }

    /// Connects to the preferred node, else to each other node in turn. Returns the
    /// connection and the `host:port` it reached; the error names every node tried.
    pub async fn connect(&self, name: &str) -> Result<(Connection, String), BrokerError> {
        let start = self.preferred.load(Ordering::Relaxed);
        let mut failures = Vec::new();
        let mut refused = 0;
        for i in 0..self.urls.len() {
            let index = (start + i) % self.urls.len();
            let url = &self.urls[index];
            let node = node_of(url.expose_secret());
            match connect_one(url, name, self.tls.as_ref()).await {
                Ok(connection) => {
                    self.preferred.store(index, Ordering::Relaxed);
                    return Ok((connection, node));
                }
                Err(e) => {
                    refused += usize::from(is_login_refusal(&e));
                    failures.push(format!("{node}: {e}"));
                }
            }
        }
        let failures = failures.join("; ");
        if refused == self.urls.len() {
            Err(BrokerError::LoginRefused(failures))
        } else {
            Err(BrokerError::Unavailable(failures))
        }
    }
}

/// Whether a failed connection was the broker refusing the user or password (AMQP's
/// ACCESS_REFUSED, which lapin spells either way depending on where the handshake stopped).
fn is_login_refusal(error: &str) -> bool {
    error.contains("ACCESS_REFUSED") || error.contains("ACCESS-REFUSED")
}

fn node_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(5672)),
        Err(_) => "(unparseable URL)".into(),
    }
}

async fn connect_one(url: &SecretString, name: &str, tls: Option<&AmqpTls>) -> Result<Connection, String> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    let url = url.expose_secret();
    let connecting = async {
        match tls.filter(|_| url.starts_with("amqps://")) {
            Some(tls) => crate::tls::amqp::connect(url, props, tls, CONNECT_TIMEOUT).await,
            // lapin's errors do not carry the URL, so they are safe to show.
            None => Connection::connect(url, props).await.map_err(|e| e.to_string()),
        }
    };
    let answer = tokio::time::timeout(CONNECT_TIMEOUT, connecting).await;
    answer.unwrap_or_else(|_| Err(format!("no answer within {CONNECT_TIMEOUT:?}")))
}

/// Messages waiting in `queue`, or None when it does not exist. A miss closes the channel it
/// was asked on (that is AMQP), so callers pass one they can lose.
pub(crate) async fn passive_depth(ch: &AmqpChannel, queue: &str) -> Result<Option<u32>, BrokerError> {
    Ok(passive_stats(ch, queue).await?.map(|q| q.messages))
}

/// What a passive declare tells of a queue: the messages ready in it (not those delivered
/// and unacked) and the consumers it has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub messages: u32,
    pub consumers: u32,
}

async fn passive_stats(ch: &AmqpChannel, queue: &str) -> Result<Option<QueueStats>, BrokerError> {
    let declared = ch
        .queue_declare(
            queue,
            QueueDeclareOptions {
                passive: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await;
    match declared {
        Ok(q) => Ok(Some(QueueStats {
            messages: q.message_count(),
            consumers: q.consumer_count(),
        })),
        Err(lapin::Error::ProtocolError(e)) if e.get_id() == 404 => Ok(None), // NOT_FOUND
        Err(e) => Err(e.into()),
    }
}

struct Link {
    connection: Connection,
    channel: AmqpChannel,
    node: String,
}

struct Backoff {
    next_attempt: Instant,
    policy: Reconnect,
    /// Why the last attempt failed, so callers turned away during the backoff see the cause.
    last_error: String,
    login_refused: bool,
}

/// What became of a batch of work messages: those not confirmed stay due in PostgreSQL.
#[derive(Debug)]
pub struct Published {
    /// Positions (in the batch given) of the messages the broker confirmed, in order.
    pub confirmed: Vec<usize>,
    /// Why the first unconfirmed one was not, when some were not.
    pub error: Option<BrokerError>,
}

/// The process's publisher: cheap to share behind an `Arc`.
pub struct Broker {
    endpoints: Endpoints,
    topology: Topology,
    publish_timeout: Duration,
    link: RwLock<Option<Link>>,
    // Serialises reconnects so a burst of requests during an outage makes one attempt.
    connecting: tokio::sync::Mutex<()>,
    // std Mutex: held for a few instructions, never across an await.
    backoff: Mutex<Backoff>,
    // Daemons declare the topology on every connect; operator commands never do, so that a
    // mistyped QUEUE_PREFIX finds nothing instead of creating empty queues.
    declares_topology: bool,
}

impl Broker {
    pub fn new(endpoints: Endpoints, topology: Topology, publish_timeout: Duration) -> Self {
        Broker {
            endpoints,
            topology,
            publish_timeout,
            link: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            backoff: Mutex::new(Backoff {
                next_attempt: Instant::now(),
                policy: Reconnect::new(),
                last_error: String::new(),
                login_refused: false,
            }),
            declares_topology: true,
        }
    }

    /// A broker handle that never declares a queue or an exchange (for operator commands).
    pub fn without_declaring(mut self) -> Self {
        self.declares_topology = false;
        self
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// `host:port` of the node the publisher is connected to, if it is.
    pub fn node(&self) -> Option<String> {
        self.connected(|l| l.node.clone())
    }

    fn current(&self) -> Option<AmqpChannel> {
        self.connected(|l| l.channel.clone())
    }

    /// `read` of the link, while it is connected.
    fn connected<T>(&self, read: impl FnOnce(&Link) -> T) -> Option<T> {
        let guard = self.link.read().unwrap_or_else(|p| p.into_inner());
        guard.as_ref().filter(|l| l.channel.status().connected()).map(read)
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
                let reason = format!("{} (the last attempt; retrying shortly)", backoff.last_error);
                return Err(if backoff.login_refused {
                    BrokerError::LoginRefused(reason)
                } else {
                    BrokerError::Unavailable(reason)
                });
            }
        }
        match self.open().await {
            Ok(link) => {
                let ch = link.channel.clone();
                tracing::info!(node = %link.node, "publisher connected to RabbitMQ");
                *self.link.write().unwrap_or_else(|p| p.into_inner()) = Some(link);
                let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                backoff.policy.succeeded();
                Ok(ch)
            }
            Err(e) => {
                let mut backoff = self.backoff.lock().unwrap_or_else(|p| p.into_inner());
                let wait = backoff.policy.failed();
                backoff.next_attempt = Instant::now() + wait;
                backoff.login_refused = matches!(e, BrokerError::LoginRefused(_));
                backoff.last_error = match &e {
                    BrokerError::Unavailable(reason) | BrokerError::LoginRefused(reason) => reason.clone(),
                    other => other.to_string(),
                };
                if matches!(e, BrokerError::QueueMismatch { .. }) {
                    tracing::error!(error = %e, "publishing is off until the queues match QUEUE_TYPE");
                } else {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "RabbitMQ connection failed");
                }
                Err(e)
            }
        }
    }

    async fn open(&self) -> Result<Link, BrokerError> {
        let (connection, node) = self
            .endpoints
            .connect(&self.topology.connection_name("publisher"))
            .await?;
        let channel = connection.create_channel().await?;
        channel.confirm_select(ConfirmSelectOptions::default()).await?;
        if self.declares_topology {
            if let Err(e) = self.topology.declare(&channel).await {
                let _ = connection.close(200, "topology refused").await;
                return Err(e);
            }
        }
        Ok(Link {
            connection,
            channel,
            node,
        })
    }

    /// Closes the publisher connection (at exit, so the runtime does not stop under it).
    pub async fn close(&self) {
        let link = self.link.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(link) = link {
            let _ = link.channel.close(200, "bye").await;
            let _ = link.connection.close(200, "bye").await;
        }
    }

    /// Drops the link so the next publish connects afresh, and closes it in the background
    /// (a connection that still works would otherwise stay open on the broker).
    fn forget(&self) {
        let old = self.link.write().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(link) = old {
            tokio::spawn(async move {
                let _ = link.connection.close(200, "reconnecting").await;
            });
        }
    }

    /// Publishes work messages and waits for all their confirms at once (pipelined, not one
    /// round-trip each); says which the broker confirmed.
    pub async fn publish_work(&self, messages: &[WorkMessage]) -> Published {
        let publishes = messages.iter().map(|m| self.work_publish(m, None));
        let mut published = Published {
            confirmed: Vec::with_capacity(messages.len()),
            error: None,
        };
        for (i, result) in self.publish_all(publishes.collect()).await.into_iter().enumerate() {
            match result {
                Ok(()) => published.confirmed.push(i),
                Err(e) => {
                    published.error.get_or_insert(e);
                }
            }
        }
        published
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

    /// Publishes a work message again, stamped with who replayed it.
    pub async fn republish(&self, work: &WorkMessage, stamp: &ReplayStamp) -> Result<(), BrokerError> {
        let mut results = self.publish_all(vec![self.work_publish(work, Some(stamp))]).await;
        results.pop().unwrap_or(Ok(()))
    }

    /// A persistent work message for its queue (through the default exchange), stamped when
    /// it is a replay.
    fn work_publish(&self, m: &WorkMessage, stamp: Option<&ReplayStamp>) -> (String, String, Vec<u8>, BasicProperties) {
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_priority(m.priority.amqp_priority())
            .with_message_id(ShortString::from(m.notification_id.to_string()))
            .with_content_type("application/json".into());
        let mut headers = stamp.map(ReplayStamp::headers).unwrap_or_default();
        if let Some(traceparent) = &m.traceparent {
            headers.insert("traceparent".into(), AMQPValue::LongString(traceparent.as_str().into()));
        }
        let props = if headers.inner().is_empty() {
            props
        } else {
            props.with_headers(headers)
        };
        let queue = self.topology.work_queue(m.channel, m.priority);
        (String::new(), queue, m.to_json(), props)
    }

    async fn publish_all(
        &self,
        items: Vec<(String, String, Vec<u8>, BasicProperties)>,
    ) -> Vec<Result<(), BrokerError>> {
        let count = items.len();
        let channel = match self.channel().await {
            Ok(ch) => ch,
            Err(e) => {
                // One error per item, each saying what the connection attempt said once
                // (wrapping its text again read "RabbitMQ is unreachable: RabbitMQ is …").
                let each = || match &e {
                    BrokerError::Unavailable(reason) => BrokerError::Unavailable(reason.clone()),
                    BrokerError::LoginRefused(reason) => BrokerError::LoginRefused(reason.clone()),
                    other => BrokerError::Unavailable(other.to_string()),
                };
                return (0..count).map(|_| Err(each())).collect();
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
                match sent?.await? {
                    Confirmation::Ack(None) | Confirmation::NotRequested => Ok(()),
                    Confirmation::Ack(Some(returned)) => Err(BrokerError::Rejected(format!(
                        "unroutable ({}); is the topology declared?",
                        returned.reply_text
                    ))),
                    Confirmation::Nack(_) => Err(BrokerError::Rejected("nack".into())),
                }
            }))
            .await
        };
        let results = match tokio::time::timeout(timeout, work).await {
            Ok(results) => results,
            Err(_) => (0..count).map(|_| Err(BrokerError::ConfirmTimeout(timeout))).collect(),
        };
        // Every error here is a failed publish, a refusal or a timeout on this channel.
        if results.iter().any(Result::is_err) {
            // The channel may be closed or wedged, or (a nack from a quorum queue whose leader
            // died with the node this channel first reached) keep refusing for a while: start
            // afresh on the next publish.
            self.forget();
        }
        results
    }

    /// Messages waiting in a queue (passive declare: never creates one).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        self.queue_stats(queue)
            .await?
            .map(|q| q.messages)
            .ok_or_else(|| self.missing(queue))
    }

    /// Messages waiting on a channel's work queues, all priorities together.
    pub async fn channel_depth(&self, channel: Channel) -> Result<u32, BrokerError> {
        Ok(self.channel_stats(channel).await?.messages)
    }

    /// A channel's work queues together: their ready messages and their consumers.
    pub async fn channel_stats(&self, channel: Channel) -> Result<QueueStats, BrokerError> {
        let mut total = QueueStats::default();
        for queue in self.topology.work_queues(channel) {
            let stats = self.queue_stats(&queue).await?.ok_or_else(|| self.missing(&queue))?;
            total.messages = total.messages.saturating_add(stats.messages);
            total.consumers = total.consumers.saturating_add(stats.consumers);
        }
        Ok(total)
    }

    pub fn missing(&self, queue: &str) -> BrokerError {
        BrokerError::MissingQueue {
            queue: queue.into(),
            prefix: self.topology.prefix().into(),
        }
    }

    /// A queue's ready messages and consumers, or None when it does not exist (passive
    /// declare: never creates one).
    pub async fn queue_stats(&self, queue: &str) -> Result<Option<QueueStats>, BrokerError> {
        let ch = self.channel().await?;
        let stats = passive_stats(&ch, queue).await;
        if !matches!(stats, Ok(Some(_))) {
            // A miss or a failure closes the channel (that is AMQP): the next call connects afresh.
            self.forget();
        }
        stats
    }
}
