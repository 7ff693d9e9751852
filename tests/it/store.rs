//! The group-commit writes against the real PostgreSQL: several callers' items share one
//! statement, and each caller still gets exactly its own answer.

use std::time::Duration;

use dispatchctl::domain::backoff::Backoff;
use dispatchctl::domain::{DeliveryResult, Outcome, Status};
use dispatchctl::store::lease::record_outcomes_on;
use dispatchctl::store::{ClaimRefusal, OutcomeRecord};
use futures_util::future::join_all;
use uuid::Uuid;

use crate::helpers::{new_notification, Env, TestApp};

const LEASE: Duration = Duration::from_secs(30);

/// Stored QUEUED and never handed to the publisher, so no worker can touch it.
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

const BACKOFF: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(60),
};

fn sent() -> Outcome {
    let answer = DeliveryResult::Success {
        status: 200,
        provider_message_id: Some("p-1".into()),
        body: String::new(),
    };
    Outcome::decide(answer, 1, 5, Duration::from_millis(3), &BACKOFF, 0.0)
}

async fn status_of(t: &TestApp, id: Uuid) -> Status {
    t.app.store.get(id).await.expect("get").expect("exists").status
}

#[tokio::test]
async fn concurrent_claims_of_one_notification_let_exactly_one_win() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let mut results = join_all((0..12).map(|_| t.app.writes.claim(id, LEASE))).await;
    let winners = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    assert_eq!(winners, 1, "exactly one claim wins: {results:?}");
    for r in &results {
        assert!(
            matches!(r, Ok(Ok(_)) | Ok(Err(ClaimRefusal::NotClaimable(Status::Sending)))),
            "the others see it SENDING: {r:?}"
        );
    }
    // Only the winner holds a lease (`Claimed`), so only it can record an outcome.
    let Some(Ok(Ok(claimed))) = results.drain(..).find(|r| matches!(r, Ok(Ok(_)))) else {
        unreachable!("one claim won")
    };
    assert!(t
        .app
        .writes
        .record_outcome(claimed, sent(), "webhook test".into())
        .await
        .unwrap());
    assert_eq!(status_of(&t, id).await, Status::Sent);
    assert_eq!(t.app.store.lookup(id).await.unwrap().unwrap().1.len(), 1);
    t.stop().await;
}

#[tokio::test]
async fn a_lease_recovered_after_it_expired_no_longer_lets_its_holder_record() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let claimed = t.app.writes.claim(id, LEASE).await.unwrap().expect("claimed");
    let lost = Outcome::lease_expired(1, 5, &BACKOFF, 0.0);
    let mut conn = t.app.store.pool().acquire().await.unwrap();
    let early = record_outcomes_on(&mut conn, &[OutcomeRecord::expired(id, lost.clone())]).await;
    assert_eq!(
        early.unwrap(),
        vec![false],
        "a lease that has not expired is not recovered"
    );
    assert_eq!(status_of(&t, id).await, Status::Sending);
    sqlx::query("UPDATE notifications SET lease_expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .unwrap();
    let recovered = record_outcomes_on(&mut conn, &[OutcomeRecord::expired(id, lost)]).await;
    assert_eq!(recovered.unwrap(), vec![true]);
    assert!(
        !t.app
            .writes
            .record_outcome(claimed, sent(), "webhook test".into())
            .await
            .unwrap(),
        "the old holder's outcome does not move the row"
    );
    assert_eq!(status_of(&t, id).await, Status::Queued);
    let (_, attempts) = t.app.store.lookup(id).await.unwrap().unwrap();
    assert_eq!(attempts.len(), 3, "every attempt is recorded: {attempts:?}");
    drop(conn);
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
    let results = join_all(wanted.iter().map(|&id| t.app.writes.claim(id, LEASE))).await;
    for (id, r) in wanted.iter().zip(&results) {
        match r {
            Ok(Ok(claimed)) => {
                assert_eq!(claimed.notification().id, *id, "a caller gets its own notification");
                assert_eq!(claimed.notification().status, Status::Sending);
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
async fn the_schema_refuses_a_lease_outside_sending() {
    let t = TestApp::spawn(Env::new(), true).await;
    let id = stored(&t, 1).await;
    let refused = sqlx::query("UPDATE notifications SET lease_token = $2 WHERE id = $1")
        .bind(id)
        .bind(Uuid::new_v4())
        .execute(t.app.store.pool())
        .await
        .expect_err("a token on a QUEUED row violates the constraint");
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

/// One notification in each status, every other condition of the transitions met: created
/// and last touched long ago, a retry due, scheduled (`scheduled`) or not, the SENDING one
/// under a lease that has expired, no dead letter recorded.
async fn one_in_each_status(t: &TestApp, scheduled: bool) -> Vec<(Status, Uuid)> {
    let mut rows = Vec::new();
    for (i, status) in Status::ALL.iter().enumerate() {
        let id = stored(t, i).await;
        let leased = *status == Status::Sending;
        sqlx::query(
            "UPDATE notifications SET status = $2, created_at = '2000-01-01Z', updated_at = '2000-01-01Z', \
               next_retry_at = now() - interval '1 second', \
               scheduled_at = CASE WHEN $3 THEN now() - interval '1 second' END, \
               lease_token = CASE WHEN $4 THEN gen_random_uuid() END, \
               lease_expires_at = CASE WHEN $4 THEN now() - interval '1 second' END, \
               failure_reason = 'permanent_error' \
             WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(scheduled)
        .bind(leased)
        .execute(t.app.store.pool())
        .await
        .expect("set status");
        rows.push((*status, id));
    }
    rows
}

/// Gives every notification a work row with these `published_at` and `claimed_at`, whatever
/// its status, so that a pass's status condition alone decides what it selects.
async fn set_work_rows(pool: &sqlx::PgPool, published_at: &str, claimed_at: &str) {
    sqlx::query(&format!(
        "INSERT INTO notification_outbox (notification_id, queue_channel, queue_priority, published_at, claimed_at) \
         SELECT id, channel, priority, {published_at}, {claimed_at} FROM notifications \
         ON CONFLICT (notification_id) DO UPDATE SET published_at = EXCLUDED.published_at, claimed_at = EXCLUDED.claimed_at"
    ))
    .execute(pool)
    .await
    .unwrap();
}

/// Whether a statement touched the row: it changed `updated_at` or deleted the row.
async fn touched(t: &TestApp, id: Uuid) -> bool {
    let at: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT updated_at FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(t.app.store.pool())
            .await
            .expect("read");
    at.is_none_or(|at| at.timestamp() != 946_684_800)
}

fn sorted(mut states: Vec<Status>) -> Vec<Status> {
    states.sort_by_key(|s| s.as_str());
    states
}

/// Invariant: every SQL statement that changes a status applies exactly the source states of
/// its transition in `domain::transition`, so the two cannot drift apart.
#[tokio::test]
async fn every_statement_moves_exactly_the_rows_its_rule_allows() {
    use dispatchctl::domain::Transition;
    use dispatchctl::store::scan::lock_due;
    use dispatchctl::store::ScanKind;

    let t = TestApp::spawn(Env::new(), true).await;
    let pool = t.app.store.pool().clone();
    for &transition in Transition::ALL {
        let mut moved = Vec::new();
        match transition {
            Transition::Claim => {
                for (status, id) in one_in_each_status(&t, false).await {
                    if let Ok(Ok(_)) = t.app.writes.claim(id, LEASE).await {
                        moved.push(status);
                    }
                }
            }
            Transition::RecordOutcome => {
                for (status, id) in one_in_each_status(&t, false).await {
                    let lost = Outcome::lease_expired(1, 5, &BACKOFF, 0.0);
                    let mut conn = pool.acquire().await.unwrap();
                    if record_outcomes_on(&mut conn, &[OutcomeRecord::expired(id, lost)])
                        .await
                        .unwrap()[0]
                    {
                        moved.push(status);
                    }
                }
            }
            Transition::Cancel => {
                for (status, id) in one_in_each_status(&t, false).await {
                    if t.app.store.cancel(id).await.unwrap() == dispatchctl::store::CancelOutcome::Canceled {
                        moved.push(status);
                    }
                }
            }
            Transition::Replay => {
                for (status, id) in one_in_each_status(&t, false).await {
                    let mut conn = pool.acquire().await.unwrap();
                    if dispatchctl::store::replay::reset_failed(&mut conn, id, false)
                        .await
                        .unwrap()
                        .is_some()
                    {
                        moved.push(status);
                    }
                }
            }
            Transition::Prune => {
                let rows = one_in_each_status(&t, false).await;
                let cutoff = chrono::Utc::now() + chrono::Duration::hours(1);
                let batch = t.app.store.prune_batch(cutoff, 100, false).await.unwrap();
                batch.commit().await.unwrap();
                for (status, id) in rows {
                    if touched(&t, id).await {
                        moved.push(status);
                    }
                }
            }
            // Made by the scanner's passes (and the create's publisher, which only stamps the
            // work rows of what it published), each of which selects its rows by the rule.
            Transition::Publish
            | Transition::Enqueue
            | Transition::Retry
            | Transition::Requeue
            | Transition::DeadLetter => {}
        }
        for &kind in ScanKind::ALL.iter().filter(|k| k.transition() == transition) {
            let rows = one_in_each_status(&t, kind == ScanKind::Scheduled).await;
            if kind == ScanKind::Unpublished {
                // Every row owes its first message, and none waits for a retry: the pass must
                // still pick only those the rule allows.
                sqlx::query("UPDATE notifications SET next_retry_at = NULL")
                    .execute(&pool)
                    .await
                    .unwrap();
                set_work_rows(&pool, "NULL", "NULL").await;
            }
            if kind == ScanKind::ExpiredLease {
                // Every row is claimed with an expired lease: only the status may decide.
                set_work_rows(&pool, "NULL", "now()").await;
                sqlx::query("UPDATE notifications SET lease_expires_at = now() - interval '1 second'")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            if kind == ScanKind::LostDeadLetter {
                // Every row's letter was confirmed long ago: only the status may decide.
                sqlx::query("UPDATE notifications SET dead_lettered_at = '2000-01-01Z'")
                    .execute(&pool)
                    .await
                    .unwrap();
            }
            if kind == ScanKind::Lost {
                // Every row's message was confirmed long ago and none waits for a retry: only
                // the status may decide.
                sqlx::query("UPDATE notifications SET next_retry_at = NULL")
                    .execute(&pool)
                    .await
                    .unwrap();
                set_work_rows(&pool, "'2000-01-01Z'", "NULL").await;
            }
            let mut tx = t.app.store.begin().await.unwrap();
            let due = lock_due(&mut tx, kind, Duration::ZERO, 100).await.unwrap();
            tx.rollback().await.unwrap();
            let selected: Vec<Status> = rows
                .iter()
                .filter(|(_, id)| due.iter().any(|d| d.id == *id))
                .map(|(s, _)| *s)
                .collect();
            assert_eq!(
                sorted(selected),
                sorted(transition.from().to_vec()),
                "scan {kind:?} selects the sources of {transition:?}"
            );
        }
        if !matches!(
            transition,
            Transition::Publish
                | Transition::Enqueue
                | Transition::Retry
                | Transition::Requeue
                | Transition::DeadLetter
        ) {
            assert_eq!(
                sorted(moved),
                sorted(transition.from().to_vec()),
                "{transition:?} applies to exactly its source states"
            );
        }
        // The next transition starts from a clean table.
        sqlx::query("DELETE FROM notifications").execute(&pool).await.unwrap();
        sqlx::query("DELETE FROM notification_outbox")
            .execute(&pool)
            .await
            .unwrap();
    }
    t.stop().await;
}

/// The publish stamp never waits for a work row that a claim or an outcome holds: it skips
/// it. Waiting, it deadlocked against their triggers about ten times a minute at saturation
/// (docs/PERFORMANCE.md, "The publish stamp's deadlocks").
#[tokio::test]
async fn the_publish_stamp_skips_a_work_row_another_transaction_holds() {
    let t = TestApp::spawn(Env::new(), true).await;
    let (held, free) = (stored(&t, 0).await, stored(&t, 1).await);
    let pool = t.app.store.pool();
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM notification_outbox WHERE notification_id = $1 FOR UPDATE")
        .bind(held)
        .execute(&mut *holder)
        .await
        .unwrap();
    let stamped = tokio::time::timeout(Duration::from_secs(5), t.app.store.mark_published(&[held, free])).await;
    assert!(
        matches!(stamped, Ok(Ok(()))),
        "the stamp waited for the held row: {stamped:?}"
    );
    let published = |id: Uuid| async move {
        sqlx::query_scalar::<_, bool>(
            "SELECT published_at IS NOT NULL FROM notification_outbox WHERE notification_id = $1",
        )
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
    };
    assert!(published(free).await, "the free row is stamped");
    assert!(!published(held).await, "the held row is skipped");
    holder.rollback().await.unwrap();
    t.stop().await;
}
