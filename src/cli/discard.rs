//! `dispatchctl discard`: remove dead letters that must never be sent (a recipient that does
//! not exist, a message that is wrong), on purpose: the same selection as `replay`, a dry
//! run, a confirmation, an optional export of every discarded letter, and an audit record.
//! The notifications stay FAILED in PostgreSQL; only their dead letters go.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use super::inspect_dlq::SelectionArgs;
use super::output::{self, Format};
use super::{fail, require_schema, GlobalArgs};
use crate::app::App;
use crate::dispatch::discard;
use crate::dispatch::replay::Selection;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Discarded letters are gone from RabbitMQ for good; their notifications stay FAILED in PostgreSQL (replay --from-db can still resend them). Export first: --export FILE writes every discarded letter (headers and body, as inspect-dlq -o ndjson) before it is removed.\n\nExit status:\n  0    the selected letters were discarded (or, with --dry-run, listed)\n  1    an --id selection matched no dead letter; RabbitMQ or PostgreSQL unreachable\n  2    invalid flags, no selection, or no confirmation (use --yes when not on a terminal)\n  130  interrupted: what was discarded before is reported and audited\n\nSettings: DATABASE_DSN, RABBITMQ_URL, QUEUE_PREFIX (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl discard --channel sms --reason permanent_error --dry-run\n  dispatchctl discard --id 0193c0de-7d1f-7aa0-9d5e-3b1f2a9c4e11 --export discarded.ndjson\n  dispatchctl discard --channel email --until 7d --export old.ndjson --yes"
)]
pub struct Args {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Discard every dead letter of the selected channels (all channels without --channel).
    #[arg(long)]
    pub all: bool,
    /// List what would be discarded; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal).
    #[arg(long, short)]
    pub yes: bool,
    /// Append every discarded letter to FILE (one JSON object per line) before removing it.
    #[arg(long, value_name = "FILE")]
    pub export: Option<PathBuf>,
    /// Output format: table (default on a terminal), json (default otherwise) or yaml.
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let selection = args.selection.to_selection(args.all)?;
    if selection.is_unbounded() {
        return Err(fail(
            2,
            "discard needs a selection: --id UUID, --channel sms|email|push, --reason REASON, --since/--until TIME, \
             or --all; add --dry-run to see what it takes",
        ));
    }
    let format = output::resolve(args.output);
    super::with_app(global, |app| async move {
        run_discard(&app, &args, &selection, format).await
    })
    .await
}

async fn run_discard(app: &App, args: &Args, sel: &Selection, format: Format) -> anyhow::Result<ExitCode> {
    require_schema(&app.store).await?;
    if !args.dry_run && !args.yes {
        if !std::io::stdin().is_terminal() {
            return Err(fail(
                2,
                "discard removes dead letters for good: confirm with --yes (stdin is not a terminal), after a --dry-run",
            ));
        }
        let what = if sel.all {
            "every selected dead letter"
        } else {
            "the selected dead letters"
        };
        if !super::confirm(&format!("Discard {what} for good (they are not sent)? [y/N] ")).await? {
            output::note("nothing discarded");
            return Ok(ExitCode::SUCCESS);
        }
    }
    let mut export = match &args.export {
        Some(path) if !args.dry_run => Some(output::open_export(path)?),
        _ => None,
    };
    let cancel = crate::shutdown::on_signal();
    let summary = discard::discard(
        &app.backends(),
        sel,
        args.dry_run,
        export.as_mut().map(|f| f as &mut dyn Write),
        &cancel,
    )
    .await?;
    let selected = summary.selected;
    if format == Format::Table {
        let mut t = output::table(&["notification", "channel", "reason", "last error", "dead-lettered"]);
        for l in &summary.letters {
            t.add_row(vec![
                output::or_dash(l.notification_id),
                l.channel.to_string(),
                output::or_dash(l.reason.as_ref()),
                output::or_dash(l.last_error.as_ref()),
                output::or_dash(l.failed_at.map(output::time)),
            ]);
        }
        output::line(&t)?;
        output::line(if args.dry_run {
            format!("dry run: {selected} would be discarded; nothing changed")
        } else {
            format!(
                "discard {}: discarded {}; {} dead letters not selected stay in the DLQ",
                summary.discard_id, summary.discarded, summary.left
            )
        })?;
    } else {
        output::print_structured(format, &summary)?;
    }
    if summary.interrupted {
        output::note(format!(
            "interrupted: discarded {} before the interruption (recorded as {})",
            summary.discarded, summary.discard_id
        ));
        return Ok(ExitCode::from(130));
    }
    if !sel.ids.is_empty() && selected == 0 {
        output::note("no dead letter has the requested id(s); see `dispatchctl notifications ID` for where they are");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
