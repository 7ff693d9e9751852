//! The real binary: configuration errors, migrations, scan-retries output and exit codes,
//! and a worker that drains gracefully on SIGTERM.

use std::collections::HashMap;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{
    closed_port, command, stderr, wait_for, wait_until_settled, Env, KillOnDrop, ScriptedProvider, TestApp,
};

fn dispatchctl(env: &HashMap<String, String>, args: &[&str]) -> Output {
    command(env, args)
        .env("LOG_FORMAT", "text")
        .output()
        .expect("run dispatchctl")
}

#[test]
fn a_malformed_setting_stops_start_up_with_one_clear_line() {
    let env = Env::new()
        .set("RETRY_SCAN_INTERVAL", "soon")
        .set("DATABASE_DSN", "postgres://u:hunter2@127.0.0.1:1/x");
    let out = dispatchctl(&env.values, &["scan-retries"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("RETRY_SCAN_INTERVAL") && err.contains("example: RETRY_SCAN_INTERVAL=5s"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(!err.contains("hunter2"));
}

#[test]
fn a_mistyped_log_level_stops_serve_instead_of_silencing_its_logs() {
    let env = Env::new().set("LOG_LEVEL", "infoo");
    let out = dispatchctl(&env.values, &["serve"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("LOG_LEVEL") && err.contains("\"infoo\" is not a level") && err.contains("trace, debug, info"),
        "{err}"
    );
}

#[test]
fn the_worker_refuses_to_start_without_a_provider() {
    let out = dispatchctl(&Env::new().values, &["worker"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("WEBHOOK_SITE_URL"), "{}", stderr(&out));
}

#[test]
fn unreachable_database_is_a_one_line_error_without_the_password() {
    let env = Env::new().set(
        "DATABASE_DSN",
        format!("postgres://postgres:hunter2@127.0.0.1:{}/x", closed_port()),
    );
    let out = dispatchctl(&env.values, &["migrate", "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(!err.contains("hunter2"), "{err}");
    assert!(err.contains("error:"), "{err}");
}

#[test]
fn migrations_run_report_and_revert() {
    let env = Env::new();
    let status = |env: &Env| -> Vec<Value> {
        let out = dispatchctl(&env.values, &["migrate", "status", "-o", "json"]);
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The database does not exist yet: migrate creates it.
    let out = dispatchctl(&env.values, &["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let applied = status(&env);
    assert!(applied.len() >= 2);
    assert!(applied.iter().all(|m| m["appliedAt"].is_string()), "{applied:?}");
    let out = dispatchctl(&env.values, &["migrate", "revert"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let after = status(&env);
    assert!(
        after.last().unwrap()["appliedAt"].is_null(),
        "last one reverted: {after:?}"
    );
    assert!(after[0]["appliedAt"].is_string());
    let out = dispatchctl(&env.values, &["migrate", "run"]);
    assert!(out.status.success());
    assert!(status(&env).iter().all(|m| m["appliedAt"].is_string()));
}

#[tokio::test]
async fn scan_retries_dry_run_json_and_exit_codes() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = t.create("sms", "x", "y").await["id"].as_str().unwrap().to_string();
    sqlx::query(
        "UPDATE notifications SET status = 'QUEUED', next_retry_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(t.app.store.pool())
    .await
    .unwrap();
    let values = t.env.values.clone();
    let out = tokio::task::spawn_blocking(move || dispatchctl(&values, &["scan-retries", "--dry-run", "-o", "json"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["handled"]["retry"]["SMS"], 1, "{report}");
    assert_eq!(report["dryRun"], true);
    let n = t.app.store.get(id.parse().unwrap()).await.unwrap().unwrap();
    assert!(n.next_retry_at.is_some(), "--dry-run changed nothing");

    let values = t.env.values.clone();
    let out = tokio::task::spawn_blocking(move || dispatchctl(&values, &["scan-retries", "-o", "json"]))
        .await
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["handled"]["retry"]["SMS"], 1);
    let values = t.env.values.clone();
    let out = tokio::task::spawn_blocking(move || dispatchctl(&values, &["scan-retries", "-o", "json"]))
        .await
        .unwrap();
    assert!(out.status.success(), "nothing due is still a success");
    assert_eq!(
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["handled"],
        json!({})
    );

    let broken = t.env.clone().set(
        "DATABASE_DSN",
        format!("postgres://postgres@127.0.0.1:{}/x", closed_port()),
    );
    let out = tokio::task::spawn_blocking(move || dispatchctl(&broken.values, &["scan-retries"]))
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out).trim().lines().filter(|l| l.starts_with("error:")).count(),
        1,
        "{}",
        stderr(&out)
    );
    t.take_left(&[("sms", 2)]).await;
    t.stop().await;
}

#[tokio::test]
async fn sigterm_mid_load_loses_nothing() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("WORKER_CONCURRENCY", "4");
    let api = TestApp::spawn(env.clone(), true).await;
    let items: Vec<Value> = (0..60)
        .map(|i| json!({"channel": "SMS", "priority": "NORMAL", "recipient": "slow-x", "content": format!("n{i}")}))
        .collect();
    let (_, batch) = api
        .post("/v1/notifications/batch", &json!({"notifications": items}))
        .await;
    let ids: Vec<String> = batch["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let spawn_worker = || {
        command(&env.values, &["worker", "--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn worker")
    };
    let mut first = spawn_worker();
    assert!(
        wait_for(Duration::from_secs(20), || async { provider.received().len() >= 10 }).await,
        "worker started delivering"
    );
    // SIGTERM: stop consuming, finish in-flight deliveries, exit 0.
    let pid = first.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || first.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "graceful exit, got {status:?}");
    let mut second = spawn_worker();
    let all_sent = wait_for(Duration::from_secs(40), || async {
        let rows: i64 = api
            .count("SELECT count(*) FROM notifications WHERE status = 'SENT'")
            .await;
        rows == 60
    })
    .await;
    // A message whose outcome the first worker committed but whose ack the SIGTERM cut off
    // comes back once more (at least once): the second worker acks it as already SENT.
    let settled = wait_until_settled(&env, Duration::from_secs(20)).await;
    let _ = second.kill();
    let _ = second.wait();
    assert!(all_sent, "every notification ends SENT after the restart");
    assert!(settled, "and every message is acked");
    let received = provider.received();
    for id in &ids {
        assert!(
            received.iter().any(|r| &r.notification_id == id),
            "{id} never reached the provider"
        );
    }
    api.stop().await;
}

#[tokio::test]
async fn worker_and_scanner_daemons_serve_the_ops_endpoints() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new().set("WEBHOOK_SITE_URL", provider.url.clone());
    // Creates the database and schema the daemons expect.
    let api = TestApp::spawn(env.clone(), true).await;
    let client = reqwest::Client::new();
    for (args, metric) in [
        (vec!["worker".to_string()], "dispatch_engine_worker_inflight"),
        (
            vec!["scan-retries".to_string(), "--loop".to_string()],
            "dispatch_engine_scanner_due_backlog",
        ),
    ] {
        let listen = format!("127.0.0.1:{}", closed_port());
        let mut guard = KillOnDrop(Some(
            command(&env.values, &[])
                .args(&args)
                .args(["--listen", &listen])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        let base = format!("http://{listen}");
        let ready = wait_for(Duration::from_secs(20), || async {
            matches!(client.get(format!("{base}/readyz")).send().await, Ok(r) if r.status() == 200)
        })
        .await;
        assert!(ready, "{args:?} never became ready");
        let live: Value = client
            .get(format!("{base}/livez"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(live, json!({"status": "ok"}));
        let text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(text.contains(metric), "{args:?}: {metric} missing");
        assert!(Command::new("kill")
            .args(["-TERM", &guard.0.as_ref().unwrap().id().to_string()])
            .status()
            .unwrap()
            .success());
        let mut child = guard.take();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "{args:?} exits 0 on SIGTERM");
    }
    api.stop().await;
}
