//! PostgreSQL adapter: every SQL statement of the program lives in this module. States are
//! changed only by conditional updates, so two processes racing on one row cannot both win.

pub mod batched;
pub mod lookup;
pub mod prune;
pub mod replay;
pub mod scan;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::domain::{Channel, DeadLetterReason, NewNotification, Notification, Status};

pub use scan::{DueRow, ExpiredLease, ScanKind};

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

const COLUMNS: &str = "id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, content, \
     status, provider_message_id, attempt_count, max_retries, scheduled_at, next_retry_at, created_at, updated_at";
/// What the read endpoints show: the hot paths' columns and why the last attempt failed.
const VIEW_COLUMNS: &str = "id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, content, \
     status, provider_message_id, attempt_count, max_retries, scheduled_at, next_retry_at, created_at, updated_at, \
     last_error, failure_reason";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The failure of a shared (batched) transaction, handed to each of its items.
    #[error("{0}")]
    Shared(std::sync::Arc<StoreError>),
    /// A failed TLS handshake, as one line naming the check (unknown CA, host name, no TLS).
    #[error("{0}")]
    Tls(String),
}

impl StoreError {
    /// Replaces a connection error that is a failed TLS handshake by the check that failed,
    /// in place of sqlx's nested wording.
    fn naming_tls_check(self) -> StoreError {
        match &self {
            StoreError::Database(e) => crate::tls::describe(e).map_or(self, StoreError::Tls),
            _ => self,
        }
    }

    /// The database could not be reached (as opposed to a statement that failed).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Database(
                sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_),
            ) => true,
            // 57P: the server is shutting down or restarting; 08: connection exceptions.
            StoreError::Database(sqlx::Error::Database(e)) => {
                e.code().is_some_and(|c| c.starts_with("57P") || c.starts_with("08"))
            }
            StoreError::Shared(inner) => inner.is_unavailable(),
            StoreError::Tls(_) => true,
            _ => false,
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: PgPool,
}

/// The answer to a cancel request.
#[derive(Debug, PartialEq)]
pub enum CancelOutcome {
    Canceled,
    NotCancelable(Status),
    NotFound,
}

/// Why a claim was refused.
#[derive(Debug, PartialEq)]
pub enum ClaimRefusal {
    NotFound,
    /// Terminal, canceled, leased by another worker, or not yet due.
    NotClaimable(Status),
}

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub channel: Option<Channel>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub page: i64,
    pub page_size: i64,
}

/// One delivery attempt as it is recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub attempt_number: i32,
    pub outcome: &'static str,
    pub status_code: Option<i32>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// The state a finished attempt moves the notification to.
#[derive(Debug, Clone)]
pub enum OutcomeUpdate {
    Sent {
        provider_message_id: Option<String>,
    },
    Retry {
        after: Duration,
        error: String,
    },
    Failed {
        reason: DeadLetterReason,
        error: Option<String>,
    },
}

/// A dead letter the replay tooling can join with the database.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FailureDetails {
    pub id: Uuid,
    pub status: Status,
    pub recipient: String,
    pub attempt_count: i32,
    pub last_error: Option<String>,
    pub failure_reason: Option<String>,
}

impl Store {
    /// Connects, creating the database first when it does not exist yet.
    pub async fn connect(options: &PgConnectOptions, max_connections: u32) -> StoreResult<Store> {
        Self::connect_inner(options, max_connections)
            .await
            .map_err(StoreError::naming_tls_check)
    }

    async fn connect_inner(options: &PgConnectOptions, max_connections: u32) -> StoreResult<Store> {
        ensure_database(options).await?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5))
            // Plan every execution with its actual arguments and the table's current size.
            // A prepared statement otherwise settles on a generic plan made while the table
            // was small, and kept a sequential scan for the hot claims as it grew: in a
            // 10-minute run at 500/s the deliveries fell from 500/s to 50/s. A SET rather
            // than a startup option, which PgBouncer refuses by default.
            .after_connect(|conn, _| {
                Box::pin(async move {
                    sqlx::query("SET plan_cache_mode = force_custom_plan")
                        .execute(conn)
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Whether autovacuum looks after the notifications table: on in the server's settings
    /// and not switched off for the table. Every status change writes a new row version
    /// (status is indexed, so no HOT update), and only VACUUM takes the old ones out of the
    /// indexes that the scanner's sweeps and the hot updates walk.
    pub async fn autovacuum_covers_notifications(&self) -> StoreResult<bool> {
        let on: bool = sqlx::query_scalar(
            "SELECT current_setting('autovacuum')::bool \
               AND coalesce((SELECT option_value::bool \
                               FROM pg_class c, pg_options_to_table(c.reloptions) \
                              WHERE c.oid = 'notifications'::regclass \
                                AND option_name = 'autovacuum_enabled'), true)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(on)
    }

    pub async fn begin(&self) -> StoreResult<Transaction<'static, Postgres>> {
        Ok(self.pool.begin().await?)
    }

    /// Inserts a batch and its items in one transaction. Items whose idempotency key already
    /// exists map to the existing notification; the result keeps the order of `items`.
    /// A batch whose items are exactly the items of one earlier batch (a retried request)
    /// creates nothing and answers with that batch's id, so its summary and the response
    /// describe the same notifications.
    pub async fn insert_batch(
        &self,
        batch_id: Uuid,
        items: &[NewNotification],
    ) -> StoreResult<(Uuid, Vec<(Notification, bool)>)> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("INSERT INTO batches (id, total_count) VALUES ($1, $2)")
            .bind(batch_id)
            .bind(items.len() as i32)
            .execute(&mut *tx)
            .await?;
        let out = insert_notifications_on(&mut tx, Some(batch_id), items).await?;
        if let Some(earlier) = replayed_batch(&mut tx, &out).await? {
            tx.rollback().await?;
            return Ok((earlier, out));
        }
        tx.commit().await?;
        Ok((batch_id, out))
    }

    /// ACCEPTED → QUEUED for notifications whose work message the broker confirmed. A worker
    /// that already claimed one is not overruled.
    pub async fn mark_queued(&self, ids: &[Uuid]) -> StoreResult<()> {
        mark_queued_on(&mut *self.pool.acquire().await?, ids).await
    }

    pub async fn get(&self, id: Uuid) -> StoreResult<Option<Notification>> {
        Ok(
            sqlx::query_as(&format!("SELECT {VIEW_COLUMNS} FROM notifications WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn get_many(&self, ids: &[Uuid]) -> StoreResult<Vec<Notification>> {
        Ok(
            sqlx::query_as(&format!("SELECT {VIEW_COLUMNS} FROM notifications WHERE id = ANY($1)"))
                .bind(ids)
                .fetch_all(&self.pool)
                .await?,
        )
    }

    pub async fn cancel(&self, id: Uuid) -> StoreResult<CancelOutcome> {
        let done = sqlx::query(
            "UPDATE notifications SET status = 'CANCELED', next_retry_at = NULL, updated_at = now() \
             WHERE id = $1 AND status IN ('ACCEPTED', 'QUEUED')",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let status: Option<Status> = sqlx::query_scalar("SELECT status FROM notifications WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(status.map_or(CancelOutcome::NotFound, CancelOutcome::NotCancelable))
    }

    /// Newest first, with the total number of matches for pagination.
    pub async fn list(&self, f: &ListFilter) -> StoreResult<(Vec<Notification>, i64)> {
        const WHERE: &str = "WHERE ($1::text IS NULL OR status = $1) AND ($2::text IS NULL OR channel = $2) \
             AND ($3::timestamptz IS NULL OR created_at >= $3) AND ($4::timestamptz IS NULL OR created_at <= $4)";
        let rows: Vec<Notification> = sqlx::query_as(&format!(
            "SELECT {VIEW_COLUMNS} FROM notifications {WHERE} ORDER BY created_at DESC, id DESC LIMIT $5 OFFSET $6"
        ))
        .bind(f.status)
        .bind(f.channel)
        .bind(f.from)
        .bind(f.to)
        .bind(f.page_size)
        .bind((f.page - 1).saturating_mul(f.page_size))
        .fetch_all(&self.pool)
        .await?;
        let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM notifications {WHERE}"))
            .bind(f.status)
            .bind(f.channel)
            .bind(f.from)
            .bind(f.to)
            .fetch_one(&self.pool)
            .await?;
        Ok((rows, total))
    }

    /// The batch's declared size and its items counted per status, or None when unknown.
    pub async fn batch_summary(&self, batch_id: Uuid) -> StoreResult<Option<(i32, Vec<(Status, i64)>)>> {
        let total: Option<i32> = sqlx::query_scalar("SELECT total_count FROM batches WHERE id = $1")
            .bind(batch_id)
            .fetch_optional(&self.pool)
            .await?;
        let Some(total) = total else { return Ok(None) };
        let counts: Vec<(Status, i64)> =
            sqlx::query_as("SELECT status, count(*) FROM notifications WHERE batch_id = $1 GROUP BY status")
                .bind(batch_id)
                .fetch_all(&self.pool)
                .await?;
        let ordered = Status::ALL
            .iter()
            .filter_map(|s| counts.iter().find(|(st, _)| st == s).copied())
            .collect();
        Ok(Some((total, ordered)))
    }

    pub async fn mark_dead_lettered(&self, id: Uuid) -> StoreResult<()> {
        sqlx::query("UPDATE notifications SET dead_lettered_at = now() WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    pub async fn failure_details(&self, ids: &[Uuid]) -> StoreResult<Vec<FailureDetails>> {
        Ok(sqlx::query_as(
            "SELECT id, status, recipient, attempt_count, last_error, failure_reason FROM notifications WHERE id = ANY($1)",
        )
        .bind(ids)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Number of attempts recorded for a notification (used by tests and the CLI).
    pub async fn attempts(&self, id: Uuid) -> StoreResult<Vec<(i32, String, Option<i32>, Option<String>)>> {
        Ok(sqlx::query_as(
            "SELECT attempt_number, outcome, status_code, error FROM notification_attempts \
             WHERE notification_id = $1 ORDER BY attempt_number, id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }
}

/// Inserts notifications in one statement; an item whose idempotency key is already taken
/// (by an earlier row or an earlier item of the same call) maps to the row that holds it.
/// The unique index decides, so concurrent identical requests yield one row. The result
/// keeps the order of `items`; the boolean says whether this call created the row.
pub(crate) async fn insert_notifications_on(
    conn: &mut PgConnection,
    batch_id: Option<Uuid>,
    items: &[NewNotification],
) -> StoreResult<Vec<(Notification, bool)>> {
    // Two calls that insert the same keys take the index's locks in the same order, so
    // they wait for each other instead of deadlocking.
    let mut order: Vec<&NewNotification> = items.iter().collect();
    order.sort_by(|a, b| a.idempotency_key.cmp(&b.idempotency_key));
    let inserted: Vec<Notification> = sqlx::query_as(&format!(
        "INSERT INTO notifications (id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, \
           content, status, max_retries, scheduled_at) \
         SELECT t.id, t.correlation_id, t.idempotency_key, $1, t.channel, t.priority, t.recipient, t.content, \
           'ACCEPTED', t.max_retries, t.scheduled_at \
         FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                     $9::int4[], $10::timestamptz[]) WITH ORDINALITY \
           AS t(id, correlation_id, idempotency_key, channel, priority, recipient, content, max_retries, scheduled_at, n) \
         ORDER BY t.n \
         ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
         RETURNING {COLUMNS}"
    ))
    .bind(batch_id)
    .bind(order.iter().map(|n| n.id).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.correlation_id.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.idempotency_key.as_deref()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.channel.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.priority.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.recipient.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.content.as_str()).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.max_retries).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.scheduled_at).collect::<Vec<_>>())
    .fetch_all(&mut *conn)
    .await?;
    let mut existing: Vec<Notification> = Vec::new();
    if inserted.len() < items.len() {
        let keys: Vec<&str> = items.iter().filter_map(|n| n.idempotency_key.as_deref()).collect();
        existing = sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM notifications WHERE idempotency_key = ANY($1)"
        ))
        .bind(keys)
        .fetch_all(&mut *conn)
        .await?;
    }
    let by_id: HashMap<Uuid, Notification> = inserted.into_iter().map(|r| (r.id, r)).collect();
    let by_key: HashMap<&str, &Notification> = existing
        .iter()
        .filter_map(|r| r.idempotency_key.as_deref().map(|k| (k, r)))
        .collect();
    items
        .iter()
        .map(|item| {
            if let Some(row) = by_id.get(&item.id) {
                return Ok((row.clone(), true));
            }
            match item.idempotency_key.as_deref().and_then(|k| by_key.get(k)) {
                Some(row) => Ok(((*row).clone(), false)),
                // Not inserted and no key to explain it: cannot happen short of a bug.
                None => Err(StoreError::Database(sqlx::Error::RowNotFound)),
            }
        })
        .collect()
}

/// The earlier batch that `rows` replay: none of them new, all distinct members of one
/// batch, and that batch holds no other notification.
async fn replayed_batch(conn: &mut PgConnection, rows: &[(Notification, bool)]) -> StoreResult<Option<Uuid>> {
    let Some(earlier) = rows.first().and_then(|(n, _)| n.batch_id) else {
        return Ok(None);
    };
    let ids: std::collections::HashSet<Uuid> = rows.iter().map(|(n, _)| n.id).collect();
    let same_batch = rows.iter().all(|(n, created)| !created && n.batch_id == Some(earlier));
    if !same_batch || ids.len() != rows.len() {
        return Ok(None);
    }
    let members: i64 = sqlx::query_scalar("SELECT count(*) FROM notifications WHERE batch_id = $1")
        .bind(earlier)
        .fetch_one(&mut *conn)
        .await?;
    Ok((members == rows.len() as i64).then_some(earlier))
}

/// ACCEPTED → QUEUED for notifications whose work message is on the broker. A row locked
/// by someone else is skipped rather than waited for: whoever holds it (a worker's claim, a
/// cancel, the scanner's republish) moves it on anyway, and a mark that waited could
/// deadlock with a multi-row claim locking the same rows in another order. A row left
/// ACCEPTED by a skipped mark costs at most one extra message from the scanner.
pub(crate) async fn mark_queued_on(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE notifications SET status = 'QUEUED', updated_at = now() \
         WHERE id IN (SELECT id FROM notifications WHERE id = ANY($1) AND status = 'ACCEPTED' FOR UPDATE SKIP LOCKED)",
    )
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One claim request: the notification, the caller's lease token and the lease length.
#[derive(Debug, Clone, Copy)]
pub struct ClaimRequest {
    pub id: Uuid,
    pub token: Uuid,
    pub lease: Duration,
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
) -> StoreResult<Vec<Result<Notification, ClaimRefusal>>> {
    const C: &str = "(status IN ('ACCEPTED', 'QUEUED') AND (next_retry_at IS NULL OR next_retry_at <= now()) \
         AND (scheduled_at IS NULL OR scheduled_at <= now()))";
    #[derive(sqlx::FromRow)]
    struct Claimed {
        #[sqlx(flatten)]
        notification: Notification,
        claim_token: Uuid,
        claimed: bool,
    }
    // Rows are locked in id order, the same order as every other multi-row write, so two
    // statements that share rows wait for each other instead of deadlocking. `id = ANY($1)`
    // beside the join keeps the plan on the primary key: without it, while the table is
    // small or its statistics stale, PostgreSQL hashes a sequential scan of the whole table.
    let mut sorted: Vec<&ClaimRequest> = requests.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let rows: Vec<Claimed> = sqlx::query_as(&format!(
        "UPDATE notifications SET \
           status = CASE WHEN {C} THEN 'SENDING' ELSE status END, \
           lease_token = CASE WHEN {C} THEN j.claim_token ELSE lease_token END, \
           lease_expires_at = CASE WHEN {C} THEN now() + (j.lease_ms * interval '1 millisecond') ELSE lease_expires_at END, \
           updated_at = CASE WHEN {C} THEN now() ELSE updated_at END \
         FROM (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::int8[]) WITH ORDINALITY \
                 AS u(claim_id, claim_token, lease_ms, n) ORDER BY n) AS j \
         WHERE id = j.claim_id AND id = ANY($1) \
         RETURNING {COLUMNS}, j.claim_token, (status = 'SENDING' AND lease_token IS NOT DISTINCT FROM j.claim_token) AS claimed"
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
                Ok(row.notification.clone())
            } else {
                Err(ClaimRefusal::NotClaimable(row.notification.status))
            }
        })
        .collect())
}

/// The outcome of one finished attempt, recorded by the holder of its lease.
#[derive(Debug, Clone)]
pub struct OutcomeRecord {
    pub id: Uuid,
    pub token: Uuid,
    pub attempt: AttemptRecord,
    pub update: OutcomeUpdate,
}

/// Records attempts and moves each notification to its outcome's state, in one statement
/// (so one commit, and one round trip when it autocommits). The attempt is recorded in
/// every case; the state changes only while the caller still holds the lease (the scanner
/// may have recovered it meanwhile). Returns, per record, whether the state changed.
///
/// The guard is the lease token alone: the schema allows a token only on a SENDING row
/// (constraint `notifications_lease_only_while_sending`). A `status = 'SENDING'` condition
/// would say the same, but it lets the planner scan the partial indexes on status, which
/// hold an entry for every notification that ever passed through SENDING until vacuum.
pub(crate) async fn record_outcomes_on(conn: &mut PgConnection, records: &[OutcomeRecord]) -> StoreResult<Vec<bool>> {
    let mut sorted: Vec<&OutcomeRecord> = records.iter().collect();
    sorted.sort_by_key(|r| r.id);
    let (mut status, mut provider_id, mut retry_ms, mut last_error, mut reason) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in &sorted {
        let (s, p, ms, e, why): (&str, Option<&str>, Option<i64>, Option<&str>, Option<&str>) = match &r.update {
            OutcomeUpdate::Sent { provider_message_id } => ("SENT", provider_message_id.as_deref(), None, None, None),
            OutcomeUpdate::Retry { after, error } => (
                "QUEUED",
                None,
                Some(after.as_millis() as i64),
                Some(error.as_str()),
                None,
            ),
            OutcomeUpdate::Failed { reason, error } => ("FAILED", None, None, error.as_deref(), Some(reason.as_str())),
        };
        status.push(s);
        provider_id.push(p);
        retry_ms.push(ms);
        last_error.push(e);
        reason.push(why);
    }
    let applied: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "WITH attempts AS ( \
           INSERT INTO notification_attempts \
             (notification_id, attempt_number, outcome, status_code, response_body, error, duration_ms) \
           SELECT * FROM UNNEST($1::uuid[], $3::int4[], $4::text[], $5::int4[], $6::text[], $7::text[], $8::int4[])) \
         UPDATE notifications SET \
           status = j.new_status, \
           provider_message_id = CASE WHEN j.new_status = 'SENT' THEN j.provider_id ELSE provider_message_id END, \
           next_retry_at = now() + (j.retry_ms * interval '1 millisecond'), \
           last_error = j.last_error, \
           failure_reason = CASE WHEN j.new_status = 'FAILED' THEN j.reason ELSE failure_reason END, \
           attempt_count = attempt_count + 1, lease_token = NULL, lease_expires_at = NULL, updated_at = now() \
         FROM (SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $9::text[], $10::text[], $11::int8[], $12::text[], $13::text[]) \
                 WITH ORDINALITY AS u(outcome_id, outcome_token, new_status, provider_id, retry_ms, last_error, reason, n) \
               ORDER BY n) AS j \
         WHERE id = j.outcome_id AND id = ANY($1) AND lease_token = j.outcome_token \
         RETURNING id, j.outcome_token",
    )
    .bind(sorted.iter().map(|r| r.id).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.token).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.attempt_number).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.outcome).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.status_code).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.response_body.as_deref()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.error.as_deref()).collect::<Vec<_>>())
    .bind(sorted.iter().map(|r| r.attempt.duration_ms).collect::<Vec<_>>())
    .bind(status)
    .bind(provider_id)
    .bind(retry_ms)
    .bind(last_error)
    .bind(reason)
    .fetch_all(&mut *conn)
    .await?;
    Ok(records
        .iter()
        .map(|r| applied.iter().any(|&(id, token)| id == r.id && token == r.token))
        .collect())
}

/// Records one delivery attempt. With `apply_outcome` in the same transaction it is the
/// outcome of an attempt; apply_outcome returns false when the lease was lost meanwhile
/// (the scanner recovered it): the attempt is still recorded, the state left to its holder.
pub(crate) async fn insert_attempt(conn: &mut PgConnection, id: Uuid, a: &AttemptRecord) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO notification_attempts (notification_id, attempt_number, outcome, status_code, response_body, error, duration_ms) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(id)
    .bind(a.attempt_number)
    .bind(a.outcome)
    .bind(a.status_code)
    .bind(&a.response_body)
    .bind(&a.error)
    .bind(a.duration_ms)
    .execute(conn)
    .await?;
    Ok(())
}

/// Moves a SENDING notification to the outcome's state. With a token, only the holder of
/// that lease may; without one (scanner recovery), only while the lease is expired.
pub(crate) async fn apply_outcome(
    conn: &mut PgConnection,
    id: Uuid,
    token: Option<Uuid>,
    update: &OutcomeUpdate,
) -> StoreResult<bool> {
    const RELEASE: &str =
        "attempt_count = attempt_count + 1, lease_token = NULL, lease_expires_at = NULL, updated_at = now()";
    const GUARD: &str = "WHERE id = $1 AND status = 'SENDING' \
         AND (($2::uuid IS NOT NULL AND lease_token = $2) OR ($2::uuid IS NULL AND lease_expires_at < now()))";
    let sql = match update {
        OutcomeUpdate::Sent { .. } => format!(
            "UPDATE notifications SET status = 'SENT', provider_message_id = $3, next_retry_at = NULL, last_error = NULL, {RELEASE} {GUARD}"
        ),
        OutcomeUpdate::Retry { .. } => format!(
            "UPDATE notifications SET status = 'QUEUED', next_retry_at = now() + ($3::bigint * interval '1 millisecond'), \
               last_error = $4, {RELEASE} {GUARD}"
        ),
        OutcomeUpdate::Failed { .. } => format!(
            "UPDATE notifications SET status = 'FAILED', next_retry_at = NULL, failure_reason = $3, last_error = $4, {RELEASE} {GUARD}"
        ),
    };
    let query = sqlx::query(&sql).bind(id).bind(token);
    let query = match update {
        OutcomeUpdate::Sent { provider_message_id } => query.bind(provider_message_id.clone()),
        OutcomeUpdate::Retry { after, error } => query.bind(after.as_millis() as i64).bind(error.clone()),
        OutcomeUpdate::Failed { reason, error } => query.bind(reason.as_str()).bind(error.clone()),
    };
    Ok(query.execute(conn).await?.rows_affected() == 1)
}

/// Creates the target database when it is missing (the Go service expected it to exist).
async fn ensure_database(options: &PgConnectOptions) -> StoreResult<()> {
    let Some(name) = options.get_database().map(str::to_string) else {
        return Ok(());
    };
    match PgConnection::connect_with(options).await {
        Ok(conn) => {
            let _ = conn.close().await;
            return Ok(());
        }
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {}
        Err(e) => return Err(e.into()),
    }
    let mut admin = PgConnection::connect_with(&options.clone().database("postgres")).await?;
    let create = sqlx::query(&format!("CREATE DATABASE \"{}\"", name.replace('"', "\"\"")))
        .execute(&mut admin)
        .await;
    let _ = admin.close().await;
    match create {
        // Another process created it between our check and our create.
        Err(sqlx::Error::Database(e)) if matches!(e.code().as_deref(), Some("42P04") | Some("23505")) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(_) => {
            tracing::info!(database = %name, "created database");
            Ok(())
        }
    }
}
