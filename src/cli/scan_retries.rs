//! `dispatchctl scan-retries`: one pass for cron (the default), `--drain` until nothing is
//! due, or `--loop` as a daemon with `/livez`, `/readyz` and `/metrics` on `--listen`.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;

use super::output::{self, Format};
use super::{fail, load_settings, load_settings_quiet, require_schema, Exit, GlobalArgs};
use crate::app::App;
use crate::dispatch::scan::{PassReport, ScanScope};

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0  the pass succeeded (also when nothing was due)\n  1  PostgreSQL or RabbitMQ unreachable (one line: which, where, what to do)\n  2  invalid flags or settings\n\nSettings: DATABASE_DSN, RABBITMQ_URL, QUEUE_PREFIX, RETRY_SCAN_LIMIT, SCHEDULER_SCAN_LIMIT, UNPUBLISHED_GRACE, REQUEUE_LOST_AFTER, LEASE_TIMEOUT; with --loop also RETRY_SCAN_INTERVAL, SCHEDULER_SCAN_INTERVAL, RETENTION_PERIOD, AUDIT_RETENTION_PERIOD, PRUNE_INTERVAL, PRUNE_BATCH_SIZE, LOG_LEVEL, LOG_FORMAT (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl scan-retries --dry-run\n  dispatchctl scan-retries --drain -o json      # from cron\n  dispatchctl scan-retries --loop --listen 127.0.0.1:9092"
)]
pub struct Args {
    /// Run as a daemon, scanning every RETRY_SCAN_INTERVAL / SCHEDULER_SCAN_INTERVAL.
    #[arg(long = "loop")]
    pub daemon: bool,
    /// Interval of both scans in --loop mode (overrides the two settings), e.g. 5s.
    #[arg(long, value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub interval: Option<Duration>,
    /// Address of /livez, /readyz and /metrics in --loop mode.
    #[arg(long, default_value = "0.0.0.0:9092", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Show what would be enqueued without changing anything.
    #[arg(long, conflicts_with = "daemon")]
    pub dry_run: bool,
    /// Repeat passes until nothing is due (at most --max-passes).
    #[arg(long, conflicts_with_all = ["daemon", "dry_run"])]
    pub drain: bool,
    /// With --drain: stop after N passes even if more is due (the next run continues).
    #[arg(long, default_value_t = 100, value_name = "N")]
    pub max_passes: u32,
    /// Output format: table (default on a terminal), json (default otherwise), yaml or
    /// ndjson.
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
    #[command(flatten)]
    pub tls: super::tls_args::ListenerTlsArgs,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let settings = if args.daemon {
        load_settings(global, &args.tls.overrides())?
    } else {
        load_settings_quiet(global)?
    };
    let app = App::start(settings, false)
        .await
        .map_err(|e| Exit::new(1, format!("{e:#}")))?;
    require_schema(&app.store).await?;
    let outcome = if args.daemon {
        // A cron job's every run would mail it; the daemon says it once at start-up.
        app.warn_if_autovacuum_is_off().await;
        daemon(app.clone(), args).await
    } else {
        one_shot(&app, args).await.map_err(|e| super::locate(e, &app.settings))
    };
    app.close().await;
    outcome
}

async fn one_shot(app: &App, args: Args) -> anyhow::Result<ExitCode> {
    let scanner = app.scanner();
    let format = output::resolve(args.output);
    let mut reports = Vec::new();
    let passes = if args.drain { args.max_passes.max(1) } else { 1 };
    let mut failure = None;
    for _ in 0..passes {
        match scanner.pass(ScanScope::ALL, args.dry_run).await {
            Ok(report) => {
                let done = report.total() == 0;
                reports.push(report);
                if done {
                    break;
                }
            }
            Err(e) => {
                failure = Some(e.to_string());
                break;
            }
        }
    }
    // A pass that failed before it did anything has no report; the error says it all.
    if !reports.is_empty() {
        render(format, &reports)?;
    }
    match failure {
        Some(reason) => Err(fail(1, format!("scan-retries: {reason}"))),
        None => Ok(ExitCode::SUCCESS),
    }
}

fn render(format: Format, reports: &[PassReport]) -> anyhow::Result<()> {
    if format != Format::Table {
        // One pass as an object, several as a list.
        return match reports {
            [one] => output::print_structured(format, one),
            all => output::print_structured(format, &all),
        };
    }
    let mut t = output::table(&["pass", "kind", "channel", "count"]);
    for (i, r) in reports.iter().enumerate() {
        for (kind, channels) in &r.handled {
            for (channel, n) in channels {
                t.add_row(vec![(i + 1).to_string(), kind.clone(), channel.clone(), n.to_string()]);
            }
        }
    }
    let total: u64 = reports.iter().map(PassReport::total).sum();
    let ms: u64 = reports.iter().map(|r| r.duration_ms).sum();
    let dry = reports.first().is_some_and(|r| r.dry_run);
    let passes = match reports.len() {
        1 => "1 pass".to_string(),
        n => format!("{n} passes"),
    };
    if total == 0 {
        return output::line(format!("nothing was due ({passes}, {ms} ms)"));
    }
    output::line(&t)?;
    output::line(format!(
        "{} {total} notifications in {passes}, {ms} ms",
        if dry { "would enqueue" } else { "enqueued" },
    ))
}

async fn daemon(app: App, args: Args) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = crate::shutdown::on_signal();
    tracing::info!(listen = %args.listen, "scanner running");
    crate::roles::scanner::run(app, args.interval, listener, shutdown).await?;
    Ok(ExitCode::SUCCESS)
}
