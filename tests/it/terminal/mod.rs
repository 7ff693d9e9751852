//! The operator's terminal through the real binary: pipes whose reader goes away, signals,
//! and what the commands say when something is wrong (issue 19). The commands over stored
//! notifications and dead letters are in `notifications`.

mod notifications;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::{closed_port, command, json_out, run, stderr, wait_for, Env, KillOnDrop, TestApp, SEND_SMS};

/// Waits for the child to exit, at most `within`; None when it is still running.
async fn exit_within(child: &mut KillOnDrop, within: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.0.as_mut().unwrap().try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn sigterm(child: &Child) {
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

async fn serve_until_live(env: &Env, log_level: &str) -> (KillOnDrop, String) {
    let port = closed_port().to_string();
    let child = command(
        &env.clone().set("LOG_LEVEL", log_level).values,
        &["serve", "--host", "127.0.0.1", "--port", &port],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::piped())
    .spawn()
    .expect("spawn serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let live = wait_for(Duration::from_secs(30), || async {
        matches!(client.get(format!("{base}/livez")).send().await, Ok(r) if r.status() == 200)
    })
    .await;
    assert!(live, "serve never answered /livez");
    (KillOnDrop(Some(child)), base)
}

#[tokio::test]
async fn serve_stops_on_sigterm_after_the_reader_of_its_logs_went_away() {
    let env = Env::new();
    let (mut serve, base) = serve_until_live(&env, "debug").await;
    // Like `serve 2>&1 | head -3`: read three lines, then close the pipe.
    let logs = serve.0.as_mut().unwrap().stderr.take().unwrap();
    let mut reader = BufReader::new(logs);
    for _ in 0..3 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
    }
    drop(reader);
    // Requests and the shutdown itself log into the closed pipe.
    let client = reqwest::Client::new();
    for _ in 0..20 {
        let _ = client.get(format!("{base}/livez")).send().await;
    }
    sigterm(serve.0.as_ref().unwrap());
    let status = exit_within(&mut serve, Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "serve exits 0 on SIGTERM with its log reader gone, got {status:?}"
    );
}

#[tokio::test]
async fn serve_stops_on_sigterm_while_nobody_reads_its_logs() {
    let env = Env::new();
    // Trace level fills the pipe buffer (64 KiB) within a few requests; nothing reads it.
    let (mut serve, base) = serve_until_live(&env, "trace").await;
    let client = reqwest::Client::new();
    for _ in 0..200 {
        let _ = client.get(format!("{base}/livez")).send().await;
    }
    let live = tokio::time::timeout(Duration::from_secs(5), client.get(format!("{base}/livez")).send()).await;
    assert!(
        matches!(live, Ok(Ok(ref r)) if r.status() == 200),
        "a stalled log reader never stalls the API: {live:?}"
    );
    sigterm(serve.0.as_ref().unwrap());
    let status = exit_within(&mut serve, Duration::from_secs(20)).await;
    assert!(
        status.is_some_and(|s| s.success()),
        "serve exits 0 on SIGTERM with a stalled log reader, got {status:?}"
    );
}

/// Runs a command whose stdout reader has already gone (`| head` that exited).
async fn with_closed_stdout(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let mut c = command(&env.values, args);
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let (code, err) = tokio::task::spawn_blocking(move || {
        let mut child = c.spawn().expect("spawn");
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    })
    .await
    .unwrap();
    (code, err)
}

#[tokio::test]
async fn every_command_ends_quietly_on_a_closed_stdout() {
    let t = TestApp::spawn(Env::new(), true).await;
    let api = t.env.clone().set("DISPATCH_API_URL", t.url(""));
    let cases: Vec<Vec<&str>> = vec![
        SEND_SMS.to_vec(),
        vec!["inspect-dlq", "-o", "json"],
        vec!["inspect-dlq", "--history", "-o", "json"],
        vec!["replay", "--channel", "sms", "--dry-run", "-o", "json"],
        vec!["migrate", "status", "-o", "json"],
        vec!["scan-retries", "-o", "json"],
        vec!["completions", "bash"],
    ];
    for args in cases {
        let (code, err) = with_closed_stdout(&api, &args).await;
        assert_eq!(code, Some(141), "{args:?} exits as if by SIGPIPE: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("error"),
            "{args:?} ends quietly: {err}"
        );
    }
    // The send did what it would have done with a reader: the notification exists.
    let rows: i64 = t.count("SELECT count(*) FROM notifications").await;
    assert_eq!(rows, 1);
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn send_file_wait_reports_each_final_status_attempts_and_error() {
    let provider = crate::helpers::ScriptedProvider::start().await;
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()), false).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.yaml");
    std::fs::write(
        &path,
        "- {channel: sms, priority: normal, recipient: '+905551234567', content: ok}\n\
         - {channel: sms, priority: normal, recipient: reject-me, content: refused}\n\
         - {channel: email, priority: low, recipient: flaky1-a@example.com, content: once}\n",
    )
    .unwrap();
    let env = t.env.clone().set("DISPATCH_API_URL", t.url(""));
    let out = run(
        &env.values,
        &[
            "send",
            "--file",
            path.to_str().unwrap(),
            "--wait",
            "--timeout",
            "30s",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "one failed: {}", stderr(&out));
    let result = json_out(&out);
    let items = result["notifications"].as_array().unwrap();
    let by_recipient = |r: &str| items.iter().find(|n| n["recipient"] == r).unwrap().clone();
    let ok = by_recipient("+905551234567");
    assert_eq!(
        (ok["status"].as_str(), ok["attemptCount"].as_i64()),
        (Some("SENT"), Some(1)),
        "{ok}"
    );
    let failed = by_recipient("reject-me");
    assert_eq!(failed["status"], "FAILED", "{failed}");
    assert_eq!(failed["attemptCount"], 1, "{failed}");
    assert_eq!(failed["failureReason"], "permanent_error", "{failed}");
    assert!(
        failed["lastError"].as_str().is_some_and(|e| e.contains("400")),
        "{failed}"
    );
    let retried = by_recipient("flaky1-a@example.com");
    assert_eq!(
        (retried["status"].as_str(), retried["attemptCount"].as_i64()),
        (Some("SENT"), Some(2)),
        "{retried}"
    );
    assert_eq!(result["batches"][0]["status"], "PARTIAL_FAILURE");
    t.take_left(&[("dlq.sms", 1)]).await;
    t.stop().await;
}

fn error_lines(err: &str) -> Vec<&str> {
    err.lines().filter(|l| !l.trim().is_empty()).collect()
}

#[tokio::test]
async fn errors_are_one_line_with_the_cause_once_where_and_what_to_do() {
    let t = TestApp::spawn(Env::new(), true).await;
    let port = crate::helpers::closed_port();
    let refused = t
        .env
        .clone()
        .set("DATABASE_DSN", format!("postgres://postgres@127.0.0.1:{port}/x"));
    let out = run(&refused.values, &["inspect-dlq"]).await;
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(error_lines(&err).len(), 1, "{err}");
    assert_eq!(err.matches("Connection refused").count(), 1, "the cause once: {err}");
    assert!(
        err.contains(&format!("127.0.0.1:{port}")) && err.contains("DATABASE_DSN"),
        "{err}"
    );

    // A due notification, so that scan-retries has something to publish.
    let id = t.create("sms", "+905551234567", "x").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    sqlx::query(
        "UPDATE notifications SET status = 'QUEUED', next_retry_at = now() - interval '1 second' WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(t.app.store.pool())
    .await
    .unwrap();
    let amqp = t.env.values["RABBITMQ_URL"].clone();
    let wrong = t
        .env
        .clone()
        .set("RABBITMQ_URL", amqp.replacen(":guest@", ":wrong@", 1));
    let host = url::Url::parse(&amqp).unwrap();
    let host = format!("{}:{}", host.host_str().unwrap(), host.port().unwrap_or(5672));
    for args in [
        vec!["replay", "--channel", "sms", "-o", "json"],
        vec!["inspect-dlq", "-o", "json"],
        vec!["scan-retries", "-o", "json"],
    ] {
        let out = run(&wrong.values, &args).await;
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert_eq!(error_lines(&err).len(), 1, "{args:?}: one line, no WARN logs: {err}");
        assert_eq!(
            err.matches("ACCESS_REFUSED -").count(),
            1,
            "{args:?}: the cause once: {err}"
        );
        assert!(err.contains(&host) && err.contains("RABBITMQ_URL"), "{args:?}: {err}");
        assert!(
            out.stdout.is_empty() || json_out(&out).is_object(),
            "{args:?}: no stray []"
        );
    }

    let out = run(&t.env.values, &["replay", "--rate", "-1", "--channel", "sms"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--rate: -1 must be a positive number"),
        "{}",
        stderr(&out)
    );

    let out = run(&t.env.values, &["replay", "--dry-run"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        !err.contains("try --dry-run") && err.contains("--channel") && err.contains("--all"),
        "{err}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dispatch.yaml");
    std::fs::write(&file, "api_port: abc\n").unwrap();
    let out = run(&t.env.values, &["--config", file.to_str().unwrap(), "inspect-dlq"]).await;
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("dispatch.yaml") && err.contains("api_port") && !err.contains("API_PORT"),
        "{err}"
    );
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn a_send_file_with_an_unknown_key_is_refused_with_file_item_line_and_suggestion() {
    let t = TestApp::spawn(Env::new(), true).await;
    let env = t.env.clone().set("DISPATCH_API_URL", t.url(""));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("later.yaml");
    std::fs::write(
        &path,
        "- channel: sms\n  recipient: '+905551234567'\n  content: now\n\
         - channel: sms\n  recipient: '+905551234567'\n  content: later\n  scheduled_at: '+1h'\n",
    )
    .unwrap();
    let out = run(&env.values, &["send", "--file", path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("later.yaml:7")
            && err.contains("notifications[1]")
            && err.contains("`scheduled_at`")
            && err.contains("did you mean `scheduledAt`"),
        "{err}"
    );
    let rows: i64 = t.count("SELECT count(*) FROM notifications").await;
    assert_eq!(rows, 0, "nothing was sent");

    // A value the API would refuse is named by file, line and item, each one of them.
    std::fs::write(
        &path,
        "- channel: sms\n  recipient: '+905551234567'\n  content: fine\n\
         - channel: fax\n  recipient: '+905551234567'\n  content: x\n\
         - channel: sms\n  recipient: ''\n  content: y\n",
    )
    .unwrap();
    let out = run(&env.values, &["send", "--file", path.to_str().unwrap()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("later.yaml:4: notifications[1].channel")
            && err.contains("later.yaml:7: notifications[2].recipient"),
        "{err}"
    );

    // priority may be left out, as on the command line.
    std::fs::write(&path, "- {channel: sms, recipient: '+905551234567', content: hi}\n").unwrap();
    let out = run(&env.values, &["send", "--file", path.to_str().unwrap(), "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["notifications"][0]["priority"], "NORMAL");
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn send_and_healthcheck_find_the_api_from_the_settings_serve_reads() {
    let t = TestApp::spawn(Env::new().set("API_TOKENS", "tok-1,tok-2"), true).await;
    let port = t.addr.port().to_string();
    // The environment `serve` runs with: a wildcard host, its port, its tokens.
    let same = t.env.clone().set("API_HOST", "0.0.0.0").set("API_PORT", port.as_str());
    let out = run(&same.values, SEND_SMS).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(json_out(&out)["notifications"][0]["id"].is_string());
    let out = run(&same.values, &["healthcheck"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    let closed = crate::helpers::closed_port().to_string();
    let elsewhere = t.env.clone().set("API_PORT", closed.as_str());
    let out = run(
        &elsewhere.values,
        &["send", "--channel", "sms", "--to", "x", "--content", "hi"],
    )
    .await;
    assert_eq!(out.status.code(), Some(4));
    let err = stderr(&out);
    assert!(
        err.contains(&closed) && err.contains("API_PORT") && err.contains("--api-url"),
        "{err}"
    );
    t.take_left(&[("sms", 1)]).await;
    t.stop().await;
}

/// Runs the binary on a pseudo-terminal (util-linux `script`), 160 columns wide; returns
/// everything it drew and its exit status.
async fn on_a_terminal(env: &Env, args: &[&str]) -> (Option<i32>, String) {
    let bin = env!("CARGO_BIN_EXE_dispatchctl");
    let line = format!("stty cols 160 rows 40; exec {bin} {}", args.join(" "));
    let mut c = Command::new("script");
    c.args(["-qefc", &line, "/dev/null"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("TERM", "xterm")
        .envs(&env.values)
        .stdin(Stdio::null());
    let out = tokio::task::spawn_blocking(move || c.output().expect("script"))
        .await
        .unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[tokio::test]
async fn progress_shows_known_totals_a_label_and_the_real_rate() {
    let (t, provider, _ids) = crate::operator::failed_setup(&[("email", 6)]).await;
    provider.set_healthy();
    let (code, screen) = on_a_terminal(&t.env, &["replay", "--from-db", "--channel", "email", "--rate", "2"]).await;
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("/6 FAILED notifications"),
        "known total and label: {screen}"
    );
    assert!(!screen.contains("/0 "), "{screen}");
    let rates: Vec<f64> = screen
        .split(" (")
        .skip(1)
        .filter_map(|s| s.split("/s)").next()?.parse().ok())
        .collect();
    assert!(!rates.is_empty(), "a rate is shown: {screen}");
    assert!(
        rates.iter().all(|r| *r <= 2.5),
        "the replay rate, not the examination rate: {rates:?}"
    );

    let env = t.env.clone().set("DISPATCH_API_URL", t.url(""));
    let (code, screen) = on_a_terminal(
        &env,
        &[
            "send",
            "--channel",
            "sms",
            "--to",
            "+905551234567",
            "--content",
            "x",
            "--wait",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("waiting [") && screen.contains("/1 notifications"),
        "{screen}"
    );
    assert!(!screen.contains("0/0"), "no unlabelled 0/0 bar: {screen}");
    t.take_left(&[("dlq.email", 6)]).await;
    t.stop().await;
}

#[tokio::test]
async fn one_shot_commands_print_no_autovacuum_warning_and_no_sql() {
    let t = TestApp::spawn(Env::new(), true).await;
    sqlx::query("ALTER TABLE notifications SET (autovacuum_enabled = false)")
        .execute(t.app.store.pool())
        .await
        .unwrap();
    let out = run(&t.env.values, &["scan-retries", "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        !stderr(&out).contains("autovacuum"),
        "cron would mail it every run: {}",
        stderr(&out)
    );

    // A statement slower than sqlx's threshold (1 s): the table is locked meanwhile.
    let mut lock = t.app.store.pool().begin().await.unwrap();
    sqlx::query("LOCK TABLE notifications IN ACCESS EXCLUSIVE MODE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let env = t.env.values.clone();
    let replay =
        tokio::spawn(async move { run(&env, &["replay", "--from-db", "--channel", "sms", "-o", "json"]).await });
    let pool = t.app.store.pool().clone();
    let slow = wait_for(Duration::from_secs(20), || async {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
               AND wait_event_type = 'Lock' AND now() - query_start > interval '1200 milliseconds'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        waiting > 0
    })
    .await;
    assert!(slow, "the replay's statement waits on the lock for over a second");
    lock.rollback().await.unwrap();
    let out = replay.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        !err.contains("SELECT") && !err.contains("slow statement"),
        "no raw SQL: {err}"
    );
    t.stop().await;
}

#[tokio::test]
async fn migrate_revert_asks_on_a_terminal_unless_yes() {
    let t = TestApp::spawn(Env::new(), true).await;
    let applied = || async {
        let n: i64 = t.count("SELECT count(*) FROM _sqlx_migrations").await;
        n
    };
    let before = applied().await;
    // stdin at EOF: no answer is a no.
    let (code, screen) = on_a_terminal(&t.env, &["migrate", "revert"]).await;
    assert_eq!(code, Some(0), "{screen}");
    assert!(
        screen.contains("[y/N]") && screen.contains("nothing reverted"),
        "{screen}"
    );
    assert_eq!(applied().await, before);
    let (code, screen) = on_a_terminal(&t.env, &["migrate", "revert", "--yes"]).await;
    assert_eq!(code, Some(0), "{screen}");
    assert!(screen.contains("reverted"), "{screen}");
    assert_eq!(applied().await, before - 1);
    t.stop().await;
}

#[tokio::test]
async fn tables_never_wrap_an_id_on_a_160_column_terminal() {
    let (t, _provider, ids) = crate::operator::failed_setup(&[("sms", 2)]).await;
    for args in [
        vec!["inspect-dlq", "--list", "--channel", "sms"],
        vec!["notifications", "--status", "failed"],
    ] {
        let (code, screen) = on_a_terminal(&t.env, &args).await;
        assert_eq!(code, Some(0), "{args:?}: {screen}");
        for (_, id) in &ids {
            assert!(
                screen.lines().any(|l| l.contains(id.as_str())),
                "{args:?}: id {id} is not whole on one line:\n{screen}"
            );
        }
    }
    t.take_left(&[("dlq.sms", 2)]).await;
    t.stop().await;
}
