//! A local stand-in for the provider, for the README tour and the benchmark: answers every
//! delivery (200 and `{"id": ...}` unless told otherwise), counts what it received
//! (`GET /stats`), and optionally writes `notification_id,unix_micros` lines to a file for
//! latency measurements.
//!
//! cargo run --release --example sink -- --help

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde_json::{json, Value};
use tokio::sync::mpsc;

#[derive(Parser, Debug)]
#[command(
    name = "sink",
    about = "A local stand-in for the provider that WEBHOOK_SITE_URL points at",
    after_help = "Examples:\n  sink --listen 127.0.0.1:9999\n  sink --answer invalid=400      # recipients containing \"invalid\" are refused (a permanent failure)\n  sink --answer +1555=503 --status 200\n  sink --status 500               # every delivery fails (transient: retried, then dead-lettered)\n\nA refusal carries a JSON body, {\"error\": \"...\"}, that dispatchctl keeps with the attempt\n(`dispatchctl notifications ID` shows it). Restart the sink without --answer to let a replay succeed."
)]
struct Args {
    /// Address to listen on (port 0 picks a free one, which the first line names).
    #[arg(long, default_value = "127.0.0.1:9999")]
    listen: String,
    /// The HTTP status to answer deliveries that no --answer matches.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u16).range(200..600))]
    status: u16,
    /// Answer STATUS to deliveries whose recipient contains TEXT (repeatable; the first match wins).
    #[arg(long, value_name = "TEXT=STATUS", value_parser = parse_answer)]
    answer: Vec<Answer>,
    /// Write `notification_id,unix_micros` for each delivery to FILE (created anew).
    #[arg(long, value_name = "FILE")]
    log: Option<std::path::PathBuf>,
}

#[derive(Clone, Debug, PartialEq)]
struct Answer {
    recipient_contains: String,
    status: StatusCode,
}

fn parse_answer(value: &str) -> Result<Answer, String> {
    let (text, status) = value
        .rsplit_once('=')
        .ok_or_else(|| format!("\"{value}\" is not TEXT=STATUS, such as invalid=400"))?;
    let status = status
        .parse::<u16>()
        .ok()
        .filter(|s| (200..600).contains(s))
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| format!("\"{status}\" is not an HTTP status from 200 to 599"))?;
    if text.is_empty() {
        return Err("TEXT is empty: name part of a recipient, such as invalid=400".into());
    }
    Ok(Answer {
        recipient_contains: text.to_string(),
        status,
    })
}

struct Sink {
    received: AtomicU64,
    default_status: StatusCode,
    answers: Vec<Answer>,
    log: Option<mpsc::UnboundedSender<String>>,
}

impl Sink {
    /// The status for a delivery to `recipient`, and why when it is not a success.
    fn choose(&self, recipient: &str) -> (StatusCode, Option<String>) {
        match self.answers.iter().find(|a| recipient.contains(&a.recipient_contains)) {
            Some(a) => (
                a.status,
                Some(format!(
                    "the sink answers {} to recipients containing \"{}\"",
                    a.status.as_u16(),
                    a.recipient_contains
                )),
            ),
            None => (
                self.default_status,
                Some(format!(
                    "the sink answers {} to every delivery",
                    self.default_status.as_u16()
                )),
            ),
        }
    }
}

async fn hook(State(sink): State<Arc<Sink>>, headers: HeaderMap, body: Bytes) -> Response {
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
    let recipient = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("to")?.as_str().map(str::to_string))
        .unwrap_or_default();
    match sink.choose(&recipient) {
        (status, _) if status.is_success() => (status, Json(json!({"id": format!("sink-{n}")}))).into_response(),
        (status, reason) => {
            let mut response = (status, Json(json!({"error": reason}))).into_response();
            if status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert("retry-after", axum::http::HeaderValue::from_static("1"));
            }
            response
        }
    }
}

async fn stats(State(sink): State<Arc<Sink>>) -> Json<Value> {
    Json(json!({"received": sink.received.load(Ordering::Relaxed)}))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let log = args.log.map(|path| {
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
    let default_status = StatusCode::from_u16(args.status)?;
    let sink = Arc::new(Sink {
        received: AtomicU64::new(0),
        default_status,
        answers: args.answer,
        log,
    });
    let answers: Vec<String> = sink
        .answers
        .iter()
        .map(|a| {
            format!(
                "{} to recipients containing \"{}\"",
                a.status.as_u16(),
                a.recipient_contains
            )
        })
        .chain(std::iter::once(format!("{} to the rest", default_status.as_u16())))
        .collect();
    let app = Router::new()
        .route("/hook", post(hook))
        .route("/stats", get(stats))
        .fallback(post(hook))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind(&args.listen).await?;
    eprintln!(
        "sink listening on http://{}/hook (GET /stats for counts); answers {}",
        listener.local_addr()?,
        answers.join(", ")
    );
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sink(answers: &[&str], status: u16) -> Sink {
        Sink {
            received: AtomicU64::new(0),
            default_status: StatusCode::from_u16(status).unwrap(),
            answers: answers.iter().map(|a| parse_answer(a).unwrap()).collect(),
            log: None,
        }
    }

    #[test]
    fn help_describes_the_answers_instead_of_listening() {
        let err = Args::try_parse_from(["sink", "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
        let help = err.to_string();
        assert!(
            help.contains("--answer <TEXT=STATUS>") && help.contains("--status"),
            "{help}"
        );
    }

    #[test]
    fn chosen_recipients_get_the_chosen_status_and_the_rest_the_default() {
        let s = sink(&["invalid=400", "+1555=503"], 200);
        assert_eq!(s.choose("invalid@example.com").0, StatusCode::BAD_REQUEST);
        assert!(s.choose("invalid@example.com").1.unwrap().contains("\"invalid\""));
        assert_eq!(s.choose("+15551234").0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(s.choose("ada@example.com").0, StatusCode::OK);
        assert_eq!(sink(&[], 500).choose("anyone").0, StatusCode::INTERNAL_SERVER_ERROR);
    }

    #[test]
    fn a_malformed_answer_says_what_is_accepted() {
        assert!(parse_answer("invalid").unwrap_err().contains("TEXT=STATUS"));
        assert!(parse_answer("x=99").unwrap_err().contains("from 200 to 599"));
        assert!(parse_answer("=400").unwrap_err().contains("empty"));
        assert!(Args::try_parse_from(["sink", "--status", "42"]).is_err());
    }
}
