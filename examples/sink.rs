//! A local stand-in for the provider: answers every POST with 200 and `{"id": ...}`, counts
//! what it received (`GET /stats`), and optionally appends `notification_id,unix_micros`
//! lines to a file for latency measurements. For the README tour and the benchmark.
//!
//! cargo run --release --example sink -- [--listen 127.0.0.1:9999] [--log FILE]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::mpsc;

struct Sink {
    received: AtomicU64,
    log: Option<mpsc::UnboundedSender<String>>,
}

async fn hook(State(sink): State<Arc<Sink>>, headers: HeaderMap) -> Json<Value> {
    let n = sink.received.fetch_add(1, Ordering::Relaxed) + 1;
    let id = headers
        .get("x-notification-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    if let Some(log) = &sink.log {
        let micros = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros())
            .unwrap_or(0);
        let _ = log.send(format!("{id},{micros}\n"));
    }
    Json(json!({"id": format!("sink-{n}")}))
}

async fn stats(State(sink): State<Arc<Sink>>) -> Json<Value> {
    Json(json!({"received": sink.received.load(Ordering::Relaxed)}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let listen = flag("--listen").unwrap_or_else(|| "127.0.0.1:9999".into());
    let log = flag("--log").map(|path| {
        let (tx, mut rx) = mpsc::unbounded_channel::<String>();
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
            while let Some(line) = rx.blocking_recv() {
                out.write_all(line.as_bytes())?;
                if rx.is_empty() {
                    out.flush()?;
                }
            }
            out.flush()
        });
        tx
    });
    let sink = Arc::new(Sink {
        received: AtomicU64::new(0),
        log,
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/stats", get(stats))
        .fallback(post(hook))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    eprintln!(
        "sink listening on http://{}/hook (GET /stats for counts)",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
