//! Redis connection shared by the rate limiter and readiness checks. Connects lazily and
//! fails fast during an outage so that callers can fall back instead of waiting.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::backoff::Reconnect;

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
    pub fn new(url: &SecretString, prefix: String) -> RedisHandle {
        let client = redis::Client::open(url.expose_secret()).map_err(|e| e.to_string());
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
                    Ok(Err(e)) => e.to_string(),
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
