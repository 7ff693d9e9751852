//! Retention beside a running system: the daemons' own prune pass, a prune beside a delivery
//! load, and the pace it keeps to.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use super::{attempts, ids, read_export, row, store};
use crate::helpers::{json_out, run, stderr, wait_for, Env};

#[tokio::test]
async fn the_scanner_loop_prunes_when_a_period_is_set_and_counts_it() {
    let env = Env::new().set("RETENTION_PERIOD", "30d").set("PRUNE_INTERVAL", "100ms");
    // The rows exist before the loop starts, so it cannot take one half-written.
    let s = store(&env).await;
    let old = row(&s, "SENT", "SMS", 40, None, None).await;
    attempts(&s, old, 2).await;
    let failed = row(&s, "FAILED", "SMS", 40, None, None).await;
    let recent = row(&s, "SENT", "SMS", 1, None, None).await;
    let t = crate::helpers::TestApp::spawn(env, false).await;
    let s2 = s.clone();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let s2 = s2.clone();
            async move { !ids(&s2, "notifications").await.contains(&old) }
        })
        .await,
        "the loop pruned the old SENT row"
    );
    assert_eq!(ids(&s, "notifications").await, BTreeSet::from([failed, recent]));
    let app = t.app.clone();
    assert!(
        wait_for(Duration::from_secs(20), || {
            let text = app.metrics.render();
            async move {
                text.contains("dispatch_engine_pruned_total{kind=\"notification\"} 1")
                    && text.contains("dispatch_engine_pruned_total{kind=\"attempt\"} 2")
                    && text.contains("dispatch_engine_oldest_finished_age_seconds ")
            }
        })
        .await,
        "{}",
        t.app.metrics.render()
    );
}

/// Prune beside a live delivery load: two `dispatchctl prune` loops (competing with each other
/// too) delete 2,000 old rows and every new row one second after it is SENT, while 300 creates
/// go through the API, the worker and the provider. Nothing is lost (each notification reaches
/// the provider exactly once and is either still in the table as SENT or in an export as SENT
/// with its attempt), no prune waits or fails, and PostgreSQL counts no deadlock.
#[tokio::test]
async fn prune_beside_a_delivery_load_loses_nothing_and_deadlocks_nothing() {
    let provider = crate::helpers::ScriptedProvider::start().await;
    let env = Env::new().set("WEBHOOK_SITE_URL", provider.url.clone());
    let s = store(&env).await;
    sqlx::query(
        "INSERT INTO notifications (id, correlation_id, channel, priority, recipient, content, status, max_retries, created_at, updated_at) \
         SELECT gen_random_uuid(), 'old', 'SMS', 'NORMAL', 'r', 'x', 'SENT', 3, now() - interval '40 days', now() - interval '40 days' \
         FROM generate_series(1, 2000)",
    )
    .execute(s.pool())
    .await
    .expect("old rows");
    sqlx::query(
        "INSERT INTO notification_attempts (notification_id, attempt_number, outcome, duration_ms) \
         SELECT id, 1, 'SUCCESS', 5 FROM notifications",
    )
    .execute(s.pool())
    .await
    .expect("old attempts");
    let t = crate::helpers::TestApp::spawn(env.clone(), false).await;

    let stop = tokio_util::sync::CancellationToken::new();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut pruners = Vec::new();
    for p in 0..2 {
        let (values, stop, dir) = (env.values.clone(), stop.clone(), dir.path().to_path_buf());
        pruners.push(tokio::spawn(async move {
            let mut runs = 0;
            loop {
                let export = dir.join(format!("p{p}-{runs}.ndjson")).to_string_lossy().into_owned();
                let args = [
                    "prune",
                    "--older-than",
                    "1s",
                    "--batch-size",
                    "50",
                    "--export",
                    &export,
                    "-o",
                    "json",
                ];
                let o = tokio::time::timeout(Duration::from_secs(60), run(&values, &args))
                    .await
                    .expect("a prune run beside the load finishes");
                assert!(o.status.success(), "prune run {runs} of pruner {p}: {}", stderr(&o));
                runs += 1;
                if stop.is_cancelled() {
                    return runs;
                }
            }
        }));
    }

    let mut created = BTreeSet::new();
    let mut creators = tokio::task::JoinSet::new();
    for c in 0..6 {
        let client = t.client.clone();
        let url = t.url("/v1/notifications");
        creators.spawn(async move {
            let mut ids = Vec::new();
            for i in 0..50 {
                let channel = ["SMS", "EMAIL", "PUSH"][i % 3];
                let body = serde_json::json!({"channel": channel, "priority": "NORMAL",
                    "recipient": format!("+9055500{c}{i:03}"), "content": "load"});
                let r = client.post(&url).json(&body).send().await.expect("create");
                assert_eq!(r.status().as_u16(), 202);
                let v: Value = r.json().await.expect("json");
                ids.push(v["id"].as_str().and_then(|i| i.parse::<Uuid>().ok()).expect("id"));
            }
            ids
        });
    }
    while let Some(ids) = creators.join_next().await {
        created.extend(ids.expect("creator"));
    }
    assert_eq!(created.len(), 300);

    let p2 = provider.clone();
    let want = created.clone();
    assert!(
        wait_for(Duration::from_secs(60), || {
            let successes = p2.successes();
            let done = want.iter().all(|id| successes.contains_key(&id.to_string()));
            async move { done }
        })
        .await,
        "every notification reached the provider while prune ran"
    );
    // Let the pruners take some of the just-delivered rows too, then stop them.
    let s2 = s.clone();
    wait_for(Duration::from_secs(20), || {
        let s2 = s2.clone();
        async move { ids(&s2, "notifications").await.len() < 250 }
    })
    .await;
    stop.cancel();
    let mut runs = 0;
    for p in pruners {
        runs += p.await.expect("pruner");
    }
    assert!(runs >= 2, "both pruners ran");

    let successes = provider.successes();
    for id in &created {
        assert_eq!(
            successes.get(&id.to_string()),
            Some(&1),
            "{id} was delivered exactly once"
        );
    }
    let left: Vec<(Uuid, String)> = sqlx::query_as("SELECT id, status FROM notifications")
        .fetch_all(s.pool())
        .await
        .expect("rows left");
    assert!(
        left.iter().all(|(_, status)| status == "SENT"),
        "every row left is SENT: {left:?}"
    );
    let mut exported = BTreeSet::new();
    for entry in std::fs::read_dir(dir.path()).expect("exports") {
        for r in read_export(&entry.expect("entry").path()) {
            assert_eq!(r["status"], "SENT", "only SENT rows were pruned: {r}");
            let id: Uuid = r["id"].as_str().and_then(|i| i.parse().ok()).expect("id");
            if created.contains(&id) {
                assert_eq!(r["attempts"].as_array().map(Vec::len), Some(1), "{r}");
            }
            exported.insert(id);
        }
    }
    for id in &created {
        let in_table = left.iter().any(|(l, _)| l == id);
        assert!(
            in_table || exported.contains(id),
            "{id} is neither in the table nor in an export"
        );
    }
    assert_eq!(
        left.iter().filter(|(l, _)| !created.contains(l)).count(),
        0,
        "all 2,000 old rows are gone"
    );
    assert!(
        created.iter().any(|id| exported.contains(id)),
        "some rows delivered during the load were pruned during it"
    );
    let deadlocks: i64 =
        sqlx::query_scalar("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
            .fetch_one(s.pool())
            .await
            .expect("deadlocks");
    assert_eq!(deadlocks, 0, "PostgreSQL detected a deadlock");
    // A second copy of a work message (a publish confirmed late and published again, or
    // redelivered) that arrives after prune removed its SENT row names a notification that no
    // longer exists: it is dead-lettered as not_found, never delivered. With `--older-than 1s`
    // that can happen here; anything else in a DLQ is a lost notification.
    let out = run(&env.values, &["inspect-dlq", "--list", "-o", "json"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let mut letters: HashMap<String, u32> = HashMap::new();
    for l in json_out(&out).as_array().expect("a list") {
        let id: Uuid = l["notificationId"].as_str().and_then(|i| i.parse().ok()).expect("id");
        assert_eq!(
            l["reason"], "not_found",
            "only copies of pruned rows are dead-lettered: {l}"
        );
        assert!(
            exported.contains(&id),
            "a dead letter names a row that prune exported: {l}"
        );
        let channel = l["channel"].as_str().expect("channel").to_lowercase();
        *letters.entry(format!("dlq.{channel}")).or_default() += 1;
    }
    let letters: Vec<(&str, u32)> = letters.iter().map(|(q, n)| (q.as_str(), *n)).collect();
    t.take_left(&letters).await;
    t.stop().await;
}

/// `--max-rate` (PRUNE_MAX_RATE) paces the deletes: 60 rows at 40/s in batches of 10 cannot
/// take less than 1.5 s, and they all go.
#[tokio::test]
async fn prune_keeps_to_its_max_rate() {
    let env = Env::new();
    let s = store(&env).await;
    for _ in 0..60 {
        row(&s, "SENT", "SMS", 40, None, None).await;
    }
    let started = std::time::Instant::now();
    let o = run(
        &env.values,
        &[
            "prune",
            "--older-than",
            "30d",
            "--batch-size",
            "10",
            "--max-rate",
            "40",
            "-o",
            "json",
        ],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "60 rows at 40/s took {:?}",
        started.elapsed()
    );
    assert_eq!(json_out(&o)["notifications"]["SENT"]["SMS"], 60);
    assert!(ids(&s, "notifications").await.is_empty());
    let o = run(&env.values, &["prune", "--older-than", "30d", "--max-rate", "fast"]).await;
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("PRUNE_MAX_RATE"), "{}", stderr(&o));
}
