//! Claims and outcomes. A claim moves a notification to SENDING under a lease and hands back
//! a `Claimed`: the only way to get one, and what the provider needs to send. Recording the
//! attempt's `Outcome` consumes it. The scanner records the outcome of a lease that expired
//! through the same statement, with `LeaseGuard::Expired` instead of a lease.

use std::sync::Arc;
use std::time::Duration;

use sqlx::PgConnection;
use uuid::Uuid;

use super::{status_from, StoreResult, ASYNC_COMMIT, COLUMNS};
use crate::domain::{truncate_chars, Notification, Outcome, Status, Transition};

/// Attempt errors are recorded up to this many characters.
const MAX_ATTEMPT_ERROR_CHARS: usize = 1024;

/// The right to deliver one notification and record what became of it. Only a claim makes
/// one, so a notification can be sent only under a claim (invariant 2).
#[derive(Clone, Debug)]
pub struct Lease {
    token: Uuid,
}

/// A notification this process holds under a lease, as the claim left it (SENDING).
#[derive(Debug)]
pub struct Claimed {
    notification: Notification,
    lease: Lease,
}

impl Claimed {
    pub fn notification(&self) -> &Notification {
        &self.notification
    }

    /// The number of the attempt this claim is for (1-based).
    pub fn attempt(&self) -> i32 {
        self.notification.attempt_count + 1
    }
}

/// Why a claim was refused.
#[derive(Debug, PartialEq)]
pub enum ClaimRefusal {
    NotFound,
    /// Terminal, canceled, leased by another worker, or not yet due.
    NotClaimable(Status),
}

/// Who may move the notification to an outcome's state.
#[derive(Clone, Debug)]
pub enum LeaseGuard {
    /// Only while this lease is still the notification's (the scanner may have recovered it).
    Held(Lease),
    /// Only once its lease has expired (the scanner's recovery; the row is locked by it).
    Expired,
}

/// One finished attempt on its way to the database.
#[derive(Clone, Debug)]
pub struct OutcomeRecord {
    id: Uuid,
    guard: LeaseGuard,
    outcome: Outcome,
    /// Kind and host of the provider the attempt went to; None for the scanner's records of
    /// attempts whose worker is gone.
    provider: Option<Arc<str>>,
    /// The span id of the attempt's provider call, when it was traced.
    span_id: Option<String>,
}

impl OutcomeRecord {
    /// The holder's record: consumes the claim, whose lease ends with it.
    pub fn held(claimed: Claimed, outcome: Outcome, provider: Arc<str>) -> OutcomeRecord {
        OutcomeRecord {
            id: claimed.notification.id,
            guard: LeaseGuard::Held(claimed.lease),
            outcome,
            provider: Some(provider),
            span_id: None,
        }
    }

    /// The scanner's record for a notification whose lease expired.
    pub fn expired(id: Uuid, outcome: Outcome) -> OutcomeRecord {
        OutcomeRecord {
            id,
            guard: LeaseGuard::Expired,
            outcome,
            provider: None,
            span_id: None,
        }
    }

    /// The record of a traced attempt, whose provider call had span `span_id`.
    pub fn traced(mut self, span_id: Option<String>) -> OutcomeRecord {
        self.span_id = span_id;
        self
    }

    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    fn token(&self) -> Option<Uuid> {
        match &self.guard {
            LeaseGuard::Held(lease) => Some(lease.token),
            LeaseGuard::Expired => None,
        }
    }
}

/// One claim request: the notification, the caller's lease token and the lease length.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ClaimRequest {
    pub id: Uuid,
    pub token: Uuid,
    pub lease: Duration,
}

impl ClaimRequest {
    pub fn new(id: Uuid, lease: Duration) -> ClaimRequest {
        ClaimRequest {
            id,
            token: Uuid::new_v4(),
            lease,
        }
    }
}

/// Claims notifications for delivery: ACCEPTED|QUEUED (and due) → SENDING under a lease
/// identified by each request's token. One statement for all, so two workers cannot both
/// claim a row. It matches rows by id alone and decides inside SET, so a claim that meets
/// a row locked by a scanner or a replay waits for that transaction and judges the
/// committed state (a WHERE on the status would judge the old snapshot and refuse without
/// waiting). Two requests for one row (a duplicated message) in one call: one wins, the
/// other sees the row SENDING under another token.
pub(crate) async fn claim_on(
    conn: &mut PgConnection,
    requests: &[ClaimRequest],
) -> StoreResult<Vec<Result<Claimed, ClaimRefusal>>> {
    let c = format!(
        "({} AND (next_retry_at IS NULL OR next_retry_at <= now()) AND (scheduled_at IS NULL OR scheduled_at <= now()))",
        status_from(Transition::Claim)
    );
    let sending = Status::Sending;
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        notification: Notification,
        claim_token: Uuid,
        claimed: bool,
    }
    // Committed without waiting for its WAL flush (`synchronous_commit` off for this
    // statement's transaction alone): the claim is visible to every other transaction at
    // once, which is all that invariant 2 needs, and only a PostgreSQL crash or fail-over
    // could undo it. The outcome's commit is synchronous and flushes the claim's WAL before
    // its own, so an undone claim has no recorded outcome: the outcome's lease guard then
    // fails, and the worker requeues the message (`Deliverer::lease_lost`), which delivers
    // again, as after any crash mid-attempt. Waiting for the flush cost about 0.5 ms of each
    // delivery at one client (docs/PERFORMANCE.md).
    // Rows are locked in id order, the same order as every other multi-row write, so two
    // statements that share rows wait for each other instead of deadlocking. `id = ANY($1)`
    // beside the join keeps the plan on the primary key: without it, while the table is
    // small or its statistics stale, PostgreSQL hashes a sequential scan of the whole table.
    let mut sorted: Vec<&ClaimRequest> = requests.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "WITH {ASYNC_COMMIT} \
         UPDATE notifications SET \
           status = CASE WHEN {c} THEN '{sending}' ELSE status END, \
           lease_token = CASE WHEN {c} THEN j.claim_token ELSE lease_token END, \
           lease_expires_at = CASE WHEN {c} THEN now() + (j.lease_ms * interval '1 millisecond') ELSE lease_expires_at END, \
           updated_at = CASE WHEN {c} THEN now() ELSE updated_at END \
         FROM (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) WITH ORDINALITY \
                 AS u(claim_id, claim_token, lease_ms, n) ORDER BY n) AS j, async_commit \
         WHERE id = j.claim_id AND id = ANY($1) \
         RETURNING {COLUMNS}, j.claim_token, (status = '{sending}' AND lease_token IS NOT DISTINCT FROM j.claim_token) AS claimed"
    ))
    .bind(sorted.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.token).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.lease.as_millis() as i64).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    Ok(requests
        .iter()
        .map(|r| {
            let Some(row) = rows.iter().find(|row| row.notification.id == r.id) else {
                return Err(ClaimRefusal::NotFound);
            };
            if row.claimed && row.claim_token == r.token {
                Ok(Claimed {
                    notification: row.notification.clone(),
                    lease: Lease { token: r.token },
                })
            } else {
                Err(ClaimRefusal::NotClaimable(row.notification.status))
            }
        })
        .collect())
}

/// Records attempts and moves each notification to its outcome's state, in one statement
/// (so one commit, and one round trip when it autocommits). The attempt is recorded in
/// every case; the state changes only as the record's guard allows: while its lease is
/// still the row's, or once the row's lease has expired. Returns, per record, whether the
/// state changed.
///
/// The guards test the lease columns alone: the schema allows a token only on a SENDING
/// row (constraint `notifications_lease_only_while_sending`). A `status = 'SENDING'`
/// condition would say the same, but it lets the planner scan the partial indexes on
/// status, which hold an entry for every notification that ever passed through SENDING
/// until vacuum.
pub async fn record_outcomes_on(conn: &mut PgConnection, records: &[OutcomeRecord]) -> StoreResult<Vec<bool>> {
    let mut sorted: Vec<&OutcomeRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let o: Vec<&Outcome> = sorted.iter().map(|r| &r.outcome).collect();
    // The guard stands for `status_from(Transition::RecordOutcome)` (see above).
    let applied: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(&format!(
        "WITH attempts AS ( \
           INSERT INTO notification_attempts \
             (notification_id, attempt_number, outcome, status_code, response_body, error, duration_ms, provider) \
           SELECT * FROM UNNEST($1::uuid[], $3::int4[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::int4[], $14::text[])) \
         UPDATE notifications SET \
           status = j.new_status, \
           provider_message_id = CASE WHEN j.new_status = '{sent}' THEN j.provider_id ELSE provider_message_id END, \
           next_retry_at = now() + (j.retry_ms * interval '1 millisecond'), \
           last_error = j.last_error, \
           failure_reason = CASE WHEN j.new_status = '{failed}' THEN j.reason ELSE failure_reason END, \
           attempt_count = attempt_count + 1, lease_token = NULL, lease_expires_at = NULL, updated_at = now(), \
           trace_last_span = COALESCE(j.span_id, trace_last_span) \
         FROM (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $9::text[], $10::text[], $11::int8[], $12::text[], $13::text[], \
                                    $15::text[]) \
                 WITH ORDINALITY AS u(outcome_id, outcome_token, new_status, provider_id, retry_ms, last_error, reason, span_id, n) \
               ORDER BY n) AS j \
         WHERE id = j.outcome_id AND id = ANY($1) \
           AND CASE WHEN j.outcome_token IS NOT NULL THEN lease_token = j.outcome_token \
                    ELSE lease_token IS NOT NULL AND lease_expires_at < now() END \
         RETURNING id, j.outcome_token",
        sent = Status::Sent,
        failed = Status::Failed
    ))
    .bind(sorted.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.token()).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.attempt).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.result.kind()).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.result.status_code().map(i32::from)).collect::<Vec<_>>())
    .bind(o.iter().map(|o| Some(o.result.body()).filter(|b| !b.is_empty())).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.result.error().map(|e| truncate_chars(e, MAX_ATTEMPT_ERROR_CHARS))).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.duration.as_millis().min(i32::MAX as u128) as i32).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.status().as_str()).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.provider_message_id()).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.retry_after().map(|d| d.as_millis() as i64)).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.last_error()).collect::<Vec<_>>())
    .bind(o.iter().map(|o| o.dead_letter_reason().map(|r| r.as_str())).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.provider.as_deref()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.span_id.as_deref()).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    Ok(records
        .iter()
        .map(|r| applied.iter().any(|&(id, token)| id == r.id && token == r.token()))
        .collect())
}
