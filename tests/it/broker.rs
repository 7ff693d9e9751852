//! RabbitMQ as production runs it: per-consumer QoS only, both queue types, a cluster URL
//! whose first node is down, a queue declared with the other type, and the conversion
//! between types with messages waiting and dead-lettered.
//!
//! Tests named `quorum_…` create quorum queues whatever TEST_QUEUE_TYPE says; scripts/test.sh
//! runs them only in its quorum pass, on a private RabbitMQ node.

use std::time::Duration;

use dispatchctl::broker::{BrokerError, DeadLetter, QueueType};
use dispatchctl::domain::{Channel, DeadLetterReason, Priority};
use lapin::options::{BasicGetOptions, BasicNackOptions};
use serde_json::json;

use crate::helpers::{amqp_url, closed_port, json_out, queue_len, run, wait_for, Env, ScriptedProvider, TestApp};

const WITHIN: Duration = Duration::from_secs(30);

/// (global_prefetch_count, prefetch_count) of every channel open in the test vhost.
fn channel_prefetches() -> Vec<(u32, u32)> {
    let parse = |v: Option<&String>| v.and_then(|v| v.parse().ok());
    match crate::helpers::rabbitmqctl_try_list("channels", &["global_prefetch_count", "prefetch_count"]) {
        Ok(rows) => rows
            .iter()
            .filter_map(|row| Some((parse(row.first())?, parse(row.get(1))?)))
            .collect(),
        // RabbitMQ 4 lists no global prefetch. scripts/test.sh's 4.0 node refuses global QoS
        // (deprecated_features.permit.global_qos = false): a channel that asked for it would
        // have been closed, and the notification never sent.
        Err(e) if e.contains("global_prefetch_count") => {
            crate::helpers::rabbitmqctl_list("channels", &["prefetch_count"])
                .iter()
                .filter_map(|row| Some((0, parse(row.first())?)))
                .collect()
        }
        Err(e) => panic!("{e}"),
    }
}

#[tokio::test]
async fn no_channel_asks_for_global_qos() {
    let provider = ScriptedProvider::start().await;
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()), false).await;
    let id = t.create("sms", "x", "hello").await["id"].as_str().unwrap().to_string();
    t.wait_status(&id, "SENT", WITHIN).await;
    let channels = tokio::task::spawn_blocking(channel_prefetches).await.unwrap();
    assert!(
        channels.iter().any(|(_, per_consumer)| *per_consumer > 0),
        "the worker's channel sets a per-consumer prefetch: {channels:?}"
    );
    assert!(
        channels.iter().all(|(global, _)| *global == 0),
        "RabbitMQ 4.3 closes a channel that asks for global QoS: {channels:?}"
    );
    t.stop().await;
}

#[tokio::test]
async fn classic_queues_stay_classic_in_a_vhost_whose_default_is_quorum() {
    let vhost = format!("dq-{}", uuid::Uuid::new_v4().simple());
    let ctl = |args: &[&str]| crate::helpers::rabbitmqctl().args(args).output().expect("rabbitmqctl");
    let added = ctl(&["add_vhost", &vhost, "--default-queue-type", "quorum"]);
    if !added.status.success() {
        // RabbitMQ before 3.11 has no default queue type, so the question does not arise.
        eprintln!("skipped: {}", String::from_utf8_lossy(&added.stderr));
        return;
    }
    assert!(ctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"])
        .status
        .success());
    let mut url = url::Url::parse(&amqp_url()).unwrap();
    url.set_path(&format!("/{vhost}"));
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("RABBITMQ_URL", url.to_string())
        .set("QUEUE_TYPE", "classic");
    let t = TestApp::spawn(env, false).await;
    let id = t.create("push", "device-1", "hello").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.wait_status(&id, "SENT", WITHIN).await;
    let listed = ctl(&["list_queues", "-p", &vhost, "name", "type", "-q", "--no-table-headers"]);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    t.stop().await;
    ctl(&["delete_vhost", &vhost]);
    let types: Vec<(&str, &str)> = listed
        .lines()
        .filter_map(|l| l.split_once(char::is_whitespace))
        .collect();
    assert_eq!(types.len(), 6, "three work queues and three DLQs: {listed}");
    assert!(
        types.iter().all(|(_, kind)| kind.trim() == "classic"),
        "QUEUE_TYPE=classic, whatever the vhost's default: {listed}"
    );
}

#[tokio::test]
async fn a_cluster_url_skips_a_dead_node_and_readyz_names_the_node_in_use() {
    let provider = ScriptedProvider::start().await;
    let real = url::Url::parse(&amqp_url()).unwrap();
    let real_node = format!("{}:{}", real.host_str().unwrap(), real.port().unwrap_or(5672));
    let mut dead = real.clone();
    dead.set_port(Some(closed_port())).unwrap();
    // The second entry is host:port only: it takes credentials and vhost from the first.
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("RABBITMQ_URL", format!("{dead},{real_node}"));
    let t = TestApp::spawn(env, false).await;
    let id = t.create("email", "a@b.c", "hello").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.wait_status(&id, "SENT", WITHIN).await;
    let (status, ready) = t.get("/readyz").await;
    assert_eq!(status.as_u16(), 200, "{ready}");
    assert_eq!(ready["rabbitmq"]["publisher"], real_node, "{ready}");
    assert_eq!(ready["rabbitmq"]["worker"], real_node, "{ready}");
    t.stop().await;
}

/// `/metrics` says which roles hold their AMQP channel: an all-in-one `serve` its
/// publisher's and its worker's, the same process without a broker neither, so an alert can
/// tell a disconnected worker from an idle one.
#[tokio::test]
async fn metrics_count_the_amqp_channels_each_role_holds_open() {
    let channels = |text: &str, role: &str| {
        let name = format!("dispatch_engine_amqp_channels{{role=\"{role}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(name.as_str()).map(str::to_string))
    };
    // No notification is sent: the provider only has to be named for a worker to run.
    let hook = format!("http://127.0.0.1:{}/hook", closed_port());
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", hook.clone()), false).await;
    let attached = wait_for(WITHIN, || async {
        let text = t.metrics().await;
        channels(&text, "consumer").as_deref() == Some("1") && channels(&text, "publisher").as_deref() == Some("1")
    })
    .await;
    assert!(attached, "{}", t.metrics().await);
    t.stop().await;

    let mut dead = url::Url::parse(&amqp_url()).unwrap();
    dead.set_port(Some(closed_port())).unwrap();
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", hook)
        .set("RABBITMQ_URL", dead.to_string());
    let t = TestApp::spawn(env, false).await;
    let text = t.metrics().await;
    assert_eq!(channels(&text, "publisher").as_deref(), Some("0"), "{text}");
    assert_eq!(channels(&text, "consumer").as_deref(), Some("0"), "{text}");
    t.stop_leaving_messages().await;
}

#[tokio::test]
async fn a_queue_of_the_other_type_is_one_clear_error() {
    let classic = Env::new().set("QUEUE_TYPE", "classic");
    let t = TestApp::spawn(classic.clone(), true).await;
    let quorum = classic.clone().set("QUEUE_TYPE", "quorum");
    let other = dispatchctl::app::App::from_store(quorum.settings(), t.app.store.clone());
    let err = other
        .broker
        .channel()
        .await
        .expect_err("the DLQs exist as classic queues");
    assert!(matches!(err, BrokerError::QueueMismatch { .. }), "{err:?}");
    let message = err.to_string();
    let queue = classic.dlq(Channel::Sms);
    for needle in [
        queue.as_str(),
        "x-queue-type",
        "QUEUE_TYPE=classic",
        "dispatchctl convert-queues --to quorum",
    ] {
        assert!(message.contains(needle), "{needle:?} missing from: {message}");
    }
    assert!(!message.contains('\n'), "one line: {message}");
    t.stop().await;
}

/// Waiting work and dead letters survive classic → quorum and back, and are then delivered
/// and replayable as before.
#[tokio::test]
async fn quorum_conversion_keeps_every_waiting_message_and_dead_letter() {
    let provider = ScriptedProvider::start().await;
    let classic = Env::new()
        .set("QUEUE_TYPE", "classic")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let api = TestApp::spawn(classic.clone(), true).await;
    let mut ids = Vec::new();
    for (i, priority) in ["HIGH", "NORMAL", "LOW", "NORMAL"].iter().enumerate() {
        let (s, n) = api
            .post(
                "/v1/notifications",
                &json!({"channel": "SMS", "priority": priority, "recipient": "x", "content": format!("n{i}")}),
            )
            .await;
        assert_eq!(s.as_u16(), 202, "{n}");
        ids.push(n["id"].as_str().unwrap().to_string());
    }
    for reason in [DeadLetterReason::PermanentError, DeadLetterReason::RetryExhausted] {
        let letter = DeadLetter {
            notification_id: Some(uuid::Uuid::new_v4()),
            channel: Channel::Push,
            reason,
            attempts: 3,
            last_status_code: Some(400),
            last_error: Some("kept across the conversion".into()),
            failed_at: chrono::Utc::now(),
            original_queue: classic.queue(Channel::Push),
            body: b"{}".to_vec(),
        };
        api.app.broker.publish_dead_letter(&letter).await.unwrap();
    }
    assert_eq!(queue_len(&api.app, &classic.queue(Channel::Sms)).await, 4);
    let store = api.app.store.clone();
    // They stay for the conversion to move.
    api.stop_leaving_messages().await;
    let vars = classic.values.clone();

    let dry = run(&vars, &["convert-queues", "--to", "quorum", "--dry-run", "-o", "json"]).await;
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    assert_eq!(json_out(&dry)["dryRun"], true);

    let out = run(&vars, &["convert-queues", "--to", "quorum", "-o", "json"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let report = json_out(&out);
    assert_eq!(report["to"], "quorum", "{report}");

    let quorum = classic.clone().set("QUEUE_TYPE", "quorum");
    let q = quorum.topology();
    let app = dispatchctl::app::App::from_store(quorum.settings(), store);
    app.broker
        .channel()
        .await
        .expect("the quorum topology declares cleanly now");
    assert_eq!(queue_len(&app, &q.work_queue(Channel::Sms, Priority::High)).await, 1);
    assert_eq!(queue_len(&app, &q.work_queue(Channel::Sms, Priority::Normal)).await, 2);
    assert_eq!(queue_len(&app, &q.work_queue(Channel::Sms, Priority::Low)).await, 1);
    assert_eq!(queue_len(&app, &q.dead_letter_queue(Channel::Push)).await, 2);
    assert!(
        app.broker.queue_depth(&classic.queue(Channel::Sms)).await.is_err(),
        "the classic work queue is gone"
    );
    let listed = run(
        &quorum.values,
        &["inspect-dlq", "--channel", "push", "--list", "-o", "json"],
    )
    .await;
    let listed = json_out(&listed).to_string();
    assert!(
        listed.contains("permanent_error") && listed.contains("retry_exhausted"),
        "{listed}"
    );

    let again = run(&quorum.values, &["convert-queues", "-o", "json"]).await;
    assert!(again.status.success(), "a rerun is harmless");
    assert_eq!(
        json_out(&again)["steps"].as_array().map(Vec::len),
        Some(3),
        "only 'already of the target type' rows"
    );

    let back = run(&quorum.values, &["convert-queues", "--to", "classic", "-o", "json"]).await;
    assert!(back.status.success(), "{}", String::from_utf8_lossy(&back.stderr));
    let worker = TestApp::spawn(classic, false).await;
    for id in &ids {
        worker.wait_status(id, "SENT", WITHIN).await;
    }
    worker.take_left(&[("dlq.push", 2)]).await;
    worker.stop().await;
}

/// An API-only app on quorum queues whose delivery limit is 1, and one notification waiting
/// on `sms.normal`.
async fn one_waiting_on_a_quorum_queue_with_a_limit_of_one(
    content: &str,
) -> (std::sync::Arc<ScriptedProvider>, Env, TestApp, String) {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("QUEUE_TYPE", "quorum")
        .set("QUEUE_DELIVERY_LIMIT", "1")
        .set("WEBHOOK_SITE_URL", provider.url.clone());
    let api = TestApp::spawn(env.clone(), true).await;
    let id = api.create("sms", "x", content).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    (provider, env, api, id)
}

/// A quorum queue dead-letters a message returned more often than QUEUE_DELIVERY_LIMIT; its
/// notification never failed, so replay puts it back to work instead of dropping the letter,
/// and the DLQ itself never takes that limit however often it is inspected.
#[tokio::test]
async fn quorum_letter_over_the_delivery_limit_is_kept_and_replayed_into_a_delivery() {
    let (provider, env, api, id) = one_waiting_on_a_quorum_queue_with_a_limit_of_one("bounced").await;
    let ch = api.app.broker.channel().await.unwrap();
    let queue = env.queue(Channel::Sms);
    // A consumer that keeps handing the message back, as a crashing worker would.
    for _ in 0..2 {
        if let Some(m) = ch.basic_get(&queue, BasicGetOptions { no_ack: false }).await.unwrap() {
            m.delivery
                .nack(BasicNackOptions {
                    requeue: true,
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    }
    let dlq = env.dlq(Channel::Sms);
    assert!(wait_for(WITHIN, || async { queue_len(&api.app, &dlq).await == 1 }).await);
    for _ in 0..3 {
        let o = run(
            &env.values,
            &["inspect-dlq", "--channel", "sms", "--list", "-o", "json"],
        )
        .await;
        assert!(o.status.success());
        assert!(
            json_out(&o).to_string().contains("delivery_limit"),
            "broker's reason shown"
        );
    }
    // The letters an inspection read return to the queue when its channel closes; a quorum
    // queue takes them back asynchronously.
    assert!(
        wait_for(WITHIN, || async { queue_len(&api.app, &dlq).await == 1 }).await,
        "inspection never pushes a letter over a limit"
    );
    let replayed = run(&env.values, &["replay", "--channel", "sms", "--all", "-o", "json"]).await;
    assert!(
        replayed.status.success(),
        "{}",
        String::from_utf8_lossy(&replayed.stderr)
    );
    assert_eq!(queue_len(&api.app, &dlq).await, 0);
    let worker = TestApp::spawn_with(api.app.clone(), env, false).await;
    worker.wait_status(&id, "SENT", WITHIN).await;
    assert_eq!(provider.for_notification(&id).len(), 1);
    worker.stop().await;
    api.stop().await;
}

#[test]
fn queue_type_setting_names_the_choices() {
    let err = Env::new().set("QUEUE_TYPE", "mirrored").values;
    let err = dispatchctl::config::Settings::from_map(&err).unwrap_err().to_string();
    assert!(err.contains("QUEUE_TYPE") && err.contains("classic or quorum"), "{err}");
    let ok = Env::new().set("QUEUE_TYPE", "Quorum").settings();
    assert_eq!(ok.queue_type, QueueType::Quorum);
}

/// A database failure under a delivery is retried by the worker in place: returning the
/// message would count towards a quorum queue's delivery limit and push still-valid work
/// into the DLQ (here the limit is 1, so a single return would).
#[tokio::test]
async fn quorum_database_outage_under_a_delivery_spends_no_delivery_limit() {
    let (provider, env, api, id) = one_waiting_on_a_quorum_queue_with_a_limit_of_one("through an outage").await;
    let pool = api.app.store.pool().clone();
    // The claim fails while the table is away, as it would with PostgreSQL down.
    sqlx::query("ALTER TABLE notifications RENAME TO notifications_away")
        .execute(&pool)
        .await
        .unwrap();
    let worker = TestApp::spawn_with(api.app.clone(), env.clone(), false).await;
    let queue = env.queue(Channel::Sms);
    assert!(
        wait_for(WITHIN, || async { queue_len(&api.app, &queue).await == 0 }).await,
        "the worker took it"
    );
    // Long enough for the old nack-after-1-s to have returned the message twice; there is no
    // event to wait for when the point is that nothing happens.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    sqlx::query("ALTER TABLE notifications_away RENAME TO notifications")
        .execute(&pool)
        .await
        .unwrap();
    worker.wait_status(&id, "SENT", WITHIN).await;
    assert_eq!(
        queue_len(&api.app, &env.dlq(Channel::Sms)).await,
        0,
        "nothing dead-lettered"
    );
    assert_eq!(provider.for_notification(&id).len(), 1);
    worker.stop().await;
    api.stop().await;
}
