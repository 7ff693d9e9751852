//! RabbitMQ alone, for the floor of `scripts/bench.sh`: publishes N persistent messages with
//! publisher confirms (pipelined: up to `--window` unconfirmed at a time, on one channel, as
//! the service's publisher does) to a durable queue declared like the service's work queues
//! (`x-max-priority` 3), while a consumer on a second connection takes them with manual ack
//! (one ack per message, prefetch `--prefetch`, as the worker does). Prints JSON with the
//! publish-confirm rate and the end-to-end rate (last ack), which is the figure the bench
//! uses. The queue is deleted at the end.
//!
//! cargo run --release --example amqp_floor -- --count 50000 --queue bench1234.floor
//!
//! With `--purge q1,q2,...` it only empties those queues (missing ones are skipped) and
//! prints how many messages each held: the bench empties the service's queues between runs
//! with one process, where `rabbitmqctl purge_queue` costs most of a second per queue.

use std::time::Instant;

use anyhow::Context;
use clap::Parser;
use futures_util::stream::{FuturesUnordered, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions,
    QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::publisher_confirm::Confirmation;
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use serde_json::json;

#[derive(Parser)]
struct Args {
    #[arg(long, env = "RABBITMQ_URL", default_value = "amqp://guest:guest@127.0.0.1:5672/%2f")]
    url: String,
    #[arg(long, default_value = "bench.floor")]
    queue: String,
    #[arg(long, default_value_t = 50_000)]
    count: u64,
    /// Most unconfirmed publishes outstanding.
    #[arg(long, default_value_t = 1000)]
    window: usize,
    /// Consumer prefetch (the worker's WORKER_CONCURRENCY was 64 when the floor was first measured).
    #[arg(long, default_value_t = 64)]
    prefetch: u16,
    /// Declare a classic queue without x-max-priority.
    #[arg(long)]
    no_priority: bool,
    /// Only purge these queues (comma-separated) and exit.
    #[arg(long, value_delimiter = ',')]
    purge: Vec<String>,
}

async fn connect(url: &str, name: &str) -> anyhow::Result<Connection> {
    let props = ConnectionProperties::default()
        .with_connection_name(name.into())
        .with_executor(tokio_executor_trait::Tokio::current())
        .with_reactor(tokio_reactor_trait::Tokio);
    Connection::connect(url, props)
        .await
        .context("cannot connect to RabbitMQ")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.purge.is_empty() {
        return purge(&args.url, &args.purge).await;
    }
    let publisher = connect(&args.url, "bench-floor-publisher").await?;
    let consumer_conn = connect(&args.url, "bench-floor-consumer").await?;
    let pch = publisher.create_channel().await?;
    pch.confirm_select(ConfirmSelectOptions::default()).await?;
    let mut qargs = FieldTable::default();
    if !args.no_priority {
        qargs.insert("x-max-priority".into(), AMQPValue::LongInt(3));
    }
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    pch.queue_declare(&args.queue, durable, qargs.clone()).await?;
    pch.queue_purge(&args.queue, QueuePurgeOptions::default()).await?;

    let cch = consumer_conn.create_channel().await?;
    cch.basic_qos(args.prefetch, BasicQosOptions::default()).await?;
    let mut consumer = cch
        .basic_consume(
            &args.queue,
            "bench-floor",
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await?;

    let count = args.count;
    let started = Instant::now();
    let consuming = tokio::spawn(async move {
        let mut n = 0u64;
        while n < count {
            match consumer.next().await {
                Some(Ok(d)) => {
                    d.ack(BasicAckOptions::default()).await?;
                    n += 1;
                }
                Some(Err(e)) => return Err(anyhow::Error::from(e)),
                None => anyhow::bail!("consumer ended after {n} messages"),
            }
        }
        Ok::<_, anyhow::Error>(Instant::now())
    });

    let mut pending = FuturesUnordered::new();
    let (mut confirmed, mut nacked) = (0u64, 0u64);
    for i in 0..count {
        let body = format!(
            r#"{{"notificationId":"{}","correlationId":"{}","channel":"SMS","priority":"NORMAL"}}"#,
            uuid::Uuid::now_v7(),
            uuid::Uuid::new_v4()
        );
        let props = BasicProperties::default()
            .with_delivery_mode(2)
            .with_priority(1)
            .with_message_id(i.to_string().into())
            .with_content_type("application/json".into());
        let confirm = pch
            .basic_publish(
                "",
                &args.queue,
                BasicPublishOptions {
                    mandatory: true,
                    ..Default::default()
                },
                body.as_bytes(),
                props,
            )
            .await?;
        pending.push(confirm);
        while pending.len() >= args.window {
            match pending.next().await {
                Some(Ok(Confirmation::Nack(_))) => nacked += 1,
                Some(Ok(_)) => confirmed += 1,
                Some(Err(e)) => return Err(e.into()),
                None => break,
            }
        }
    }
    while let Some(c) = pending.next().await {
        match c {
            Ok(Confirmation::Nack(_)) => nacked += 1,
            Ok(_) => confirmed += 1,
            Err(e) => return Err(e.into()),
        }
    }
    let published = started.elapsed().as_secs_f64();
    let last_ack = consuming.await??;
    let total = (last_ack - started).as_secs_f64();

    let _ = pch.queue_delete(&args.queue, QueueDeleteOptions::default()).await;
    let _ = pch.close(200, "bye").await;
    let _ = cch.close(200, "bye").await;
    let _ = publisher.close(200, "bye").await;
    let _ = consumer_conn.close(200, "bye").await;

    println!(
        "{}",
        json!({
            "messages": count,
            "confirmed": confirmed,
            "nacked": nacked,
            "window": args.window,
            "prefetch": args.prefetch,
            "priority_queue": !args.no_priority,
            "publish_confirm_s": (published * 1000.0).round() / 1000.0,
            "publish_confirm_per_s": (count as f64 / published).round(),
            "duration_s": (total * 1000.0).round() / 1000.0,
            "msgs_per_s": (count as f64 / total).round(),
        })
    );
    Ok(())
}

async fn purge(url: &str, queues: &[String]) -> anyhow::Result<()> {
    let conn = connect(url, "bench-purge").await?;
    let mut purged = serde_json::Map::new();
    for q in queues {
        // A channel per queue: purging a missing queue closes the channel (404), not the run.
        let ch = conn.create_channel().await?;
        match ch.queue_purge(q, QueuePurgeOptions::default()).await {
            Ok(n) => {
                purged.insert(q.clone(), json!(n));
                let _ = ch.close(200, "bye").await;
            }
            Err(lapin::Error::ProtocolError(e)) if e.get_id() == 404 => {}
            Err(e) => return Err(e).with_context(|| format!("cannot purge {q}")),
        }
    }
    let _ = conn.close(200, "bye").await;
    println!("{}", json!({ "purged": purged }));
    Ok(())
}
