//! `dispatchctl send`: scripted sends through the HTTP API, one from flags or many from a
//! file, optionally waiting until they are delivered. Exit codes are the contract with CI.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::ProgressBar;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use uuid::Uuid;

mod input;

use super::fail;
use super::output::{self, Format};
use crate::dispatch::create::MAX_BATCH;
use crate::domain::{BatchStatus, Channel, Notification, Priority, Status};

const OK: u8 = 0;
const SOME_FAILED: u8 = 1;
const INVALID: u8 = 2;
const TIMED_OUT: u8 = 3;
const UNREACHABLE: u8 = 4;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0  all accepted (with --wait: all SENT)\n  1  some FAILED or CANCELED (with --wait)\n  2  invalid input (the message names the field)\n  3  --wait timed out\n  4  API unreachable, answering 5xx or 429, or still busy after --busy-retry-for\n\nSettings: DISPATCH_API_URL and DISPATCH_API_TOKEN; else API_HOST, API_PORT and API_TOKENS as `serve` reads them (environment, .env, --config).\n\nExamples:\n  dispatchctl send --channel sms --to +905551234567 --content 'Your code is 1234' --wait\n  dispatchctl send --file batch.yaml -o json\n  echo 'Hello' | dispatchctl send --channel email --to ada@example.com --content-file -"
)]
pub struct Args {
    /// Base URL of the dispatchctl API [default: from API_HOST and API_PORT, as `serve`
    /// reads them (environment, .env, --config); else http://localhost:8080].
    #[arg(long, env = "DISPATCH_API_URL")]
    pub api_url: Option<String>,
    /// Bearer token, when the API requires one [default: the first of API_TOKENS, as `serve`
    /// reads them].
    #[arg(long, env = "DISPATCH_API_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// sms, email or push.
    #[arg(long, ignore_case = true)]
    pub channel: Option<Channel>,
    /// Recipient: phone number, e-mail address or device token.
    #[arg(long)]
    pub to: Option<String>,
    /// The message text (SMS: at most 160 characters); or use --content-file.
    #[arg(long, conflicts_with = "content_file")]
    pub content: Option<String>,
    /// Read the content from a file (- for stdin).
    #[arg(long, value_name = "FILE")]
    pub content_file: Option<PathBuf>,
    /// high, normal or low (also the default of items in --file that have none).
    #[arg(long, default_value = "normal", ignore_case = true)]
    pub priority: Priority,
    /// A key of your own: sending again with the same key returns the first notification
    /// instead of creating another (safe retries of this command).
    #[arg(long, value_name = "KEY")]
    pub idempotency_key: Option<String>,
    /// Your id for tracing this notification across systems (default: a new UUID); it is
    /// sent to the provider and appears in the logs.
    #[arg(long, value_name = "ID")]
    pub correlation_id: Option<String>,
    /// The attempt budget: at most N delivery attempts in all, the first one included (the
    /// API's maxRetries; default DEFAULT_MAX_RETRIES, 5).
    #[arg(long, value_name = "N")]
    pub max_retries: Option<i64>,
    /// RFC 3339 time, or relative such as +10m.
    #[arg(long, value_name = "TIME")]
    pub scheduled_at: Option<String>,
    /// Many notifications from a YAML or JSON file (- for stdin): a list, or
    /// {notifications: [...]}, with the API's field names.
    #[arg(long, short, value_name = "FILE", conflicts_with_all = ["channel", "to", "content", "content_file"])]
    pub file: Option<PathBuf>,
    /// Wait until every notification is SENT, FAILED or CANCELED.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
    /// How long to keep sending again a request the API answered as busy (503 or 429 with
    /// Retry-After, such as backlog_full: nothing was stored), waiting what Retry-After
    /// asks each time; 0 gives up at once (exit 4).
    #[arg(long, default_value = "30s", value_name = "DURATION", value_parser = humantime::parse_duration)]
    pub busy_retry_for: Duration,
    /// No spinner.
    #[arg(long, short)]
    pub quiet: bool,
    /// Output format: table (default on a terminal), json (default otherwise), yaml, or
    /// ndjson (the result as one line).
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

pub async fn run(global: &super::GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let items = input::collect_items(&args)?;
    let format = output::resolve(args.output);
    // A spinner while the total is unknown (indicatif's default is a bar that reads 0/0).
    let spinner = output::progress(args.quiet, None, "{spinner} {msg}  {elapsed}");
    let target = ApiTarget::resolve(global, args.api_url.clone(), args.token.clone());
    let client = Client::new(&target, args.busy_retry_for, spinner.clone())?;
    let mut result = SendResult::default();
    if args.file.is_none() {
        spinner.set_message("sending");
        let n = client.post("/v1/notifications", &items[0]).await?;
        result.notifications.push(n);
    } else {
        for (i, chunk) in items.chunks(MAX_BATCH).enumerate() {
            spinner.set_message(format!("sending batch {}", i + 1));
            let b: BatchAccepted = client
                .post("/v1/notifications/batch", &json!({"notifications": chunk}))
                .await?;
            result.notifications.extend(b.notifications);
            result.batches.push(b.batch);
        }
    }
    let mut code = OK;
    if args.wait {
        let deadline = Instant::now() + args.timeout;
        // Once the total is known, a bar of finished notifications with its label; the
        // length first, or the spinner's steady tick can draw the bar as 0/0.
        spinner.set_length(result.notifications.len() as u64);
        spinner.set_style(output::progress_style(
            "{spinner} waiting [{bar:30}] {pos}/{len} notifications {msg}  {elapsed}",
        ));
        code = wait(&client, &mut result, deadline, &spinner).await?;
    }
    spinner.finish_and_clear();
    render(format, &result, args.wait)?;
    if code == TIMED_OUT {
        output::note(format!(
            "timed out after {}: some notifications are not delivered yet",
            humantime::format_duration(args.timeout)
        ));
    }
    Ok(ExitCode::from(code))
}

#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct SendResult {
    notifications: Vec<Notification>,
    batches: Vec<BatchState>,
}

/// The API's answer to a batch.
#[derive(Deserialize)]
struct BatchAccepted {
    #[serde(flatten)]
    batch: BatchState,
    notifications: Vec<Notification>,
}

/// A batch as `send` reports it: as accepted, then as its summary said when waited for.
#[derive(Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchState {
    batch_id: Uuid,
    total_count: u64,
    status: BatchStatus,
    warning: Option<String>,
    /// Not in the API's answer to a create: filled in from the summary.
    #[serde(skip_deserializing, skip_serializing_if = "Option::is_none")]
    counts: Option<Vec<StatusCount>>,
}

/// `GET /v1/batches/{id}`.
#[derive(Deserialize)]
struct BatchSummary {
    status: BatchStatus,
    counts: Vec<StatusCount>,
}

#[derive(Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusCount {
    status: Status,
    count: u64,
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    origin: &'static str,
    busy_retry_for: Duration,
    /// Suspended while a note is written, so the note does not tear the spinner.
    progress: indicatif::ProgressBar,
}

/// Where the API is, and how we know.
pub struct ApiTarget {
    pub url: String,
    pub token: Option<String>,
    /// Named in errors, so that a wrong guess is easy to correct.
    pub origin: &'static str,
}

impl ApiTarget {
    /// --api-url / DISPATCH_API_URL, else the address `serve` listens on per the same
    /// settings (API_HOST, API_PORT; a wildcard host means this machine); the token likewise
    /// from API_TOKENS.
    pub fn resolve(global: &super::GlobalArgs, url: Option<String>, token: Option<String>) -> ApiTarget {
        // The service's other settings do not concern a client: one that does not parse
        // leaves the defaults, and the request says where it went.
        let settings = crate::config::Settings::load(global.config.as_deref(), &Default::default()).ok();
        // A token that may send, if API_TOKENS has one; a read-only one gets its 403.
        let token = token.or_else(|| {
            let tokens = &settings.as_ref()?.api_tokens;
            tokens
                .iter()
                .find(|t| t.scope != crate::config::Scope::Read)
                .or(tokens.first())
                .map(|t| t.token().to_string())
        });
        let (url, origin) = match (url, settings) {
            (Some(url), _) => (url, "--api-url / DISPATCH_API_URL"),
            (None, None) => ("http://localhost:8080".into(), "the default"),
            (None, Some(s)) => {
                let host = match s.api_host {
                    std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
                    std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
                    std::net::IpAddr::V6(v6) => format!("[{v6}]"),
                    ip => ip.to_string(),
                };
                // TLS_CERT_FILE makes the listener HTTPS only.
                let scheme = if s.listener_tls.is_some() { "https" } else { "http" };
                (format!("{scheme}://{host}:{}", s.api_port), "API_HOST / API_PORT")
            }
        };
        ApiTarget { url, token, origin }
    }
}

impl Client {
    fn new(target: &ApiTarget, busy_retry_for: Duration, progress: indicatif::ProgressBar) -> anyhow::Result<Client> {
        let base = target.url.trim_end_matches('/').to_string();
        url::Url::parse(&base).map_err(|e| fail(INVALID, format!("--api-url: \"{base}\" is not a URL ({e})")))?;
        Ok(Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            base,
            token: target.token.clone(),
            origin: target.origin,
            busy_retry_for,
            progress,
        })
    }

    async fn send<T: DeserializeOwned>(&self, request: reqwest::RequestBuilder) -> anyhow::Result<T> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let give_up = Instant::now() + self.busy_retry_for;
        let mut told = false;
        let (status, body) = loop {
            // Every request `send` makes has a JSON body or none, so it can be repeated.
            let attempt = request
                .try_clone()
                .ok_or_else(|| anyhow::anyhow!("a request to the API could not be repeated"))?;
            let (status, after, body) = self.send_once(attempt).await?;
            match after {
                Some(after) if Instant::now() + after <= give_up => {
                    if !told {
                        told = true;
                        let why = body["error"].as_str().unwrap_or("busy");
                        self.progress.suspend(|| {
                            output::note(format!(
                                "the API is busy ({status}: {why}); sending again when Retry-After says, for {} at most (--busy-retry-for)",
                                humantime::format_duration(self.busy_retry_for)
                            ))
                        });
                    }
                    tokio::time::sleep(after).await;
                }
                _ => break (status, body),
            }
        };
        let message = body["error"].as_str().unwrap_or("no error message").to_string();
        // A 429 is the API (or a proxy before it) being busy, not the input being wrong.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let gave_up = if told {
                format!(
                    "; still busy after --busy-retry-for ({})",
                    humantime::format_duration(self.busy_retry_for)
                )
            } else {
                String::new()
            };
            return Err(fail(
                UNREACHABLE,
                format!("the API answered {status}: {message}{gave_up}"),
            ));
        }
        if status.is_client_error() {
            return Err(fail(
                INVALID,
                format!("the API refused the request ({status}): {message}"),
            ));
        }
        serde_json::from_value(body).map_err(|e| {
            fail(
                UNREACHABLE,
                format!("the API answered {status} with an unexpected body: {e}"),
            )
        })
    }

    /// One request: its status, how long a busy API asks to wait before the next (a 503 or
    /// 429 with Retry-After in seconds, which promises nothing was done), and its JSON body.
    async fn send_once(
        &self,
        request: reqwest::RequestBuilder,
    ) -> anyhow::Result<(reqwest::StatusCode, Option<Duration>, Value)> {
        let response = request.send().await.map_err(|e| {
            fail(
                UNREACHABLE,
                format!(
                    "cannot reach the API at {} (from {}): {}; is `dispatchctl serve` running there? \
                     point at it with --api-url or DISPATCH_API_URL",
                    self.base,
                    self.origin,
                    crate::root_cause(&e)
                ),
            )
        })?;
        let status = response.status();
        let busy = matches!(
            status,
            reqwest::StatusCode::SERVICE_UNAVAILABLE | reqwest::StatusCode::TOO_MANY_REQUESTS
        );
        let after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
            .filter(|_| busy)
            // "Retry-After: 0" would have it hammer the API for the whole budget.
            .map(|secs| Duration::from_secs(secs).max(Duration::from_millis(200)));
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Ok((status, after, body))
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> anyhow::Result<T> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }
}

/// Polls until all are terminal (batches through their summary, one call per batch), then
/// reads every notification once more so the output holds each one's final status,
/// attempts and last error, not the state it had when it was accepted.
async fn wait(
    client: &Client,
    result: &mut SendResult,
    deadline: Instant,
    spinner: &ProgressBar,
) -> anyhow::Result<u8> {
    let mut delay = Duration::from_millis(100);
    let total = result.notifications.len() as u64;
    let code = loop {
        let (mut pending, mut failed) = (0u64, 0u64);
        let mut tally = |status: Status, n: u64| {
            if !status.is_terminal() {
                pending += n;
            } else if status != Status::Sent {
                failed += n;
            }
        };
        if result.batches.is_empty() {
            for n in result.notifications.iter_mut() {
                if !n.status.is_terminal() {
                    *n = client.get(&format!("/v1/notifications/{}", n.id)).await?;
                }
                tally(n.status, 1);
            }
        } else {
            for b in result.batches.iter_mut() {
                if b.status == BatchStatus::Processing {
                    let summary: BatchSummary = client.get(&format!("/v1/batches/{}", b.batch_id)).await?;
                    b.status = summary.status;
                    b.counts = Some(summary.counts);
                }
                for c in b.counts.iter().flatten() {
                    tally(c.status, c.count);
                }
            }
        }
        spinner.set_length(total);
        spinner.set_position(total - pending.min(total));
        spinner.set_message(if failed > 0 {
            format!("finished ({failed} failed)")
        } else {
            "finished".to_string()
        });
        if pending == 0 {
            break if failed > 0 { SOME_FAILED } else { OK };
        }
        if Instant::now() + delay > deadline {
            break TIMED_OUT;
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    };
    if !result.batches.is_empty() {
        spinner.set_message("reading final states");
        refresh_all(client, &mut result.notifications).await?;
    }
    Ok(code)
}

/// Re-reads every notification (a few requests at a time).
async fn refresh_all(client: &Client, notifications: &mut [Notification]) -> anyhow::Result<()> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let ids: Vec<Uuid> = notifications.iter().map(|n| n.id).collect();
    let fresh: Vec<Notification> = stream::iter(ids)
        .map(|id| async move { client.get(&format!("/v1/notifications/{id}")).await })
        .buffered(16)
        .try_collect()
        .await?;
    for (slot, n) in notifications.iter_mut().zip(fresh) {
        *slot = n;
    }
    Ok(())
}

fn render(format: Format, result: &SendResult, waited: bool) -> anyhow::Result<()> {
    if format != Format::Table {
        return output::print_structured(format, result);
    }
    if result.batches.is_empty() {
        let mut headers = vec!["id", "channel", "priority", "status"];
        if waited {
            headers.extend(["attempts", "last error"]);
        }
        let mut t = output::table(&headers);
        for n in &result.notifications {
            let mut cells = vec![
                n.id.to_string(),
                n.channel.to_string(),
                n.priority.to_string(),
                n.status.to_string(),
            ];
            if waited {
                cells.extend([attempts(n), why(n)]);
            }
            t.add_row(cells);
        }
        return output::line(&t);
    }
    let mut t = output::table(&["batch", "items", "status", "counts"]);
    for b in &result.batches {
        let counts: Vec<String> = b
            .counts
            .iter()
            .flatten()
            .map(|c| format!("{}: {}", c.status, c.count))
            .collect();
        t.add_row(vec![
            b.batch_id.to_string(),
            b.total_count.to_string(),
            batch_status(b),
            counts.join(", "),
        ]);
    }
    output::line(&t)?;
    if waited {
        // Which ones did not make it, and why: the rows a person acts on.
        let unsent: Vec<&Notification> = result
            .notifications
            .iter()
            .filter(|n| n.status != Status::Sent)
            .collect();
        if !unsent.is_empty() {
            let mut t = output::table(&["id", "channel", "status", "attempts", "last error"]);
            for n in unsent {
                t.add_row(vec![
                    n.id.to_string(),
                    n.channel.to_string(),
                    n.status.to_string(),
                    attempts(n),
                    why(n),
                ]);
            }
            output::line(&t)?;
        }
    }
    Ok(())
}

fn attempts(n: &Notification) -> String {
    format!("{}/{}", n.attempt_count, n.max_retries)
}

/// The last error, with the dead-letter reason when there is one.
fn why(n: &Notification) -> String {
    match (n.failure_reason.as_deref(), n.last_error.as_deref()) {
        (Some(r), Some(e)) => format!("{r}: {e}"),
        (Some(r), None) => r.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// The contract's batch status, with "all N failed" when PARTIAL_FAILURE means all of them.
fn batch_status(b: &BatchState) -> String {
    let total = b.total_count;
    let failed: u64 = b
        .counts
        .iter()
        .flatten()
        .filter(|c| c.status == Status::Failed)
        .map(|c| c.count)
        .sum();
    if b.status == BatchStatus::PartialFailure && total > 0 && failed == total {
        format!("{} (all {total} failed)", b.status)
    } else {
        b.status.to_string()
    }
}
