//! The operator CLI end to end, through the real binary: send, inspect-dlq, replay.

use std::collections::{HashMap, HashSet};
use std::process::Stdio;
use std::time::Duration;

use dispatchctl::domain::Channel;
use serde_json::{json, Value};

use crate::helpers::{
    closed_port, command, json_out, purge_queue, queue_len, run, stderr, wait_for, wait_until_settled, Env,
    ScriptedProvider, TestApp,
};

pub(crate) const WITHIN: Duration = Duration::from_secs(30);

/// Serve with a provider that rejects `reject…` recipients, and `count` of them per channel
/// failed and dead-lettered.
pub(crate) async fn failed_setup(
    counts: &[(&str, usize)],
) -> (TestApp, std::sync::Arc<ScriptedProvider>, Vec<(String, String)>) {
    let provider = ScriptedProvider::start().await;
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()), false).await;
    let mut ids = Vec::new();
    for (channel, n) in counts {
        for i in 0..*n {
            let id = t
                .create(channel, &format!("reject-{channel}-{i}@example.com"), "x")
                .await["id"]
                .as_str()
                .unwrap()
                .to_string();
            ids.push((channel.to_string(), id));
        }
    }
    for (_, id) in &ids {
        t.wait_status(id, "FAILED", WITHIN).await;
    }
    for (channel, n) in counts {
        let dlq = t.env.dlq(channel.parse::<Channel>().unwrap());
        let app = t.app.clone();
        assert!(
            wait_for(WITHIN, || async { queue_len(&app, &dlq).await as usize == *n }).await,
            "{dlq} holds {n}"
        );
    }
    (t, provider, ids)
}

#[tokio::test]
async fn inspect_lists_dead_letters_without_consuming_and_replay_sends_them() {
    let (t, provider, ids) = failed_setup(&[("sms", 3), ("email", 2)]).await;
    let env = &t.env.values;
    let (sms_q, email_q) = (t.env.dlq(Channel::Sms), t.env.dlq(Channel::Email));

    let out = run(env, &["inspect-dlq", "--list", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listed = json_out(&out);
    let listed = listed.as_array().unwrap();
    let listed_ids: HashSet<&str> = listed.iter().map(|l| l["notificationId"].as_str().unwrap()).collect();
    let expected: HashSet<&str> = ids.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(listed_ids, expected, "exactly the failed notifications");
    for l in listed {
        assert_eq!(l["reason"], "permanent_error");
        assert_eq!(l["lastStatusCode"], 400);
        assert_eq!(l["status"], "FAILED");
        let recipient = l["recipient"].as_str().unwrap();
        assert!(
            recipient.contains('*') && recipient.ends_with("@example.com"),
            "masked: {recipient}"
        );
    }
    assert_eq!(queue_len(&t.app, &sms_q).await, 3, "inspection consumed nothing");
    assert_eq!(queue_len(&t.app, &email_q).await, 2);

    let out = run(
        env,
        &[
            "inspect-dlq",
            "--list",
            "--channel",
            "sms",
            "--show-recipient",
            "--limit",
            "2",
            "-o",
            "json",
        ],
    )
    .await;
    let limited = json_out(&out);
    assert_eq!(limited.as_array().unwrap().len(), 2);
    assert!(limited[0]["recipient"].as_str().unwrap().starts_with("reject-sms-"));

    let out = run(env, &["inspect-dlq", "-o", "json"]).await;
    let summary = json_out(&out);
    let sms = summary
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel"] == "SMS")
        .unwrap();
    assert_eq!(sms["depth"], 3);
    assert_eq!(sms["reasons"], json!({"permanent_error": 3}));
    assert!(sms["oldestAgeSeconds"].as_i64().unwrap() >= 0);

    let out = run(env, &["inspect-dlq", "-o", "ndjson"]).await;
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 5, "the archive export has one line per dead letter");
    assert!(lines
        .iter()
        .all(|l| l["headers"]["x-dispatch-reason"] == "permanent_error" && l["body"].is_string()));

    let out = run(env, &["replay"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--all"), "{}", stderr(&out));

    let out = run(env, &["replay", "--channel", "sms", "--dry-run", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json_out(&out)["wouldReplayCount"], 3);
    assert_eq!(queue_len(&t.app, &sms_q).await, 3, "--dry-run changed nothing");
    for (_, id) in &ids {
        assert_eq!(t.notification(id).await["status"], "FAILED");
    }

    provider.set_healthy();
    let out = run(env, &["replay", "--channel", "sms", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = json_out(&out);
    assert_eq!(
        (summary["replayed"].as_u64(), summary["errors"].as_u64()),
        (Some(3), Some(0)),
        "{summary}"
    );
    for (channel, id) in &ids {
        if channel == "sms" {
            let n = t.wait_status(id, "SENT", WITHIN).await;
            assert_eq!(n["attemptCount"], 2, "one more attempt");
        }
    }
    assert_eq!(queue_len(&t.app, &sms_q).await, 0, "dlq.sms emptied");
    assert_eq!(queue_len(&t.app, &email_q).await, 2, "dlq.email untouched");

    let out = run(env, &["inspect-dlq", "--history", "-o", "json"]).await;
    let history = json_out(&out);
    let real = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["dryRun"] == false)
        .unwrap();
    assert_eq!(real["replayed"], 3);
    // The binary runs without $USER (helpers::command clears the environment): the audit
    // names the uid's user all the same, as a replay under cron or systemd would.
    let whoami = std::process::Command::new("id").arg("-un").output().expect("id -un");
    let user = String::from_utf8_lossy(&whoami.stdout).trim().to_string();
    let operator = real["operator"].as_str().unwrap();
    assert!(
        operator.starts_with(&format!("{user}@")) && !operator.starts_with("unknown@"),
        "the audit names the operator {user}: {operator}"
    );
    assert!(real["finishedAt"].is_string());
    t.take_left(&[("dlq.email", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_replay_killed_halfway_and_run_again_sends_each_once() {
    let (t, provider, ids) = failed_setup(&[("push", 12)]).await;
    provider.set_healthy();
    let env = &t.env.values;
    let mut slow = command(env, &["replay", "--channel", "push", "--rate", "4", "-q", "-o", "json"]);
    let mut child = slow.stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    assert!(
        wait_for(WITHIN, || async { provider.successes().len() >= 3 }).await,
        "replay started"
    );
    child.kill().unwrap();
    let _ = child.wait();
    let partial = provider.successes().len();
    assert!(partial < 12, "killed halfway ({partial} sent)");

    let out = run(env, &["replay", "--channel", "push", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    for (_, id) in &ids {
        t.wait_status(id, "SENT", WITHIN).await;
    }
    // Every message acked, then count: each delivered exactly once.
    assert!(wait_until_settled(&t.env, WITHIN).await, "every message acked");
    let successes = provider.successes();
    for (_, id) in &ids {
        assert_eq!(
            successes.get(id),
            Some(&1),
            "{id} delivered {:?} times",
            successes.get(id)
        );
    }
    assert_eq!(queue_len(&t.app, &t.env.dlq(Channel::Push)).await, 0);
    let again = run(env, &["replay", "--channel", "push", "-o", "json"]).await;
    assert_eq!(json_out(&again)["replayed"], 0, "running it again is harmless");
    t.stop().await;
}

#[tokio::test]
async fn send_exit_codes() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("PROVIDER_TIMEOUT", "5s")
        .set("LEASE_TIMEOUT", "10s");
    let t = TestApp::spawn(env, false).await;
    let api = t.url("");
    let mut env = HashMap::new();
    env.insert("DISPATCH_API_URL".to_string(), api.clone());
    let send = |to: &str| {
        vec![
            "send".to_string(),
            "--channel".into(),
            "sms".into(),
            "--to".into(),
            to.into(),
            "--content".into(),
            "hi".into(),
        ]
    };
    let args = |v: Vec<String>| v;

    let ok = args([send("+905551"), vec!["--wait".into(), "-o".into(), "json".into()]].concat());
    let out = run(&env, &ok.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["notifications"][0]["status"], "SENT");

    let rejected = [send("reject-1"), vec!["--wait".into()]].concat();
    let out = run(&env, &rejected.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));

    let hanging = [send("hang-1"), vec!["--wait".into(), "--timeout".into(), "1s".into()]].concat();
    let out = run(&env, &hanging.iter().map(String::as_str).collect::<Vec<_>>()).await;
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));

    let out = run(&env, &["send", "--channel", "fax", "--to", "x", "--content", "hi"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--channel"), "{}", stderr(&out));
    let long = "a".repeat(161);
    let out = run(&env, &["send", "--channel", "sms", "--to", "x", "--content", &long]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--content") && stderr(&out).contains("160"),
        "{}",
        stderr(&out)
    );

    let mut unreachable = env.clone();
    unreachable.insert("DISPATCH_API_URL".into(), format!("http://127.0.0.1:{}", closed_port()));
    let out = run(
        &unreachable,
        &["send", "--channel", "sms", "--to", "x", "--content", "hi"],
    )
    .await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    t.take_left(&[("dlq.sms", 1)]).await;
    t.stop().await;
}

/// A busy API (503 backlog_full with Retry-After) stored nothing, so `send` sends again
/// when Retry-After says, for --busy-retry-for at most; with 0 it exits 4 at once.
#[tokio::test]
async fn send_sends_again_while_the_api_is_busy() {
    let env = Env::new().set("BACKLOG_LIMIT", "1").set("BACKLOG_WAIT", "200ms");
    let t = TestApp::spawn(env, true).await;
    t.create("email", "a@example.com", "fills the queue").await;
    let refused = || async {
        t.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("dispatch_engine_backlog_refused_total{channel=\"email\"} "))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let mut env = HashMap::new();
    env.insert("DISPATCH_API_URL".to_string(), t.url(""));
    let send = [
        "send",
        "--channel",
        "email",
        "--to",
        "b@example.com",
        "--content",
        "waits its turn",
        "-o",
        "json",
    ];

    // The API reads the queue's depth every 100 ms: until then it admits.
    let mut impatient = None;
    for _ in 0..100 {
        let out = run(&env, &[&send[..], &["--busy-retry-for", "0"]].concat()).await;
        if out.status.code() != Some(0) {
            impatient = Some(out);
            break;
        }
    }
    let out = impatient.expect("the API never refused a create over BACKLOG_LIMIT");
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    assert!(stderr(&out).contains("BACKLOG_LIMIT (1)"), "{}", stderr(&out));

    let patient = tokio::spawn({
        let env = env.clone();
        async move { run(&env, &[&send[..], &["--busy-retry-for", "30s"]].concat()).await }
    });
    assert!(
        wait_for(Duration::from_secs(10), || async { refused().await >= 2 }).await,
        "the patient send was never refused"
    );
    assert!(!patient.is_finished(), "send gave up while the API was busy");
    // An operator makes room; the next attempt is admitted.
    purge_queue(&t.env.queue(Channel::Email)).await;
    let out = patient.await.expect("join");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("the API is busy"), "{}", stderr(&out));
    assert_eq!(json_out(&out)["notifications"][0]["status"], "QUEUED");
    t.take_left(&[("email", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn send_file_splits_2500_items_into_three_batches() {
    let t = TestApp::spawn(Env::new(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.yaml");
    let mut yaml = String::from("notifications:\n");
    for i in 0..2500 {
        yaml.push_str(&format!(
            "  - channel: push\n    priority: low\n    recipient: device-{i}\n    content: item {i}\n"
        ));
    }
    std::fs::write(&path, yaml).unwrap();
    let mut env = HashMap::new();
    env.insert("DISPATCH_API_URL".to_string(), t.url(""));
    let out = run(&env, &["send", "--file", path.to_str().unwrap(), "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let result = json_out(&out);
    assert_eq!(result["batches"].as_array().unwrap().len(), 3);
    assert_eq!(result["notifications"].as_array().unwrap().len(), 2500);
    let rows: i64 = sqlx::query_scalar("SELECT count(DISTINCT batch_id) FROM notifications")
        .fetch_one(t.app.store.pool())
        .await
        .unwrap();
    assert_eq!(rows, 3);

    // Local validation names every bad item before anything is sent.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"channel":"sms","priority":"low","recipient":"x","content":"ok"},{"channel":"fax","priority":"low","recipient":"x","content":"y"},{"channel":"sms","priority":"low","recipient":"","content":"y"}]"#).unwrap();
    let out = run(&env, &["send", "--file", bad.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("notifications[1].channel") && err.contains("notifications[2].recipient"),
        "{err}"
    );
    t.take_left(&[("push", 2500)]).await;
    t.stop().await;
}

/// The queues on the test broker whose names start with `prefix`.
fn queues_named(prefix: &str) -> Vec<String> {
    crate::helpers::rabbitmqctl_list("queues", &["name"])
        .into_iter()
        .filter_map(|row| row.into_iter().next())
        .filter(|q| q.starts_with(prefix))
        .collect()
}

/// An operator who mistypes QUEUE_PREFIX is told so, with the prefix that exists, instead
/// of seeing empty DLQs, and nothing is declared under the typo.
#[tokio::test]
async fn a_mistyped_queue_prefix_is_an_error_that_creates_no_queue_and_names_the_real_one() {
    let (t, _provider, ids) = failed_setup(&[("sms", 1)]).await;
    let real = t.env.values["QUEUE_PREFIX"].clone();
    let typo = format!("typo{}", t.env.id);
    let env = t.env.clone().set("QUEUE_PREFIX", typo.clone());
    for args in [
        &["inspect-dlq", "--list"][..],
        &["inspect-dlq"],
        &["replay", "--channel", "sms", "-y"],
        &["discard", "--channel", "sms", "--dry-run"],
    ] {
        let out = run(&env.values, args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&format!("QUEUE_PREFIX=\"{typo}\"")) && err.contains(&format!("QUEUE_PREFIX=\"{real}\"")),
            "{args:?} names the prefix it looked under and the one that exists: {err}"
        );
    }
    // A lookup reads PostgreSQL alone: it succeeds, and touches no queue either.
    let out = run(&env.values, &["notifications", &ids[0].1]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        queues_named(&typo),
        Vec::<String>::new(),
        "nothing was declared under the typo"
    );
    t.take_left(&[("dlq.sms", 1)]).await;
    t.stop().await;
}

/// A provider's refusal says why in its body; the operator sees that text where the
/// notification and its dead letter are shown.
#[tokio::test]
async fn the_providers_answer_to_a_refused_notification_is_kept_and_shown() {
    let (t, _provider, ids) = failed_setup(&[("email", 1)]).await;
    let env = &t.env.values;
    let id = &ids[0].1;
    let out = run(env, &["notifications", id, "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(r#"{\"error\":\"invalid recipient\"}"#),
        "the body is in the JSON: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let shown = json_out(&out);
    assert_eq!(shown["attempts"][0]["responseBody"], r#"{"error":"invalid recipient"}"#);
    assert_eq!(shown["channel"], "EMAIL", "the API's spelling: {shown}");

    let out = run(env, &["inspect-dlq", "--list", "-o", "json"]).await;
    let listed = json_out(&out);
    assert_eq!(
        listed[0]["lastResponse"], r#"{"error":"invalid recipient"}"#,
        "{listed}"
    );
    assert_eq!(listed[0]["notificationId"], id.as_str());
    let out = run(env, &["inspect-dlq", "--list", "-o", "table"]).await;
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains("invalid recipient") && table.contains("EMAIL"),
        "{table}"
    );
    t.take_left(&[("dlq.email", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_replay_of_an_empty_dlq_says_there_is_nothing_to_replay() {
    let t = TestApp::spawn(Env::new(), true).await;
    let out = run(&t.env.values, &["replay", "--channel", "push", "-o", "table"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("nothing to replay"), "{said}");
    t.stop().await;
}

/// A wrong password is not an outage: the operator is told the login was refused.
#[tokio::test]
async fn a_wrong_rabbitmq_password_reads_as_a_refused_login() {
    let t = TestApp::spawn(Env::new(), true).await;
    let mut url = url::Url::parse(&t.env.values["RABBITMQ_URL"]).unwrap();
    url.set_password(Some("not-the-password")).unwrap();
    let env = t.env.clone().set("RABBITMQ_URL", url.to_string());
    for args in [&["inspect-dlq"][..], &["scan-retries"]] {
        let out = run(&env.values, args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("refused the login") && err.contains("check the user and password in RABBITMQ_URL"),
            "{args:?}: {err}"
        );
        assert!(
            !err.contains("unreachable") && !err.contains("not-the-password"),
            "{args:?}: {err}"
        );
    }
    t.stop().await;
}
