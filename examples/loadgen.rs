//! Load generator of `scripts/bench.sh`: drives `POST /v1/notifications`, the 100-item
//! `POST /v1/notifications/batch`, or the sink itself, either at a fixed concurrency (closed
//! loop, for throughput) or at a fixed request rate (open loop, for latency), and prints one
//! JSON object with counts, duration and latency percentiles.
//!
//! cargo run --release --example loadgen -- run --target single --url http://127.0.0.1:8080 --count 2000 --concurrency 64
//! cargo run --release --example loadgen -- run --target single --url ... --rate 500 --duration 20 --ids-out ids.csv
//! cargo run --release --example loadgen -- e2e --ids ids.csv --sink-log sink.log
//!
//! In rate mode requests are started on schedule whatever the earlier ones are doing, and
//! `latency_ms` counts from the scheduled start (so a stalled server or a starved generator
//! cannot hide latency); `service_ms` counts from the moment the request was actually sent.
//! `--ids-out` writes `notification_id,created_at_micros` per accepted notification (the
//! server's `createdAt`), which `e2e` joins with the sink's `--log` lines.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

#[derive(Parser)]
#[command(about = "dispatchctl benchmark load generator")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Send load and report counts and latency.
    Run(RunArgs),
    /// Join `--ids-out` with the sink's `--log` and report create→delivery latency.
    E2e(E2eArgs),
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Target {
    /// POST {url}/v1/notifications, one notification per request.
    Single,
    /// POST {url}/v1/notifications/batch, `--batch-size` notifications per request.
    Batch,
    /// POST {url} (the sink's /hook) the way a worker delivers.
    Sink,
}

#[derive(clap::Args)]
struct RunArgs {
    #[arg(long, value_enum)]
    target: Target,
    /// Base URL of the API (single, batch) or the sink's hook URL (sink).
    #[arg(long)]
    url: String,
    /// Closed loop: notifications to send (rounded up to whole batches).
    #[arg(long, default_value_t = 2000)]
    count: u64,
    /// Closed loop: requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Closed loop: start no new request after this many seconds, even if `--count` is not
    /// reached (0 = no cap); the output says whether the cap ended the run.
    #[arg(long, default_value_t = 0.0)]
    max_seconds: f64,
    /// Open loop: requests started per second (enables rate mode).
    #[arg(long)]
    rate: Option<f64>,
    /// Open loop: seconds to keep the rate.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Open loop: most requests in flight before new ones are counted as dropped.
    #[arg(long, default_value_t = 20000)]
    max_in_flight: usize,
    #[arg(long, default_value_t = 100)]
    batch_size: usize,
    /// Write `notification_id,created_at_micros` for every accepted notification.
    #[arg(long)]
    ids_out: Option<PathBuf>,
    /// Runtime worker threads of the generator.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Timeout of one request, in seconds.
    #[arg(long, default_value_t = 30.0)]
    timeout: f64,
    /// Free text copied into the JSON output.
    #[arg(long, default_value = "")]
    label: String,
    /// Also report latency percentiles per window of this many seconds (by scheduled start),
    /// so that a long run shows whether latency drifts or spikes (0 = no windows).
    #[arg(long, default_value_t = 0.0)]
    window: f64,
}

#[derive(clap::Args)]
struct E2eArgs {
    #[arg(long)]
    ids: PathBuf,
    #[arg(long)]
    sink_log: PathBuf,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Run(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(args.threads.max(1))
                .enable_all()
                .build()?;
            let out = rt.block_on(run(args))?;
            println!("{out}");
        }
        Cmd::E2e(args) => println!("{}", e2e(&args)?),
    }
    Ok(())
}

/// The outcome of one request.
struct Sample {
    ok: bool,
    status: String,
    /// Microseconds from the actual send to the end of the response.
    service_us: u64,
    /// Microseconds from the scheduled start (rate mode; equal to service_us otherwise).
    latency_us: u64,
    /// Seconds from the start of the run to the scheduled start.
    at_s: f64,
    notifications: u64,
    ids: Vec<(String, i64)>,
}

struct Shared {
    client: reqwest::Client,
    target: Target,
    url: String,
    batch_size: usize,
    want_ids: bool,
    seq: AtomicU64,
    origin: Instant,
}

const CHANNELS: [(&str, &str); 3] = [
    ("sms", "+905551234567"),
    ("email", "bench@example.com"),
    ("push", "device-bench-1"),
];

fn item(i: u64) -> Value {
    let (channel, recipient) = CHANNELS[(i % 3) as usize];
    json!({"channel": channel, "priority": "normal", "recipient": recipient, "content": format!("bench message {i}")})
}

impl Shared {
    fn request(&self) -> reqwest::RequestBuilder {
        let i = self.seq.fetch_add(1, Ordering::Relaxed);
        match self.target {
            Target::Single => self
                .client
                .post(format!("{}/v1/notifications", self.url))
                .header("content-type", "application/json")
                .body(item(i).to_string()),
            Target::Batch => {
                let items: Vec<Value> = (0..self.batch_size as u64)
                    .map(|k| item(i * self.batch_size as u64 + k))
                    .collect();
                self.client
                    .post(format!("{}/v1/notifications/batch", self.url))
                    .header("content-type", "application/json")
                    .body(json!({ "notifications": items }).to_string())
            }
            Target::Sink => self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-notification-id", format!("sink-bench-{i}"))
                .body(r#"{"to":"+905551234567","channel":"sms","content":"bench"}"#),
        }
    }

    fn per_request(&self) -> u64 {
        match self.target {
            Target::Batch => self.batch_size as u64,
            _ => 1,
        }
    }

    async fn send(&self, scheduled: Instant) -> Sample {
        let started = Instant::now();
        let result = self.request().send().await;
        let (ok, status, body) = match result {
            Ok(resp) => {
                let code = resp.status();
                let body = resp.bytes().await;
                match body {
                    Ok(b) => (code.is_success(), code.as_u16().to_string(), Some(b)),
                    Err(e) => (false, format!("body: {}", kind(&e)), None),
                }
            }
            Err(e) => (false, kind(&e), None),
        };
        let done = Instant::now();
        let mut ids = Vec::new();
        if ok && self.want_ids {
            if let Some(b) = &body {
                collect_ids(b, &mut ids);
            }
        }
        Sample {
            ok,
            status,
            service_us: (done - started).as_micros() as u64,
            latency_us: (done - scheduled).as_micros() as u64,
            at_s: scheduled.saturating_duration_since(self.origin).as_secs_f64(),
            notifications: if ok { self.per_request() } else { 0 },
            ids,
        }
    }
}

fn kind(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timeout".into()
    } else if e.is_connect() {
        "connect".into()
    } else {
        "transport".into()
    }
}

fn collect_ids(body: &[u8], out: &mut Vec<(String, i64)>) {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let mut push = |n: &Value| {
        let id = n.get("id").and_then(Value::as_str);
        let at = n
            .get("createdAt")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok());
        if let (Some(id), Some(at)) = (id, at) {
            out.push((id.to_string(), at.timestamp_micros()));
        }
    };
    match v.get("notifications").and_then(Value::as_array) {
        Some(items) => items.iter().for_each(&mut push),
        None => push(&v),
    }
}

async fn run(args: RunArgs) -> anyhow::Result<Value> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(usize::MAX)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .timeout(timeout)
        .build()?;
    let shared = Arc::new(Shared {
        client,
        target: args.target,
        url: args.url.trim_end_matches('/').to_string(),
        batch_size: args.batch_size.max(1),
        want_ids: args.ids_out.is_some(),
        seq: AtomicU64::new(0),
        origin: Instant::now(),
    });
    let started = Instant::now();
    let (samples, dropped, lag_max_us) = match args.rate {
        Some(rate) => open_loop(&shared, rate, args.duration, args.max_in_flight).await?,
        None => {
            let requests = args.count.div_ceil(shared.per_request());
            let cap = (args.max_seconds > 0.0).then(|| started + Duration::from_secs_f64(args.max_seconds));
            (
                closed_loop(&shared, requests, args.concurrency.max(1), cap).await?,
                0,
                0,
            )
        }
    };
    let elapsed = started.elapsed().as_secs_f64();

    if let Some(path) = &args.ids_out {
        let mut f = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        );
        for s in &samples {
            for (id, at) in &s.ids {
                writeln!(f, "{id},{at}")?;
            }
        }
        f.flush()?;
    }

    let ok = samples.iter().filter(|s| s.ok).count() as u64;
    let notifications: u64 = samples.iter().map(|s| s.notifications).sum();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    for s in &samples {
        *statuses.entry(s.status.clone()).or_default() += 1;
    }
    let ok_latency: Vec<u64> = samples.iter().filter(|s| s.ok).map(|s| s.latency_us).collect();
    let ok_service: Vec<u64> = samples.iter().filter(|s| s.ok).map(|s| s.service_us).collect();
    let mut out = json!({
        "label": args.label,
        "target": match args.target { Target::Single => "single", Target::Batch => "batch", Target::Sink => "sink" },
        "mode": if args.rate.is_some() { "rate" } else { "concurrency" },
        "concurrency": if args.rate.is_some() { Value::Null } else { json!(args.concurrency) },
        "rate": args.rate,
        "requests": samples.len(),
        "ok_requests": ok,
        "error_requests": samples.len() as u64 - ok,
        "dropped_requests": dropped,
        "stopped_by_time_cap": args.rate.is_none()
            && args.max_seconds > 0.0
            && (samples.len() as u64) < args.count.div_ceil(shared.per_request()),
        "notifications": notifications,
        "statuses": statuses,
        "duration_s": round3(elapsed),
        "requests_per_s": round1(samples.len() as f64 / elapsed),
        "ok_per_s": round1(ok as f64 / elapsed),
        "notifications_per_s": round1(notifications as f64 / elapsed),
        "latency_ms": percentiles(ok_latency),
    });
    if args.window > 0.0 {
        out["windows"] = windows(&samples, args.window);
    }
    if args.rate.is_some() {
        out["service_ms"] = percentiles(ok_service);
        out["generator_lag_max_ms"] = json!(round3(lag_max_us as f64 / 1000.0));
    }
    Ok(out)
}

/// `concurrency` tasks each sending the next request as soon as the previous one answered.
async fn closed_loop(
    shared: &Arc<Shared>,
    requests: u64,
    concurrency: usize,
    cap: Option<Instant>,
) -> anyhow::Result<Vec<Sample>> {
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency.min(requests.max(1) as usize) {
        let (shared, next) = (shared.clone(), next.clone());
        tasks.spawn(async move {
            let mut mine = Vec::new();
            while cap.is_none_or(|c| Instant::now() < c) && next.fetch_add(1, Ordering::Relaxed) < requests {
                mine.push(shared.send(Instant::now()).await);
            }
            mine
        });
    }
    let mut all = Vec::with_capacity(requests as usize);
    while let Some(r) = tasks.join_next().await {
        all.extend(r?);
    }
    Ok(all)
}

/// Starts request i at start + i/rate for `duration` seconds, independently of the answers.
/// Latency counts from the scheduled start (no coordinated omission), so the pacing runs on
/// an OS thread of its own: tokio's timer fires on millisecond ticks and, rounded up, added
/// about 1.4 ms of generator lateness to every sample.
async fn open_loop(
    shared: &Arc<Shared>,
    rate: f64,
    duration: f64,
    max_in_flight: usize,
) -> anyhow::Result<(Vec<Sample>, u64, u64)> {
    if rate <= 0.0 {
        bail!("--rate must be positive");
    }
    let total = (rate * duration).round() as u64;
    let limit = Arc::new(Semaphore::new(max_in_flight.max(1)));
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Sample>();
    let runtime = tokio::runtime::Handle::current();
    let shared = shared.clone();
    let pacer = std::thread::spawn(move || {
        let start = Instant::now() + Duration::from_millis(20);
        let (mut dropped, mut lag_max) = (0u64, 0u64);
        for i in 0..total {
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate);
            if let Some(wait) = scheduled.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            lag_max = lag_max.max(scheduled.elapsed().as_micros() as u64);
            let Ok(permit) = limit.clone().try_acquire_owned() else {
                dropped += 1;
                continue;
            };
            let (shared, done_tx) = (shared.clone(), done_tx.clone());
            runtime.spawn(async move {
                let s = shared.send(scheduled).await;
                drop(permit);
                let _ = done_tx.send(s);
            });
        }
        (dropped, lag_max)
    });
    let mut all = Vec::with_capacity(total as usize);
    // Every request task holds a sender; the channel closes when the pacer and all of them end.
    while let Some(s) = done_rx.recv().await {
        all.push(s);
    }
    let (dropped, lag_max) = pacer
        .join()
        .map_err(|_| anyhow::anyhow!("the pacing thread panicked"))?;
    Ok((all, dropped, lag_max))
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// Latency percentiles of the successful requests per `window` seconds of scheduled start.
fn windows(samples: &[Sample], window: f64) -> Value {
    let mut by: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
    for s in samples.iter().filter(|s| s.ok) {
        by.entry((s.at_s / window) as u64).or_default().push(s.latency_us);
    }
    Value::Array(
        by.into_iter()
            .map(|(k, us)| {
                let mut w = percentiles(us);
                w["from_s"] = json!(round3(k as f64 * window));
                w
            })
            .collect(),
    )
}

/// Nearest-rank percentiles of microsecond samples, in milliseconds.
fn percentiles(mut us: Vec<u64>) -> Value {
    if us.is_empty() {
        return json!({"count": 0});
    }
    us.sort_unstable();
    let at = |p: f64| {
        let rank = ((p / 100.0) * us.len() as f64).ceil().max(1.0) as usize;
        round3(us[rank.min(us.len()) - 1] as f64 / 1000.0)
    };
    let mean = us.iter().map(|&v| v as f64).sum::<f64>() / us.len() as f64 / 1000.0;
    json!({
        "count": us.len(),
        "p50": at(50.0),
        "p95": at(95.0),
        "p99": at(99.0),
        "max": round3(*us.last().unwrap_or(&0) as f64 / 1000.0),
        "mean": round3(mean),
    })
}

fn e2e(args: &E2eArgs) -> anyhow::Result<Value> {
    let read = |path: &PathBuf| -> anyhow::Result<Vec<(String, i64)>> {
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let mut rows = Vec::new();
        for line in std::io::BufReader::new(f).lines() {
            let line = line?;
            if let Some((id, t)) = line.trim().split_once(',') {
                if let Ok(t) = t.parse::<i64>() {
                    rows.push((id.to_string(), t));
                }
            }
        }
        Ok(rows)
    };
    let created: HashMap<String, i64> = read(&args.ids)?.into_iter().collect();
    // First receipt of each id (a redelivery would appear twice).
    let mut received: HashMap<String, i64> = HashMap::with_capacity(created.len());
    let mut duplicates = 0u64;
    for (id, t) in read(&args.sink_log)? {
        if !created.contains_key(&id) {
            continue;
        }
        match received.get_mut(&id) {
            Some(first) => {
                duplicates += 1;
                *first = (*first).min(t);
            }
            None => {
                received.insert(id, t);
            }
        }
    }
    let mut lat = Vec::with_capacity(received.len());
    let mut negative = 0u64;
    for (id, at) in &created {
        if let Some(r) = received.get(id) {
            let d = r - at;
            if d < 0 {
                negative += 1;
            }
            lat.push(d.max(0) as u64);
        }
    }
    Ok(json!({
        "created": created.len(),
        "delivered": received.len(),
        "missing": created.len() - received.len(),
        "duplicate_receipts": duplicates,
        "negative_clamped": negative,
        "e2e_ms": percentiles(lat),
    }))
}
