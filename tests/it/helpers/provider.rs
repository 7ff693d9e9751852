//! The scripted provider: a real HTTP server on port 0 whose answer depends on the recipient,
//! and what it received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// One request the scripted provider received.
#[derive(Clone, Debug)]
pub struct Received {
    pub notification_id: String,
    pub attempt: u32,
    pub headers: HeaderMap,
    pub raw: Bytes,
    pub at: Instant,
    /// The status the provider answered with.
    pub status: u16,
}

/// A real HTTP server whose answer depends on the recipient:
/// `reject…` 400; `flakyN…` 500 for the first N attempts; `limited…` 429 with
/// `Retry-After: 1` on the first attempt; `down…` always 503; `hang…` answers after 30 s;
/// `slow…` after 200 ms; anything else 200 with `{"id": "prov-<notification id>"}`.
pub struct ScriptedProvider {
    pub url: String,
    received: Mutex<Vec<Received>>,
    healthy: std::sync::atomic::AtomicBool,
    /// Requests being answered now, and the most there ever were at once.
    in_progress: Mutex<(usize, usize)>,
}

impl ScriptedProvider {
    pub async fn start() -> Arc<ScriptedProvider> {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind provider");
        let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
        let provider = Arc::new(ScriptedProvider {
            url,
            received: Mutex::new(Vec::new()),
            healthy: Default::default(),
            in_progress: Mutex::new((0, 0)),
        });
        let router = axum::Router::new()
            .route("/hook", axum::routing::post(answer))
            .with_state(provider.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        provider
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// From now on every request succeeds at once, whatever the recipient.
    pub fn set_healthy(&self) {
        self.healthy.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Successful deliveries per notification id.
    pub fn successes(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for r in self.received().into_iter().filter(|r| r.status == 200) {
            *out.entry(r.notification_id).or_default() += 1;
        }
        out
    }

    /// Requests being answered now, and the most there were at once so far.
    pub fn in_progress(&self) -> (usize, usize) {
        *self.in_progress.lock().expect("lock")
    }

    pub fn for_notification(&self, id: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.notification_id == id)
            .collect()
    }
}

async fn answer(State(p): State<Arc<ScriptedProvider>>, headers: HeaderMap, raw: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&raw).unwrap_or(Value::Null);
    let to = body["to"].as_str().unwrap_or_default().to_string();
    let id = headers
        .get("x-notification-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let attempt: u32 = headers
        .get("x-attempt")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let healthy = p.healthy.load(std::sync::atomic::Ordering::SeqCst);
    let failures: u32 = to.strip_prefix("flaky").map_or(0, |rest| {
        rest.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap_or(1)
    });
    let status = match () {
        _ if healthy => StatusCode::OK,
        _ if to.starts_with("reject") => StatusCode::BAD_REQUEST,
        _ if attempt <= failures => StatusCode::INTERNAL_SERVER_ERROR,
        _ if to.starts_with("limited") && attempt <= 1 => StatusCode::TOO_MANY_REQUESTS,
        _ if to.starts_with("down") => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::OK,
    };
    let at = Instant::now();
    {
        let mut n = p.in_progress.lock().expect("lock");
        n.0 += 1;
        n.1 = n.1.max(n.0);
    }
    if !healthy && to.starts_with("hang") {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    if !healthy && to.starts_with("slow") {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.in_progress.lock().expect("lock").0 -= 1;
    // Recorded when answered, so `successes` never counts a request still in progress.
    let record = Received {
        notification_id: id.clone(),
        attempt,
        headers,
        raw,
        at,
        status: status.as_u16(),
    };
    p.received.lock().expect("lock").push(record);
    match status {
        StatusCode::OK => (status, axum::Json(json!({"id": format!("prov-{id}")}))).into_response(),
        StatusCode::TOO_MANY_REQUESTS => (status, [("retry-after", "1")], "slow down").into_response(),
        // A refusal says why, as providers do; the attempt keeps it for the operator.
        StatusCode::BAD_REQUEST => (status, axum::Json(json!({"error": "invalid recipient"}))).into_response(),
        _ => (status, "scripted failure").into_response(),
    }
}
