//! `dispatchctl notifications`: one notification by id (status, attempts with their errors,
//! and where it is now), or a list by status, channel, recipient and time, straight from
//! PostgreSQL.

use std::process::ExitCode;

use chrono::Utc;
use serde::Serialize;
use uuid::Uuid;

use super::inspect_dlq::{mask, parse_time};
use super::output::{self, Format};
use super::{fail, require_schema, GlobalArgs};
use crate::app::App;
use crate::domain::{one_line, Channel, Priority, Status};
use crate::store::lookup::{AttemptRow, LookupFilter, NotificationRow};

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0  found (a list may be empty)\n  1  no notification has this id; PostgreSQL unreachable\n  2  invalid flags\n\nSettings: DATABASE_DSN, QUEUE_PREFIX, REQUEUE_LOST_AFTER, UNPUBLISHED_GRACE (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl notifications 0193c0de-7d1f-7aa0-9d5e-3b1f2a9c4e11\n  dispatchctl notifications --stuck --older-than 10m\n  dispatchctl notifications --status FAILED --channel sms --since 1h\n  dispatchctl notifications --to +905551234567 -o json"
)]
pub struct Args {
    /// Show this notification: its status, every attempt with its error, and where it is now.
    #[arg(value_name = "ID")]
    pub id: Option<Uuid>,
    /// Only this status: ACCEPTED, QUEUED, SENDING, SENT, FAILED, CANCELED.
    #[arg(long, value_name = "STATUS", conflicts_with = "id", ignore_case = true)]
    pub status: Option<Status>,
    /// Only this channel: sms, email, push.
    #[arg(long, value_name = "CHANNEL", conflicts_with = "id", ignore_case = true)]
    pub channel: Option<Channel>,
    /// Only this recipient (exact).
    #[arg(long = "to", value_name = "RECIPIENT", conflicts_with = "id")]
    pub recipient: Option<String>,
    /// Created at or after: RFC 3339, or an age such as 2h.
    #[arg(long, value_name = "TIME", conflicts_with = "id")]
    pub since: Option<String>,
    /// Created at or before: RFC 3339, or an age such as 30m.
    #[arg(long, value_name = "TIME", conflicts_with = "id")]
    pub until: Option<String>,
    /// At most this many, newest first (with --stuck: longest waiting first).
    #[arg(long, value_name = "N", default_value_t = 50, conflicts_with = "id")]
    pub limit: i64,
    /// List what is not final and has waited longer than --older-than: why each waits (in
    /// its queue, lost by the broker, a retry, a lease), and what the scanner does about it.
    #[arg(long, conflicts_with_all = ["id", "status", "recipient", "since", "until"])]
    pub stuck: bool,
    /// With --stuck: the wait that counts as stuck, such as 30s or 10m (default
    /// REQUEUE_LOST_AFTER).
    #[arg(long, value_name = "AGE", requires = "stuck", value_parser = humantime::parse_duration)]
    pub older_than: Option<std::time::Duration>,
    /// Show recipients unmasked.
    #[arg(long)]
    pub show_recipient: bool,
    /// Output format: table (default on a terminal), json (default otherwise), yaml, or
    /// ndjson (one notification per line).
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    #[serde(flatten)]
    row: NotificationRow,
    /// Where the notification is now, in words.
    location: String,
    attempts: Vec<AttemptRow>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let filter = LookupFilter {
        status: args.status,
        channel: args.channel,
        recipient: args.recipient.clone(),
        since: args.since.as_deref().map(|t| parse_time("--since", t)).transpose()?,
        until: args.until.as_deref().map(|t| parse_time("--until", t)).transpose()?,
        limit: args.limit.max(1),
    };
    let format = output::resolve(args.output);
    super::with_app(global, |app| async move { lookup(&app, &args, &filter, format).await }).await
}

async fn lookup(app: &App, args: &Args, filter: &LookupFilter, format: Format) -> anyhow::Result<ExitCode> {
    require_schema(&app.store).await?;
    let masked = |mut row: NotificationRow| {
        if !args.show_recipient {
            row.recipient = mask(&row.recipient);
        }
        row
    };
    if args.stuck {
        let older_than = args.older_than.unwrap_or(app.settings.requeue_lost_after);
        return super::stuck::show(app, older_than, args.channel, args.limit.max(1), format, masked).await;
    }
    if let Some(id) = args.id {
        let Some((row, attempts)) = app.store.lookup(id).await? else {
            return Err(fail(1, format!("no notification has the id {id}")));
        };
        let shown = Shown {
            location: location(app, &row),
            row: masked(row),
            attempts,
        };
        if format != Format::Table {
            output::print_structured(format, &shown)?;
            return Ok(ExitCode::SUCCESS);
        }
        let r = &shown.row;
        let mut t = output::table(&["field", "value"]);
        for (k, v) in [
            ("id", r.id.to_string()),
            ("status", r.status.to_string()),
            ("where", shown.location.clone()),
            ("channel", r.channel.to_string()),
            ("priority", r.priority.clone()),
            ("recipient", r.recipient.clone()),
            ("attempts", format!("{} of {}", r.attempt_count, r.max_retries)),
            ("last error", output::or_dash(r.last_error.as_ref())),
            ("failure reason", output::or_dash(r.failure_reason.as_ref())),
            ("provider message id", output::or_dash(r.provider_message_id.as_ref())),
            ("correlation id", r.correlation_id.clone()),
            ("batch", output::or_dash(r.batch_id)),
            ("created", r.created_at.to_rfc3339()),
            ("updated", r.updated_at.to_rfc3339()),
            ("scheduled", output::or_dash(r.scheduled_at.map(|t| t.to_rfc3339()))),
        ] {
            t.add_row(vec![k.to_string(), v]);
        }
        output::line(&t)?;
        if !shown.attempts.is_empty() {
            let mut t = output::table(&[
                "attempt",
                "outcome",
                "provider",
                "status code",
                "error",
                "provider answered",
                "ms",
                "at",
            ]);
            for a in &shown.attempts {
                t.add_row(vec![
                    a.attempt_number.to_string(),
                    a.outcome.clone(),
                    output::or_dash(a.provider.as_ref()),
                    output::or_dash(a.status_code),
                    output::or_dash(a.error.as_ref()),
                    output::or_dash(
                        a.response_body
                            .as_deref()
                            .map(|b| one_line(b, output::RESPONSE_CELL_CHARS)),
                    ),
                    a.duration_ms.to_string(),
                    output::time(a.created_at),
                ]);
            }
            output::line(&t)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<NotificationRow> = app.store.lookup_list(filter).await?.into_iter().map(masked).collect();
    match format {
        Format::Table => {
            let mut t = output::table(&[
                "id",
                "channel",
                "recipient",
                "status",
                "attempts",
                "last error",
                "created",
            ]);
            for r in &rows {
                t.add_row(vec![
                    r.id.to_string(),
                    r.channel.to_string(),
                    r.recipient.clone(),
                    r.status.to_string(),
                    format!("{}/{}", r.attempt_count, r.max_retries),
                    output::or_dash(r.last_error.as_ref()),
                    output::time(r.created_at),
                ]);
            }
            output::line(&t)?;
            output::note(match rows.len() {
                1 => "1 notification".to_string(),
                n => format!("{n} notifications"),
            });
        }
        f => output::print_rows(f, &rows)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Where a notification is now, from its row: the queue it waits in, its DLQ, or its schedule.
fn location(app: &App, r: &NotificationRow) -> String {
    let topology = app.broker.topology();
    let now = Utc::now();
    match r.status {
        Status::Sent => "delivered; in no queue".into(),
        Status::Canceled => "canceled; in no queue".into(),
        Status::Failed => match r.dead_lettered_at {
            Some(at) => format!(
                "in the dead-letter queue {} since {} ({}); see `inspect-dlq --list --id {}`",
                topology.dead_letter_queue(r.channel),
                at.to_rfc3339(),
                r.failure_reason.as_deref().unwrap_or("no reason recorded"),
                r.id
            ),
            None => "FAILED; its dead letter is not confirmed yet (the scanner publishes it)".into(),
        },
        Status::Sending => format!(
            "being delivered by a worker (lease until {})",
            output::or_dash(r.lease_expires_at.map(|t| t.to_rfc3339()))
        ),
        Status::Accepted | Status::Queued => {
            let queue = topology.work_queue(r.channel, r.priority.parse().unwrap_or(Priority::Normal));
            match (r.scheduled_at, r.next_retry_at) {
                (Some(at), _) if at > now => format!("scheduled for {}; published to {queue} then", at.to_rfc3339()),
                (_, Some(at)) => format!(
                    "waiting for its retry at {}; then re-published to {queue}",
                    at.to_rfc3339()
                ),
                _ if r.status == Status::Accepted || r.awaiting_publish => {
                    "stored; its work message is about to be published (the scanner publishes it if not)".into()
                }
                _ => format!("in the work queue {queue}"),
            }
        }
    }
}
