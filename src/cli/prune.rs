//! `dispatchctl prune`: one retention pass for cron. Thin: flags and settings in,
//! `dispatch::prune` does the work, a table or JSON summary out.

use std::io::{IsTerminal, Write};
use std::num::NonZeroU32;
use std::path::PathBuf;
use std::process::ExitCode;

use super::output::{self, Format};
use super::values::number;
use super::{fail, load_settings_quiet_with, require_schema, Exit, GlobalArgs};
use crate::config::{Overrides, Period};
use crate::dispatch::prune::{cutoff, prune, PrunePlan, PruneReport};
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
    #[arg(long, value_name = "DURATION", value_parser = |v: &str| period(v, "RETENTION_PERIOD"))]
    pub older_than: Option<Period>,
    /// Audit rows older than this go (overrides AUDIT_RETENTION_PERIOD), e.g. 365d.
    #[arg(long, value_name = "DURATION", value_parser = |v: &str| period(v, "AUDIT_RETENTION_PERIOD"))]
    pub audit_older_than: Option<Period>,
    /// Rows per transaction (overrides PRUNE_BATCH_SIZE).
    #[arg(long, value_name = "N", value_parser = |v: &str| number(v, 1u32, "a number of rows per transaction (1 or more, e.g. 500", "PRUNE_BATCH_SIZE"))]
    pub batch_size: Option<u32>,
    /// Most notifications deleted per second, 0 for no limit (overrides PRUNE_MAX_RATE).
    #[arg(long, value_name = "N", value_parser = |v: &str| number(v, 0u32, "a number of notifications per second (e.g. 1000, or 0 for no limit", "PRUNE_MAX_RATE"))]
    pub max_rate: Option<u32>,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
    /// Output format: table (default on a terminal), json (default otherwise) or yaml.
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

/// A flag's value is checked as its setting's would be, and the error names both.
fn period(value: &str, setting: &str) -> Result<Period, String> {
    value.parse().map_err(|e| format!("{e} (as {setting})"))
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Overrides {
        retention_period: args.older_than,
        audit_retention_period: args.audit_older_than,
        prune_batch_size: args.batch_size.and_then(NonZeroU32::new),
        prune_max_rate: args.max_rate,
        ..Overrides::default()
    };
    let settings = load_settings_quiet_with(global, &flags)?;
    if settings.retention_period.is_none() && settings.audit_retention_period.is_none() {
        return Err(fail(
            2,
            "prune: no retention period is set, so everything is kept; set RETENTION_PERIOD (e.g. 90d) or pass --older-than",
        ));
    }
    let to_stdout = args.export.as_deref().is_some_and(|p| p.as_os_str() == "-");
    let mut file = match &args.export {
        Some(path) if !args.dry_run && !to_stdout => Some(output::open_export(path)?),
        _ => None,
    };
    let store = Store::connect(&settings.database, 2)
        .await
        .map_err(|e| Exit::new(1, format!("prune: {e}")))?;
    require_schema(&store).await?;
    let plan = PrunePlan::of(&settings, args.dry_run);
    // The count walks every prunable row: only worth it when a bar shows it.
    let total = if args.dry_run || args.quiet || !std::io::stderr().is_terminal() {
        0
    } else {
        store
            .prune_counts(cutoff(plan.period, chrono::Utc::now()), None)
            .await
            .map(|c| c.notification_total())
            .unwrap_or(0)
    };
    let bar = output::progress(
        args.quiet || args.dry_run,
        Some(total),
        "{spinner} pruning [{bar:30}] {pos}/{len} notifications  {msg}  eta {eta}",
    );
    let cancel = crate::shutdown::on_signal();
    let mut write = |rows: &[serde_json::Value]| -> std::io::Result<()> {
        // Flushed before the batch's delete commits: nothing is deleted unexported.
        let mut buf = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut buf, row)?;
            buf.push(b'\n');
        }
        if to_stdout {
            let mut out = std::io::stdout().lock();
            out.write_all(&buf)?;
            out.flush()
        } else if let Some(f) = file.as_mut() {
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
