//! Retention end to end through the real binary: `dispatchctl prune` deletes exactly the
//! finished rows past the period, a dry run changes nothing, the export reads back whole,
//! a locked row is skipped rather than waited for, and a killed run continues when rerun.
//! Pruning beside the running daemons is in `live`.

mod live;

use std::collections::{BTreeSet, HashMap};
use std::process::Stdio;
use std::time::Duration;

use dispatchctl::store::Store;
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{closed_port, command, json_out, run, stderr, wait_for, Env};

pub(crate) async fn store(env: &Env) -> Store {
    let store = Store::connect(&env.settings().database, 4).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
}

/// A row `age_days` old in `status`, as the service would have left it.
pub(crate) async fn row(
    store: &Store,
    status: &str,
    channel: &str,
    age_days: i32,
    scheduled_in_days: Option<i32>,
    batch: Option<Uuid>,
) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO notifications (id, correlation_id, channel, priority, recipient, content, status, max_retries, \
           scheduled_at, lease_token, lease_expires_at, dead_lettered_at, failure_reason, batch_id, created_at, updated_at) \
         VALUES ($1, 'corr', $2, 'NORMAL', 'r', 'x', $3, 5, \
           CASE WHEN $5::int IS NULL THEN NULL ELSE now() + make_interval(days => $5) END, \
           CASE WHEN $3 = 'SENDING' THEN gen_random_uuid() END, CASE WHEN $3 = 'SENDING' THEN now() + interval '1 minute' END, \
           CASE WHEN $3 = 'FAILED' THEN now() - make_interval(days => $4) END, CASE WHEN $3 = 'FAILED' THEN 'permanent_error' END, \
           $6, now() - make_interval(days => $4), now() - make_interval(days => $4))",
    )
    .bind(id)
    .bind(channel)
    .bind(status)
    .bind(age_days)
    .bind(scheduled_in_days)
    .bind(batch)
    .execute(store.pool())
    .await
    .expect("insert notification");
    id
}

pub(crate) async fn attempts(store: &Store, id: Uuid, n: i32) {
    for k in 1..=n {
        sqlx::query(
            "INSERT INTO notification_attempts (notification_id, attempt_number, outcome, duration_ms) VALUES ($1, $2, 'TRANSIENT', 5)",
        )
        .bind(id)
        .bind(k)
        .execute(store.pool())
        .await
        .expect("insert attempt");
    }
}

async fn batch(store: &Store, age_days: i32) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query("INSERT INTO batches (id, total_count, created_at) VALUES ($1, 2, now() - make_interval(days => $2))")
        .bind(id)
        .bind(age_days)
        .execute(store.pool())
        .await
        .expect("insert batch");
    id
}

async fn audit(store: &Store, age_days: i32) -> Uuid {
    let id = Uuid::now_v7();
    sqlx::query(
        "INSERT INTO replay_audit (id, operator, source, selection, started_at, finished_at) \
         VALUES ($1, 'test', 'dlq', '{}', now() - make_interval(days => $2), now() - make_interval(days => $2))",
    )
    .bind(id)
    .bind(age_days)
    .execute(store.pool())
    .await
    .expect("insert audit");
    id
}

pub(crate) async fn ids(store: &Store, table: &str) -> BTreeSet<Uuid> {
    sqlx::query_scalar::<_, Uuid>(&format!("SELECT id FROM {table}"))
        .fetch_all(store.pool())
        .await
        .expect("select ids")
        .into_iter()
        .collect()
}

async fn attempt_count(store: &Store) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM notification_attempts")
        .fetch_one(store.pool())
        .await
        .expect("count attempts")
}

pub(crate) fn read_export(path: &std::path::Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("export line is not JSON ({e}): {l}")))
        .collect()
}

#[tokio::test]
async fn prune_deletes_exactly_the_finished_rows_past_the_period_and_a_dry_run_nothing() {
    let env = Env::new();
    let s = store(&env).await;
    let mut kept = BTreeSet::new();
    let mut gone = BTreeSet::new();
    for status in ["ACCEPTED", "QUEUED", "SENDING", "SENT", "FAILED", "CANCELED"] {
        kept.insert(row(&s, status, "SMS", 1, None, None).await);
        let old = row(&s, status, "SMS", 40, None, None).await;
        if matches!(status, "SENT" | "CANCELED") {
            gone.insert(old);
        } else {
            kept.insert(old);
        }
    }
    // Scheduled far ahead, created long ago: waiting, never pruned (even once canceled).
    kept.insert(row(&s, "ACCEPTED", "PUSH", 40, Some(10), None).await);
    kept.insert(row(&s, "CANCELED", "PUSH", 40, Some(10), None).await);
    let with_attempts = row(&s, "SENT", "EMAIL", 40, None, None).await;
    attempts(&s, with_attempts, 3).await;
    gone.insert(with_attempts);
    let failed_with_attempts = row(&s, "FAILED", "EMAIL", 40, None, None).await;
    attempts(&s, failed_with_attempts, 2).await;
    kept.insert(failed_with_attempts);
    // A batch whose items all go goes; one with a FAILED item stays, as does a new one.
    let emptied = batch(&s, 40).await;
    gone.insert(row(&s, "SENT", "SMS", 40, None, Some(emptied)).await);
    gone.insert(row(&s, "CANCELED", "SMS", 40, None, Some(emptied)).await);
    let half = batch(&s, 40).await;
    gone.insert(row(&s, "SENT", "SMS", 40, None, Some(half)).await);
    kept.insert(row(&s, "FAILED", "SMS", 40, None, Some(half)).await);
    let fresh = batch(&s, 1).await;
    kept.insert(row(&s, "SENT", "SMS", 1, None, Some(fresh)).await);
    let old_audit = audit(&s, 400).await;
    let new_audit = audit(&s, 10).await;

    let all: BTreeSet<Uuid> = kept.union(&gone).copied().collect();
    let args = [
        "prune",
        "--older-than",
        "30d",
        "--audit-older-than",
        "365d",
        "-o",
        "json",
    ];
    let mut dry = args.to_vec();
    dry.push("--dry-run");
    let o = run(&env.values, &dry).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json_out(&o);
    assert_eq!(report["dryRun"], true);
    assert_eq!(report["notifications"]["SENT"]["SMS"], 3, "{report}");
    assert_eq!(report["notifications"]["SENT"]["EMAIL"], 1, "{report}");
    assert_eq!(report["notifications"]["CANCELED"]["SMS"], 2, "{report}");
    assert!(report["notifications"].get("FAILED").is_none(), "{report}");
    assert_eq!(report["attempts"], 3);
    assert_eq!(report["batches"], 1);
    assert_eq!(report["audit"], 1);
    assert_eq!(ids(&s, "notifications").await, all, "a dry run deletes nothing");
    assert_eq!(ids(&s, "batches").await.len(), 3);
    assert_eq!(attempt_count(&s).await, 5);

    let dir = tempfile::tempdir().expect("tempdir");
    let export = dir.path().join("pruned.ndjson");
    let export_arg = export.to_string_lossy().into_owned();
    let mut real = args.to_vec();
    real.extend(["--export", &export_arg, "--batch-size", "2"]);
    let o = run(&env.values, &real).await;
    assert!(o.status.success(), "{}", stderr(&o));
    let report = json_out(&o);
    assert_eq!(report["dryRun"], false);
    assert_eq!(report["notifications"]["SENT"]["SMS"], 3, "{report}");
    assert_eq!(report["attempts"], 3, "{report}");
    assert_eq!(report["batches"], 1, "{report}");
    assert_eq!(report["audit"], 1, "{report}");

    assert_eq!(
        ids(&s, "notifications").await,
        kept,
        "exactly the finished rows past the period go"
    );
    assert_eq!(ids(&s, "batches").await, BTreeSet::from([half, fresh]));
    assert_eq!(ids(&s, "replay_audit").await, BTreeSet::from([new_audit]));
    assert!(!ids(&s, "replay_audit").await.contains(&old_audit));
    assert_eq!(
        attempt_count(&s).await,
        2,
        "the pruned rows' attempts go with them, the FAILED row's stay"
    );

    let rows = read_export(&export);
    let exported: BTreeSet<Uuid> = rows
        .iter()
        .map(|r| r["id"].as_str().and_then(|i| i.parse().ok()).expect("id"))
        .collect();
    assert_eq!(exported, gone, "the export holds every deleted row, once");
    assert_eq!(rows.len(), gone.len());
    let full = rows
        .iter()
        .find(|r| r["id"] == with_attempts.to_string())
        .expect("exported");
    assert_eq!(full["status"], "SENT");
    assert_eq!(full["channel"], "EMAIL");
    assert_eq!(full["recipient"], "r");
    assert_eq!(full["attempts"].as_array().map(Vec::len), Some(3), "{full}");

    // Nothing is left to prune: a rerun deletes nothing and succeeds.
    let o = run(&env.values, &args).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(json_out(&o)["attempts"], 0);
    assert_eq!(ids(&s, "notifications").await, kept);
}

#[tokio::test]
async fn a_row_locked_by_a_worker_is_skipped_not_waited_for() {
    let env = Env::new();
    let s = store(&env).await;
    let locked = row(&s, "SENT", "SMS", 40, None, None).await;
    let free = row(&s, "SENT", "SMS", 40, None, None).await;
    let mut tx = s.pool().begin().await.expect("begin");
    sqlx::query("SELECT 1 FROM notifications WHERE id = $1 FOR UPDATE")
        .bind(locked)
        .execute(&mut *tx)
        .await
        .expect("lock");
    let o = tokio::time::timeout(
        Duration::from_secs(20),
        run(&env.values, &["prune", "--older-than", "30d", "-o", "json"]),
    )
    .await
    .expect("prune does not wait for a row lock");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&s, "notifications").await, BTreeSet::from([locked]));
    assert!(!ids(&s, "notifications").await.contains(&free));
    tx.commit().await.expect("commit");
    let o = run(&env.values, &["prune", "--older-than", "30d", "-o", "json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        ids(&s, "notifications").await.is_empty(),
        "the next run takes what was skipped"
    );
}

#[tokio::test]
async fn a_prune_killed_midway_continues_cleanly_when_run_again() {
    let env = Env::new();
    let s = store(&env).await;
    let mut old = BTreeSet::new();
    for i in 0..400 {
        let id = row(&s, if i % 2 == 0 { "SENT" } else { "CANCELED" }, "PUSH", 40, None, None).await;
        attempts(&s, id, 1).await;
        old.insert(id);
    }
    let recent = row(&s, "SENT", "PUSH", 1, None, None).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let first = dir.path().join("first.ndjson");
    let second = dir.path().join("second.ndjson");
    let first_arg = first.to_string_lossy().into_owned();
    let mut child = command(
        &env.values,
        &[
            "prune",
            "--older-than",
            "30d",
            "--batch-size",
            "1",
            "--export",
            &first_arg,
            "-o",
            "json",
        ],
    )
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .spawn()
    .expect("spawn prune");
    let total = old.len() + 1;
    let s2 = s.clone();
    let started = wait_for(Duration::from_secs(30), || {
        let s2 = s2.clone();
        async move { ids(&s2, "notifications").await.len() < total - 10 }
    })
    .await;
    child.kill().expect("kill");
    let _ = child.wait();
    assert!(started, "the first run deleted something before the kill");
    let left = ids(&s, "notifications").await;
    assert!(left.len() > 1, "the kill came before the end (batch size 1, 400 rows)");

    let second_arg = second.to_string_lossy().into_owned();
    let o = run(
        &env.values,
        &["prune", "--older-than", "30d", "--export", &second_arg, "-o", "json"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(ids(&s, "notifications").await, BTreeSet::from([recent]));
    assert_eq!(attempt_count(&s).await, 0);
    // A batch killed between its export and its commit shows up in both exports; every
    // deleted row is in at least one.
    let exported: BTreeSet<Uuid> = read_export(&first)
        .into_iter()
        .chain(read_export(&second))
        .map(|r| r["id"].as_str().and_then(|i| i.parse().ok()).expect("id"))
        .collect();
    assert_eq!(exported, old);
}

#[tokio::test]
async fn prune_exit_codes() {
    let env = Env::new();
    let _s = store(&env).await;
    let o = run(&env.values, &["prune"]).await;
    assert_eq!(o.status.code(), Some(2), "no period set");
    assert!(stderr(&o).contains("RETENTION_PERIOD"), "{}", stderr(&o));
    let o = run(&env.values, &["prune", "--older-than", "a while"]).await;
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("RETENTION_PERIOD"), "{}", stderr(&o));
    let o = run(&env.values, &["prune", "--older-than", "30d", "--batch-size", "0"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let mut off = env.values.clone();
    off.insert("RETENTION_PERIOD".into(), "30d".into());
    let o = run(&off, &["prune", "--dry-run", "-o", "json"]).await;
    assert!(o.status.success(), "RETENTION_PERIOD is read: {}", stderr(&o));
    let mut down: HashMap<String, String> = env.values.clone();
    down.insert(
        "DATABASE_DSN".into(),
        format!("postgres://postgres@127.0.0.1:{}/x", closed_port()),
    );
    let o = run(&down, &["prune", "--older-than", "30d"]).await;
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
}

/// The restore procedure in docs/OPERATIONS.md, run as written: it brings back exactly the
/// rows and attempts a prune exported.
#[tokio::test]
async fn an_export_restores_with_the_commands_the_runbook_gives() {
    let env = Env::new();
    let s = store(&env).await;
    let mut old = Vec::new();
    for (i, status) in ["SENT", "CANCELED", "SENT"].into_iter().enumerate() {
        let id = row(&s, status, "EMAIL", 40, None, None).await;
        attempts(&s, id, i as i32).await;
        old.push(id);
    }
    let snapshot = |s: Store| async move {
        let rows: Vec<Value> = sqlx::query_scalar(
            "SELECT to_jsonb(n) || jsonb_build_object('attempts', (SELECT coalesce(jsonb_agg(to_jsonb(a) ORDER BY a.attempt_number), '[]') \
               FROM notification_attempts a WHERE a.notification_id = n.id)) FROM notifications n ORDER BY id",
        )
        .fetch_all(s.pool())
        .await
        .expect("snapshot");
        rows
    };
    let before = snapshot(s.clone()).await;
    assert_eq!(before.len(), 3);

    let dir = tempfile::tempdir().expect("tempdir");
    // The runbook reads `pruned.ndjson` from the directory it runs in.
    let export = dir.path().join("pruned.ndjson").to_string_lossy().into_owned();
    let o = run(
        &env.values,
        &["prune", "--older-than", "30d", "--export", &export, "-o", "json"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(snapshot(s.clone()).await.is_empty(), "the prune deleted the rows");

    let runbook = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/OPERATIONS.md")).expect("runbook");
    let from = runbook
        .find("**Restoring from an export.**")
        .expect("the runbook has a restore entry");
    let block = runbook[from..]
        .split("```sh")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("a sh block follows the restore entry");
    let restored = std::process::Command::new("sh")
        .arg("-ec")
        .arg(block)
        .current_dir(dir.path())
        .env("DATABASE_DSN", &env.values["DATABASE_DSN"])
        .output()
        .expect("run the runbook's commands");
    assert!(
        restored.status.success(),
        "the runbook's restore failed: {}",
        String::from_utf8_lossy(&restored.stderr)
    );
    assert_eq!(
        snapshot(s.clone()).await,
        before,
        "the restore brings back every row and attempt as it was"
    );
}

/// FAILED rows outlive the period, so a dead letter never points at nothing: after a prune
/// `inspect-dlq` still shows the letter, `replay` sends it, and once SENT and old it goes.
#[tokio::test]
async fn a_failed_row_outlives_the_period_with_its_letter_and_goes_once_replayed_and_sent() {
    let (t, provider, ids) = crate::operator::failed_setup(&[("sms", 1)]).await;
    let id = ids[0].1.clone();
    let s = t.app.store.clone();
    let age = || async {
        sqlx::query(
            "UPDATE notifications SET created_at = now() - interval '40 days', updated_at = now() - interval '40 days' WHERE id = $1",
        )
        .bind(id.parse::<Uuid>().expect("uuid"))
        .execute(s.pool())
        .await
        .expect("age the row");
    };
    age().await;
    let env = &t.env.values;
    let o = run(env, &["prune", "--older-than", "30d", "-o", "json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json_out(&o)["notifications"],
        serde_json::json!({}),
        "a FAILED row is not pruned"
    );
    assert_eq!(t.notification(&id).await["status"], "FAILED");
    let o = run(env, &["inspect-dlq", "--list", "--channel", "sms", "-o", "json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains(&id),
        "the letter is still listed"
    );

    provider.set_healthy();
    let o = run(env, &["replay", "--id", &id, "-o", "json"]).await;
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    t.wait_status(&id, "SENT", crate::operator::WITHIN).await;
    age().await;
    let o = run(env, &["prune", "--older-than", "30d", "-o", "json"]).await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        json_out(&o)["notifications"]["SENT"]["SMS"],
        1,
        "replayed and SENT, it goes"
    );
    let (status, _) = t.get(&format!("/v1/notifications/{id}")).await;
    assert_eq!(status.as_u16(), 404);
    t.stop().await;
}
