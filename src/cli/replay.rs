//! `dispatchctl replay`: dead letters back to the work queues, safely (see
//! `dispatch::replay`), with a progress bar, pacing and an audit record.

use std::io::IsTerminal;
use std::process::ExitCode;

use uuid::Uuid;

use super::inspect_dlq::SelectionArgs;
use super::output::{self, Format};
use super::{fail, require_schema, GlobalArgs};
use crate::app::App;
use crate::dispatch::replay::{self, ReplayOptions, ReplaySummary};
use crate::domain::Channel;
use crate::store::replay::FailedFilter;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0    every selected letter was replayed or skipped (with --wait: and every replayed notification was SENT)\n  1    some replays failed (those letters stay in the DLQ); an --id selection replayed nothing; with --wait: some failed again\n  2    invalid flags or a refused selection\n  3    --wait timed out\n  130  interrupted (Ctrl-C): what was done is kept, reported and audited; run the command again to continue\n\nSettings: DATABASE_DSN, RABBITMQ_URL, QUEUE_PREFIX (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl replay --channel sms --dry-run\n  dispatchctl replay --channel sms --reason retry_exhausted --rate 20 --wait\n  dispatchctl replay --id 0193c0de-... --reset-attempts\n  dispatchctl replay --from-db --channel email --since 2h"
)]
pub struct Args {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Replay every dead letter (asks for confirmation on a terminal unless --yes).
    #[arg(long)]
    pub all: bool,
    /// Do not ask for confirmation.
    #[arg(long, short)]
    pub yes: bool,
    /// List what would be replayed; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Give replayed notifications a fresh attempt budget (default: one more attempt).
    #[arg(long)]
    pub reset_attempts: bool,
    /// At most N replays per second, to spare a provider that just recovered.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    pub rate: Option<f64>,
    /// Replay FAILED notifications from PostgreSQL (for dead letters that were purged).
    #[arg(long)]
    pub from_db: bool,
    /// After replaying, wait (at most --timeout) until every replayed notification is SENT
    /// or FAILED again, and report which failed again and why (exit 1 if any did).
    #[arg(long, conflicts_with = "dry_run")]
    pub wait: bool,
    /// How long --wait waits.
    #[arg(long, default_value = "60s", value_parser = humantime::parse_duration, value_name = "DURATION")]
    pub timeout: std::time::Duration,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
    /// Output format of the summary: table (default on a terminal), json (default
    /// otherwise), yaml or ndjson.
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let selection = args.selection.to_selection(args.all)?;
    if selection.is_unbounded() {
        let advice = if args.dry_run {
            "--dry-run needs a selection too"
        } else {
            "add --dry-run to see what a selection takes without changing anything"
        };
        return Err(fail(
            2,
            format!(
                "replay needs a selection: --id UUID (one notification), --channel sms|email|push, --reason REASON, \
                 --since/--until TIME, or --all for every dead letter; {advice}"
            ),
        ));
    }
    if let Some(rate) = args.rate {
        if !(rate > 0.0 && rate.is_finite()) {
            return Err(fail(
                2,
                format!("--rate: {rate} must be a positive number of messages per second"),
            ));
        }
    }
    let format = output::resolve(args.output);
    super::with_app(global, |app| replay(app, args, selection, format)).await
}

async fn replay(app: App, args: Args, selection: replay::Selection, format: Format) -> anyhow::Result<ExitCode> {
    require_schema(&app.store).await?;
    if args.all && !args.yes && !args.dry_run && std::io::stdin().is_terminal() {
        let depth = total_depth(&app, Channel::ALL).await;
        if !super::confirm(&format!("Replay all {depth} dead letters of every channel? [y/N] ")).await? {
            output::note("nothing replayed");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let opts = ReplayOptions {
        dry_run: args.dry_run,
        reset_attempts: args.reset_attempts,
        rate: args.rate,
        replay_id: Uuid::now_v7(),
        operator: crate::config::operator_identity(),
        // Ctrl-C stops between two letters; what was replayed is kept and reported.
        cancel: crate::shutdown::on_signal(),
        track_ids: args.wait,
    };
    let filter = FailedFilter {
        ids: selection.ids.clone(),
        channel: selection.channels.first().copied(),
        reason: selection.reason,
        since: selection.since,
        until: selection.until,
        limit: selection.limit.map(|l| l as i64),
    };
    let (total, unit) = if args.from_db {
        (
            app.store.count_failed(&filter).await.unwrap_or(0),
            "FAILED notifications",
        )
    } else {
        (total_depth(&app, &selection.channels()).await, "dead letters examined")
    };
    let template = format!("{{spinner}} replaying [{{bar:30}}] {{pos}}/{{len}} {unit}  {{msg}}");
    let bar = output::progress(args.quiet, Some(total), &template);
    // The figure shown is the pace of replays (between their starts); the estimate is
    // measured from the first replay in letters examined, since what is left is examined at
    // that pace.
    let mut first: Option<(std::time::Instant, u64)> = None;
    let rate = args.rate;
    let mut on_progress = |s: &ReplaySummary, examined: u64| {
        bar.set_position(examined);
        if first.is_none() && s.replayed > 0 {
            first = Some((std::time::Instant::now(), examined));
        }
        let shown_rate = s
            .pace
            .per_second()
            .map_or_else(|| "-/s".to_string(), |r| format!("{r:.1}/s"));
        let eta = match first {
            Some((at, e0)) if examined > e0 => Some(at.elapsed().as_secs_f64().max(0.001) / (examined - e0) as f64),
            _ => rate.map(|r| 1.0 / r),
        };
        bar.set_message(format!(
            "replayed {} ({shown_rate}), skipped {}, errors {}  eta {}",
            s.replayed,
            s.skipped,
            s.errors,
            eta_text(total.saturating_sub(examined), eta)
        ));
    };
    let from_db = args.from_db.then_some(&filter);
    let result = replay::run(&app.backends(), &selection, from_db, &opts, &mut on_progress).await;
    bar.finish_and_clear();
    let mut summary = result?;
    if !selection.ids.is_empty() && !summary.dry_run {
        replay::explain_not_replayed(&app.backends(), &selection.ids, &mut summary, args.from_db).await?;
    }
    if args.wait && !summary.interrupted && summary.replayed > 0 {
        let deadline = tokio::time::Instant::now() + args.timeout;
        let bar = output::progress(
            args.quiet,
            Some(summary.replayed),
            "{spinner} waiting [{bar:30}] {pos}/{len} replayed notifications finished  {elapsed}",
        );
        let outcome = replay::wait_for_outcomes(
            &app.backends(),
            &summary.replayed_ids,
            deadline,
            &opts.cancel,
            |done, _| bar.set_position(done),
        )
        .await?;
        bar.finish_and_clear();
        summary.outcome = Some(outcome);
    }
    for n in &summary.not_replayed {
        output::note(format!("{}: not replayed: {}", n.id, n.reason));
    }
    if summary.interrupted {
        let remaining = if args.from_db {
            format!(
                "{} FAILED notifications",
                app.store.count_failed(&filter).await.unwrap_or(0)
            )
        } else {
            format!("{} dead letters", total_depth(&app, &selection.channels()).await)
        };
        output::note(format!(
            "interrupted: replayed {}, skipped {}, errors {} before the interruption (recorded as replay {}); \
             {remaining} remain, as they were; run the same command again to continue",
            summary.replayed, summary.skipped, summary.errors, summary.replay_id
        ));
    }
    render(format, &summary)?;
    let nothing_matched = !selection.ids.is_empty() && !summary.dry_run && summary.replayed == 0;
    let failed_again = summary.outcome.as_ref().is_some_and(|o| o.failed_again > 0);
    let still_pending = summary.outcome.as_ref().is_some_and(|o| o.pending > 0);
    Ok(if summary.interrupted || opts.cancel.is_cancelled() {
        ExitCode::from(130)
    } else if summary.errors > 0 || nothing_matched || failed_again {
        ExitCode::from(1)
    } else if still_pending {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// The time that `remaining` letters take at `per_letter` seconds each, rounded up to whole
/// seconds (an estimate that runs short would have the operator wait past it).
fn eta_text(remaining: u64, per_letter: Option<f64>) -> String {
    match per_letter {
        Some(per) if per.is_finite() => {
            let secs = (per * remaining as f64).ceil() as u64;
            humantime::format_duration(std::time::Duration::from_secs(secs)).to_string()
        }
        _ => "-".into(),
    }
}

/// The letters waiting in the DLQs of `channels` (0 for one that cannot be read).
async fn total_depth(app: &App, channels: &[Channel]) -> u64 {
    let mut total = 0;
    for channel in channels {
        let dlq = app.broker.topology().dead_letter_queue(*channel);
        total += u64::from(app.broker.queue_depth(&dlq).await.unwrap_or(0));
    }
    total
}

fn render(format: Format, s: &ReplaySummary) -> anyhow::Result<()> {
    if format != Format::Table {
        return output::print_structured(format, s);
    }
    if s.dry_run {
        let mut t = output::table(&["notification", "channel", "reason", "attempts", "dead-lettered"]);
        for l in &s.would_replay {
            t.add_row(vec![
                output::or_dash(l.notification_id),
                l.channel.to_string(),
                l.reason.clone().unwrap_or_default(),
                output::or_dash(l.attempts),
                output::or_dash(l.failed_at.map(output::time)),
            ]);
        }
        output::line(&t)?;
        output::line(format!(
            "dry run: {} would be replayed; nothing changed",
            s.would_replay_count
        ))?;
    } else if s.replayed + s.skipped + s.errors + s.left == 0 && !s.interrupted {
        output::line(format!(
            "replay {}: nothing to replay; the selected DLQs hold no dead letters",
            s.replay_id
        ))?;
    } else {
        output::line(format!(
            "replay {}: replayed {}, skipped {} (dead letters of notifications already replayed, or without an id), \
             errors {} (they stay in the DLQ); {} dead letters not selected stay in the DLQ",
            s.replay_id, s.replayed, s.skipped, s.errors, s.left
        ))?;
        if let Some(o) = &s.outcome {
            output::line(format!(
                "after the replay: {} SENT, {} failed again, {} not finished yet",
                o.sent, o.failed_again, o.pending
            ))?;
            if !o.failures.is_empty() {
                let mut t = output::table(&["notification", "status", "reason", "last error"]);
                for f in &o.failures {
                    t.add_row(vec![
                        f.id.to_string(),
                        f.status.clone(),
                        output::or_dash(f.reason.as_ref()),
                        output::or_dash(f.last_error.as_ref()),
                    ]);
                }
                output::line(&t)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::eta_text;

    #[test]
    fn the_estimate_counts_every_letter_left_and_rounds_up() {
        assert_eq!(eta_text(60, Some(0.1)), "6s");
        assert_eq!(eta_text(1, Some(0.1)), "1s");
        assert_eq!(eta_text(0, Some(0.1)), "0s");
        assert_eq!(eta_text(90, Some(1.0)), "1m 30s");
        assert_eq!(eta_text(5, None), "-");
    }
}
