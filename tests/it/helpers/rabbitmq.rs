//! The test broker from the outside: `rabbitmqctl` on the test vhost, and connections of our
//! own that take, hold, purge and delete a queue's messages as an operator or a fault would.

use std::time::{Duration, Instant};

use dispatchctl::app::App;
use dispatchctl::domain::Channel;
use lapin::options::BasicGetOptions;
use lapin::types::FieldTable;

use super::{amqp_url, wait_for, Env};

/// `rabbitmqctl` for the test broker: TEST_RABBITMQCTL is the command line that runs it
/// (e.g. `docker exec CONTAINER rabbitmqctl` where the broker is a container), default the
/// local `rabbitmqctl`.
pub fn rabbitmqctl() -> std::process::Command {
    let line = std::env::var("TEST_RABBITMQCTL").unwrap_or_else(|_| "rabbitmqctl".into());
    let mut words = line.split_whitespace();
    let mut c = std::process::Command::new(words.next().unwrap_or("rabbitmqctl"));
    c.args(words);
    c
}

/// The vhost of the test broker URL, for rabbitmqctl.
pub fn vhost() -> String {
    let url = url::Url::parse(&amqp_url()).expect("TEST_RABBITMQ_URL");
    match url.path().trim_start_matches('/') {
        "" | "%2f" | "%2F" => "/".into(),
        v => v.to_string(),
    }
}

/// `rabbitmqctl list_<what>` of the test vhost: the `columns` of each row, as text.
pub fn rabbitmqctl_list(what: &str, columns: &[&str]) -> Vec<Vec<String>> {
    rabbitmqctl_try_list(what, columns).unwrap_or_else(|e| panic!("{e}"))
}

/// `rabbitmqctl_list`, with rabbitmqctl's complaint (a column this version lacks) as the error.
pub fn rabbitmqctl_try_list(what: &str, columns: &[&str]) -> Result<Vec<Vec<String>>, String> {
    let vhost = vhost();
    let out = rabbitmqctl()
        .arg(format!("list_{what}"))
        .args(["-p", &vhost])
        .args(columns)
        .args(["-q", "--no-table-headers"])
        .output()
        .expect("rabbitmqctl");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect())
}

/// Messages in the work queues named `prefix…`, ready or delivered and not yet acked, as
/// the broker counts them.
pub fn unfinished_work(env: &Env) -> u64 {
    let work: Vec<String> = Channel::ALL
        .iter()
        .flat_map(|c| env.topology().work_queues(*c))
        .collect();
    rabbitmqctl_list("queues", &["name", "messages"])
        .into_iter()
        .filter_map(|row| {
            let n = row.get(1)?.parse::<u64>().ok()?;
            work.contains(row.first()?).then_some(n)
        })
        .sum()
}

/// Waits until every work message of the test was acked: nothing is left to deliver, so
/// counting deliveries from then on counts them all.
pub async fn wait_until_settled(env: &Env, within: Duration) -> bool {
    wait_for(within, || async {
        let env = env.clone();
        tokio::task::spawn_blocking(move || unfinished_work(&env))
            .await
            .expect("join")
            == 0
    })
    .await
}

/// Takes every message out of a queue (for assertions on dead letters and work queues).
pub async fn drain_queue(queue: &str) -> Vec<(Option<FieldTable>, Vec<u8>)> {
    let conn = amqp_connect().await;
    let ch = conn.create_channel().await.expect("channel");
    let mut out = Vec::new();
    while let Some(m) = ch
        .basic_get(queue, BasicGetOptions { no_ack: true })
        .await
        .expect("basic_get")
    {
        out.push((m.delivery.properties.headers().clone(), m.delivery.data.clone()));
    }
    let _ = conn.close(200, "bye").await;
    out
}

async fn amqp_connect() -> lapin::Connection {
    lapin::Connection::connect(
        &amqp_url(),
        lapin::ConnectionProperties::default()
            .with_executor(tokio_executor_trait::Tokio::current())
            .with_reactor(tokio_reactor_trait::Tokio),
    )
    .await
    .expect("amqp connect")
}

/// What an operator's `rabbitmqctl purge_queue` does: deletes every ready message of `queue`.
/// Returns how many there were.
pub async fn purge_queue(queue: &str) -> u32 {
    let conn = amqp_connect().await;
    let ch = conn.create_channel().await.expect("channel");
    let purged = ch
        .queue_purge(queue, lapin::options::QueuePurgeOptions::default())
        .await
        .expect("queue.purge");
    let _ = conn.close(200, "bye").await;
    purged
}

/// What `rabbitmqctl delete_queue` does: the queue goes with its messages.
pub async fn delete_queue(queue: &str) -> u32 {
    let conn = amqp_connect().await;
    let ch = conn.create_channel().await.expect("channel");
    let deleted = ch
        .queue_delete(queue, lapin::options::QueueDeleteOptions::default())
        .await
        .expect("queue.delete");
    let _ = conn.close(200, "bye").await;
    deleted
}

/// Takes (and acks) `count` messages of `queue`: lost, as a policy that drops them loses them.
pub async fn take_messages(queue: &str, count: usize) -> usize {
    let conn = amqp_connect().await;
    let ch = conn.create_channel().await.expect("channel");
    let mut taken = 0;
    while taken < count {
        match ch
            .basic_get(queue, BasicGetOptions { no_ack: true })
            .await
            .expect("basic_get")
        {
            Some(_) => taken += 1,
            None => break,
        }
    }
    let _ = conn.close(200, "bye").await;
    taken
}

/// A consumer that takes `count` messages of `queue` and never acks them, as a worker that
/// hangs before its claim would: they are out of the queue's ready count until the returned
/// connection closes, when the broker puts them back.
pub async fn hold_unacked(queue: &str, count: usize) -> Holder {
    use futures_util::StreamExt;
    let conn = amqp_connect().await;
    let ch = conn.create_channel().await.expect("channel");
    ch.basic_qos(
        count.min(u16::MAX as usize) as u16,
        lapin::options::BasicQosOptions::default(),
    )
    .await
    .expect("qos");
    let mut consumer = ch
        .basic_consume(
            queue,
            "holder",
            lapin::options::BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("basic.consume");
    for _ in 0..count {
        let delivery = tokio::time::timeout(Duration::from_secs(20), consumer.next())
            .await
            .expect("a message within 20 s");
        assert!(matches!(delivery, Some(Ok(_))), "a delivery");
    }
    Holder {
        conn,
        _channel: ch,
        _consumer: consumer,
    }
}

/// Messages taken and not acked. The channel is kept with the connection: dropping it would
/// close it, and the broker would put the messages back.
pub struct Holder {
    pub conn: lapin::Connection,
    _channel: lapin::Channel,
    _consumer: lapin::Consumer,
}

/// Drains `queue` until at least `count` messages were taken or `within` passed.
pub async fn drain_at_least(queue: &str, count: usize, within: Duration) -> Vec<(Option<FieldTable>, Vec<u8>)> {
    let deadline = Instant::now() + within;
    let mut taken = Vec::new();
    loop {
        taken.extend(drain_queue(queue).await);
        if taken.len() >= count || Instant::now() >= deadline {
            return taken;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

pub fn header(headers: &Option<FieldTable>, key: &str) -> Option<String> {
    dispatchctl::broker::messages::header_text(headers.as_ref(), key)
}

pub async fn queue_len(app: &App, queue: &str) -> u32 {
    app.broker.queue_depth(queue).await.expect("queue depth")
}
