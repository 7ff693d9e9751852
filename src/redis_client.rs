//! Redis connection shared by the rate limiter and readiness checks. Connects lazily and
//! fails fast during an outage so that callers can fall back instead of waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::backoff::Reconnect;
use crate::tls::ClientTlsFiles;

const TIMEOUT: Duration = Duration::from_millis(1500);

pub struct RedisHandle {
    client: Result<redis::Client, String>,
    conn: tokio::sync::Mutex<Option<ConnectionManager>>,
    // std Mutex: read or written without awaiting. When to try again after a failure.
    retry: Mutex<(Option<Instant>, Reconnect)>,
    pub prefix: String,
}

#[derive(Debug, thiserror::Error)]
#[error("Redis is unreachable: {0}")]
pub struct RedisDown(pub String);

impl RedisHandle {
    pub fn new(url: &SecretString, tls: &ClientTlsFiles, prefix: String) -> RedisHandle {
        let client = open_client(url, tls);
        RedisHandle {
            client,
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
        let client = self.client.clone().map_err(RedisDown)?;
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
                let mut retry = self.retry.lock().unwrap_or_else(|p| p.into_inner());
                let wait = retry.1.failed();
                retry.0 = Some(Instant::now() + wait);
                Err(RedisDown(reason))
            }
        }
    }

    pub async fn ping(&self) -> Result<(), RedisDown> {
        let mut c = self.connection().await?;
        let pong: Result<String, _> = redis::cmd("PING").query_async(&mut c).await;
        pong.map(|_| ()).map_err(|e| RedisDown(e.to_string()))
    }
}

/// A client for REDIS_URL; with `rediss://` and REDIS_CA_FILE or a client certificate, one
/// that uses them (the CA file replaces the built-in roots, as redis-rs does).
fn open_client(url: &SecretString, tls: &ClientTlsFiles) -> Result<redis::Client, String> {
    let url = url.expose_secret();
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
