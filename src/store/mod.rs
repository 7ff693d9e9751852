//! PostgreSQL adapter: every SQL statement of the program lives in this module. States are
//! changed only by conditional updates, so two processes racing on one row cannot both win.

pub mod batched;
mod codec;
pub mod lease;
pub mod lookup;
pub mod migrations;
pub mod primary;
pub mod prune;
pub mod replay;
pub mod scan;
pub mod stuck;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool, Postgres, Transaction};
use uuid::Uuid;

use crate::config::PgTargets;
use crate::domain::{Channel, NewNotification, Notification, Status, Transition};

pub use lease::{ClaimRefusal, Claimed, Lease, OutcomeRecord};
pub use migrations::MIGRATOR;
pub use scan::{DueRow, ScanKind};

const COLUMNS: &str = "id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, content, \
     status, provider_message_id, attempt_count, max_retries, scheduled_at, next_retry_at, created_at, updated_at, \
     traceparent, tracestate, trace_last_span";
/// What the read endpoints show: the hot paths' columns and why the last attempt failed.
const VIEW_COLUMNS: &str = "id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, content, \
     status, provider_message_id, attempt_count, max_retries, scheduled_at, next_retry_at, created_at, updated_at, \
     last_error, failure_reason";

/// A CTE that makes its statement's transaction commit without waiting for the WAL flush
/// (`synchronous_commit` off for that transaction alone, no extra round trip): for writes that
/// a PostgreSQL crash may undo because what follows detects it (the claim, the outbox delete;
/// see where they use it). MATERIALIZED and referenced in FROM, so it runs once.
pub(crate) const ASYNC_COMMIT: &str =
    "async_commit AS MATERIALIZED (SELECT set_config('synchronous_commit', 'off', true))";

/// The states a transition starts from, as SQL: `status = 'A'` or `status IN ('A', 'B')`.
/// Literals rather than a bound array, so that each statement reads as the rule it renders
/// (no index names `status` any more: migrations/20261209000001).
pub fn status_from(t: Transition) -> String {
    let states: Vec<String> = t.from().iter().map(|s| format!("'{}'", s.as_str())).collect();
    match states.as_slice() {
        [one] => format!("status = {one}"),
        many => format!("status IN ({})", many.join(", ")),
    }
}

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
    /// None of DATABASE_DSN's hosts would serve: each is named with the reason.
    #[error("{0}")]
    NoPrimary(String),
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
            // 57P: the server is shutting down or restarting; 08: connection exceptions;
            // 25006: a write on a read-only server (a primary demoted under us, until the
            // watcher in `primary` has found the new one).
            StoreError::Database(sqlx::Error::Database(e)) => e
                .code()
                .is_some_and(|c| c.starts_with("57P") || c.starts_with("08") || c == "25006"),
            StoreError::Shared(inner) => inner.is_unavailable(),
            StoreError::Tls(_) | StoreError::NoPrimary(_) => true,
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

#[derive(Debug, Default, Clone)]
pub struct ListFilter {
    pub status: Option<Status>,
    pub channel: Option<Channel>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub page: i64,
    pub page_size: i64,
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
    /// The excerpt of the provider's answer to the last attempt, when it answered with a body.
    pub last_response: Option<String>,
}

impl Store {
    /// Connects, creating the database first when it does not exist yet.
    /// With several hosts (or `target_session_attrs=read-write`) it connects to the first
    /// writable one and follows the primary from then on (`primary`).
    pub async fn connect(targets: &PgTargets, max_connections: u32) -> StoreResult<Store> {
        let options = if targets.watched() {
            primary::find(targets).await?
        } else {
            targets.first().clone()
        };
        ensure_database(&options).await.map_err(StoreError::naming_tls_check)?;
        let switched = primary::Switched::new();
        let fresh = switched.clone();
        let pool = PgPoolOptions::new()
            .before_acquire(move |_, meta| {
                let keep = !fresh.predates(&meta);
                Box::pin(async move { Ok(keep) })
            })
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
            .connect_with(options)
            .await
            .map_err(|e| StoreError::from(e).naming_tls_check())?;
        if targets.watched() {
            primary::watch(pool.clone(), targets.clone(), switched);
        }
        Ok(Store { pool })
    }

    pub fn from_pool(pool: PgPool) -> Store {
        Store { pool }
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// `host:port` of the server the pool connects to now (the primary found, with several hosts).
    pub fn server(&self) -> String {
        let options = self.pool.connect_options();
        format!("{}:{}", options.get_host(), options.get_port())
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

    /// Remembers that a daemon declared the topology under `prefix` (see `queue_prefixes`).
    pub async fn record_queue_prefix(&self, prefix: &str) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO queue_prefixes (prefix) VALUES ($1) \
             ON CONFLICT (prefix) DO UPDATE SET last_declared_at = now()",
        )
        .bind(prefix)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The prefixes daemons declared their topology under, most recent first.
    pub async fn queue_prefixes(&self) -> StoreResult<Vec<String>> {
        Ok(
            sqlx::query_scalar("SELECT prefix FROM queue_prefixes ORDER BY last_declared_at DESC LIMIT 50")
                .fetch_all(&self.pool)
                .await?,
        )
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

    /// The broker confirmed these notifications' first work messages: stamps their work
    /// rows with one statement.
    pub async fn mark_published(&self, ids: &[Uuid]) -> StoreResult<()> {
        mark_published_on(&mut *self.pool.acquire().await?, ids).await
    }

    pub async fn get(&self, id: Uuid) -> StoreResult<Option<Notification>> {
        Ok(
            sqlx::query_as(&format!("SELECT {VIEW_COLUMNS} FROM notifications WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    pub async fn cancel(&self, id: Uuid) -> StoreResult<CancelOutcome> {
        let done = sqlx::query(&format!(
            "UPDATE notifications SET status = '{}', next_retry_at = NULL, updated_at = now() \
             WHERE id = $1 AND {}",
            Status::Canceled,
            status_from(Transition::Cancel)
        ))
        .bind(id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 1 {
            return Ok(CancelOutcome::Canceled);
        }
        let status = self.status_of(id).await?;
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
        scan::mark_dead_lettered(&mut *self.pool.acquire().await?, &[id]).await
    }

    pub async fn failure_details(&self, ids: &[Uuid]) -> StoreResult<Vec<FailureDetails>> {
        Ok(sqlx::query_as(
            "SELECT id, status, recipient, attempt_count, last_error, failure_reason, \
                    (SELECT a.response_body FROM notification_attempts a WHERE a.notification_id = n.id \
                      ORDER BY a.attempt_number DESC, a.id DESC LIMIT 1) AS last_response \
               FROM notifications n WHERE id = ANY($1)",
        )
        .bind(ids)
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
    // A due notification is QUEUED from its first commit, and owes its first work message
    // through its work row, which the insert's trigger writes in the same commit
    // (migrations/20261209000001); one scheduled for later waits ACCEPTED, with its `due_at`,
    // for the scanner's scheduled pass.
    let inserted: Vec<Notification> = sqlx::query_as(&format!(
        "WITH inserted AS ( \
           INSERT INTO notifications (id, correlation_id, idempotency_key, batch_id, channel, priority, recipient, \
             content, status, max_retries, scheduled_at, traceparent, tracestate) \
           SELECT t.id, t.correlation_id, t.idempotency_key, $1, t.channel, t.priority, t.recipient, t.content, \
             CASE WHEN t.scheduled_at IS NULL OR t.scheduled_at <= now() THEN '{queued}' ELSE '{accepted}' END, \
             t.max_retries, t.scheduled_at, t.traceparent, t.tracestate \
           FROM UNNEST($2::uuid[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], \
                       $9::int4[], $10::timestamptz[], $11::text[], $12::text[]) WITH ORDINALITY \
             AS t(id, correlation_id, idempotency_key, channel, priority, recipient, content, max_retries, scheduled_at, \
                  traceparent, tracestate, n) \
           ORDER BY t.n \
           ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING \
           RETURNING {COLUMNS}) \
         SELECT {COLUMNS} FROM inserted",
        queued = Status::Queued,
        accepted = Status::Accepted
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
    .bind(order.iter().map(|n| n.trace.as_ref().map(|t| t.traceparent.as_str())).collect::<Vec<_>>())
    .bind(order.iter().map(|n| n.trace.as_ref().and_then(|t| t.tracestate.as_deref())).collect::<Vec<_>>())
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

/// The broker confirmed these notifications' work messages: their work rows owe none any
/// more, and the lost-message rule counts from now (`store::scan::lock_lost`). A row
/// claimed meanwhile is stamped too, which changes nothing: the rule skips claimed rows.
///
/// Committed without waiting for its WAL flush: a stamp that a PostgreSQL crash undoes
/// leaves rows whose messages are on the queues, so the scanner publishes them once more
/// and the claim refuses the second of each. Waiting cost the creates' commits, which queue
/// behind it for the WAL.
pub(crate) async fn mark_published_on(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<()> {
    stamp_published(conn, ids, true).await
}

/// `mark_published_on` inside the caller's transaction (the scanner's, a replay's), which
/// commits as it would: synchronously.
pub(crate) async fn mark_published_in(conn: &mut PgConnection, ids: &[Uuid]) -> StoreResult<()> {
    stamp_published(conn, ids, false).await
}

async fn stamp_published(conn: &mut PgConnection, ids: &[Uuid], async_commit: bool) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let (with, from) = match async_commit {
        true => (format!("WITH {ASYNC_COMMIT} "), "async_commit, "),
        false => (String::new(), ""),
    };
    // A row that a claim or an outcome holds is skipped, never waited for: their triggers
    // write the work rows in id order while this statement visited them in the order of its
    // plan, and the two deadlocked about ten times a minute at saturation (each a second's
    // stall and a failed statement, PostgreSQL's log of the benchmark). Such a row is being
    // claimed, which the lost-message rule skips, or finished, which deletes it; should the
    // claim roll back, the scanner publishes its message again after UNPUBLISHED_GRACE and
    // the claim refuses the second copy.
    sqlx::query(&format!(
        "{with}UPDATE notification_outbox w SET published_at = now() \
           FROM {from}(SELECT notification_id FROM notification_outbox \
                        WHERE notification_id = ANY($1) FOR UPDATE SKIP LOCKED) l \
          WHERE w.notification_id = l.notification_id"
    ))
    .bind(ids)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
