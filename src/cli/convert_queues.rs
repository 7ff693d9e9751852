//! `dispatchctl convert-queues`: move the queues of a deployment between the classic and the
//! quorum type, keeping every waiting message and dead letter.

use std::process::ExitCode;

use super::output::{self, Format};
use super::{load_settings_quiet, GlobalArgs};
use crate::broker::convert::convert;
use crate::broker::{Endpoints, QueueType, Topology};

#[derive(clap::Args, Debug, Clone)]
#[command(after_help = "\
Stop every dispatchctl process of the deployment first (notifications accepted meanwhile wait \
in PostgreSQL), run this, then start them with the new QUEUE_TYPE. A rerun after an interruption \
finishes the job.

Examples:
  QUEUE_TYPE=quorum dispatchctl convert-queues --dry-run
  dispatchctl convert-queues --to quorum

Reads RABBITMQ_URL, QUEUE_PREFIX and QUEUE_DELIVERY_LIMIT (docs/CONFIGURATION.md).

Exit status: 0 converted (or nothing to do), 1 RabbitMQ failed (nothing was lost; run it again), \
2 bad settings.")]
pub struct Args {
    /// The queue type to convert to [default: QUEUE_TYPE].
    #[arg(long, value_name = "TYPE")]
    pub to: Option<QueueType>,
    /// Say what would move; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Output format: table, json, yaml or ndjson [default: table on a terminal, json otherwise].
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let settings = load_settings_quiet(global)?;
    let to = args.to.unwrap_or(settings.queue_type);
    let topology = Topology::new(settings.queue_prefix.clone(), to, settings.queue_delivery_limit);
    let endpoints = Endpoints::parse(&settings.rabbitmq_url, &settings.rabbitmq_tls);
    let report = convert(&endpoints, &topology, args.dry_run).await?;
    match output::resolve(args.output) {
        Format::Table => {
            if report.steps.is_empty() {
                output::note("nothing to convert: no queue of this deployment exists yet");
            } else {
                let mut t = output::table(&["queue", "action", "messages"]);
                for s in &report.steps {
                    t.add_row(vec![s.queue.clone(), s.action.to_string(), s.messages.to_string()]);
                }
                output::line(&t)?;
            }
            if args.dry_run {
                output::note("dry run: nothing changed");
            } else {
                let moved = report.messages_moved();
                let noun = if moved == 1 { "message" } else { "messages" };
                output::note(format!(
                    "converted to {to} queues ({moved} {noun} moved); start every process with QUEUE_TYPE={to}"
                ));
            }
        }
        f => output::print_structured(f, &report)?,
    }
    Ok(ExitCode::SUCCESS)
}
