//! The health, readiness and metrics endpoints, and who may call what: API tokens, their
//! scopes, and the metrics token.

use std::time::Duration;

use dispatchctl::app::App;
use dispatchctl::store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{answer_of, sms, stored_rows};
use crate::helpers::{closed_port, Env, TestApp};

#[tokio::test]
async fn health_endpoints_and_metrics() {
    let t = TestApp::spawn(Env::new(), true).await;
    let (status, live) = t.get("/livez").await;
    assert_eq!((status, live), (StatusCode::OK, json!({"status": "ok"})));
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::OK, "{ready}");
    let node = url::Url::parse(&crate::helpers::amqp_url()).unwrap();
    let node = format!("{}:{}", node.host_str().unwrap(), node.port().unwrap_or(5672));
    assert_eq!(
        ready,
        json!({"status": "ready", "checks": {"postgres": "ok", "redis": "ok", "rabbitmq": "ok"}, "rabbitmq": {"publisher": node}})
    );
    let id = t.create("push", "device-1", "hi").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.notification(&id).await;
    let metrics = t.metrics().await;
    for name in [
        "dispatch_engine_http_requests_total",
        "dispatch_engine_http_request_duration_seconds_bucket",
        "dispatch_engine_notifications_sent_total",
        "dispatch_engine_notifications_failed_total",
        "dispatch_engine_worker_inflight",
        "dispatch_engine_retry_scheduled_total",
    ] {
        assert!(metrics.contains(name), "{name} missing from /metrics");
    }
    assert!(
        metrics.contains(r#"route="/v1/notifications/{id}""#),
        "route template label"
    );
    assert!(!metrics.contains(&id), "raw ids never become labels");
    assert!(
        metrics.lines().any(
            |l| l.starts_with(r#"dispatch_engine_db_write_batch_size_count{kind="insert"}"#) && !l.ends_with(" 0")
        ),
        "the create's INSERT counted as a group-commit batch"
    );
    t.take_left(&[("push", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn readyz_is_503_when_redis_is_unreachable() {
    let env = Env::new().set("REDIS_URL", format!("redis://127.0.0.1:{}/0", closed_port()));
    let t = TestApp::spawn(env, true).await;
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(ready["status"], "not_ready");
    assert_eq!(ready["checks"]["redis"], "down");
    assert_eq!(ready["checks"]["postgres"], "ok");
    t.stop().await;
}

#[tokio::test]
async fn readyz_is_503_when_postgres_is_unreachable() {
    let env = Env::new().set(
        "DATABASE_DSN",
        format!("postgres://postgres@127.0.0.1:{}/x", closed_port()),
    );
    let settings = env.settings();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .acquire_timeout(Duration::from_secs(1))
        .connect_lazy_with(settings.database.first().clone());
    let app = App::from_store(settings, Store::from_pool(pool));
    let t = TestApp::spawn_with(app, env, true).await;
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["checks"]["postgres"], "down");
    // A create cannot be made durable: a 503 the client may retry, never a 202.
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .json(&sms("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("nothing was stored"), "{body}");
    t.stop().await;
}

#[tokio::test]
async fn api_tokens_guard_v1_but_not_health() {
    let env = Env::new().set("API_TOKENS", "alpha-token, beta-token");
    let t = TestApp::spawn(env, true).await;
    let r = t.client.get(t.url("/v1/notifications")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = t
        .client
        .get(t.url("/v1/notifications"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = t
        .client
        .get(t.url("/v1/notifications"))
        .bearer_auth("beta-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    for open in ["/livez", "/readyz", "/metrics"] {
        let r = t.client.get(t.url(open)).send().await.unwrap();
        assert_ne!(r.status(), StatusCode::UNAUTHORIZED, "{open}");
    }
    t.stop().await;
}

#[tokio::test]
async fn token_scopes_read_may_get_send_may_create_and_a_bare_token_may_do_both() {
    let env = Env::new().set("API_TOKENS", "read:dash-0, send:ci-0, all-0");
    let t = TestApp::spawn(env, true).await;
    let (c, list, create) = (&t.client, t.url("/v1/notifications"), t.url("/v1/notifications"));
    let one = sms("+905550000001", "scoped");
    for token in ["dash-0", "ci-0", "all-0"] {
        let (status, body) = answer_of(c.get(&list).bearer_auth(token)).await;
        assert_eq!(status, StatusCode::OK, "{token} may read: {body}");
    }
    let (status, body) = answer_of(c.post(&create).bearer_auth("dash-0").json(&one)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["code"], "forbidden");
    assert!(body["error"].as_str().unwrap().contains("read"), "{body}");
    assert_eq!(stored_rows(&t).await, 0, "a refused create stores nothing");
    for token in ["ci-0", "all-0"] {
        let (status, body) = answer_of(c.post(&create).bearer_auth(token).json(&one)).await;
        assert_eq!(status.as_u16(), 202, "{token} may create: {body}");
    }
    let (status, body) = answer_of(c.get(&list).bearer_auth("read:dash-0")).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized")),
        "the prefix is not part of the token"
    );
    t.stop_leaving_messages().await;
}

#[tokio::test]
async fn metrics_token_guards_metrics_which_show_the_process_and_the_pool() {
    let env = Env::new()
        .set("METRICS_TOKEN", "scrape-0")
        .set("DATABASE_MAX_CONNECTIONS", "7");
    let t = TestApp::spawn(env, true).await;
    let (status, body) = answer_of(t.client.get(t.url("/metrics"))).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let r = t.client.get(t.url("/livez")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK, "/livez stays open");
    let r = t
        .client
        .get(t.url("/metrics"))
        .bearer_auth("scrape-0")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = r.text().await.unwrap();
    let value = |name: &str| {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{name} is not exported"))
    };
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_cpu_seconds_total") >= 0.0);
    assert_eq!(value("dispatch_engine_db_pool_connections{state=\"max\"}"), 7.0);
    let in_use = value("dispatch_engine_db_pool_connections{state=\"in_use\"}");
    let idle = value("dispatch_engine_db_pool_connections{state=\"idle\"}");
    assert!(in_use + idle >= 1.0 && in_use + idle <= 7.0, "{in_use} + {idle}");
    assert_eq!(value("dispatch_engine_amqp_channels{role=\"publisher\"}"), 1.0);
    assert!(
        !text.contains("amqp_channels{role=\"consumer\"}"),
        "an API process runs no consumer"
    );
    t.stop().await;
}
