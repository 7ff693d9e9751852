//! The scanner: due retries, scheduled sends, never-published creates, expired leases, and
//! concurrent passes. What the broker lost after confirming it is in `lost`.

mod lost;

use std::collections::HashSet;
use std::time::Duration;

use dispatchctl::app::App;
use dispatchctl::broker::messages::H_REASON;
use dispatchctl::dispatch::scan::{ScanScope, Scanner};
use dispatchctl::domain::Channel;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    closed_port, drain_queue, header, new_notification, queue_len, wait_for, Env, ScriptedProvider, TestApp,
};

pub(crate) const WITHIN: Duration = Duration::from_secs(20);

/// A notification of `channel` whose first attempt failed: QUEUED, its message gone from
/// the queue, next retry at now() + `due_in` (an SQL interval, negative when already due).
async fn pending_retry(t: &TestApp, channel: Channel, due_in: &str) -> Uuid {
    let id: Uuid = t.create(channel.lower(), "x", "retry me").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    drain_queue(&t.env.queue(channel)).await;
    let sql = format!(
        "UPDATE notifications SET status = 'QUEUED', next_retry_at = now() + interval '{due_in}' WHERE id = $1"
    );
    exec(&t.app, &sql, id).await;
    id
}

async fn exec(app: &App, sql: &str, id: Uuid) {
    sqlx::query(sql).bind(id).execute(app.store.pool()).await.unwrap();
}

#[tokio::test]
async fn a_retry_is_enqueued_only_once_due() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = pending_retry(&t, Channel::Sms, "1 hour").await;
    let scanner = t.app.scanner();
    let report = scanner.pass(ScanScope::ALL, false).await.unwrap();
    assert_eq!(report.total(), 0, "not due yet: {report:?}");
    assert_eq!(queue_len(&t.app, &t.env.queue(Channel::Sms)).await, 0);
    exec(
        &t.app,
        "UPDATE notifications SET next_retry_at = now() - interval '1 second' WHERE id = $1",
        id,
    )
    .await;
    let report = scanner.pass(ScanScope::ALL, false).await.unwrap();
    assert_eq!(report.handled["retry"]["SMS"], 1);
    assert_eq!(queue_len(&t.app, &t.env.queue(Channel::Sms)).await, 1);
    let n = t.app.store.get(id).await.unwrap().unwrap();
    assert_eq!((n.status.as_str(), n.next_retry_at), ("QUEUED", None));
    assert_eq!(
        scanner.pass(ScanScope::ALL, false).await.unwrap().total(),
        0,
        "enqueued once"
    );
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_scheduled_notification_waits_then_is_delivered() {
    let provider = ScriptedProvider::start().await;
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()), false).await;
    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (_, n) = t
        .post("/v1/notifications", &json!({"channel": "EMAIL", "priority": "LOW", "recipient": "a@b.c", "content": "later", "scheduledAt": at.to_rfc3339()}))
        .await;
    let id = n["id"].as_str().unwrap().to_string();
    assert_eq!(n["status"], "ACCEPTED");
    // Two passes of the scheduled scan after the create: the first may have begun before it.
    let passes = || {
        t.app
            .metrics
            .scan_duration
            .with_label_values(&["scheduled"])
            .get_sample_count()
    };
    let before = passes();
    assert!(
        wait_for(WITHIN, || async { passes() >= before + 2 }).await,
        "the scanner runs"
    );
    assert!(chrono::Utc::now() < at, "the passes ran before its time");
    assert_eq!(
        t.notification(&id).await["status"],
        "ACCEPTED",
        "still waiting for its time"
    );
    t.wait_status(&id, "SENT", WITHIN).await;
    let delivered_at = provider.for_notification(&id)[0].at;
    let _ = delivered_at;
    let sent = t.notification(&id).await;
    let updated: chrono::DateTime<chrono::Utc> = sent["updatedAt"].as_str().unwrap().parse().unwrap();
    assert!(updated >= at, "delivered at {updated}, before its schedule {at}");
    t.stop().await;
}

#[tokio::test]
async fn a_create_made_while_the_broker_was_down_is_delivered_after_it_returns() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new().set("WEBHOOK_SITE_URL", provider.url.clone());
    let down = env.clone().set(
        "RABBITMQ_URL",
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port()),
    );
    let outage = TestApp::spawn(down, true).await;
    let id = outage.create("push", "device", "while down").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(outage.notification(&id).await["status"], "QUEUED");
    assert_eq!(owed(&outage.app).await, 1, "the message is still owed");
    outage.stop().await;
    // The broker is back: a serve with scanner and worker picks it up.
    let back = TestApp::spawn(env, false).await;
    back.wait_status(&id, "SENT", WITHIN).await;
    assert_eq!(provider.for_notification(&id).len(), 1);
    assert!(
        wait_for(WITHIN, || async { owed(&back.app).await == 0 }).await,
        "nothing owed once published"
    );
    back.stop().await;
}

/// Notifications still owing their first work message (unpublished, unclaimed work rows).
pub(crate) async fn owed(app: &App) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE published_at IS NULL AND claimed_at IS NULL")
        .fetch_one(app.store.pool())
        .await
        .unwrap()
}

/// A deep queue backlog is no sign of a lost publish: once the create's publisher has its
/// confirms, the scanner's unpublished pass finds nothing to publish however long the
/// messages wait, and each notification is on its queue exactly once.
#[tokio::test]
async fn a_queue_backlog_is_never_republished() {
    // A grace of 1 ms: every entry is old enough for the unpublished pass at once.
    let t = TestApp::spawn(Env::new().set("UNPUBLISHED_GRACE", "1ms"), true).await;
    let items: Vec<serde_json::Value> = (0..50)
        .map(|i| json!({"channel": "SMS", "priority": "NORMAL", "recipient": "x", "content": format!("backlog {i}")}))
        .collect();
    let (status, batch) = t
        .post("/v1/notifications/batch", &json!({ "notifications": items }))
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{batch}");
    assert!(
        wait_for(WITHIN, || async { owed(&t.app).await == 0 }).await,
        "the publisher clears what the broker confirmed"
    );
    let scanner = t.app.scanner();
    for _ in 0..2 {
        let report = scanner.pass(ScanScope::ALL, false).await.unwrap();
        assert_eq!(report.total(), 0, "nothing republished: {report:?}");
    }
    t.take_left(&[("sms", 50)]).await;
    t.stop().await;
}

/// A process that dies between the 202 and the publish leaves the outbox entry (here: one
/// made as the create makes it, by the same statement, with no publisher run). The scanner
/// publishes it once it is past the grace period, and only once; an entry whose
/// notification a worker or a cancel moved on meanwhile is cleared, not published.
#[tokio::test]
async fn the_scanner_publishes_what_a_crash_left_owed_once_and_clears_what_moved_on() {
    let t = TestApp::spawn(Env::new().set("UNPUBLISHED_GRACE", "1ms"), true).await;
    let insert = |i: usize| {
        let app = t.app.clone();
        async move { app.writes.insert_notification(new_notification(i)).await.unwrap().0.id }
    };
    let (crashed, canceled, young) = (insert(1).await, insert(2).await, insert(3).await);
    assert_eq!(
        t.app.store.get(crashed).await.unwrap().unwrap().status.as_str(),
        "QUEUED"
    );
    assert_eq!(owed(&t.app).await, 3);
    t.app.store.cancel(canceled).await.unwrap();
    // Created just now: with the default grace the pass leaves it to its publisher.
    exec(
        &t.app,
        "UPDATE notifications SET created_at = now() + interval '1 hour' WHERE id = $1",
        young,
    )
    .await;
    let scanner = t.app.scanner();
    let report = scanner.pass(ScanScope::SCHEDULED, false).await.unwrap();
    assert_eq!(report.handled["unpublished"]["SMS"], 1, "{report:?}");
    assert_eq!(
        owed(&t.app).await,
        1,
        "the published one owes nothing, the canceled one has no work row"
    );
    let report = scanner.pass(ScanScope::SCHEDULED, false).await.unwrap();
    assert_eq!(report.total(), 0, "published once: {report:?}");
    t.take_left(&[("sms", 1)]).await;
    let young_left: i64 = sqlx::query_scalar("SELECT count(*) FROM notification_outbox WHERE notification_id = $1")
        .bind(young)
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(young_left, 1, "an entry within its grace period is its publisher's");
    t.stop().await;
}

#[tokio::test]
async fn an_expired_lease_is_recovered_as_a_transient_failure() {
    // Long enough that the recovered retry is not already due when the same pass reaches
    // the retry kind.
    let t = TestApp::spawn(
        Env::new()
            .set("RETRY_BACKOFF_BASE", "2s")
            .set("RETRY_BACKOFF_MAX", "2s"),
        true,
    )
    .await;
    let scanner = t.app.scanner();
    let retry: Uuid = t.create("sms", "x", "worker died").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let last: Uuid = t.create("sms", "x", "last chance").await["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    drain_queue(&t.env.queue(Channel::Sms)).await;
    let claim = "UPDATE notifications SET status = 'SENDING', lease_token = gen_random_uuid(), lease_expires_at = now() - interval '1 second' WHERE id = $1";
    exec(&t.app, claim, retry).await;
    exec(&t.app, claim, last).await;
    exec(&t.app, "UPDATE notifications SET attempt_count = 4 WHERE id = $1", last).await;
    let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(report.handled["expired_lease"]["SMS"], 2, "{report:?}");
    let n = t.app.store.get(retry).await.unwrap().unwrap();
    assert_eq!(n.status.as_str(), "QUEUED");
    assert_eq!(n.attempt_count, 1);
    assert!(n.next_retry_at.is_some());
    let (_, rows) = t.app.store.lookup(retry).await.unwrap().unwrap();
    assert_eq!(rows[0].error.as_deref(), Some("lease expired"));
    let failed = t.app.store.get(last).await.unwrap().unwrap();
    assert_eq!((failed.status.as_str(), failed.attempt_count), ("FAILED", 5));
    let letters = drain_queue(&t.env.dlq(Channel::Sms)).await;
    assert_eq!(letters.len(), 1);
    assert_eq!(header(&letters[0].0, H_REASON).as_deref(), Some("retry_exhausted"));
    // And the retry goes back on the queue once due.
    assert!(
        wait_for(WITHIN, || async {
            scanner.pass(ScanScope::ALL, false).await.unwrap();
            queue_len(&t.app, &t.env.queue(Channel::Sms)).await == 1
        })
        .await
    );
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn two_scanners_over_1000_due_rows_publish_each_once() {
    let env = Env::new().set("RETRY_SCAN_LIMIT", "150");
    let t = TestApp::spawn(env.clone(), true).await;
    sqlx::query(
        "INSERT INTO notifications (id, correlation_id, channel, priority, recipient, content, status, max_retries, next_retry_at) \
         SELECT gen_random_uuid(), 'c', 'SMS', 'NORMAL', 'x', 'y', 'QUEUED', 5, now() - interval '1 second' FROM generate_series(1, 1000)",
    )
    .execute(t.app.store.pool())
    .await
    .unwrap();
    let other = App::start(env.settings(), false).await.unwrap();
    let (a, b) = (t.app.scanner(), other.scanner());
    let drain = |s: Scanner| async move {
        let mut total = 0;
        loop {
            let n = s.pass(ScanScope::RETRIES, false).await.unwrap().total();
            if n == 0 {
                return total;
            }
            total += n;
        }
    };
    let (na, nb) = tokio::join!(drain(a), drain(b));
    assert_eq!(na + nb, 1000, "{na} + {nb}");
    let messages = drain_queue(&t.env.queue(Channel::Sms)).await;
    let ids: HashSet<String> = messages
        .iter()
        .map(|(_, body)| {
            serde_json::from_slice::<serde_json::Value>(body).unwrap()["notificationId"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(messages.len(), 1000, "each row published exactly once");
    assert_eq!(ids.len(), 1000);
    t.stop().await;
}

#[tokio::test]
async fn a_broker_failure_leaves_rows_due_and_a_rerun_enqueues_them() {
    let env = Env::new();
    let t = TestApp::spawn(env.clone(), true).await;
    let id = pending_retry(&t, Channel::Email, "-1 second").await;
    let broken = App::start(
        env.clone()
            .set(
                "RABBITMQ_URL",
                format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port()),
            )
            .settings(),
        false,
    )
    .await
    .unwrap();
    let err = broken.scanner().pass(ScanScope::ALL, false).await.unwrap_err();
    assert!(err.to_string().contains("RabbitMQ"), "{err}");
    let n = t.app.store.get(id).await.unwrap().unwrap();
    assert!(n.next_retry_at.is_some(), "still due after the failed pass");
    let report = t.app.scanner().pass(ScanScope::ALL, false).await.unwrap();
    assert_eq!(report.handled["retry"]["EMAIL"], 1);
    assert_eq!(queue_len(&t.app, &t.env.queue(Channel::Email)).await, 1);
    t.take_left(&[("email", 1)]).await;
    t.stop().await;
}
