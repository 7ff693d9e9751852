//! The consuming side: one connection and channel per worker process, a consumer per
//! channel queue, and a prefetch shared by them all (`global` QoS), so the broker never hands
//! out more than the worker's concurrency and HIGH messages waiting in a queue overtake LOW
//! ones. Reconnects with backoff; on shutdown stops consuming and lets in-flight work finish.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use lapin::message::Delivery;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable;
use secrecy::SecretString;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{connect, BrokerError, Topology};
use crate::domain::Channel;

pub struct ConsumerOptions {
    pub url: SecretString,
    pub topology: Topology,
    pub channels: Vec<Channel>,
    pub prefetch: u16,
    pub shutdown_timeout: Duration,
}

/// Consumes until `shutdown`; `alive` is true while a consumer is attached (for `/readyz`).
/// Every delivery runs `handler` in its own task; the handler acks or nacks it.
pub async fn run<H, F>(opts: ConsumerOptions, shutdown: CancellationToken, alive: Arc<AtomicBool>, handler: H)
where
    H: Fn(Channel, Delivery) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let mut delay = Duration::from_millis(200);
    let mut in_flight: JoinSet<()> = JoinSet::new();
    while !shutdown.is_cancelled() {
        match consume(&opts, &shutdown, &alive, &handler, &mut in_flight).await {
            Ok(()) => break,
            Err(e) => {
                alive.store(false, Ordering::SeqCst);
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "worker lost RabbitMQ; reconnecting");
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(delay) => {}
                }
                delay = (delay * 2).min(Duration::from_secs(10));
            }
        }
    }
    alive.store(false, Ordering::SeqCst);
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
    opts: &ConsumerOptions,
    shutdown: &CancellationToken,
    alive: &AtomicBool,
    handler: &H,
    in_flight: &mut JoinSet<()>,
) -> Result<(), BrokerError>
where
    H: Fn(Channel, Delivery) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    let connection = connect(&opts.url, &opts.topology.connection_name("worker")).await?;
    let ch = connection.create_channel().await?;
    opts.topology.declare(&ch).await?;
    ch.basic_qos(opts.prefetch, BasicQosOptions { global: true }).await?;
    let mut streams = Vec::new();
    for channel in &opts.channels {
        let queue = opts.topology.work_queue(*channel);
        let tag = format!("dispatchctl-{}-{}", channel.lower(), uuid::Uuid::new_v4().simple());
        let consumer = ch
            .basic_consume(&queue, &tag, BasicConsumeOptions::default(), FieldTable::default())
            .await?;
        let channel = *channel;
        streams.push(consumer.map(move |d| (channel, d)).boxed());
    }
    let mut deliveries = select_all(streams);
    alive.store(true, Ordering::SeqCst);
    tracing::info!(channels = ?opts.channels, prefetch = opts.prefetch, "worker consuming");
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => {
                // Closing the channel cancels the consumers; prefetched but unstarted messages
                // go back to the queue. Started deliveries keep their own acker.
                drop(deliveries);
                while !in_flight.is_empty() {
                    if tokio::time::timeout(opts.shutdown_timeout, in_flight.join_next()).await.is_err() {
                        break;
                    }
                }
                let _ = ch.close(200, "shutdown").await;
                let _ = connection.close(200, "shutdown").await;
                return Ok(());
            }
            next = deliveries.next() => match next {
                Some((channel, Ok(delivery))) => {
                    in_flight.spawn(handler(channel, delivery));
                    // Reap finished tasks so the set does not grow without bound.
                    while in_flight.try_join_next().is_some() {}
                }
                Some((_, Err(e))) => return Err(e.into()),
                None => return Err(BrokerError::Unavailable("consumer stream ended".into())),
            },
        }
    }
}
