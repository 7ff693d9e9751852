//! The group-commit writes against the real PostgreSQL: several callers' items share one
//! statement, and each caller still gets exactly its own answer.

use std::time::Duration;

use dispatchctl::domain::Status;
use dispatchctl::store::{AttemptRecord, ClaimRefusal, OutcomeRecord, OutcomeUpdate};
use futures_util::future::join_all;
use uuid::Uuid;

use crate::helpers::{new_notification, Env, TestApp};

const LEASE: Duration = Duration::from_secs(30);

/// Stored ACCEPTED and never published, so no worker can touch it.
async fn stored(t: &TestApp, i: usize) -> Uuid {
    let (n, created) = t
        .app
        .writes
        .insert_notification(new_notification(i))
        .await
        .expect("insert");
    assert!(created);
    n.id
}

fn sent(id: Uuid, token: Uuid) -> OutcomeRecord {
    OutcomeRecord {
        id,
        token,
        attempt: AttemptRecord {
            attempt_number: 1,
            outcome: "SUCCESS",
            status_code: Some(200),
            response_body: None,
            error: None,
            duration_ms: 3,
        },
        update: OutcomeUpdate::Sent {
            provider_message_id: Some("p-1".into()),
        },
    }
}

async fn status_of(t: &TestApp, id: Uuid) -> Status {
    t.app.store.get(id).await.expect("get").expect("exists").status
}

#[tokio::test]
async fn concurrent_claims_of_one_notification_let_exactly_one_win() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let tokens: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    let results = join_all(tokens.iter().map(|&token| t.app.writes.claim(id, token, LEASE))).await;
    let winners: Vec<usize> = (0..results.len())
        .filter(|&i| matches!(results[i], Ok(Ok(_))))
        .collect();
    assert_eq!(winners.len(), 1, "exactly one claim wins: {results:?}");
    for (i, r) in results.iter().enumerate() {
        if i != winners[0] {
            assert!(
                matches!(r, Ok(Err(ClaimRefusal::NotClaimable(Status::Sending)))),
                "the others see it SENDING: {r:?}"
            );
        }
    }
    // The lease belongs to the winner's token: only its outcome moves the row.
    let loser = tokens[(winners[0] + 1) % tokens.len()];
    assert!(!t.app.writes.record_outcome(sent(id, loser)).await.unwrap());
    assert_eq!(status_of(&t, id).await, Status::Sending);
    assert!(t.app.writes.record_outcome(sent(id, tokens[winners[0]])).await.unwrap());
    assert_eq!(status_of(&t, id).await, Status::Sent);
    assert_eq!(
        t.app.store.attempts(id).await.unwrap().len(),
        2,
        "both attempts are recorded"
    );
    t.stop().await;
}

#[tokio::test]
async fn a_shared_claim_answers_each_caller_about_its_own_row() {
    let t = TestApp::spawn(Env::new(), true).await;
    let mut ids = Vec::new();
    for i in 0..40 {
        ids.push(stored(&t, i).await);
    }
    let canceled = ids[7];
    t.app.store.cancel(canceled).await.unwrap();
    let unknown = Uuid::now_v7();
    let mut wanted = ids.clone();
    wanted.push(unknown);
    let results = join_all(wanted.iter().map(|&id| t.app.writes.claim(id, Uuid::new_v4(), LEASE))).await;
    for (id, r) in wanted.iter().zip(&results) {
        match r {
            Ok(Ok(n)) => {
                assert_eq!(n.id, *id, "a caller gets its own notification");
                assert_eq!(n.status, Status::Sending);
            }
            Ok(Err(ClaimRefusal::NotClaimable(Status::Canceled))) => assert_eq!(*id, canceled),
            Ok(Err(ClaimRefusal::NotFound)) => assert_eq!(*id, unknown),
            other => panic!("{id}: unexpected {other:?}"),
        }
    }
    let claimed = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(claimed, 39);
    t.stop().await;
}

#[tokio::test]
async fn a_queued_mark_skips_a_row_someone_else_holds_instead_of_waiting() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let mut holder = t.app.store.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM notifications WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *holder)
        .await
        .unwrap();
    let marked = tokio::time::timeout(Duration::from_secs(5), t.app.writes.mark_queued(id)).await;
    assert!(matches!(marked, Ok(Ok(()))), "the mark returns at once: {marked:?}");
    holder.rollback().await.unwrap();
    assert_eq!(
        status_of(&t, id).await,
        Status::Accepted,
        "skipped, left for the scanner"
    );
    t.app.writes.mark_queued(id).await.unwrap();
    assert_eq!(status_of(&t, id).await, Status::Queued);
    t.stop().await;
}

#[tokio::test]
async fn the_schema_refuses_a_lease_outside_sending() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let refused = sqlx::query("UPDATE notifications SET lease_token = $2 WHERE id = $1")
        .bind(id)
        .bind(Uuid::new_v4())
        .execute(t.app.store.pool())
        .await
        .expect_err("a token on an ACCEPTED row violates the constraint");
    let code = refused
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("23514"), "{refused}");
    t.stop().await;
}

#[tokio::test]
async fn every_pooled_connection_plans_each_execution_afresh() {
    let t = TestApp::spawn(Env::new(), true).await;
    // Several connections at once, so the check is not about one lucky connection.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(t.app.store.pool().acquire().await.unwrap());
    }
    for conn in held.iter_mut() {
        let mode: String = sqlx::query_scalar("SHOW plan_cache_mode")
            .fetch_one(&mut **conn)
            .await
            .unwrap();
        assert_eq!(mode, "force_custom_plan");
    }
    drop(held);
    t.stop().await;
}

#[tokio::test]
async fn the_autovacuum_check_sees_the_table_switch_as_well_as_the_server_setting() {
    let t = TestApp::spawn(Env::new(), true).await;
    let store = &t.app.store;
    let server_on: bool = sqlx::query_scalar("SELECT current_setting('autovacuum')::bool")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(store.autovacuum_covers_notifications().await.unwrap(), server_on);
    sqlx::query("ALTER TABLE notifications SET (autovacuum_enabled = false)")
        .execute(store.pool())
        .await
        .unwrap();
    assert!(!store.autovacuum_covers_notifications().await.unwrap());
    sqlx::query("ALTER TABLE notifications RESET (autovacuum_enabled)")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(store.autovacuum_covers_notifications().await.unwrap(), server_on);
    t.stop().await;
}
