//! The consuming side: one connection and channel per worker process and a consumer per work
//! queue, each with its own prefetch (per-consumer QoS: RabbitMQ 4.3 refuses the global kind).
//! Each prefetch is the worker's whole concurrency, so one busy queue can use all of it, and
//! one gate shared by the consumers starts at most that many deliveries at once: a message is
//! taken from the consumers only once a delivery slot is free. A priority queue (or, for
//! quorum queues, the HIGH queue) keeps waiting HIGH messages ahead of LOW ones. Reconnects
//! to the next node with backoff; on shutdown stops consuming and lets in-flight work finish.
//! The handler says what should become of each message (`Disposition`); the acks and nacks
//! are done here and nowhere else.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{BrokerError, Endpoints, Topology};
use crate::domain::backoff::Reconnect;
use crate::domain::Channel;

/// How long a message waits before it is processed again when PostgreSQL or RabbitMQ failed
/// under it, doubling up to `TRY_AGAIN_MAX`, so an outage does not spin.
const TRY_AGAIN_FIRST: Duration = Duration::from_secs(1);
const TRY_AGAIN_MAX: Duration = Duration::from_secs(30);

/// What should become of a message once its handler is done with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// Its work is done (delivered, retry scheduled, dead-lettered, or refused as already
    /// done): ack it.
    Ack,
    /// PostgreSQL or RabbitMQ failed under it: process it again after a pause. It is kept
    /// here rather than returned to the queue, because a quorum queue counts every return
    /// towards its delivery limit and an outage must not push work into the DLQ. On
    /// shutdown it is nacked back to the queue instead.
    TryAgain,
}

/// One message as the handler sees it.
#[derive(Debug)]
pub struct Message {
    pub channel: Channel,
    /// The queue it came from.
    pub queue: String,
    pub body: Vec<u8>,
}

pub struct ConsumerOptions<'a> {
    pub endpoints: &'a Endpoints,
    pub topology: Topology,
    pub channels: Vec<Channel>,
    /// Deliveries in flight for the whole process, and each queue's prefetch.
    pub concurrency: u16,
    pub shutdown_timeout: Duration,
}

/// Where a worker's consumers are attached, for `/readyz`: the node's `host:port`, or nothing
/// while they are not.
#[derive(Debug, Default)]
pub struct Attachment(Mutex<Option<String>>);

impl Attachment {
    pub fn node(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn is_attached(&self) -> bool {
        self.node().is_some()
    }

    fn set(&self, node: Option<String>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = node;
    }
}

/// Consumes until `shutdown`; `attachment` says where while consumers are attached.
/// Every delivery runs `handler` in its own task, which then acks or nacks it as the
/// handler's `Disposition` says.
pub async fn run<H, F>(opts: ConsumerOptions<'_>, shutdown: CancellationToken, attachment: Arc<Attachment>, handler: H)
where
    H: Fn(Arc<Message>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Disposition> + Send + 'static,
{
    let mut reconnect = Reconnect::new();
    let mut in_flight: JoinSet<()> = JoinSet::new();
    let slots = Arc::new(Semaphore::new(usize::from(opts.concurrency.max(1))));
    while !shutdown.is_cancelled() {
        let wait = match consume(&opts, &shutdown, &attachment, &handler, &slots, &mut in_flight).await {
            Ok(()) => break,
            Err(e @ BrokerError::QueueMismatch { .. }) => {
                // Retrying soon cannot help until an operator acts: an error every 30 s.
                tracing::error!(error = %e, "worker cannot consume");
                Duration::from_secs(30)
            }
            Err(e) => {
                // A connection that was consuming starts the backoff afresh, so the worker
                // moves to the next node of a cluster at once.
                if attachment.is_attached() {
                    reconnect.succeeded();
                }
                let wait = reconnect.failed();
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "worker lost RabbitMQ; reconnecting");
                wait
            }
        };
        attachment.set(None);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    attachment.set(None);
    let drained = tokio::time::timeout(opts.shutdown_timeout, async {
        while in_flight.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            left = in_flight.len(),
            "shutdown timeout: unfinished deliveries stay unacked for redelivery"
        );
        in_flight.abort_all();
    }
}

async fn consume<H, F>(
    opts: &ConsumerOptions<'_>,
    shutdown: &CancellationToken,
    attachment: &Attachment,
    handler: &H,
    slots: &Arc<Semaphore>,
    in_flight: &mut JoinSet<()>,
) -> Result<(), BrokerError>
where
    H: Fn(Arc<Message>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Disposition> + Send + 'static,
{
    let (connection, node) = opts.endpoints.connect(&opts.topology.connection_name("worker")).await?;
    let ch = connection.create_channel().await?;
    if let Err(e) = opts.topology.declare(&ch).await {
        let _ = connection.close(200, "topology refused").await;
        return Err(e);
    }
    let queues: Vec<(Channel, String)> = opts
        .channels
        .iter()
        .flat_map(|c| opts.topology.work_queues(*c).into_iter().map(move |q| (*c, q)))
        .collect();
    // Each queue may fill every slot: shared out, the prefetches capped a worker whose load
    // was on one queue at a fraction of its concurrency (docs/PERFORMANCE.md). The gate
    // below bounds the deliveries; the broker only holds at most this many per queue ready
    // on the connection. Per-consumer QoS applies to the consumers started after it.
    let prefetch = opts.concurrency.max(1);
    ch.basic_qos(prefetch, BasicQosOptions { global: false }).await?;
    let mut streams = Vec::new();
    for (channel, queue) in queues {
        let tag = format!("dispatchctl-{queue}-{}", uuid::Uuid::new_v4().simple());
        let consumer = ch
            .basic_consume(&queue, &tag, BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        // A consumer the broker cancels (its queue deleted) ends its stream; `select_all`
        // would go on with the others and never consume that queue again, so the end is an
        // item of its own that makes the worker reconnect (and declare the queue again).
        let ended = futures_util::stream::once(std::future::ready((channel, None)));
        streams.push(consumer.map(move |d| (channel, Some(d))).chain(ended).boxed());
    }
    let mut deliveries = select_all(streams);
    tracing::info!(%node, channels = ?opts.channels, prefetch_per_queue = prefetch, queue_type = %opts.topology.queue_type(), "worker consuming");
    attachment.set(Some(node));
    loop {
        // A message is taken only with a free slot; the slots of a previous connection's
        // deliveries still count, so those finish first.
        let next = tokio::select! {
            _ = shutdown.cancelled() => None,
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => tokio::select! {
                    _ = shutdown.cancelled() => None,
                    next = deliveries.next() => Some((slot, next)),
                },
                Err(_) => None,
            },
        };
        match next {
            None => {
                drop(deliveries);
                finish_in_flight(opts, in_flight).await;
                let _ = ch.close(200, "shutdown").await;
                let _ = connection.close(200, "shutdown").await;
                return Ok(());
            }
            Some((_, Some((channel, None)))) => {
                drop(deliveries);
                finish_in_flight(opts, in_flight).await;
                let _ = ch.close(200, "consumer canceled").await;
                let _ = connection.close(200, "consumer canceled").await;
                return Err(BrokerError::Unavailable(format!(
                    "the broker canceled the consumer of the {channel} queue (deleted?)"
                )));
            }
            Some((slot, Some((channel, Some(Ok(delivery)))))) => {
                let (handler, shutdown) = (handler.clone(), shutdown.clone());
                in_flight.spawn(async move {
                    settle(channel, delivery, handler, shutdown).await;
                    drop(slot);
                });
                // Reap finished tasks so the set does not grow without bound.
                while in_flight.try_join_next().is_some() {}
            }
            Some((_, Some((_, Some(Err(e)))))) => return Err(e.into()),
            Some((_, None)) => return Err(BrokerError::Unavailable("consumer stream ended".into())),
        }
    }
}

/// Closing the channel cancels the consumers; prefetched but unstarted messages go back to
/// the queue. Started deliveries keep their own acker, so they finish first (within the
/// shutdown timeout).
async fn finish_in_flight(opts: &ConsumerOptions<'_>, in_flight: &mut JoinSet<()>) {
    while !in_flight.is_empty() {
        if tokio::time::timeout(opts.shutdown_timeout, in_flight.join_next())
            .await
            .is_err()
        {
            break;
        }
    }
}

/// Runs the handler on one delivery until it is done with it, then acks it; on shutdown
/// while it waits to try again, nacks it back to the queue.
async fn settle<H, F>(channel: Channel, mut delivery: Delivery, handler: H, shutdown: CancellationToken)
where
    H: Fn(Arc<Message>) -> F,
    F: Future<Output = Disposition>,
{
    let message = Arc::new(Message {
        channel,
        queue: delivery.routing_key.to_string(),
        body: std::mem::take(&mut delivery.data),
    });
    let mut pause = TRY_AGAIN_FIRST;
    let requeue = loop {
        if handler(message.clone()).await == Disposition::Ack {
            break false;
        }
        tokio::select! {
            _ = shutdown.cancelled() => break true,
            _ = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(TRY_AGAIN_MAX);
    };
    let settled = if requeue {
        delivery
            .nack(BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
    } else {
        delivery.ack(BasicAckOptions::default()).await
    };
    if let Err(e) = settled {
        // The broker will redeliver; the claim makes the repeat harmless.
        tracing::warn!(error = %e, "could not settle message; it will be redelivered");
    }
}
