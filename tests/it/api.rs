//! The v1 contract, validation rules, idempotency and health endpoints.

use std::time::Duration;

use dispatchctl::app::App;
use dispatchctl::store::Store;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{closed_port, wait_for, Env, TestApp};

fn sms(recipient: &str, content: &str) -> Value {
    json!({"channel": "sms", "priority": "high", "recipient": recipient, "content": content})
}

#[tokio::test]
async fn create_get_list_cancel_flow() {
    let t = TestApp::spawn(Env::new(), true).await;
    let (status, created) = t.post("/v1/notifications", &sms(" +905551112233 ", " hello ")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{created}");
    assert_eq!(created["status"], "QUEUED", "published and marked queued: {created}");
    assert_eq!(created["channel"], "SMS");
    assert_eq!(created["priority"], "HIGH");
    assert_eq!(created["recipient"], "+905551112233");
    assert_eq!(created["content"], "hello");
    assert_eq!(created["maxRetries"], 5);
    assert_eq!(created["attemptCount"], 0);
    for field in ["id", "correlationId", "createdAt", "updatedAt"] {
        assert!(created[field].is_string(), "{field} missing: {created}");
    }
    let id = created["id"].as_str().unwrap();

    let fetched = t.notification(id).await;
    assert_eq!(fetched["id"], created["id"]);

    let (status, list) = t
        .get("/v1/notifications?channel=sms&status=queued&page=1&pageSize=10")
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["meta"], json!({"page": 1, "pageSize": 10, "total": 1}));
    assert_eq!(list["data"][0]["id"], created["id"]);

    let (status, canceled) = t.post(&format!("/v1/notifications/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(canceled, json!({"notificationId": id, "status": "CANCELED"}));
    let (status, again) = t.post(&format!("/v1/notifications/{id}/cancel"), &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    assert!(again["error"].as_str().unwrap().contains("CANCELED"));
    let (status, _) = t
        .post(
            &format!("/v1/notifications/{}/cancel", uuid::Uuid::new_v4()),
            &json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn list_is_newest_first_paginated_and_filtered() {
    let t = TestApp::spawn(Env::new(), true).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let channel = if i % 2 == 0 { "SMS" } else { "EMAIL" };
        ids.push(t.create(channel, "someone@example.com", &format!("n{i}")).await["id"].clone());
    }
    let (_, page1) = t.get("/v1/notifications?pageSize=2").await;
    assert_eq!(page1["meta"]["total"], 5);
    assert_eq!(page1["data"].as_array().unwrap().len(), 2);
    assert_eq!(page1["data"][0]["id"], ids[4], "newest first");
    let (_, page3) = t.get("/v1/notifications?pageSize=2&page=3").await;
    assert_eq!(page3["data"][0]["id"], ids[0]);
    let (_, emails) = t.get("/v1/notifications?channel=Email").await;
    assert_eq!(emails["meta"]["total"], 2);
    let now = chrono::Utc::now();
    let from = (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let to = (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (status, window) = t.get(&format!("/v1/notifications?from={from}&to={to}")).await;
    assert_eq!(status, StatusCode::OK, "{window}");
    assert_eq!(window["meta"]["total"], 5);
    let (_, beyond) = t.get("/v1/notifications?page=9").await;
    assert_eq!(beyond["meta"]["total"], 5, "total is known even past the last page");
    assert_eq!(beyond["data"], json!([]));
    t.take_left(&[("sms", 3), ("email", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn validation_rules_of_the_contract() {
    let t = TestApp::spawn(Env::new(), true).await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"priority": "NORMAL", "recipient": "x", "content": "y"}),
            "channel",
        ),
        (
            json!({"channel": "fax", "priority": "NORMAL", "recipient": "x", "content": "y"}),
            "SMS, EMAIL, PUSH",
        ),
        (
            json!({"channel": "SMS", "priority": "urgent", "recipient": "x", "content": "y"}),
            "HIGH, NORMAL, LOW",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "   ", "content": "y"}),
            "recipient",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "  "}),
            "content",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "a".repeat(161)}),
            "at most 160",
        ),
        (
            json!({"channel": "PUSH", "priority": "LOW", "recipient": "x", "content": "a".repeat(241)}),
            "at most 240",
        ),
        (
            json!({"channel": "EMAIL", "priority": "LOW", "recipient": "x", "content": "a".repeat(10_001)}),
            "at most 10000",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y", "scheduledAt": "soon"}),
            "scheduledAt",
        ),
        (
            json!({"channel": 5, "priority": "LOW", "recipient": "x", "content": "y"}),
            "channel",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y", "maxRetries": "three"}),
            "maxRetries",
        ),
        (json!([1, 2]), "invalid JSON body"),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "a\u{0}b", "content": "y"}),
            "recipient",
        ),
        (
            json!({"channel": "SMS", "priority": "LOW", "recipient": "x", "content": "y\u{0}"}),
            "NUL",
        ),
    ];
    for (body, expected) in cases {
        let (status, answer) = t.post("/v1/notifications", &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} -> {answer}");
        let message = answer["error"].as_str().unwrap_or_default();
        assert!(
            message.contains(expected),
            "{body}: error {message:?} should mention {expected:?}"
        );
    }
    // Characters, not bytes: 160 two-byte characters are a valid SMS.
    t.create("SMS", "x", &"ş".repeat(160)).await;
    t.create("sms", "x", &"ş".repeat(160)).await;
    // maxRetries <= 0 means the default.
    let (_, n) = t
        .post(
            "/v1/notifications",
            &json!({"channel": "Sms", "priority": "Low", "recipient": "x", "content": "y", "maxRetries": 0}),
        )
        .await;
    assert_eq!(n["maxRetries"], 5);

    let raw = |body: &'static str, ct: &'static str| {
        t.client
            .post(t.url("/v1/notifications"))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = raw("{not json", "application/json").await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = raw("{}", "text/plain").await.unwrap();
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(r.text().await.unwrap().contains("application/json"));
    let big = format!("{{\"content\": \"{}\"}}", "a".repeat(70_000));
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());

    let (status, _) = t.get(&format!("/v1/notifications/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    for (query, expected) in [
        ("page=0", "page"),
        ("pageSize=101", "pageSize"),
        ("pageSize=abc", "pageSize"),
        ("status=LOST", "status"),
        ("channel=fax", "channel"),
        ("from=yesterday", "from"),
        (
            "from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from must not be later than to",
        ),
    ] {
        let (status, body) = t.get(&format!("/v1/notifications?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(body["error"].as_str().unwrap().contains(expected), "{query}: {body}");
    }
    let (status, body) = t.get("/v1/nothing-here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body["error"].is_string());
    let r = t.client.delete(t.url("/v1/notifications")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    t.take_left(&[("sms", 3)]).await;
    t.stop().await;
}

#[tokio::test]
async fn correlation_id_falls_back_to_the_request_id() {
    let t = TestApp::spawn(Env::new(), true).await;
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .header("x-request-id", "req-42")
        .json(&sms("x", "y"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-42", "request id echoed");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["correlationId"], "req-42");
    let mut with_own = sms("x", "y");
    with_own["correlationId"] = json!("mine");
    let (_, body) = t.post("/v1/notifications", &with_own).await;
    assert_eq!(body["correlationId"], "mine");
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn twenty_concurrent_identical_creates_make_one_row() {
    let t = TestApp::spawn(Env::new(), true).await;
    let mut body = sms("x", "once");
    body["idempotencyKey"] = json!("order-77");
    let requests = (0..20).map(|_| t.post("/v1/notifications", &body));
    let answers = futures_util::future::join_all(requests).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .map(|(status, b)| {
            assert_eq!(*status, StatusCode::ACCEPTED, "{b}");
            b["id"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(ids.len(), 1, "all answers name the same notification");
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE idempotency_key = 'order-77'")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
    // Published once: take_left waits for the background publisher, then counts exactly one.
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

/// Invariant 1: the 202 waits for PostgreSQL only. With the broker unreachable a create is
/// answered as when it is up, QUEUED, and its outbox entry stays for the scanner (which
/// `scanner::a_create_made_while_the_broker_was_down_is_delivered_after_it_returns` follows).
#[tokio::test]
async fn broker_down_still_answers_202_queued_and_the_outbox_keeps_the_message_owed() {
    let env = Env::new().set(
        "RABBITMQ_URL",
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port()),
    );
    let t = TestApp::spawn(env, true).await;
    let (status, body) = t.post("/v1/notifications", &sms("x", "durable")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "QUEUED");
    let stored = t
        .app
        .store
        .get(body["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.status.as_str(), "QUEUED", "what the 202 said is what is stored");
    let (status, batch) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [sms("a", "1"), sms("b", "2")]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert!(
        batch["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["status"] == "QUEUED"),
        "{batch}"
    );
    assert!(batch.get("warning").is_none(), "{batch}");
    assert!(
        t.app.intake.publisher.drain(Duration::from_secs(10)).await,
        "the publisher gives up on an unreachable broker"
    );
    let owed: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE published_at IS NULL")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(owed, 3, "every message the broker did not confirm is still owed");
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(ready["checks"]["rabbitmq"], "down");
    assert_eq!(
        status,
        StatusCode::OK,
        "an API-only process stays ready: it still accepts durably"
    );
    t.stop().await;
}

#[tokio::test]
async fn batch_create_and_summary() {
    let t = TestApp::spawn(Env::new(), true).await;
    let items: Vec<Value> = (0..3).map(|i| sms("x", &format!("item {i}"))).collect();
    let (status, batch) = t
        .post("/v1/notifications/batch", &json!({"notifications": items}))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    assert_eq!(batch["totalCount"], 3);
    assert_eq!(batch["status"], "PROCESSING");
    assert!(batch.get("warning").is_none());
    let notifications = batch["notifications"].as_array().unwrap();
    assert!(notifications
        .iter()
        .all(|n| n["batchId"] == batch["batchId"] && n["status"] == "QUEUED"));
    let batch_id = batch["batchId"].as_str().unwrap();
    let (_, summary) = t.get(&format!("/v1/batches/{batch_id}")).await;
    assert_eq!(
        summary,
        json!({"batchId": batch_id, "totalCount": 3, "status": "PROCESSING", "counts": [{"status": "QUEUED", "count": 3}]})
    );

    let pool = t.app.store.pool();
    sqlx::query("UPDATE notifications SET status = 'SENT' WHERE batch_id = $1")
        .bind(uuid::Uuid::parse_str(batch_id).unwrap())
        .execute(pool)
        .await
        .unwrap();
    let (_, summary) = t.get(&format!("/v1/batches/{batch_id}")).await;
    assert_eq!(summary["status"], "COMPLETED");
    sqlx::query("UPDATE notifications SET status = 'FAILED', failure_reason = 'permanent_error' WHERE id = $1")
        .bind(uuid::Uuid::parse_str(notifications[0]["id"].as_str().unwrap()).unwrap())
        .execute(pool)
        .await
        .unwrap();
    let (_, summary) = t.get(&format!("/v1/batches/{batch_id}")).await;
    assert_eq!(summary["status"], "PARTIAL_FAILURE");
    assert_eq!(
        summary["counts"],
        json!([{"status": "SENT", "count": 2}, {"status": "FAILED", "count": 1}])
    );
    let (status, _) = t.get(&format!("/v1/batches/{}", uuid::Uuid::new_v4())).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // All-or-nothing: one bad item rejects the batch and is named by index.
    let (status, err) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [sms("a", "ok"), sms("b", "")]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        err["error"].as_str().unwrap().contains("notifications[1].content"),
        "{err}"
    );
    let (status, err) = t.post("/v1/notifications/batch", &json!({"notifications": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{err}");
    let many: Vec<Value> = (0..1001).map(|_| sms("x", "y")).collect();
    let (status, err) = t.post("/v1/notifications/batch", &json!({"notifications": many})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(err["error"].as_str().unwrap().contains("1001"), "{err}");
    let (status, _) = t.post("/v1/notifications/batch", &json!({})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let total: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(pool)
        .await
        .unwrap();
    assert_eq!(total, 3, "rejected batches stored nothing");
    t.take_left(&[("sms", 3)]).await;
    t.stop().await;
}

#[tokio::test]
async fn scheduled_in_the_future_stays_accepted() {
    let t = TestApp::spawn(Env::new(), true).await;
    let mut body = sms("x", "later");
    body["scheduledAt"] = json!((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    let (_, n) = t.post("/v1/notifications", &body).await;
    assert_eq!(n["status"], "ACCEPTED");
    assert!(n["scheduledAt"].is_string());
    assert_eq!(
        crate::helpers::queue_len(&t.app, &t.env.queue(dispatchctl::domain::Channel::Sms)).await,
        0
    );
    t.stop().await;
}

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

/// Back-pressure as a client meets it: with no worker, two creates fill the email queues to
/// BACKLOG_LIMIT; the next due email, alone or in a batch, waits BACKLOG_WAIT and gets a 503
/// it may retry, and nothing of it is stored. Another channel and a scheduled email go through.
#[tokio::test]
async fn a_full_backlog_refuses_due_creates_with_a_503_and_stores_nothing() {
    let env = Env::new().set("BACKLOG_LIMIT", "2").set("BACKLOG_WAIT", "300ms");
    let t = TestApp::spawn(env, true).await;
    let email = |content: &str| json!({"channel": "email", "priority": "normal", "recipient": "a@example.com", "content": content});
    for content in ["first", "second"] {
        let (status, body) = t.post("/v1/notifications", &email(content)).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    // The API reads the queues' depths every 100 ms.
    let full = wait_for(Duration::from_secs(10), || async {
        t.metrics()
            .await
            .contains("dispatch_engine_queue_depth{channel=\"email\"} 2")
    })
    .await;
    assert!(full, "the API never read the email queues' depth of 2");

    let started = std::time::Instant::now();
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .json(&email("third"))
        .send()
        .await
        .expect("request");
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "refused before BACKLOG_WAIT"
    );
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(r.headers()["retry-after"], "1");
    let body: Value = r.json().await.expect("JSON");
    assert_eq!(body["code"], "backlog_full", "{body}");
    let error = body["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("email work queues hold 2 messages") && error.contains("BACKLOG_LIMIT (2)"),
        "{body}"
    );
    let (status, body) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [sms("+905551112233", "not held"), email("held")]}),
        )
        .await;
    assert_eq!(
        (status, body["code"].clone()),
        (StatusCode::SERVICE_UNAVAILABLE, json!("backlog_full")),
        "{body}"
    );

    let (status, body) = t
        .post("/v1/notifications", &sms("+905551112233", "other channel"))
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut later = email("scheduled");
    later["scheduledAt"] = json!((chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339());
    let (status, body) = t.post("/v1/notifications", &later).await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::ACCEPTED, json!("ACCEPTED")),
        "{body}"
    );

    let (_, list) = t.get("/v1/notifications?pageSize=100").await;
    let mut contents: Vec<&str> = list["data"]
        .as_array()
        .map(|items| items.iter().filter_map(|n| n["content"].as_str()).collect())
        .unwrap_or_default();
    contents.sort_unstable();
    assert_eq!(contents, ["first", "other channel", "scheduled", "second"], "{list}");
    let metrics = t.metrics().await;
    assert!(
        metrics.contains("dispatch_engine_backlog_refused_total{channel=\"email\"} 2"),
        "{metrics}"
    );
    t.take_left(&[("email", 2), ("sms", 1)]).await;
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
async fn one_bad_write_does_not_fail_its_batch_neighbours() {
    let t = TestApp::spawn(Env::new(), true).await;
    let good = crate::helpers::new_notification;
    // Bypasses validation on purpose: PostgreSQL refuses NUL in text.
    let mut bad = good(999);
    bad.content = "bad\0".into();
    let mut writes: Vec<_> = (0..40).map(|i| t.app.writes.insert_notification(good(i))).collect();
    writes.insert(20, t.app.writes.insert_notification(bad));
    let results = futures_util::future::join_all(writes).await;
    assert!(results[20].is_err(), "the bad item fails");
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 40, "its neighbours are stored anyway");
    t.stop().await;
}

/// A POST of `body` as it is, with `content_type` unless None.
async fn post_raw(t: &TestApp, path: &str, body: &str, content_type: Option<&str>) -> (StatusCode, Value) {
    let mut request = t.client.post(t.url(path)).body(body.to_string());
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    crate::helpers::decode(request.send().await.unwrap()).await
}

async fn stored_rows(t: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notifications")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_not_found() {
    let t = TestApp::spawn(Env::new(), true).await;
    for ((status, body), what) in [
        (t.get("/v1/notifications/not-a-uuid").await, "notification"),
        (t.get("/v1/notifications/12345").await, "notification"),
        (
            t.post("/v1/notifications/not-a-uuid/cancel", &json!({})).await,
            "notification",
        ),
        (t.get("/v1/batches/nope").await, "batch"),
        (t.get("/v1/batches/%20%7B%7D").await, "batch"),
    ] {
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        let message = body["error"].as_str().unwrap();
        assert!(
            message.starts_with(&format!("{what} not found")) && message.contains("is not a valid UUID"),
            "{message}"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn trailing_bytes_after_the_json_body_are_refused() {
    let t = TestApp::spawn(Env::new(), true).await;
    let one = sms("x", "y").to_string();
    let batch = json!({"notifications": [sms("x", "y")]}).to_string();
    for (path, body) in [
        ("/v1/notifications", format!("{one}xyz")),
        ("/v1/notifications", format!("{one}{one}")),
        ("/v1/notifications", format!("{one}\n{one}")),
        ("/v1/notifications/batch", format!("{batch}xyz")),
        ("/v1/notifications/batch", format!("{batch} {batch}")),
    ] {
        let (status, answer) = post_raw(&t, path, &body, Some("application/json")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path} {body} -> {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.contains("trailing characters at line") && message.contains("column"),
            "names the position: {message}"
        );
    }
    assert_eq!(stored_rows(&t).await, 0, "nothing was stored");
    // Trailing whitespace is not data.
    let (status, answer) = post_raw(
        &t,
        "/v1/notifications",
        &format!("{one} \r\n\t"),
        Some("application/json"),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn max_retries_above_the_limit_is_refused_not_capped() {
    let t = TestApp::spawn(Env::new(), true).await;
    let with_retries = |n: Value| {
        let mut body = sms("x", "y");
        body["maxRetries"] = n;
        body
    };
    for n in [json!(101), json!(2_147_483_648_i64), json!(i64::MAX)] {
        let (status, answer) = t.post("/v1/notifications", &with_retries(n.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{n} -> {answer}");
        let message = answer["error"].as_str().unwrap();
        assert!(
            message.starts_with("maxRetries:") && message.contains("limit of 100"),
            "{message}"
        );
    }
    let (status, answer) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [sms("a", "b"), with_retries(json!(1000))]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .unwrap()
            .starts_with("notifications[1].maxRetries:"),
        "{answer}"
    );
    assert_eq!(stored_rows(&t).await, 0);
    let (status, answer) = t.post("/v1/notifications", &with_retries(json!(100))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    assert_eq!(answer["maxRetries"], 100, "the limit itself is kept as sent");
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn pages_past_int32_are_empty_pages_with_the_total() {
    let t = TestApp::spawn(Env::new(), true).await;
    t.create("sms", "x", "one").await;
    t.create("sms", "x", "two").await;
    for page in ["2147483648", "9223372036854775807"] {
        let (status, list) = t.get(&format!("/v1/notifications?page={page}&pageSize=100")).await;
        assert_eq!(status, StatusCode::OK, "page={page}: {list}");
        assert_eq!(list["data"], json!([]));
        assert_eq!(list["meta"]["total"], 2);
        assert_eq!(list["meta"]["page"].to_string(), page, "the page asked for is echoed");
    }
    let (status, body) = t.get("/v1/notifications?page=9223372036854775808").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("from 1 to 9223372036854775807"),
        "names the limit: {body}"
    );
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_key_repeated_inside_one_batch_rejects_the_batch_naming_both_items() {
    let t = TestApp::spawn(Env::new(), true).await;
    let keyed = |key: &str| {
        let mut body = sms("x", "y");
        body["idempotencyKey"] = json!(key);
        body
    };
    let (status, answer) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [keyed("k-1"), keyed("k-2"), keyed(" k-1 ")]}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    let message = answer["error"].as_str().unwrap();
    assert!(
        message.starts_with("notifications[2].idempotencyKey:") && message.contains("notifications[0]"),
        "{message}"
    );
    assert_eq!(stored_rows(&t).await, 0, "nothing was stored");

    // With distinct keys, the response and the summary count the same items.
    let (status, batch) = t
        .post(
            "/v1/notifications/batch",
            &json!({"notifications": [keyed("k-1"), keyed("k-2"), sms("x", "no key"), sms("x", "no key")]}),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{batch}");
    let (_, summary) = t
        .get(&format!("/v1/batches/{}", batch["batchId"].as_str().unwrap()))
        .await;
    let counted: i64 = summary["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_i64().unwrap())
        .sum();
    assert_eq!(batch["totalCount"], 4);
    assert_eq!(summary["totalCount"], 4);
    assert_eq!(counted, 4, "{summary}");
    t.take_left(&[("sms", 4)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_missing_content_type_is_read_as_json_but_a_form_is_refused() {
    let t = TestApp::spawn(Env::new(), true).await;
    let one = sms("x", "y").to_string();
    let (status, answer) = post_raw(&t, "/v1/notifications", &one, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let batch = json!({"notifications": [sms("x", "y")]}).to_string();
    let (status, answer) = post_raw(&t, "/v1/notifications/batch", &batch, None).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    let form = "channel=sms&priority=high&recipient=x&content=y";
    for (path, content_type) in [
        ("/v1/notifications", "application/x-www-form-urlencoded"),
        (
            "/v1/notifications/batch",
            "application/x-www-form-urlencoded; charset=utf-8",
        ),
        ("/v1/notifications", "multipart/form-data; boundary=x"),
    ] {
        let (status, answer) = post_raw(&t, path, form, Some(content_type)).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{path} {content_type}");
        assert!(
            answer["error"].as_str().unwrap().contains("send application/json"),
            "{answer}"
        );
    }
    assert_eq!(stored_rows(&t).await, 2, "only the two JSON bodies were stored");
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_retried_batch_answers_with_the_original_batch() {
    let t = TestApp::spawn(Env::new(), true).await;
    let keyed = |key: &str| {
        let mut body = sms("x", key);
        body["idempotencyKey"] = json!(key);
        body
    };
    let request = json!({"notifications": [keyed("r-1"), keyed("r-2"), keyed("r-3")]});
    let (status, first) = t.post("/v1/notifications/batch", &request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{first}");
    let (status, again) = t.post("/v1/notifications/batch", &request).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(
        again["batchId"], first["batchId"],
        "the retry names the batch that exists"
    );
    let ids = |b: &Value| -> Vec<Value> {
        b["notifications"]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n["id"].clone())
            .collect()
    };
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(again["totalCount"], 3);
    let (_, summary) = t
        .get(&format!("/v1/batches/{}", first["batchId"].as_str().unwrap()))
        .await;
    assert_eq!(summary["totalCount"], 3);
    assert_eq!(summary["counts"], json!([{"status": "QUEUED", "count": 3}]));
    let batches: i64 = sqlx::query_scalar("SELECT count(*) FROM batches")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!((batches, stored_rows(&t).await), (1, 3), "the retry stored nothing");
    t.take_left(&[("sms", 3)]).await;
    t.stop().await;
}

/// (status, JSON body) of `request`.
async fn answer_of(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    crate::helpers::decode(request.send().await.unwrap()).await
}

#[tokio::test]
async fn every_error_is_json_with_a_stable_code() {
    let env = Env::new()
        .set("MAX_BODY_BYTES", "256")
        .set("CORS_ALLOWED_ORIGINS", "https://console.example.com");
    let t = TestApp::spawn(env, true).await;
    let c = &t.client;
    let big = sms("+905550000001", &"x".repeat(400));
    let cases = [
        (c.get(t.url("/v2/nothing")), 404, "not_found"),
        (c.get(t.url("/v1/notifications/not-a-uuid")), 404, "not_found"),
        (c.delete(t.url("/v1/notifications")), 405, "method_not_allowed"),
        (
            c.post(t.url("/v1/notifications")).json(&json!({"channel": "fax"})),
            400,
            "invalid_request",
        ),
        (c.post(t.url("/v1/notifications")).json(&big), 413, "payload_too_large"),
        (
            c.post(t.url("/v1/notifications"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("a=b"),
            415,
            "unsupported_media_type",
        ),
        (
            c.request(reqwest::Method::OPTIONS, t.url("/v1/notifications"))
                .header("origin", "https://evil.example.com")
                .header("access-control-request-method", "POST"),
            403,
            "cors_origin_not_allowed",
        ),
    ];
    for (request, status, code) in cases {
        let (got, body) = answer_of(request).await;
        assert_eq!((got.as_u16(), body["code"].as_str()), (status, Some(code)), "{body}");
        assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
    }
    // The listed origin's preflight still passes.
    let r = c
        .request(reqwest::Method::OPTIONS, t.url("/v1/notifications"))
        .header("origin", "https://console.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://console.example.com"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_request_slower_than_request_timeout_gets_a_json_408() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestApp::spawn(Env::new().set("REQUEST_TIMEOUT", "300ms"), true).await;
    // A body that never finishes arriving: the handler waits for it until the time limit.
    let mut stream = tokio::net::TcpStream::connect(t.addr).await.unwrap();
    stream
        .write_all(b"POST /v1/notifications HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"channel\"")
        .await
        .unwrap();
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        loop {
            let n = stream.read(&mut buf).await.unwrap_or(0);
            raw.extend_from_slice(&buf[..n]);
            if n == 0 || String::from_utf8_lossy(&raw).contains("request_timeout") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&raw);
    assert!(read.is_ok(), "no answer within 10 s: {text}");
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let body: Value = serde_json::from_str(body.trim()).unwrap_or_else(|e| panic!("{e}: {body}"));
    assert_eq!(body["code"], "request_timeout");
    assert!(body["error"].as_str().unwrap().contains("300ms"), "{body}");
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
