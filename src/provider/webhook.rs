//! The webhook provider: builds the Go service's request (`{"to","channel","content"}` plus
//! idempotency and tracing headers, and the channel's auth header), signs it per Standard
//! Webhooks when a secret is set, and classifies the answer into success, transient or
//! permanent.

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::ProviderError;
use crate::config::AuthHeader;
use crate::domain::outcome::{classify_status, StatusClass};
use crate::domain::{response_excerpt, DeliveryResult, TraceContext};
use crate::store::Claimed;
use crate::tls::ClientTlsFiles;

#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: url::Url,
    auth_header: Option<(reqwest::header::HeaderName, reqwest::header::HeaderValue)>,
    signing_key: Option<Vec<u8>>,
    timeout: Duration,
}

#[derive(serde::Serialize)]
struct Payload<'a> {
    to: &'a str,
    channel: &'a str,
    content: &'a str,
}

impl Webhook {
    pub fn new(
        url: url::Url,
        auth_header: Option<&AuthHeader>,
        secret: Option<&SecretString>,
        timeout: Duration,
        pool_size: usize,
        tls: &ClientTlsFiles,
    ) -> Result<Self, ProviderError> {
        let signing_key = secret.map(|s| signing_key(s.expose_secret())).transpose()?;
        let auth_header = auth_header
            .map(|h| {
                let mut value = reqwest::header::HeaderValue::from_str(h.value())
                    .map_err(|_| ProviderError::AuthHeader(h.name.to_string()))?;
                // Kept out of any Debug output reqwest makes of the request.
                value.set_sensitive(true);
                Ok::<_, ProviderError>((h.name.clone(), value))
            })
            .transpose()?;
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_max_idle_per_host(pool_size)
            .user_agent(concat!("dispatchctl/", env!("CARGO_PKG_VERSION")))
            // The system roots plus PROVIDER_CA_FILE, and the client certificate if any.
            .use_preconfigured_tls(crate::tls::client_config(tls)?)
            .build()?;
        Ok(Webhook {
            client,
            url,
            auth_header,
            signing_key,
            timeout,
        })
    }

    /// One attempt. Never fails: every failure is classified into the result. Takes a
    /// `Claimed`, which only a claim makes: nothing is sent without a lease (invariant 2).
    pub async fn deliver(&self, claimed: &Claimed, trace: Option<&TraceContext>) -> DeliveryResult {
        let (n, attempt) = (claimed.notification(), claimed.attempt());
        let body = serde_json::to_vec(&Payload {
            to: &n.recipient,
            channel: n.channel.lower(),
            content: &n.content,
        })
        .unwrap_or_default();
        let id = n.id.to_string();
        let mut request = self
            .client
            .post(self.url.clone())
            .header("content-type", "application/json")
            .header("idempotency-key", &id)
            .header("x-notification-id", &id)
            .header("x-correlation-id", &n.correlation_id)
            .header("x-attempt", attempt.to_string());
        // The caller's trace goes on: the provider's span is a child of this attempt's.
        if let Some(trace) = trace {
            request = request.header("traceparent", &trace.traceparent);
            if let Some(state) = &trace.tracestate {
                request = request.header("tracestate", state);
            }
        }
        if let Some((name, value)) = &self.auth_header {
            request = request.header(name.clone(), value.clone());
        }
        if let Some(key) = &self.signing_key {
            let timestamp = chrono::Utc::now().timestamp();
            request = request
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", sign(key, &id, timestamp, &body));
        }
        let response = match request.body(body).send().await {
            Ok(r) => r,
            Err(e) => return self.transport_failure(e),
        };
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = match read_bounded(response).await {
            Ok(b) => b,
            Err(e) => return self.transport_failure(e),
        };
        let text = response_excerpt(&bytes);
        match classify_status(status) {
            StatusClass::Success => DeliveryResult::Success {
                status,
                provider_message_id: provider_message_id(&headers, &bytes),
                body: text,
            },
            StatusClass::Transient => DeliveryResult::Transient {
                status: Some(status),
                error: format!("provider answered HTTP {status}"),
                retry_after: if status == 429 || status == 503 {
                    retry_after(&headers)
                } else {
                    None
                },
                body: text,
            },
            StatusClass::Permanent => DeliveryResult::Permanent {
                status: Some(status),
                error: format!("provider answered HTTP {status}"),
                body: text,
            },
        }
    }

    fn transport_failure(&self, e: reqwest::Error) -> DeliveryResult {
        let error = if let Some(tls) = crate::tls::describe(&e) {
            // A certificate problem is transient too (a rotation may fix it), but its reason
            // must be plain in the attempt: "TLS: certificate not trusted (unknown CA)".
            format!("cannot connect to the provider: {tls}")
        } else if e.is_timeout() {
            format!("no answer within {}", humantime::format_duration(self.timeout))
        } else if e.is_connect() {
            format!("cannot connect to the provider: {}", crate::root_cause(&e))
        } else {
            format!("request failed: {}", crate::root_cause(&e))
        };
        DeliveryResult::transient(None, &error)
    }
}

/// Standard Webhooks keys are `whsec_<base64>`; any other secret is used as raw bytes.
fn signing_key(secret: &str) -> Result<Vec<u8>, ProviderError> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| ProviderError::Secret("the part after whsec_ is not base64")),
        None => Ok(secret.as_bytes().to_vec()),
    }
}

/// `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    // HMAC accepts keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    )
}

/// A response body read up to `MAX_READ_BODY` bytes: enough for any message id and the
/// excerpt kept with the attempt, and a bound on what a misbehaving provider can make a
/// worker hold (the rest is dropped with the connection).
const MAX_READ_BODY: usize = 64 * 1024;

async fn read_bounded(mut response: reqwest::Response) -> Result<Vec<u8>, reqwest::Error> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_READ_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_READ_BODY {
            break;
        }
    }
    Ok(body)
}

fn provider_message_id(headers: &HeaderMap, body: &[u8]) -> Option<String> {
    for name in ["x-request-id", "x-correlation-id"] {
        if let Some(v) = headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
        {
            return Some(v.to_string());
        }
    }
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["id", "messageId"].iter().find_map(|k| match json.get(k)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    (at.with_timezone(&chrono::Utc) - chrono::Utc::now()).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn provider_message_id_prefers_headers_then_body() {
        let mut h = HeaderMap::new();
        assert_eq!(
            provider_message_id(&h, br#"{"messageId":"m-1"}"#).as_deref(),
            Some("m-1")
        );
        assert_eq!(provider_message_id(&h, br#"{"id":7}"#).as_deref(), Some("7"));
        assert_eq!(provider_message_id(&h, b"not json"), None);
        h.insert("x-request-id", HeaderValue::from_static("r-9"));
        assert_eq!(provider_message_id(&h, br#"{"id":"x"}"#).as_deref(), Some("r-9"));
    }

    #[test]
    fn retry_after_accepts_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(retry_after(&h), None, "a date in the past means no extra wait");
    }

    #[test]
    fn whsec_secrets_are_base64_keys() {
        assert_eq!(signing_key("whsec_aGVsbG8=").unwrap(), b"hello");
        assert!(signing_key("whsec_!!!").is_err());
        assert_eq!(signing_key("plain").unwrap(), b"plain");
    }
}
