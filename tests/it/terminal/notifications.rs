//! The commands over stored notifications and their dead letters through the real binary:
//! `notifications`, `replay` (with `--wait`, and when it matches nothing or is interrupted)
//! and `discard`.

use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::helpers::{command, json_out, run, stderr, wait_for};

#[tokio::test]
async fn a_replay_that_matches_nothing_says_why_and_fails() {
    let (t, provider, ids) = crate::operator::failed_setup(&[("sms", 1)]).await;
    provider.set_healthy();
    let sent = t.create("sms", "+905551234567", "fine").await["id"]
        .as_str()
        .unwrap()
        .to_string();
    t.wait_status(&sent, "SENT", crate::operator::WITHIN).await;
    let env = &t.env.values;
    let unknown = uuid::Uuid::new_v4().to_string();
    for args in [
        vec!["replay", "--id", &sent, "-o", "json"],
        vec!["replay", "--from-db", "--id", &sent, "-o", "json"],
    ] {
        let out = run(env, &args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains(&sent) && err.contains("not FAILED (it is SENT)"),
            "{args:?}: {err}"
        );
        assert_eq!(json_out(&out)["notReplayed"][0]["id"], sent.as_str());
    }
    let out = run(env, &["replay", "--id", &unknown]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("unknown: no notification has this id"),
        "{}",
        stderr(&out)
    );

    // One that can be replayed beside one that cannot: the replay happens, the other is named.
    let failed = &ids[0].1;
    let out = run(env, &["replay", "--id", failed, "--id", &sent, "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["replayed"], 1);
    assert!(stderr(&out).contains(&sent), "{}", stderr(&out));
    t.wait_status(failed, "SENT", crate::operator::WITHIN).await;
    t.stop().await;
}

#[tokio::test]
async fn an_interrupted_replay_records_and_reports_what_it_did() {
    let (t, provider, _ids) = crate::operator::failed_setup(&[("push", 12)]).await;
    provider.set_healthy();
    let mut c = command(
        &t.env.values,
        &["replay", "--channel", "push", "--rate", "4", "-q", "-o", "json"],
    );
    c.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    assert!(
        wait_for(crate::operator::WITHIN, || async { provider.successes().len() >= 3 }).await,
        "replay started"
    );
    assert!(Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = tokio::task::spawn_blocking(move || {
        let _ = &mut child;
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", stderr(&out));
    let replayed: i64 = t
        .count("SELECT count(*) FROM notifications WHERE status <> 'FAILED'")
        .await;
    assert!(replayed > 0 && replayed < 12, "interrupted halfway: {replayed}");
    let err = stderr(&out);
    assert!(err.contains(&format!("interrupted: replayed {replayed},")), "{err}");
    assert!(
        err.contains(&format!("{} dead letters remain", 12 - replayed)),
        "what is left is counted: {err}"
    );
    let summary = json_out(&out);
    assert_eq!(
        (summary["replayed"].as_i64(), summary["interrupted"].as_bool()),
        (Some(replayed), Some(true))
    );
    let (audited, finished): (i32, Option<chrono::DateTime<chrono::Utc>>) =
        sqlx::query_as("SELECT replayed, finished_at FROM replay_audit WHERE dry_run = false")
            .fetch_one(t.app.store.pool())
            .await
            .unwrap();
    assert_eq!(i64::from(audited), replayed, "the audit row says what was done");
    assert!(finished.is_none(), "and that the run was interrupted");
    t.take_left(&[("dlq.push", (12 - replayed) as u32)]).await;
    t.stop().await;
}

#[tokio::test]
async fn replay_wait_reports_what_became_of_the_replayed_notifications() {
    let (t, provider, _ids) = crate::operator::failed_setup(&[("sms", 2)]).await;
    let env = &t.env.values;
    // The provider is not fixed yet: the replay gains nothing, and says so.
    let out = run(
        env,
        &["replay", "--channel", "sms", "--wait", "--timeout", "20s", "-o", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let s = json_out(&out);
    assert_eq!(s["replayed"], 2, "{s}");
    assert_eq!(
        (s["outcome"]["sent"].as_u64(), s["outcome"]["failedAgain"].as_u64()),
        (Some(0), Some(2)),
        "{s}"
    );
    assert_eq!(s["outcome"]["failures"][0]["reason"], "permanent_error", "{s}");
    assert!(
        s["outcome"]["failures"][0]["lastError"]
            .as_str()
            .is_some_and(|e| e.contains("400")),
        "{s}"
    );

    provider.set_healthy();
    let dlq = t.env.dlq(dispatchctl::domain::Channel::Sms);
    let app = t.app.clone();
    assert!(
        wait_for(Duration::from_secs(20), || async {
            crate::helpers::queue_len(&app, &dlq).await == 2
        })
        .await,
        "dead-lettered again"
    );
    let out = run(env, &["replay", "--channel", "sms", "--wait", "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let s = json_out(&out);
    assert_eq!(
        (s["outcome"]["sent"].as_u64(), s["outcome"]["failedAgain"].as_u64()),
        (Some(2), Some(0)),
        "{s}"
    );
    t.stop().await;
}

#[tokio::test]
async fn notifications_shows_one_with_its_attempts_and_where_it_is_and_lists_by_filter() {
    let (t, _provider, ids) = crate::operator::failed_setup(&[("sms", 1)]).await;
    let env = &t.env.values;
    let id = &ids[0].1;
    let out = run(env, &["notifications", id, "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let n = json_out(&out);
    assert_eq!(n["status"], "FAILED");
    assert!(
        n["location"]
            .as_str()
            .unwrap()
            .contains(&t.env.dlq(dispatchctl::domain::Channel::Sms)),
        "{n}"
    );
    assert_eq!(n["attempts"][0]["statusCode"], 400, "{n}");
    assert!(n["recipient"].as_str().unwrap().contains('*'), "masked by default: {n}");

    let out = run(
        env,
        &["notifications", "--status", "failed", "--channel", "sms", "-o", "json"],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let list = json_out(&out);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], id.as_str());
    let out = run(env, &["notifications", "--status", "SENT", "-o", "json"]).await;
    assert_eq!(json_out(&out).as_array().unwrap().len(), 0);

    let unknown = uuid::Uuid::new_v4().to_string();
    let out = run(env, &["notifications", &unknown]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&unknown), "{}", stderr(&out));
    let out = run(env, &["notifications", "--status", "LOST"]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--status"), "{}", stderr(&out));
    t.take_left(&[("dlq.sms", 1)]).await;
    t.stop().await;
}

#[tokio::test]
async fn discard_removes_selected_dead_letters_after_export_with_dry_run_confirmation_and_audit() {
    let (t, _provider, ids) = crate::operator::failed_setup(&[("sms", 3)]).await;
    let env = &t.env.values;
    let dlq = t.env.dlq(dispatchctl::domain::Channel::Sms);
    let target = &ids[1].1;

    let out = run(env, &["discard", "--id", target, "--dry-run", "-o", "json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["letters"][0]["notificationId"], target.as_str());
    assert_eq!(
        crate::helpers::queue_len(&t.app, &dlq).await,
        3,
        "--dry-run changed nothing"
    );

    // Not on a terminal and no --yes: refused.
    let out = run(env, &["discard", "--id", target]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--yes"), "{}", stderr(&out));

    let dir = tempfile::tempdir().unwrap();
    let export = dir.path().join("discarded.ndjson");
    let out = run(
        env,
        &[
            "discard",
            "--id",
            target,
            "--export",
            export.to_str().unwrap(),
            "--yes",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(json_out(&out)["discarded"], 1);
    assert_eq!(
        crate::helpers::queue_len(&t.app, &dlq).await,
        2,
        "exactly one letter removed"
    );
    let exported: Vec<Value> = std::fs::read_to_string(&export)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["notificationId"], target.as_str());
    assert!(exported[0]["body"].is_string() && exported[0]["headers"].is_object());
    assert_eq!(
        t.notification(target).await["status"],
        "FAILED",
        "the notification stays FAILED"
    );

    let out = run(env, &["inspect-dlq", "--history", "-o", "json"]).await;
    let history = json_out(&out);
    let row = history
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["source"] == "discard" && h["dryRun"] == false)
        .expect("the discard is in the audit trail");
    assert_eq!(row["replayed"], 1);
    assert!(row["finishedAt"].is_string());

    let out = run(env, &["discard", "--id", target, "--yes"]).await;
    assert_eq!(out.status.code(), Some(1), "nothing left to discard for that id");
    t.take_left(&[("dlq.sms", 2)]).await;
    t.stop().await;
}
