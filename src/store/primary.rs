//! Finding the writable PostgreSQL among DATABASE_DSN's hosts, and following it through a
//! fail-over: a watcher checks the pool's server once a second; when that server has become
//! read-only (a demoted primary, a standby) or stopped answering, it looks for the writable
//! host again in the order given, points the pool at it, and has every connection opened
//! before the switch dropped at its next acquire.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnectionMetadata;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgPool};

use super::{StoreError, StoreResult};
use crate::config::PgTargets;

/// How often the watcher looks at the pool's server, and how long one look may take.
const WATCH_EVERY: Duration = Duration::from_secs(1);
const LOOK_TIMEOUT: Duration = Duration::from_secs(3);

/// Why a host was passed over, for the error that lists them all.
#[derive(Debug, PartialEq)]
pub enum Refusal {
    Standby,
    ReadOnly,
    Unreachable(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Standby => f.write_str("a standby (in recovery)"),
            Refusal::ReadOnly => f.write_str("read-only (default_transaction_read_only)"),
            Refusal::Unreachable(e) => f.write_str(e),
        }
    }
}

/// The first host that takes a connection (and, when `read_write`, accepts writes).
pub async fn find(targets: &PgTargets) -> StoreResult<PgConnectOptions> {
    let mut refusals = Vec::new();
    for host in &targets.hosts {
        match look(host, targets.read_write).await {
            Ok(()) => return Ok(host.clone()),
            Err(refusal) => refusals.push(format!("{}:{} is {refusal}", host.get_host(), host.get_port())),
        }
    }
    let wanted = if targets.read_write { "writable " } else { "" };
    Err(StoreError::NoPrimary(format!(
        "no {wanted}PostgreSQL among the hosts of DATABASE_DSN: {}",
        refusals.join("; ")
    )))
}

/// One connection to `host`, asked whether it is a primary that accepts writes.
async fn look(host: &PgConnectOptions, read_write: bool) -> Result<(), Refusal> {
    let mut conn = match connect(host).await {
        // A database that does not exist yet is created on the server found (see
        // `ensure_database`): ask the server through its maintenance database.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("3D000") => {
            connect(&host.clone().database("postgres")).await
        }
        other => other,
    }
    .map_err(|e| Refusal::Unreachable(unreachable(&e)))?;
    let state = tokio::time::timeout(LOOK_TIMEOUT, writability(&mut conn)).await;
    let _ = conn.close().await;
    match state {
        _ if !read_write => Ok(()),
        Ok(Ok(refusal)) => refusal.map_or(Ok(()), Err),
        Ok(Err(e)) => Err(Refusal::Unreachable(unreachable(&e))),
        Err(_) => Err(Refusal::Unreachable(format!("not answering within {LOOK_TIMEOUT:?}"))),
    }
}

async fn connect(host: &PgConnectOptions) -> Result<PgConnection, sqlx::Error> {
    match tokio::time::timeout(LOOK_TIMEOUT, PgConnection::connect_with(host)).await {
        Ok(connected) => connected,
        Err(_) => Err(sqlx::Error::PoolTimedOut),
    }
}

fn unreachable(e: &sqlx::Error) -> String {
    if matches!(e, sqlx::Error::PoolTimedOut) {
        return format!("not answering within {LOOK_TIMEOUT:?}");
    }
    match e {
        sqlx::Error::Database(d) => format!("refusing ({}: {})", d.code().unwrap_or_default(), d.message()),
        other => format!("unreachable ({})", crate::root_cause(other)),
    }
}

/// None when the server takes writes; else why not.
async fn writability(conn: &mut PgConnection) -> Result<Option<Refusal>, sqlx::Error> {
    let (in_recovery, read_only): (bool, bool) =
        sqlx::query_as("SELECT pg_is_in_recovery(), current_setting('transaction_read_only')::bool")
            .fetch_one(conn)
            .await?;
    Ok(match (in_recovery, read_only) {
        (true, _) => Some(Refusal::Standby),
        (false, true) => Some(Refusal::ReadOnly),
        (false, false) => None,
    })
}

/// When the pool last switched servers, for `before_acquire`: a connection older than the
/// switch was opened to the server before, which may be a demoted primary that still
/// answers pings, so it is dropped rather than used.
#[derive(Default)]
pub struct Switched {
    origin: Option<Instant>,
    // Milliseconds since `origin` at the last switch; 0 = never switched.
    at_ms: AtomicU64,
}

impl Switched {
    pub fn new() -> Arc<Switched> {
        Arc::new(Switched {
            origin: Some(Instant::now()),
            at_ms: AtomicU64::new(0),
        })
    }

    fn now_ms(&self) -> u64 {
        self.origin.map_or(0, |o| o.elapsed().as_millis() as u64).max(1)
    }

    fn mark(&self) {
        self.at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Whether a pooled connection was opened before the last switch.
    pub fn predates(&self, meta: &PoolConnectionMetadata) -> bool {
        self.older_than_switch(meta.age)
    }

    fn older_than_switch(&self, age: Duration) -> bool {
        let at = self.at_ms.load(Ordering::Relaxed);
        at != 0 && age.as_millis() as u64 > self.now_ms().saturating_sub(at)
    }
}

/// What a look through the pool found.
enum PoolState {
    Writable,
    /// The server answered that it will not take writes: a demoted primary, a standby.
    Refusing,
    /// No answer in time: the server is gone, or only the pool is busy.
    Unknown,
}

/// Watches the pool's server until the pool closes; see the module's comment.
pub fn watch(pool: PgPool, targets: PgTargets, switched: Arc<Switched>) {
    tokio::spawn(async move {
        let mut said_missing = false;
        loop {
            tokio::time::sleep(WATCH_EVERY).await;
            if pool.is_closed() {
                return;
            }
            let current = pool.connect_options();
            let refusing = match through_pool(&pool, targets.read_write).await {
                PoolState::Writable => {
                    said_missing = false;
                    continue;
                }
                PoolState::Refusing => true,
                // A pool whose connections are all busy cannot answer in time either: ask
                // the server itself before concluding anything.
                PoolState::Unknown if look(&current, targets.read_write).await.is_ok() => continue,
                PoolState::Unknown => false,
            };
            match find(&targets).await {
                Ok(found) => {
                    let moved = found.get_host() != current.get_host() || found.get_port() != current.get_port();
                    // The same host name after a refusal: it now names another server (a
                    // moved DNS name or address), so the connections to the old one go.
                    if !moved && !refusing {
                        continue;
                    }
                    tracing::warn!(
                        from = %format!("{}:{}", current.get_host(), current.get_port()),
                        to = %format!("{}:{}", found.get_host(), found.get_port()),
                        "PostgreSQL primary moved; reconnecting to it"
                    );
                    pool.set_connect_options(found);
                    switched.mark();
                    said_missing = false;
                }
                Err(e) if !said_missing => {
                    tracing::warn!(error = %e, "PostgreSQL has no usable primary; writes wait until one answers");
                    said_missing = true;
                }
                Err(_) => {}
            }
        }
    });
}

async fn through_pool(pool: &PgPool, read_write: bool) -> PoolState {
    let looking = async {
        let mut conn = pool.acquire().await?;
        writability(&mut conn).await
    };
    match tokio::time::timeout(LOOK_TIMEOUT, looking).await {
        Ok(Ok(None)) => PoolState::Writable,
        Ok(Ok(Some(_))) if !read_write => PoolState::Writable,
        Ok(Ok(Some(_))) => PoolState::Refusing,
        Ok(Err(_)) | Err(_) => PoolState::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_connections_opened_before_a_switch_are_dropped() {
        let switched = Switched::new();
        assert!(
            !switched.older_than_switch(Duration::from_secs(3600)),
            "no switch yet: keep all"
        );
        std::thread::sleep(Duration::from_millis(20));
        switched.mark();
        assert!(
            switched.older_than_switch(Duration::from_secs(10)),
            "opened before the switch"
        );
        assert!(!switched.older_than_switch(Duration::ZERO), "opened after it");
    }
}
