//! The scanner: due retries, scheduled sends, never-published creates, expired leases, and
//! concurrent passes.

use std::collections::HashSet;
use std::time::Duration;

use dispatchctl::app::App;
use dispatchctl::broker::messages::H_REASON;
use dispatchctl::dispatch::scan::{PassReport, ScanScope, Scanner};
use dispatchctl::domain::Channel;
use serde_json::json;
use uuid::Uuid;

use crate::helpers::{
    closed_port, delete_queue, drain_queue, header, hold_unacked, json_out, new_notification, purge_queue, queue_len,
    run, take_messages, wait_for, Env, ScriptedProvider, TestApp,
};

const WITHIN: Duration = Duration::from_secs(20);

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
async fn owed(app: &App) -> i64 {
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
    let report = scanner
        .pass(
            ScanScope {
                retries: true,
                scheduled: false,
            },
            false,
        )
        .await
        .unwrap();
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
            let n = s
                .pass(
                    ScanScope {
                        retries: true,
                        scheduled: false,
                    },
                    false,
                )
                .await
                .unwrap()
                .total();
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

/// `count` SMS notifications created through the API, priorities in turn (so that with
/// quorum queues every priority's queue has some). Returns their ids.
async fn create_sms(t: &TestApp, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for chunk in (0..count).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<serde_json::Value> = chunk
            .iter()
            .map(|i| {
                let priority = ["HIGH", "NORMAL", "LOW"][i % 3];
                json!({"channel": "SMS", "priority": priority, "recipient": format!("+9055510{i:05}"), "content": "lost?"})
            })
            .collect();
        let (status, batch) = t
            .post("/v1/notifications/batch", &json!({ "notifications": items }))
            .await;
        assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{batch}");
        ids.extend(
            batch["notifications"]
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n["id"].as_str().unwrap().to_string()),
        );
    }
    assert!(
        wait_for(WITHIN, || async { owed(&t.app).await == 0 }).await,
        "the broker confirmed every first message"
    );
    ids
}

async fn sms_queue_depth(t: &TestApp) -> u32 {
    let mut depth = 0;
    for queue in t.env.topology().work_queues(Channel::Sms) {
        depth += queue_len(&t.app, &queue).await;
    }
    depth
}

fn lost_in(report: &PassReport) -> u64 {
    report
        .handled
        .get("lost")
        .map_or(0, |by_channel| by_channel.values().sum())
}

/// A gauge's value in a Prometheus exposition, by its name and labels as printed.
fn gauge(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// An operator purges the work queues: the broker had confirmed every message, so nothing
/// owes a publish and nothing is due, yet nothing will move the notifications. The metric
/// and `notifications --stuck` show them waiting; the lost-message rule publishes them again
/// once they have waited REQUEUE_LOST_AFTER, and each is delivered exactly once.
#[tokio::test]
async fn a_purged_queue_is_recovered_and_each_notification_delivered_once() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("REQUEUE_LOST_AFTER", "1s")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let api = TestApp::spawn(env.clone(), true).await;
    let ids = create_sms(&api, 30).await;
    let mut purged = 0;
    for queue in env.topology().work_queues(Channel::Sms) {
        purged += purge_queue(&queue).await;
    }
    assert_eq!(purged, 30, "every message was on its queue");

    let lost_in_view = wait_for(WITHIN, || async {
        let out = run(
            &env.values,
            &["notifications", "--stuck", "--older-than", "1ms", "-o", "json"],
        )
        .await;
        let rows = json_out(&out);
        let rows = rows.as_array().cloned().unwrap_or_default();
        rows.len() == 30
            && rows.iter().all(|r| {
                r["why"].as_str().unwrap_or_default().contains("lost")
                    && r["next"].as_str().is_some_and(|n| n.contains("again"))
            })
    })
    .await;
    assert!(
        lost_in_view,
        "notifications --stuck calls each of the 30 lost and says what comes next"
    );

    // A scanner whose rule would wait an hour still measures the wait.
    let watcher = App::start(env.clone().set("REQUEUE_LOST_AFTER", "1h").settings(), false)
        .await
        .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics_url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let stop_watcher = tokio_util::sync::CancellationToken::new();
    let watching = tokio::spawn(dispatchctl::roles::scanner::run(
        watcher,
        Some(Duration::from_millis(100)),
        listener,
        stop_watcher.clone(),
    ));
    let aged = wait_for(WITHIN, || async {
        let text = reqwest::get(&metrics_url).await.unwrap().text().await.unwrap();
        gauge(
            &text,
            "dispatch_engine_oldest_unfinished_age_seconds{channel=\"sms\",status=\"QUEUED\"}",
        )
        .is_some_and(|age| age >= 1.0)
    })
    .await;
    assert!(
        aged,
        "the oldest unfinished age of sms QUEUED grows while they are lost"
    );
    assert_eq!(provider.received().len(), 0, "nothing delivered them yet");
    stop_watcher.cancel();
    watching.await.unwrap().unwrap();

    // serve with its worker and scanners, as deployed.
    let full = TestApp::spawn(env.clone(), false).await;
    for id in &ids {
        full.wait_status(id, "SENT", Duration::from_secs(30)).await;
    }
    assert!(
        crate::helpers::wait_until_settled(&env, WITHIN).await,
        "every message acked"
    );
    let successes = provider.successes();
    assert_eq!(successes.len(), 30, "each one delivered");
    assert!(successes.values().all(|&n| n == 1), "and only once: {successes:?}");
    let text = full.app.metrics.render();
    assert!(
        gauge(
            &text,
            "dispatch_engine_scanner_enqueued_total{channel=\"sms\",kind=\"lost\"}"
        )
        .is_some_and(|n| n >= 30.0),
        "the recovery is counted"
    );
    full.stop().await;
    api.stop().await;
}

/// A deep backlog waiting for a worker is not lost: as many messages wait in the queues as
/// notifications wait for them, so passes of the rule at a REQUEUE_LOST_AFTER far shorter
/// than the backlog's age publish nothing. Once 50 messages really are gone, a pass
/// publishes those 50 and no more.
#[tokio::test]
async fn a_backlog_of_2000_still_queued_is_not_republished() {
    let t = TestApp::spawn(Env::new().set("REQUEUE_LOST_AFTER", "1ms"), true).await;
    create_sms(&t, 2000).await;
    assert_eq!(sms_queue_depth(&t).await, 2000);
    let scanner = t.app.scanner();
    for _ in 0..3 {
        let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
        assert_eq!(report.total(), 0, "nothing republished: {report:?}");
    }
    assert_eq!(sms_queue_depth(&t).await, 2000, "the backlog is not doubled");

    let queue = t.env.queue(Channel::Sms);
    assert_eq!(take_messages(&queue, 50).await, 50);
    let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(lost_in(&report), 50, "exactly what is missing: {report:?}");
    assert_eq!(sms_queue_depth(&t).await, 2000);
    let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(report.total(), 0, "and once: {report:?}");
    t.stop_leaving_messages().await;
}

/// A worker holding messages it has not claimed yet (hung, or waiting on the rate limiter)
/// takes them out of the ready count, so the rule publishes them again. When that worker's
/// connection goes, the broker puts the originals back: two messages for each notification.
/// The claim lets one through; each notification reaches the provider once.
#[tokio::test]
async fn a_republished_message_still_in_its_queue_is_delivered_once() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("REQUEUE_LOST_AFTER", "1ms")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let t = TestApp::spawn(env.clone(), true).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(
            t.create("sms", &format!("+90555200{i:02}"), "twice?").await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(wait_for(WITHIN, || async { owed(&t.app).await == 0 }).await);
    let queue = env.queue(Channel::Sms);
    let holder = hold_unacked(&queue, 20).await;
    assert_eq!(queue_len(&t.app, &queue).await, 0, "none ready while held");
    let report = t.app.scanner().pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(lost_in(&report), 20, "held messages look lost: {report:?}");
    holder.conn.close(200, "gone").await.unwrap();
    assert!(
        wait_for(WITHIN, || async { queue_len(&t.app, &queue).await == 40 }).await,
        "the originals are back beside their copies"
    );

    let worker = TestApp::spawn(env.clone(), false).await;
    for id in &ids {
        worker.wait_status(id, "SENT", WITHIN).await;
    }
    assert!(
        crate::helpers::wait_until_settled(&env, WITHIN).await,
        "both copies acked"
    );
    let successes = provider.successes();
    assert_eq!(successes.len(), 20);
    assert!(
        successes.values().all(|&n| n == 1),
        "delivered once each: {successes:?}"
    );
    assert_eq!(provider.received().len(), 20, "the copies never reached the provider");
    worker.stop().await;
    t.stop().await;
}

/// The DLQ is purged (or lost with a node's disk): FAILED notifications whose letters were
/// confirmed have none there any more. The rule publishes each letter again, once; a letter
/// an operator discarded stays discarded.
#[tokio::test]
async fn dead_letters_the_broker_lost_are_published_again_but_discarded_ones_are_not() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("REQUEUE_LOST_AFTER", "1ms")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let t = TestApp::spawn(env.clone(), false).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        ids.push(
            t.create("sms", &format!("reject{i}"), "refused").await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for id in &ids {
        t.wait_status(id, "FAILED", WITHIN).await;
    }
    let dlq = env.dlq(Channel::Sms);
    assert!(wait_for(WITHIN, || async { queue_len(&t.app, &dlq).await == 6 }).await);
    t.stop_leaving_messages().await;

    let discard = run(&env.values, &["discard", "--id", &ids[0], "--yes"]).await;
    assert!(discard.status.success(), "{}", crate::helpers::stderr(&discard));
    assert_eq!(purge_queue(&dlq).await, 5);

    let app = App::start(env.settings(), false).await.unwrap();
    let scanner = app.scanner();
    let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(report.handled["lost_dead_letter"]["SMS"], 5, "{report:?}");
    // The dead-letter pass publishes them (at once, or past UNPUBLISHED_GRACE since the
    // rows last changed).
    assert!(
        wait_for(WITHIN, || async {
            scanner.pass(ScanScope::RETRIES, false).await.unwrap();
            queue_len(&app, &dlq).await == 5
        })
        .await,
        "five letters back"
    );
    let report = scanner.pass(ScanScope::RETRIES, false).await.unwrap();
    assert_eq!(report.total(), 0, "once: {report:?}");
    let letters = drain_queue(&dlq).await;
    let mut lettered: Vec<String> = letters
        .iter()
        .filter_map(|(_, body)| {
            let letter: serde_json::Value = serde_json::from_slice(body).ok()?;
            Some(letter["notificationId"].as_str()?.to_string())
        })
        .collect();
    lettered.sort();
    let mut expected: Vec<String> = ids[1..].to_vec();
    expected.sort();
    assert_eq!(lettered, expected, "one letter each, none for the discarded one");
}

/// An operator deletes a work queue under a running worker, messages and all. The worker
/// notices its consumer canceled, declares the queue again and consumes it; what the queue
/// held is published again by the lost-message rule, and what was created meanwhile by the
/// unpublished pass. Everything is delivered, once.
#[tokio::test]
async fn a_deleted_work_queue_is_declared_again_and_nothing_in_it_is_lost() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("REQUEUE_LOST_AFTER", "1s")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let api = TestApp::spawn(env.clone(), true).await;
    let mut ids = create_sms(&api, 12).await;
    for queue in env.topology().work_queues(Channel::Sms) {
        delete_queue(&queue).await;
    }
    let full = TestApp::spawn(env.clone(), false).await;
    ids.extend(create_sms(&full, 6).await);
    // Deleted under the running worker too.
    for queue in env.topology().work_queues(Channel::Sms) {
        delete_queue(&queue).await;
    }
    ids.extend(create_sms(&full, 6).await);
    for id in &ids {
        full.wait_status(id, "SENT", Duration::from_secs(30)).await;
    }
    assert!(crate::helpers::wait_until_settled(&env, WITHIN).await);
    let successes = provider.successes();
    assert_eq!(successes.len(), ids.len());
    assert!(successes.values().all(|&n| n == 1), "{successes:?}");
    full.stop().await;
    api.stop().await;
}
