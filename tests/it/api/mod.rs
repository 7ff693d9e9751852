//! The v1 contract: create, get, list and cancel, batches, idempotency, and creates while the
//! broker is down or the backlog is full. What it refuses is in `input`; health, readiness,
//! metrics and tokens in `ops`.

mod input;
mod ops;

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::{closed_port, wait_for, Env, TestApp};

pub(crate) fn sms(recipient: &str, content: &str) -> Value {
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
    let rows: i64 = t
        .count("SELECT count(*) FROM notifications WHERE idempotency_key = 'order-77'")
        .await;
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
    let owed: i64 = t
        .count("SELECT count(*) FROM notification_outbox WHERE published_at IS NULL")
        .await;
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

pub(crate) async fn stored_rows(t: &TestApp) -> i64 {
    t.count("SELECT count(*) FROM notifications").await
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
    let batches: i64 = t.count("SELECT count(*) FROM batches").await;
    assert_eq!((batches, stored_rows(&t).await), (1, 3), "the retry stored nothing");
    t.take_left(&[("sms", 3)]).await;
    t.stop().await;
}

/// (status, JSON body) of `request`.
pub(crate) async fn answer_of(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    crate::helpers::decode(request.send().await.unwrap()).await
}
