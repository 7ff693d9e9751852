//! Test harness: every test gets its own database, queue prefix and Redis key prefix, the
//! app on port 0, and a scripted provider (a real HTTP server on port 0). Waits poll a
//! condition under a deadline instead of sleeping.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use dispatchctl::app::App;
use dispatchctl::broker::Topology;
use dispatchctl::config::Settings;
use dispatchctl::domain::{Channel, Priority};
use lapin::options::BasicGetOptions;
use lapin::types::FieldTable;
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// For a test whose service only scripts/test.sh starts (`what` names it and its variables):
/// None and a note on a developer's machine; a failure under `CI=true`, where a skipped test
/// would hide a runner that lost the service.
pub fn without_service<T>(what: &str) -> Option<T> {
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("no {what} under CI=true: run the suite through scripts/test.sh, which starts it");
    }
    eprintln!("SKIPPED: no {what}; scripts/test.sh starts one");
    None
}

/// The Python that has the test servers' packages (TEST_PYTHON, set by scripts/test.sh).
pub fn test_python(what: &str) -> Option<String> {
    match std::env::var("TEST_PYTHON").ok().filter(|p| !p.is_empty()) {
        Some(p) => Some(p),
        None => without_service(&format!("{what}: TEST_PYTHON")),
    }
}

pub fn pg_base() -> String {
    std::env::var("TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

pub fn amqp_url() -> String {
    std::env::var("TEST_RABBITMQ_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn redis_url() -> String {
    std::env::var("TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into())
}

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

/// The real binary with only `env` (and PATH) for its environment, in a temporary directory.
pub fn command(env: &HashMap<String, String>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_dispatchctl"));
    c.args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env)
        .current_dir(std::env::temp_dir());
    c
}

pub async fn run(env: &HashMap<String, String>, args: &[&str]) -> Output {
    let mut c = command(env, args);
    tokio::task::spawn_blocking(move || c.output().expect("run dispatchctl"))
        .await
        .expect("join")
}

pub fn json_out(o: &Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    })
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A port nothing listens on: bound, then released (for a daemon to listen on, or for a
/// service that is down).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

pub fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("debug,sqlx=warn,lapin=info,hyper=info")
            .with_test_writer()
            .try_init();
    }
}

/// Isolated names and the settings that point at them.
#[derive(Clone)]
pub struct Env {
    /// Names this test's database, queue prefix and Redis prefix.
    pub id: String,
    pub values: HashMap<String, String>,
}

impl Env {
    pub fn new() -> Env {
        let id = Uuid::new_v4().simple().to_string()[..12].to_string();
        let mut values = HashMap::new();
        let mut set = |k: &str, v: String| {
            values.insert(k.to_string(), v);
        };
        // scripts/test.sh names its run so that it drops only its own databases.
        let run = std::env::var("DISPATCHCTL_TEST_RUN").map_or_else(|_| String::new(), |r| format!("{r}_"));
        set("DATABASE_DSN", format!("{}/dtest_{run}{id}", pg_base()));
        set("RABBITMQ_URL", amqp_url());
        set("REDIS_URL", redis_url());
        set("QUEUE_PREFIX", format!("t{id}."));
        set("REDIS_KEY_PREFIX", format!("t{id}:"));
        set("RATE_LIMIT_PER_SEC", "0".into());
        set("RETRY_BACKOFF_BASE", "50ms".into());
        set("RETRY_BACKOFF_MAX", "400ms".into());
        set("RETRY_SCAN_INTERVAL", "100ms".into());
        set("SCHEDULER_SCAN_INTERVAL", "100ms".into());
        set("UNPUBLISHED_GRACE", "500ms".into());
        set("PROVIDER_TIMEOUT", "2s".into());
        set("LEASE_TIMEOUT", "5s".into());
        set("SHUTDOWN_TIMEOUT", "5s".into());
        set("WORKER_CONCURRENCY", "8".into());
        // scripts/test.sh runs the broker-facing tests once more with quorum queues.
        set(
            "QUEUE_TYPE",
            std::env::var("TEST_QUEUE_TYPE").unwrap_or_else(|_| "classic".into()),
        );
        Env { id, values }
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Env {
        self.values.insert(key.to_string(), value.into());
        self
    }

    pub fn settings(&self) -> Settings {
        Settings::from_map(&self.values).expect("test settings are valid")
    }

    pub fn topology(&self) -> Topology {
        let s = self.settings();
        Topology::new(s.queue_prefix, s.queue_type, s.queue_delivery_limit)
    }

    /// The work queue of NORMAL notifications (the only one with classic queues).
    pub fn queue(&self, channel: Channel) -> String {
        self.topology().work_queue(channel, Priority::Normal)
    }

    pub fn dlq(&self, channel: Channel) -> String {
        self.topology().dead_letter_queue(channel)
    }
}

pub struct TestApp {
    pub addr: SocketAddr,
    pub app: App,
    pub env: Env,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    handle: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestApp {
    /// Starts `serve` in-process (API, and unless `api_only` the worker and scanners).
    pub async fn spawn(env: Env, api_only: bool) -> TestApp {
        init_logs();
        let app = App::start(env.settings(), true).await.expect("app starts");
        Self::spawn_with(app, env, api_only).await
    }

    pub async fn spawn_with(app: App, env: Env, api_only: bool) -> TestApp {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(dispatchctl::roles::serve(
            app.clone(),
            listener,
            api_only,
            shutdown.clone(),
        ));
        TestApp {
            addr,
            app,
            env,
            client: reqwest::Client::new(),
            shutdown,
            handle: Some(handle),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// POSTs `body`; then waits (10 s at most) until the background publisher has handled
    /// every work message handed to it, so that a test reads the queues as they are once a
    /// create's message is out. Tests of the moment before read the outbox instead.
    pub async fn post(&self, path: &str, body: &Value) -> (StatusCode, Value) {
        let r = self
            .client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request");
        let answer = decode(r).await;
        assert!(
            self.app.intake.publisher.drain(Duration::from_secs(10)).await,
            "the publisher did not finish within 10 s"
        );
        answer
    }

    pub async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("request");
        decode(r).await
    }

    pub async fn create(&self, channel: &str, recipient: &str, content: &str) -> Value {
        let (status, body) = self
            .post(
                "/v1/notifications",
                &json!({"channel": channel, "priority": "NORMAL", "recipient": recipient, "content": content}),
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
        body
    }

    /// The text of this app's /metrics.
    pub async fn metrics(&self) -> String {
        let r = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics");
        r.text().await.expect("the metrics' text")
    }

    pub async fn notification(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/notifications/{id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until the notification reaches `status`, failing with its last state.
    pub async fn wait_status(&self, id: &str, status: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let last = self.notification(id).await;
            if last["status"] == status {
                return last;
            }
            assert!(
                Instant::now() < deadline,
                "notification {id} did not reach {status} within {within:?}; last: {last}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the app, then fails the test if it left a message in one of its queues: work
    /// that no test waited for, or a dead letter no test looked at. A test that means to leave
    /// them says so with `stop_leaving_messages`.
    pub async fn stop(self) {
        let (app, env) = (self.app.clone(), self.env.clone());
        self.stop_leaving_messages().await;
        let left = messages_left(&app, &env).await;
        assert!(left.is_empty(), "the test left messages in its queues: {left:?}");
    }

    /// Takes what the test leaves in its queues on purpose, failing unless it is exactly
    /// `expected`: ("sms", work messages in its queues) or ("dlq.sms", dead letters).
    pub async fn take_left(&self, expected: &[(&str, u32)]) {
        let topology = self.env.topology();
        let mut expected: Vec<(String, u32)> = expected.iter().map(|(q, n)| (q.to_string(), *n)).collect();
        expected.sort();
        // A dead letter is published after its row's FAILED commits, and a quorum queue counts
        // a message a moment after it was confirmed: wait for the counts before comparing.
        let deadline = Instant::now() + Duration::from_secs(10);
        let (left, queues) = loop {
            let mut left = Vec::new();
            let mut queues = Vec::new();
            for channel in Channel::ALL {
                let mut work = 0;
                for q in topology.work_queues(*channel) {
                    work += self.app.broker.queue_depth(&q).await.unwrap_or(0);
                    queues.push(q);
                }
                let dlq = topology.dead_letter_queue(*channel);
                let letters = self.app.broker.queue_depth(&dlq).await.unwrap_or(0);
                queues.push(dlq);
                left.extend([
                    (channel.lower().to_string(), work),
                    (format!("dlq.{}", channel.lower()), letters),
                ]);
            }
            left.retain(|(_, n)| *n > 0);
            left.sort();
            if left == expected || Instant::now() >= deadline {
                break (left, queues);
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        };
        assert_eq!(left, expected, "what the test leaves in its queues");
        for q in queues {
            // Asking for a queue that was never declared closes the channel: ask first.
            if self.app.broker.queue_depth(&q).await.is_ok() {
                let ch = self.app.broker.channel().await.expect("broker");
                ch.queue_purge(&q, lapin::options::QueuePurgeOptions::default())
                    .await
                    .expect("purge");
            }
        }
    }

    pub async fn stop_leaving_messages(mut self) {
        self.shutdown.cancel();
        if let Some(h) = self.handle.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), h).await;
        }
    }
}

/// Messages waiting in this test's work queues and DLQs (queues never declared count none).
pub async fn messages_left(app: &App, env: &Env) -> Vec<(String, u32)> {
    let topology = env.topology();
    let mut left = Vec::new();
    for channel in Channel::ALL {
        let mut queues = topology.work_queues(*channel);
        queues.push(topology.dead_letter_queue(*channel));
        for q in queues {
            if let Ok(n @ 1..) = app.broker.queue_depth(&q).await {
                left.push((q, n));
            }
        }
    }
    left
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub async fn decode(r: reqwest::Response) -> (StatusCode, Value) {
    let status = StatusCode::from_u16(r.status().as_u16()).expect("status");
    let text = r.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// Polls `condition` every 25 ms until it holds or `within` passes.
pub async fn wait_for<F, Fut>(within: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if condition().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// One request the scripted provider received.
#[derive(Clone, Debug)]
pub struct Received {
    pub notification_id: String,
    pub attempt: u32,
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub at: Instant,
    /// The status the provider answered with.
    pub status: u16,
}

/// A real HTTP server whose answer depends on the recipient:
/// `reject…` 400; `flakyN…` 500 for the first N attempts; `limited…` 429 with
/// `Retry-After: 1` on the first attempt; `down…` always 503; `hang…` answers after 30 s;
/// `slow…` after 200 ms; anything else 200 with `{"id": "prov-<notification id>"}`.
pub struct ScriptedProvider {
    pub url: String,
    received: Mutex<Vec<Received>>,
    healthy: std::sync::atomic::AtomicBool,
    /// Requests being answered now, and the most there ever were at once.
    in_progress: Mutex<(usize, usize)>,
}

impl ScriptedProvider {
    pub async fn start() -> Arc<ScriptedProvider> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind provider");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let provider = Arc::new(ScriptedProvider {
            url,
            received: Mutex::new(Vec::new()),
            healthy: Default::default(),
            in_progress: Mutex::new((0, 0)),
        });
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(answer))
            .with_state(provider.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        provider
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// From now on every request succeeds at once, whatever the recipient.
    pub fn set_healthy(&self) {
        self.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Successful deliveries per notification id.
    pub fn successes(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.received().into_iter().filter(|r| r.status == 200) {
            *out.entry(r.notification_id).or_default() += 1;
        }
        out
    }

    /// Requests being answered now, and the most there were at once so far.
    pub fn in_progress(&self) -> (usize, usize) {
        *self.in_progress.lock().expect("lock")
    }

    pub fn for_notification(&self, id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.notification_id == id)
            .collect()
    }
}

async fn answer(State(p): State<Arc<ScriptedProvider>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let to = body["to"].as_str().unwrap_or_default().to_string();
    let id = headers
        .get("x-notification-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let attempt: u32 = headers
        .get("x-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let healthy = p.healthy.load(std::sync::atomic::Ordering::SeqCst);
    let failures: u32 = to.strip_prefix("flaky").map_or(0, |rest| {
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(1)
    });
    let status = match () {
        _ if healthy => StatusCode::OK,
        _ if to.starts_with("reject") => StatusCode::BAD_REQUEST,
        _ if attempt <= failures => StatusCode::INTERNAL_SERVER_ERROR,
        _ if to.starts_with("limited") && attempt <= 1 => StatusCode::TOO_MANY_REQUESTS,
        _ if to.starts_with("down") => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let at = Instant::now();
    {
        let mut n = p.in_progress.lock().expect("lock");
        n.0 += 1;
        n.1 = n.1.max(n.0);
    }
    if !healthy && to.starts_with("hang") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if !healthy && to.starts_with("slow") {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.in_progress.lock().expect("lock").0 -= 1;
    // Recorded when answered, so `successes` never counts a request still in progress.
    let record = Received {
        notification_id: id.clone(),
        attempt,
        headers,
        raw,
        at,
        status: status.as_u16(),
    };
    p.received.lock().expect("lock").push(record);
    match status {
        StatusCode::OK => (status, axum::Json(json!({"id": format!("prov-{id}")}))).into_response(),
        StatusCode::TOO_MANY_REQUESTS => (status, [("retry-after", "1")], "slow down").into_response(),
        // A refusal says why, as providers do; the attempt keeps it for the operator.
        StatusCode::BAD_REQUEST => (status, axum::Json(json!({"error": "invalid recipient"}))).into_response(),
        _ => (status, "scripted failure").into_response(),
    }
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

/// A child process that is killed if the test fails before it is waited for, so a failed
/// test never leaves a daemon running.
pub struct KillOnDrop(pub Option<std::process::Child>);

impl KillOnDrop {
    pub fn take(&mut self) -> std::process::Child {
        self.0.take().expect("child taken once")
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A valid SMS notification with a recipient of its own, ready for the store (no API).
pub fn new_notification(i: usize) -> dispatchctl::domain::NewNotification {
    dispatchctl::domain::NotificationRequest {
        channel: Some("sms".into()),
        priority: Some("normal".into()),
        recipient: Some(format!("+9055500{i:05}")),
        content: Some("hello".into()),
        ..Default::default()
    }
    .validate(None, 5)
    .expect("valid")
}
