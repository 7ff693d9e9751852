//! Messages the broker lost after confirming them: a purged or deleted work queue, dead
//! letters gone from their queue, and a backlog that is waiting, not lost, so never
//! republished.

use std::time::Duration;

use dispatchctl::app::App;
use dispatchctl::dispatch::scan::{PassReport, ScanScope};
use dispatchctl::domain::Channel;
use serde_json::json;

use super::{owed, WITHIN};
use crate::helpers::{
    delete_queue, drain_queue, hold_unacked, json_out, purge_queue, queue_len, run, take_messages, wait_for, Env,
    ScriptedProvider, TestApp,
};

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
