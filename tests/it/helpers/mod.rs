//! Test harness: every test gets its own database, queue prefix and Redis key prefix, the
//! app on port 0, and a scripted provider (a real HTTP server on port 0). Waits poll a
//! condition under a deadline instead of sleeping.
//! The binary runner is in `cli`, the scripted provider in `provider` and what a test does to
//! the broker from the outside in `rabbitmq`; each is re-exported here.

mod cli;
mod provider;
mod rabbitmq;

pub use cli::{command, json_out, run, stderr, KillOnDrop, SEND_SMS};
pub use provider::ScriptedProvider;
pub use rabbitmq::{
    delete_queue, drain_at_least, drain_queue, header, hold_unacked, purge_queue, queue_len, rabbitmqctl,
    rabbitmqctl_list, rabbitmqctl_try_list, take_messages, wait_until_settled,
};

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use dispatchctl::app::App;
use dispatchctl::broker::Topology;
use dispatchctl::config::Settings;
use dispatchctl::domain::{Channel, Priority};
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
    /// The one number `sql` answers (a `count(*)`), from this test's database.
    pub async fn count(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.app.store.pool())
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

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
