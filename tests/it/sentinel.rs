//! REDIS_URL's Sentinel form against a real Sentinel: a master, its replica and three
//! sentinels that scripts/test.sh starts for this test alone (`services.sh redis-sentinel-start`).

use std::time::Duration;

use dispatchctl::redis_client::RedisHandle;
use dispatchctl::tls::ClientTlsFiles;
use secrecy::SecretString;

use crate::helpers::{wait_for, without_service};

/// (master, replica, sentinels) ports; None (and a note) outside scripts/test.sh; a failure
/// under `CI=true`.
fn ports() -> Option<(u16, u16, Vec<u16>)> {
    let listed = std::env::var("TEST_REDIS_SENTINEL_PORTS").ok();
    let ports: Vec<u16> = listed
        .iter()
        .flat_map(|l| l.split_whitespace())
        .filter_map(|p| p.parse().ok())
        .collect();
    match ports.as_slice() {
        [master, replica, sentinels @ ..] if sentinels.len() == 3 => Some((*master, *replica, sentinels.to_vec())),
        _ => without_service("Redis Sentinel (TEST_REDIS_SENTINEL_PORTS)"),
    }
}

/// The port of the server that answers through the handle, after a write there.
async fn written_on(handle: &RedisHandle) -> Result<u16, String> {
    let mut conn = handle.connection().await.map_err(|e| e.to_string())?;
    let written: Result<(), _> = redis::cmd("SET")
        .arg("sentinel-test")
        .arg("x")
        .query_async(&mut conn)
        .await;
    if let Err(e) = written {
        handle.call_failed().await;
        return Err(e.to_string());
    }
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("tcp_port:"))
        .and_then(|p| p.trim().parse().ok())
        .ok_or_else(|| "no tcp_port in INFO".to_string())
}

#[tokio::test]
async fn the_sentinel_form_writes_to_the_master_and_follows_a_fail_over() {
    let Some((master, replica, sentinels)) = ports() else {
        return;
    };
    // The first sentinel listed is down: the next ones are asked.
    let closed = crate::helpers::closed_port();
    let hosts: Vec<String> = std::iter::once(closed)
        .chain(sentinels.iter().copied())
        .map(|p| format!("127.0.0.1:{p}"))
        .collect();
    let url = SecretString::from(format!("redis+sentinel://{}/chaos/0", hosts.join(",")));
    let handle = RedisHandle::new(&url, &ClientTlsFiles::default(), "sentinel-test:".into());
    handle.ping().await.expect("the master answers through Sentinel");
    assert_eq!(written_on(&handle).await, Ok(master));

    // A fail-over: the replica becomes the master, the old master its replica (READONLY).
    let sentinel = redis::Client::open(format!("redis://127.0.0.1:{}", sentinels[0])).unwrap();
    let mut s = sentinel.get_multiplexed_async_connection().await.unwrap();
    let _: () = redis::cmd("SENTINEL")
        .arg("FAILOVER")
        .arg("chaos")
        .query_async(&mut s)
        .await
        .unwrap();
    let moved = wait_for(Duration::from_secs(30), || async {
        written_on(&handle).await == Ok(replica)
    })
    .await;
    assert!(
        moved,
        "writes reach the new master {replica}: {:?}",
        written_on(&handle).await
    );
}
