//! Redis connection shared by the rate limiter and readiness checks. Connects lazily and
//! fails fast during an outage so that callers can fall back instead of waiting. With
//! REDIS_URL's Sentinel form it asks the sentinels where the master is, and asks again after
//! a call fails (the master may have moved).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{redis_sentinel, RedisSentinel};
use crate::domain::backoff::Reconnect;
use crate::tls::ClientTlsFiles;

const TIMEOUT: Duration = Duration::from_millis(1500);

pub struct RedisHandle {
    target: Target,
    tls: ClientTlsFiles,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    // std Mutex: read or written without awaiting. When to try again after a failure.
    retry: Mutex<(Option<Instant>, Reconnect)>,
    pub prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("Redis is unreachable: {0}")]
pub struct RedisDown(pub String);

/// Where the Redis to use is: one server, or the master that the sentinels name.
enum Target {
    Direct(Result<redis::Client, String>),
    Sentinel(RedisSentinel),
}

impl RedisHandle {
    pub fn new(url: &SecretString, tls: &ClientTlsFiles, prefix: String) -> RedisHandle {
        let target = match redis_sentinel(url.expose_secret()) {
            Ok(Some(sentinel)) => Target::Sentinel(sentinel),
            Ok(None) => Target::Direct(open_client(url.expose_secret(), tls)),
            Err(e) => Target::Direct(Err(e)),
        };
        RedisHandle {
            target,
            tls: tls.clone(),
            conn: tokio::sync::Mutex::new(None),
            retry: Mutex::new((None, Reconnect::new())),
            prefix,
        }
    }

    pub async fn connection(&self) -> Result<ConnectionManager, RedisDown> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        if let (Some(at), _) = *self.retry.lock().unwrap_or_else(|p| p.into_inner()) {
            if Instant::now() < at {
                return Err(RedisDown("reconnecting after an earlier failure".into()));
            }
        }
        let client = match &self.target {
            Target::Direct(client) => client.clone().map_err(RedisDown),
            Target::Sentinel(sentinel) => self.master(sentinel).await,
        };
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                self.back_off();
                return Err(e);
            }
        };
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(TIMEOUT)
            .set_response_timeout(TIMEOUT)
            .set_number_of_retries(1)
            .set_max_delay(1000);
        match tokio::time::timeout(TIMEOUT * 2, ConnectionManager::new_with_config(client, config)).await {
            Ok(Ok(c)) => {
                *guard = Some(c.clone());
                *self.retry.lock().unwrap_or_else(|p| p.into_inner()) = (None, Reconnect::new());
                Ok(c)
            }
            outcome => {
                let reason = match outcome {
                    // A failed handshake says which check failed (unknown CA, host name).
                    Ok(Err(e)) => crate::tls::describe(&e).unwrap_or_else(|| e.to_string()),
                    _ => "connection timed out".into(),
                };
                self.back_off();
                Err(RedisDown(reason))
            }
        }
    }

    fn back_off(&self) {
        let mut retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        let wait = retry.1.failed();
        retry.0 = Some(Instant::now() + wait);
    }

    /// A call on the connection failed. Behind Sentinel the master may have moved (or been
    /// demoted: READONLY), so the next call asks the sentinels again; a direct connection
    /// reconnects by itself.
    pub async fn call_failed(&self) {
        if matches!(self.target, Target::Sentinel(_)) {
            self.conn.lock().await.take();
        }
    }

    /// A client for the master that the first answering sentinel names (and that says it is
    /// a master: a sentinel may lag behind a fail-over).
    async fn master(&self, sentinel: &RedisSentinel) -> Result<redis::Client, RedisDown> {
        let mut failures = Vec::new();
        for node in &sentinel.sentinels {
            let asked = async {
                let client = open_client(&sentinel.sentinel_url(node), &self.tls)?;
                let mut conn = client
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                let addr: Option<(String, u16)> = redis::cmd("SENTINEL")
                    .arg("get-master-addr-by-name")
                    .arg(&sentinel.master)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                let (host, port) = addr.ok_or_else(|| format!("knows no master named {}", sentinel.master))?;
                let master = open_client(&sentinel.master_url(&host, port), &self.tls)?;
                let mut conn = master
                    .get_multiplexed_async_connection()
                    .await
                    .map_err(|e| e.to_string())?;
                let role: Vec<redis::Value> = redis::cmd("ROLE")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                match role.first() {
                    Some(redis::Value::BulkString(r)) if r.as_slice() == b"master" => Ok(master),
                    _ => Err(format!("names {host}:{port}, which is not a master (yet)")),
                }
            };
            match tokio::time::timeout(TIMEOUT, asked).await {
                Ok(Ok(master)) => return Ok(master),
                Ok(Err(e)) => failures.push(format!("sentinel {}:{} {e}", node.0, node.1)),
                Err(_) => failures.push(format!(
                    "sentinel {}:{} did not answer within {TIMEOUT:?}",
                    node.0, node.1
                )),
            }
        }
        Err(RedisDown(failures.join("; ")))
    }

    pub async fn ping(&self) -> Result<(), RedisDown> {
        let mut c = self.connection().await?;
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        if pong.is_err() {
            self.call_failed().await;
        }
        pong.map(|_| ()).map_err(|e| RedisDown(e.to_string()))
    }
}

/// A client for REDIS_URL; with `rediss://` and REDIS_CA_FILE or a client certificate, one
/// that uses them (the CA file replaces the built-in roots, as redis-rs does).
fn open_client(url: &str, tls: &ClientTlsFiles) -> Result<redis::Client, String> {
    if tls.is_empty() || !url.starts_with("rediss://") {
        return redis::Client::open(url).map_err(|e| e.to_string());
    }
    let read = |path: &std::path::Path| std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()));
    let client_tls = match (&tls.cert_file, &tls.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    let root_cert = tls.ca_file.as_deref().map(read).transpose()?;
    redis::Client::build_with_tls(url, redis::TlsCertificates { client_tls, root_cert }).map_err(|e| e.to_string())
}
