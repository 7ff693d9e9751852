//! `dispatchctl send`: scripted sends through the HTTP API, one from flags or many from a
//! file, optionally waiting until they are delivered. Exit codes are the contract with CI.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::output::{self, Format};
use super::Exit;
use crate::dispatch::create::MAX_BATCH;
use crate::domain::NotificationRequest;

const OK: u8 = 0;
const SOME_FAILED: u8 = 1;
const INVALID: u8 = 2;
const TIMED_OUT: u8 = 3;
const UNREACHABLE: u8 = 4;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0  all accepted (with --wait: all SENT)\n  1  some FAILED or CANCELED (with --wait)\n  2  invalid input (the message names the field)\n  3  --wait timed out\n  4  API unreachable or answering 5xx\n\nSettings: DISPATCH_API_URL and DISPATCH_API_TOKEN; else API_HOST, API_PORT and API_TOKENS as `serve` reads them (environment, .env, --config).\n\nExamples:\n  dispatchctl send --channel sms --to +905551234567 --content 'Your code is 1234' --wait\n  dispatchctl send --file batch.yaml -o json\n  echo 'Hello' | dispatchctl send --channel email --to ada@example.com --content-file -"
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
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(["sms", "email", "push"]), ignore_case = true)]
    pub channel: Option<String>,
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
    #[arg(long, default_value = "normal", value_parser = clap::builder::PossibleValuesParser::new(["high", "normal", "low"]), ignore_case = true)]
    pub priority: String,
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
    /// No spinner.
    #[arg(long, short)]
    pub quiet: bool,
    /// Output format: table (default on a terminal), json (default otherwise), yaml, or
    /// ndjson (the result as one line).
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit::new(code, message).into()
}

pub async fn run(global: &super::GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let items = collect_items(&args)?;
    let client = Client::new(&ApiTarget::resolve(global, args.api_url.clone(), args.token.clone()))?;
    let format = output::resolve(args.output);
    let spinner = spinner(args.quiet);
    let mut result = SendResult::default();
    if args.file.is_none() {
        spinner.set_message("sending");
        let n = client
            .post("/v1/notifications", &serde_json::to_value(&items[0])?)
            .await?;
        result.notifications.push(n);
    } else {
        for (i, chunk) in items.chunks(MAX_BATCH).enumerate() {
            spinner.set_message(format!("sending batch {}", i + 1));
            let b = client
                .post("/v1/notifications/batch", &json!({"notifications": chunk}))
                .await?;
            if let Some(list) = b["notifications"].as_array() {
                result.notifications.extend(list.iter().cloned());
            }
            result.batches.push(json!({"batchId": b["batchId"], "totalCount": b["totalCount"], "status": b["status"], "warning": b.get("warning")}));
        }
    }
    let mut code = OK;
    if args.wait {
        let deadline = Instant::now() + args.timeout;
        spinner.set_style(waiting_style());
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

#[derive(Default, serde::Serialize)]
struct SendResult {
    notifications: Vec<Value>,
    batches: Vec<Value>,
}

/// Builds and validates every item locally, reporting all errors at once.
fn collect_items(args: &Args) -> anyhow::Result<Vec<NotificationRequest>> {
    let mut items = match &args.file {
        Some(path) => read_file(path)?,
        None => {
            let channel = args
                .channel
                .clone()
                .ok_or_else(|| fail(INVALID, "--channel is required (or use --file)"))?;
            let to = args
                .to
                .clone()
                .ok_or_else(|| fail(INVALID, "--to is required (or use --file)"))?;
            let content = match (&args.content, &args.content_file) {
                (Some(c), _) => c.clone(),
                (None, Some(path)) => read_text(path)?,
                (None, None) => return Err(fail(INVALID, "--content or --content-file is required")),
            };
            vec![NotificationRequest {
                channel: Some(channel),
                recipient: Some(to),
                content: Some(content),
                priority: Some(args.priority.clone()),
                idempotency_key: args.idempotency_key.clone(),
                correlation_id: args.correlation_id.clone(),
                max_retries: args.max_retries,
                scheduled_at: args.scheduled_at.clone(),
            }]
        }
    };
    let mut errors = Vec::new();
    for (i, item) in items.iter_mut().enumerate() {
        // As on the command line, priority may be left out.
        if item.priority.is_none() {
            item.priority = Some(args.priority.clone());
        }
        if let Some(when) = item.scheduled_at.clone() {
            match relative_time(&when) {
                Ok(Some(t)) => item.scheduled_at = Some(t),
                Ok(None) => {}
                Err(e) => errors.push(prefix(args, i, &format!("scheduledAt: {e}"))),
            }
        }
        if let Err(e) = item.validate(None, 5) {
            errors.push(prefix(args, i, &e.to_string()));
        }
    }
    if items.is_empty() {
        errors.push("the file holds no notifications".into());
    }
    if !errors.is_empty() {
        return Err(fail(INVALID, errors.join("\n")));
    }
    Ok(items)
}

fn prefix(args: &Args, index: usize, message: &str) -> String {
    if args.file.is_some() {
        format!("notifications[{index}].{message}")
    } else {
        // Name the flag the user typed.
        let field = message.split(':').next().unwrap_or_default();
        let flag = match field {
            "recipient" => "--to",
            "channel" => "--channel",
            "content" => "--content",
            "priority" => "--priority",
            "scheduledAt" => "--scheduled-at",
            _ => "",
        };
        if flag.is_empty() {
            message.to_string()
        } else {
            format!("{flag} ({message})")
        }
    }
}

/// `+10m` becomes an RFC 3339 time; anything else is left for validation.
fn relative_time(value: &str) -> Result<Option<String>, String> {
    let Some(offset) = value.trim().strip_prefix('+') else {
        return Ok(None);
    };
    let d = humantime::parse_duration(offset)
        .map_err(|e| format!("\"{value}\" is not a relative time such as +10m ({e})"))?;
    let at = chrono::Utc::now() + chrono::Duration::from_std(d).map_err(|e| e.to_string())?;
    Ok(Some(at.to_rfc3339()))
}

fn read_text(path: &PathBuf) -> anyhow::Result<String> {
    let mut text = String::new();
    if path.as_os_str() == "-" {
        std::io::stdin().read_to_string(&mut text)?;
    } else {
        text =
            std::fs::read_to_string(path).map_err(|e| fail(INVALID, format!("cannot read {}: {e}", path.display())))?;
    }
    Ok(text)
}

fn read_file(path: &PathBuf) -> anyhow::Result<Vec<NotificationRequest>> {
    let text = read_text(path)?;
    let trimmed = text.trim_start();
    let doc: Value = if trimmed.starts_with('{') || trimmed.starts_with('[') {
        serde_json::from_str(&text).map_err(|e| fail(INVALID, format!("{}: invalid JSON: {e}", path.display())))?
    } else {
        let yaml: serde_yaml::Value =
            serde_yaml::from_str(&text).map_err(|e| fail(INVALID, format!("{}: invalid YAML: {e}", path.display())))?;
        serde_json::to_value(yaml).map_err(|e| fail(INVALID, format!("{}: {e}", path.display())))?
    };
    let list = match doc {
        Value::Array(items) => items,
        Value::Object(mut map) => match map.remove("notifications") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(fail(
                    INVALID,
                    format!(
                        "{}: expected a list, or an object with a `notifications` list",
                        path.display()
                    ),
                ))
            }
        },
        _ => {
            return Err(fail(
                INVALID,
                format!(
                    "{}: expected a list, or an object with a `notifications` list",
                    path.display()
                ),
            ))
        }
    };
    reject_unknown_keys(path, &text)?;
    let mut errors = Vec::new();
    let mut items = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        match serde_path_to_error::deserialize::<_, NotificationRequest>(item) {
            Ok(r) => items.push(r),
            Err(e) => errors.push(format!("notifications[{i}].{}: {}", e.path(), e.inner())),
        }
    }
    if !errors.is_empty() {
        return Err(fail(INVALID, errors.join("\n")));
    }
    Ok(items)
}

/// The keys a send file's items may have: the API's field names.
const ITEM_KEYS: &[&str] = &[
    "channel",
    "recipient",
    "content",
    "priority",
    "idempotencyKey",
    "correlationId",
    "maxRetries",
    "scheduledAt",
];

/// The same shape as the file, refusing any key the API does not know (a misspelt
/// `scheduled_at` would otherwise be dropped and the notification sent at once).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[allow(dead_code)]
struct StrictItem {
    channel: Option<serde::de::IgnoredAny>,
    recipient: Option<serde::de::IgnoredAny>,
    content: Option<serde::de::IgnoredAny>,
    priority: Option<serde::de::IgnoredAny>,
    idempotency_key: Option<serde::de::IgnoredAny>,
    correlation_id: Option<serde::de::IgnoredAny>,
    max_retries: Option<serde::de::IgnoredAny>,
    scheduled_at: Option<serde::de::IgnoredAny>,
}

#[derive(serde::Deserialize)]
#[allow(dead_code)]
struct StrictWrapped {
    notifications: Vec<StrictItem>,
}

/// Names the file, the item, the line and the accepted keys (with the closest one).
fn reject_unknown_keys(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    let trimmed = text.trim_start();
    let wrapped = !(trimmed.starts_with('[') || trimmed.starts_with('-'));
    let de = serde_yaml::Deserializer::from_str(text);
    let result = if wrapped {
        serde_path_to_error::deserialize::<_, StrictWrapped>(de).map(|_| ())
    } else {
        serde_path_to_error::deserialize::<_, Vec<StrictItem>>(de).map(|_| ())
    };
    let Err(e) = result else {
        return Ok(());
    };
    let message = e.inner().to_string();
    let Some(key) = message
        .split_once("unknown field `")
        .and_then(|(_, rest)| rest.split('`').next())
    else {
        // Anything else is reported by the regular parse, with its own wording.
        return Ok(());
    };
    let item = e.path().to_string();
    let item = item.trim_start_matches("notifications").trim_start_matches('.');
    let index = item.trim_start_matches('[').split(']').next().unwrap_or("?");
    let line = e
        .inner()
        .location()
        .map_or_else(String::new, |l| format!(":{}", l.line()));
    let closest = ITEM_KEYS
        .iter()
        .map(|k| {
            (
                strsim::jaro_winkler(&key.to_ascii_lowercase().replace('_', ""), &k.to_ascii_lowercase()),
                k,
            )
        })
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map_or_else(String::new, |(_, k)| format!("did you mean `{k}`? "));
    Err(fail(
        INVALID,
        format!(
            "{}{line}: notifications[{index}]: unknown key `{key}`; {closest}accepted keys: {}",
            path.display(),
            ITEM_KEYS.join(", ")
        ),
    ))
}

struct Client {
    http: reqwest::Client,
    base: String,
    token: Option<String>,
    origin: &'static str,
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
        let settings = crate::config::Settings::load(global.config.as_deref(), &[]).ok();
        let token = token.or_else(|| {
            use secrecy::ExposeSecret;
            settings
                .as_ref()
                .and_then(|s| s.api_tokens.first().map(|t| t.expose_secret().to_string()))
        });
        if let Some(url) = url {
            return ApiTarget {
                url,
                token,
                origin: "--api-url / DISPATCH_API_URL",
            };
        }
        let Some(s) = settings else {
            return ApiTarget {
                url: "http://localhost:8080".into(),
                token,
                origin: "the default",
            };
        };
        let host = match s.api_host {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => "127.0.0.1".to_string(),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V6(v6) => format!("[{v6}]"),
            ip => ip.to_string(),
        };
        // TLS_CERT_FILE makes the listener HTTPS only.
        let scheme = if s.listener_tls.is_some() { "https" } else { "http" };
        ApiTarget {
            url: format!("{scheme}://{host}:{}", s.api_port),
            token,
            origin: "API_HOST / API_PORT",
        }
    }
}

impl Client {
    fn new(target: &ApiTarget) -> anyhow::Result<Client> {
        let base = target.url.trim_end_matches('/').to_string();
        url::Url::parse(&base).map_err(|e| fail(INVALID, format!("--api-url: \"{base}\" is not a URL ({e})")))?;
        Ok(Client {
            http: reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?,
            base,
            token: target.token.clone(),
            origin: target.origin,
        })
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let request = match &self.token {
            Some(t) => request.bearer_auth(t),
            None => request,
        };
        let response = request.send().await.map_err(|e| {
            fail(
                UNREACHABLE,
                format!(
                    "cannot reach the API at {} (from {}): {}; is `dispatchctl serve` running there? \
                     point at it with --api-url or DISPATCH_API_URL",
                    self.base,
                    self.origin,
                    root(&e)
                ),
            )
        })?;
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let message = body["error"].as_str().unwrap_or("no error message").to_string();
        if status.is_server_error() {
            return Err(fail(UNREACHABLE, format!("the API answered {status}: {message}")));
        }
        if status.is_client_error() {
            return Err(fail(
                INVALID,
                format!("the API refused the request ({status}): {message}"),
            ));
        }
        Ok(body)
    }

    async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Value> {
        self.send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(self.http.get(format!("{}{path}", self.base))).await
    }
}

fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn is_terminal(status: &Value) -> bool {
    matches!(status.as_str(), Some("SENT" | "FAILED" | "CANCELED"))
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
        let mut pending = 0u64;
        let mut failed = 0u64;
        if result.batches.is_empty() {
            for n in result.notifications.iter_mut() {
                if !is_terminal(&n["status"]) {
                    *n = client
                        .get(&format!("/v1/notifications/{}", n["id"].as_str().unwrap_or_default()))
                        .await?;
                }
                if !is_terminal(&n["status"]) {
                    pending += 1;
                } else if n["status"] != "SENT" {
                    failed += 1;
                }
            }
        } else {
            for b in result.batches.iter_mut() {
                if b["status"] == "PROCESSING" {
                    let summary = client
                        .get(&format!("/v1/batches/{}", b["batchId"].as_str().unwrap_or_default()))
                        .await?;
                    b["status"] = summary["status"].clone();
                    b["counts"] = summary["counts"].clone();
                }
                for c in b["counts"].as_array().into_iter().flatten() {
                    let n = c["count"].as_u64().unwrap_or(0);
                    if !is_terminal(&c["status"]) {
                        pending += n;
                    } else if c["status"] != "SENT" {
                        failed += n;
                    }
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
async fn refresh_all(client: &Client, notifications: &mut [Value]) -> anyhow::Result<()> {
    use futures_util::stream::{self, StreamExt, TryStreamExt};
    let ids: Vec<String> = notifications
        .iter()
        .map(|n| n["id"].as_str().unwrap_or_default().to_string())
        .collect();
    let fresh: Vec<Value> = stream::iter(ids)
        .map(|id| async move { client.get(&format!("/v1/notifications/{id}")).await })
        .buffered(16)
        .try_collect()
        .await?;
    for (slot, n) in notifications.iter_mut().zip(fresh) {
        *slot = n;
    }
    Ok(())
}

fn spinner(quiet: bool) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let s = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    // A spinner while the total is unknown (indicatif's default is a bar that reads 0/0).
    s.set_style(
        ProgressStyle::with_template("{spinner} {msg}  {elapsed}").unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    s.enable_steady_tick(Duration::from_millis(120));
    s
}

/// Once the total is known (waiting), a bar of finished notifications with its label.
fn waiting_style() -> ProgressStyle {
    ProgressStyle::with_template("{spinner} waiting [{bar:30}] {pos}/{len} notifications {msg}  {elapsed}")
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

fn render(format: Format, result: &SendResult, waited: bool) -> anyhow::Result<()> {
    if format != Format::Table {
        return output::print_structured(format, result);
    }
    let s = |n: &Value, k: &str| n[k].as_str().unwrap_or("-").to_string();
    if result.batches.is_empty() {
        let mut t = if waited {
            output::table(&["id", "channel", "priority", "status", "attempts", "last error"])
        } else {
            output::table(&["id", "channel", "priority", "status"])
        };
        for n in &result.notifications {
            let mut row = vec![s(n, "id"), s(n, "channel"), s(n, "priority"), s(n, "status")];
            if waited {
                row.push(attempts(n));
                row.push(why(n));
            }
            t.add_row(row);
        }
        output::line(&t)?;
        return Ok(());
    }
    let mut t = output::table(&["batch", "items", "status", "counts"]);
    for b in &result.batches {
        let counts = b["counts"]
            .as_array()
            .map(|cs| {
                cs.iter()
                    .map(|c| format!("{}: {}", c["status"].as_str().unwrap_or("?"), c["count"]))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        t.add_row(vec![
            b["batchId"].as_str().unwrap_or("-").to_string(),
            b["totalCount"].to_string(),
            batch_status(b),
            counts,
        ]);
    }
    output::line(&t)?;
    if waited {
        // Which ones did not make it, and why: the rows a person acts on.
        let unsent: Vec<&Value> = result.notifications.iter().filter(|n| n["status"] != "SENT").collect();
        if !unsent.is_empty() {
            let mut t = output::table(&["id", "channel", "status", "attempts", "last error"]);
            for n in unsent {
                t.add_row(vec![s(n, "id"), s(n, "channel"), s(n, "status"), attempts(n), why(n)]);
            }
            output::line(&t)?;
        }
    }
    Ok(())
}

fn attempts(n: &Value) -> String {
    format!("{}/{}", n["attemptCount"], n["maxRetries"])
}

/// The last error, with the dead-letter reason when there is one.
fn why(n: &Value) -> String {
    match (n["failureReason"].as_str(), n["lastError"].as_str()) {
        (Some(r), Some(e)) => format!("{r}: {e}"),
        (Some(r), None) => r.to_string(),
        (None, Some(e)) => e.to_string(),
        (None, None) => "-".to_string(),
    }
}

/// The contract's batch status, with "all N failed" when PARTIAL_FAILURE means all of them.
fn batch_status(b: &Value) -> String {
    let status = b["status"].as_str().unwrap_or("-").to_string();
    let total = b["totalCount"].as_u64().unwrap_or(0);
    let failed: u64 = b["counts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["status"] == "FAILED")
        .map(|c| c["count"].as_u64().unwrap_or(0))
        .sum();
    if status == "PARTIAL_FAILURE" && total > 0 && failed == total {
        format!("{status} (all {total} failed)")
    } else {
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_in_a_send_file_are_named_with_line_and_suggestion() {
        let text = "- channel: sms\n  recipient: x\n  content: a\n- channel: sms\n  recipient: x\n  content: b\n  scheduled_at: '+1h'\n";
        let err = reject_unknown_keys(std::path::Path::new("f.yaml"), text)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("f.yaml:7") && err.contains("notifications[1]") && err.contains("did you mean `scheduledAt`"),
            "{err}"
        );
        let json = r#"{"notifications":[{"channel":"sms","recipient":"x","content":"b","prio":"high"}]}"#;
        let err = reject_unknown_keys(std::path::Path::new("f.json"), json)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("notifications[0]") && err.contains("`prio`") && err.contains("`priority`"),
            "{err}"
        );
    }
}
