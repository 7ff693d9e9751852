//! DATABASE_DSN with several hosts, against two real PostgreSQL servers: the private
//! instance of scripts/test.sh and its streaming standby (`services.sh pg-standby-start`).

use dispatchctl::config::parse_dsn;
use dispatchctl::store::Store;

use crate::helpers::{pg_base, without_service, Env};

/// (primary port, standby port) of this run; None (and a note) without a standby, which
/// only scripts/test.sh starts; a failure under `CI=true`.
fn servers() -> Option<(u16, u16)> {
    let primary = url::Url::parse(&pg_base()).ok()?.port().unwrap_or(5432);
    match std::env::var("TEST_PG_STANDBY_PORT").ok().and_then(|p| p.parse().ok()) {
        Some(standby) => Some((primary, standby)),
        None => without_service("PostgreSQL standby (TEST_PG_STANDBY_PORT)"),
    }
}

/// This test's database name (dropped with the run's by scripts/test.sh).
fn database(env: &Env) -> String {
    let run = std::env::var("DISPATCHCTL_TEST_RUN").map_or_else(|_| String::new(), |r| format!("{r}_"));
    format!("dtest_{run}{}", env.id)
}

async fn server_port(store: &Store) -> i32 {
    sqlx::query_scalar("SELECT inet_server_port()")
        .fetch_one(store.pool())
        .await
        .expect("port")
}

#[tokio::test]
async fn a_dsn_listing_the_standby_first_writes_to_the_primary_in_both_forms() {
    let Some((primary, standby)) = servers() else { return };
    let db = database(&Env::new());
    for dsn in [
        format!("host=127.0.0.1,127.0.0.1 port={standby},{primary} user=postgres dbname={db} target_session_attrs=read-write"),
        format!("postgres://postgres@127.0.0.1:{standby},127.0.0.1:{primary}/{db}?target_session_attrs=read-write"),
    ] {
        let targets = parse_dsn(&dsn).expect("dsn");
        let store = Store::connect(&targets, 2).await.unwrap_or_else(|e| panic!("{dsn}: {e}"));
        assert_eq!(server_port(&store).await, i32::from(primary), "{dsn}: the standby was passed over");
        store.migrate().await.expect("migrations write, so they ran on the primary");
        store.pool().close().await;
    }
}

#[tokio::test]
async fn a_dsn_whose_only_host_is_a_standby_is_refused_with_the_reason() {
    let Some((_, standby)) = servers() else { return };
    let dsn = format!("postgres://postgres@127.0.0.1:{standby}/postgres?target_session_attrs=read-write");
    let err = Store::connect(&parse_dsn(&dsn).expect("dsn"), 1)
        .await
        .expect_err("a standby cannot take writes")
        .to_string();
    assert!(
        err.contains("no writable PostgreSQL") && err.contains(&format!("127.0.0.1:{standby} is a standby")),
        "{err}"
    );
    let closed = crate::helpers::closed_port();
    let dsn = format!("host=127.0.0.1,127.0.0.1 port={closed},{standby} user=postgres dbname=postgres");
    let err = Store::connect(&parse_dsn(&dsn).expect("dsn"), 1)
        .await
        .expect_err("nothing writable")
        .to_string();
    assert!(
        err.contains(&format!("127.0.0.1:{closed} is unreachable")) && err.contains("is a standby"),
        "each host is named with why it was passed over: {err}"
    );
}

/// A write that a read-only server refuses (a primary demoted under the process) is an
/// outage, answered 503 with Retry-After, not a failed request.
#[tokio::test]
async fn a_write_refused_by_a_read_only_server_counts_as_an_outage() {
    let Some((_, standby)) = servers() else { return };
    let dsn = format!("postgres://postgres@127.0.0.1:{standby}/postgres?target_session_attrs=any");
    let store = Store::connect(&parse_dsn(&dsn).expect("dsn"), 1)
        .await
        .expect("any takes the standby");
    let refused = sqlx::query("CREATE TABLE never (x int)")
        .execute(store.pool())
        .await
        .expect_err("a standby refuses writes");
    let error = dispatchctl::store::StoreError::from(refused);
    assert!(error.is_unavailable(), "{error}");
    store.pool().close().await;
}
