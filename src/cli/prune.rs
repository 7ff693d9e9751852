//! `dispatchctl prune`: one retention pass for cron. Thin: flags and settings in,
//! `dispatch::prune` does the work, a table or JSON summary out.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::output::{self, Format};
use super::{load_settings_quiet, require_schema, Exit, GlobalArgs};
use crate::dispatch::prune::{prune, PrunePlan, PruneReport};
use crate::store::Store;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Deletes SENT and CANCELED notifications (with their attempts) untouched for longer than RETENTION_PERIOD, batches none of whose items is left, and replay/discard audit rows older than AUDIT_RETENTION_PERIOD. FAILED notifications are never deleted: their dead letter may still be in dlq.<channel> (replay them, and they are pruned once SENT). Scheduled and in-flight notifications are never deleted. Each batch of --batch-size rows is its own short transaction: a run stopped anywhere (Ctrl-C, kill) keeps what it deleted, and the next run continues.\n\nExit status:\n  0    the pass finished (also when nothing was old enough, or with --dry-run)\n  1    PostgreSQL unreachable or a statement failed; the export could not be written\n  2    invalid flags or settings, or no retention period set (RETENTION_PERIOD, AUDIT_RETENTION_PERIOD or --older-than)\n  130  interrupted: the batches deleted before are reported\n\nSettings: DATABASE_DSN, RETENTION_PERIOD, AUDIT_RETENTION_PERIOD, PRUNE_BATCH_SIZE, PRUNE_MAX_RATE (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl prune --dry-run                          # counts per status and channel\n  dispatchctl prune --older-than 90d --export old.ndjson\n  dispatchctl prune --export - | gzip > pruned-$(date +%F).ndjson.gz\n  RETENTION_PERIOD=30d dispatchctl prune -o json       # from cron"
)]
pub struct Args {
    /// Count what would be deleted, per status and channel; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Append each deleted notification with its attempts as one JSON line to FILE (`-`:
    /// stdout, and the summary goes to stderr), written before its batch is deleted.
    #[arg(long, value_name = "FILE|-")]
    pub export: Option<PathBuf>,
    /// Notifications untouched for longer than this go (overrides RETENTION_PERIOD), e.g. 30d.
    #[arg(long, value_name = "DURATION")]
    pub older_than: Option<String>,
    /// Audit rows older than this go (overrides AUDIT_RETENTION_PERIOD), e.g. 365d.
    #[arg(long, value_name = "DURATION")]
    pub audit_older_than: Option<String>,
    /// Rows per transaction (overrides PRUNE_BATCH_SIZE).
    #[arg(long, value_name = "N")]
    pub batch_size: Option<String>,
    /// Most notifications deleted per second, 0 for no limit (overrides PRUNE_MAX_RATE).
    #[arg(long, value_name = "N")]
    pub max_rate: Option<String>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table (default on a terminal), json (default otherwise) or yaml.
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let mut settings = load_settings_quiet(global)?;
    // The flags go through the settings' own validation, so they fail the same way.
    let mut flags = Vec::new();
    if let Some(v) = &args.older_than {
        flags.push(("RETENTION_PERIOD", v.clone()));
    }
    if let Some(v) = &args.audit_older_than {
        flags.push(("AUDIT_RETENTION_PERIOD", v.clone()));
    }
    if let Some(v) = &args.batch_size {
        flags.push(("PRUNE_BATCH_SIZE", v.clone()));
    }
    if let Some(v) = &args.max_rate {
        flags.push(("PRUNE_MAX_RATE", v.clone()));
    }
    if !flags.is_empty() {
        settings = crate::config::Settings::load(global.config.as_deref(), &flags)?;
    }
    if settings.retention_period.is_none() && settings.audit_retention_period.is_none() {
        return Err(Exit::new(
            2,
            "prune: no retention period is set, so everything is kept; set RETENTION_PERIOD (e.g. 90d) or pass --older-than",
        )
        .into());
    }
    let to_stdout = args.export.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let mut file = match &args.export {
        Some(_) if args.dry_run || to_stdout => None,
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| Exit::new(2, format!("--export: cannot open {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let store = Store::connect(&settings.database, 2)
        .await
        .map_err(|e| Exit::new(1, format!("prune: {e}")))?;
    require_schema(&store).await?;
    let plan = PrunePlan {
        period: settings.retention_period,
        audit_period: settings.audit_retention_period,
        batch_size: settings.prune_batch_size,
        max_rate: settings.prune_max_rate,
        dry_run: args.dry_run,
    };
    // The count walks every prunable row: only worth it when a bar shows it.
    let total = if args.dry_run || args.quiet || !std::io::stderr().is_terminal() {
        0
    } else {
        store
            .prune_counts(cutoff_of(plan.period), None)
            .await
            .map(|c| c.notification_total())
            .unwrap_or(0)
    };
    let bar = progress_bar(args.quiet || args.dry_run, total);
    let cancel = crate::shutdown::on_signal();
    let mut write = |rows: &[serde_json::Value]| -> std::io::Result<()> {
        // Flushed before the batch's delete commits: nothing is deleted unexported.
        if to_stdout {
            let mut out = std::io::stdout().lock();
            for row in rows {
                serde_json::to_writer(&mut out, row)?;
                out.write_all(b"\n")?;
            }
            out.flush()
        } else if let Some(f) = file.as_mut() {
            let mut buf = Vec::new();
            for row in rows {
                serde_json::to_writer(&mut buf, row)?;
                buf.push(b'\n');
            }
            f.write_all(&buf)?;
            f.sync_data()
        } else {
            Ok(())
        }
    };
    let exporting = args.export.is_some() && !args.dry_run;
    let mut on_progress = |c: &crate::store::prune::PruneCounts| {
        bar.set_position(c.notification_total());
        bar.set_message(format!(
            "{} attempts, {} batches, {} audit rows",
            c.attempts, c.batches, c.audit
        ));
    };
    let result = prune(
        &store,
        plan,
        &cancel,
        if exporting { Some(&mut write) } else { None },
        &mut on_progress,
    )
    .await;
    bar.finish_and_clear();
    store.pool().close().await;
    let report = result.map_err(|e| {
        Exit::new(
            1,
            format!("prune: {e}; the batches deleted before are kept, run it again to continue"),
        )
    })?;
    render(output::resolve(args.output), &report, to_stdout)?;
    if report.interrupted {
        output::note(format!(
            "interrupted: deleted {} notifications before the interruption; run it again to continue",
            report.counts.notification_total()
        ));
        return Ok(ExitCode::from(130));
    }
    Ok(ExitCode::SUCCESS)
}

fn cutoff_of(period: Option<Duration>) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::Utc::now().checked_sub_signed(chrono::Duration::from_std(period?).ok()?)
}

fn progress_bar(quiet: bool, total: u64) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} pruning [{bar:30}] {pos}/{len} notifications  {msg}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar
}

/// With the export on stdout, the summary goes to stderr so the NDJSON stays clean.
fn render(format: Format, r: &PruneReport, to_stderr: bool) -> anyhow::Result<()> {
    let emit = |text: String| -> anyhow::Result<()> {
        if to_stderr {
            output::note(text.trim_end());
            Ok(())
        } else {
            output::write_out(text)
        }
    };
    match format {
        Format::Table => {
            let mut t = output::table(&["status", "channel", "notifications"]);
            for (status, channels) in &r.counts.notifications {
                for (channel, n) in channels {
                    t.add_row(vec![status.clone(), channel.clone(), n.to_string()]);
                }
            }
            let c = &r.counts;
            let verb = if r.dry_run { "would delete" } else { "deleted" };
            let mut text = String::new();
            if c.notification_total() > 0 {
                text.push_str(&format!("{t}\n"));
            }
            text.push_str(&format!(
                "{verb} {} notifications, {} attempts, {} batches, {} audit rows ({} ms){}\n",
                c.notification_total(),
                c.attempts,
                c.batches,
                c.audit,
                r.duration_ms,
                if r.dry_run { "; nothing changed" } else { "" }
            ));
            emit(text)
        }
        Format::Yaml => emit(serde_yaml::to_string(r)?),
        _ => emit(format!("{}\n", serde_json::to_string_pretty(r)?)),
    }
}
