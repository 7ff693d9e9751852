//! Doors: slow clients, CORS, secrets in logs, and the rate limiter without Redis.

use std::process::{Command, Stdio};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{closed_port, command, Env, ScriptedProvider, TestApp};

#[tokio::test]
async fn a_slow_loris_client_is_disconnected() {
    let t = TestApp::spawn(Env::new().set("HEADER_READ_TIMEOUT", "300ms"), true).await;
    let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut buf)).await;
    assert!(
        closed.is_ok(),
        "the server still holds a connection whose headers never finished"
    );
    // A well-behaved client on a fresh connection is unaffected.
    assert_eq!(t.get("/livez").await.0, StatusCode::OK);
    t.stop().await;
}

#[tokio::test]
async fn cors_is_off_by_default_and_precise_when_configured() {
    let origin = "https://console.example.com";
    let preflight = |t: &TestApp, from: &'static str| {
        t.client
            .request(reqwest::Method::OPTIONS, t.url("/v1/notifications"))
            .header("origin", from)
            .header("access-control-request-method", "POST")
            .send()
    };
    let closed = TestApp::spawn(Env::new(), true).await;
    let r = preflight(&closed, origin).await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    closed.stop().await;

    let open = TestApp::spawn(Env::new().set("CORS_ALLOWED_ORIGINS", origin), true).await;
    let r = preflight(&open, origin).await.unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], origin);
    let r = preflight(&open, "https://evil.example.net").await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
    open.stop().await;
}

#[tokio::test]
async fn without_redis_the_worker_keeps_delivering_under_a_local_limit() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("REDIS_URL", format!("redis://127.0.0.1:{}/0", closed_port()))
        .set("RATE_LIMIT_PER_SEC", "50");
    let t = TestApp::spawn(env, false).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(
            t.create("sms", "x", &format!("n{i}")).await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        t.wait_status(id, "SENT", Duration::from_secs(20)).await;
    }
    let metrics = t.app.metrics.render();
    let line = metrics
        .lines()
        .find(|l| l.starts_with("dispatch_engine_rate_limit_local_fallback_total{channel=\"sms\"}"))
        .unwrap();
    assert!(line.ends_with(" 3"), "{line}");
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["checks"]["redis"], "down");
    t.stop().await;
}

#[tokio::test]
async fn secrets_never_reach_the_logs() {
    const SECRETS: &[&str] = &[
        "pg-secret-pw",
        "broker-secret-pw",
        "redis-secret-pw",
        "tok-secret-123",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2La",
    ];
    const PRIVATE: &[&str] = &["+905559999999", "super-private-content"];
    let provider = ScriptedProvider::start().await;
    let env = Env::new();
    let db = env.values["DATABASE_DSN"].replace("postgres://postgres@", "postgres://postgres:pg-secret-pw@");
    let port = closed_port();
    let child = command(
        &env.values,
        &["serve", "--host", "127.0.0.1", "--port", &port.to_string()],
    )
    .env("DATABASE_DSN", db)
    .env(
        "RABBITMQ_URL",
        format!("amqp://guest:broker-secret-pw@127.0.0.1:{}/%2f", closed_port()),
    )
    .env("REDIS_URL", "redis://:redis-secret-pw@127.0.0.1:6379/0")
    .env("WEBHOOK_SITE_URL", &provider.url)
    .env("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    .env("API_TOKENS", "tok-secret-123")
    .env("LOG_LEVEL", "info")
    .env("LOG_FORMAT", "json")
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    let client = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let up = crate::helpers::wait_for(Duration::from_secs(20), || async {
        client.get(format!("{base}/livez")).send().await.is_ok()
    })
    .await;
    assert!(up, "serve did not start");
    let body =
        json!({"channel": "sms", "priority": "high", "recipient": "+905559999999", "content": "super-private-content"});
    let r = client
        .post(format!("{base}/v1/notifications"))
        .bearer_auth("tok-secret-123")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
    let r = client
        .post(format!("{base}/v1/notifications"))
        .bearer_auth("wrong")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    client.get(format!("{base}/readyz")).send().await.unwrap();
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let output = tokio::task::spawn_blocking(move || child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "serve exits 0 on SIGTERM: {:?}", output.status);
    let logs = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(logs.contains("API listening"), "captured the run's logs: {logs}");
    for s in SECRETS.iter().chain(PRIVATE) {
        assert!(!logs.contains(s), "{s} leaked into the logs:\n{logs}");
    }

    let help = Command::new(env!("CARGO_BIN_EXE_dispatchctl"))
        .args(["send", "--help"])
        .env("DISPATCH_API_TOKEN", "tok-secret-123")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("tok-secret-123"));
}
