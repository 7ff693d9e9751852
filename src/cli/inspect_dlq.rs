//! `dispatchctl inspect-dlq`: what is in the dead-letter queues, joined with what PostgreSQL
//! knows, without consuming anything (see `broker::dlq`).

use std::collections::BTreeMap;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::output::{self, Format};
use super::{Exit, GlobalArgs};
use crate::app::App;
use crate::broker::dlq::{DeadLetterView, DlqCursor};
use crate::dispatch::replay::Selection;
use crate::domain::{one_line, Channel, DeadLetterReason};

/// Selection flags shared by `inspect-dlq --list` and `replay`.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SelectionArgs {
    /// Notification id (repeatable).
    #[arg(long = "id", value_name = "UUID")]
    pub ids: Vec<Uuid>,
    /// Only this channel's DLQ (repeatable): sms, email, push.
    #[arg(long = "channel", value_name = "CHANNEL", ignore_case = true)]
    pub channels: Vec<Channel>,
    /// Only this reason: permanent_error, retry_exhausted, invalid_message, not_found.
    #[arg(long, value_name = "REASON")]
    pub reason: Option<DeadLetterReason>,
    /// Dead-lettered at or after: RFC 3339, or an age such as 2h (= 2 hours ago).
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,
    /// Dead-lettered at or before: RFC 3339, or an age such as 30m.
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,
    /// At most this many letters are listed or acted on; the rest stay in the DLQ, in order.
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,
}

impl SelectionArgs {
    pub fn to_selection(&self, all: bool) -> anyhow::Result<Selection> {
        Ok(Selection {
            ids: self.ids.clone(),
            channels: self.channels.clone(),
            reason: self.reason,
            since: self.since.as_deref().map(|t| parse_time("--since", t)).transpose()?,
            until: self.until.as_deref().map(|t| parse_time("--until", t)).transpose()?,
            limit: self.limit,
            all,
        })
    }
}

/// RFC 3339, or an age ("2h") counted back from now.
pub fn parse_time(flag: &str, text: &str) -> anyhow::Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(t.with_timezone(&Utc));
    }
    let age = humantime::parse_duration(text.trim_start_matches('-')).map_err(|_| {
        Exit::new(
            2,
            format!("{flag}: \"{text}\" is neither an RFC 3339 time (2026-01-02T15:04:05Z) nor an age (30m, 2h)"),
        )
    })?;
    Ok(Utc::now() - chrono::Duration::from_std(age).unwrap_or_default())
}

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Inspection never consumes: every message stays in its DLQ, in order, even if the command is interrupted.\n\nExit status:\n  0  listed (the DLQs may be empty)\n  1  RabbitMQ or PostgreSQL unreachable (the message names which, and where)\n  2  invalid flags or settings\n\nSettings: DATABASE_DSN, RABBITMQ_URL, QUEUE_PREFIX (see docs/CONFIGURATION.md).\n\nExamples:\n  dispatchctl inspect-dlq\n  dispatchctl inspect-dlq --list --channel sms --reason permanent_error\n  dispatchctl inspect-dlq -o ndjson > dlq-archive.ndjson"
)]
pub struct Args {
    /// List messages instead of the per-channel summary.
    #[arg(long)]
    pub list: bool,
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Show recipients unmasked.
    #[arg(long)]
    pub show_recipient: bool,
    /// List past replays (the audit trail).
    #[arg(long, conflicts_with = "list")]
    pub history: bool,
    /// table (default on a terminal), json, yaml, or ndjson (one dead letter per line, with
    /// headers and body: the archive format).
    #[arg(short, long, value_enum)]
    pub output: Option<Format>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedLetter {
    #[serde(flatten)]
    letter: DeadLetterView,
    recipient: Option<String>,
    status: Option<String>,
    /// What the provider answered to the last attempt (an excerpt), from PostgreSQL.
    last_response: Option<String>,
}

#[derive(Serialize, Default)]
#[serde(rename_all = "camelCase")]
struct ChannelSummary {
    channel: String,
    queue: String,
    depth: u32,
    oldest_failed_at: Option<DateTime<Utc>>,
    oldest_age_seconds: Option<i64>,
    reasons: BTreeMap<String, u64>,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let format = output::resolve(args.output);
    super::with_app(global, |app| async move { inspect(&app, args, format).await }).await
}

async fn inspect(app: &App, args: Args, format: Format) -> anyhow::Result<ExitCode> {
    if args.history {
        let rows = app
            .store
            .audit_history(args.selection.limit.unwrap_or(50) as i64)
            .await?;
        if format == Format::Table {
            let mut t = output::table(&[
                "replay id",
                "operator",
                "source",
                "started",
                "replayed",
                "skipped",
                "errors",
                "state",
            ]);
            for r in &rows {
                let state = match (r.dry_run, r.finished_at) {
                    (false, Some(_)) if r.source == "discard" => "discarded (the count is under replayed)".to_string(),
                    (true, _) => "dry run".to_string(),
                    (false, Some(_)) => "finished".to_string(),
                    (false, None) => "interrupted".to_string(),
                };
                t.add_row(vec![
                    r.id.to_string(),
                    r.operator.clone(),
                    r.source.clone(),
                    output::time(r.started_at),
                    r.replayed.to_string(),
                    r.skipped.to_string(),
                    r.errors.to_string(),
                    state,
                ]);
            }
            output::line(&t)?;
        } else {
            output::print_rows(format, &rows)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let selection = args.selection.to_selection(true)?;
    if !args.list && format != Format::Ndjson {
        return summary(app, &selection, format).await;
    }
    list(app, &selection, format, args.show_recipient).await
}

async fn summary(app: &App, selection: &Selection, format: Format) -> anyhow::Result<ExitCode> {
    let mut out = Vec::new();
    for channel in selection.channels() {
        let mut cursor = DlqCursor::open(app.broker.endpoints(), app.broker.topology(), channel).await?;
        let mut s = ChannelSummary {
            channel: channel.as_str().into(),
            queue: app.broker.topology().dead_letter_queue(channel),
            depth: cursor.depth,
            ..Default::default()
        };
        while let Some(f) = cursor.next().await? {
            *s.reasons
                .entry(f.view.reason.clone().unwrap_or_else(|| "unknown".into()))
                .or_default() += 1;
            s.oldest_failed_at = s.oldest_failed_at.into_iter().chain(f.view.failed_at).min();
        }
        cursor.close().await;
        s.oldest_age_seconds = s.oldest_failed_at.map(|at| (Utc::now() - at).num_seconds());
        out.push(s);
    }
    if format == Format::Table {
        let mut t = output::table(&["channel", "queue", "depth", "oldest", "reasons"]);
        for s in &out {
            let oldest = output::or_dash(s.oldest_age_seconds.map(|a| {
                humantime::format_duration(std::time::Duration::from_secs(a.max(0) as u64)).to_string() + " ago"
            }));
            let reasons = s
                .reasons
                .iter()
                .map(|(r, n)| format!("{r}: {n}"))
                .collect::<Vec<_>>()
                .join(", ");
            t.add_row(vec![
                s.channel.clone(),
                s.queue.clone(),
                s.depth.to_string(),
                oldest,
                reasons,
            ]);
        }
        output::line(&t)?;
    } else {
        output::print_structured(format, &out)?;
    }
    Ok(ExitCode::SUCCESS)
}

async fn list(app: &App, selection: &Selection, format: Format, show_recipient: bool) -> anyhow::Result<ExitCode> {
    let mut table = output::table(&[
        "notification",
        "channel",
        "prio",
        "recipient",
        "attempts",
        "reason",
        "status code",
        "last error",
        "dead-lettered",
    ]);
    let mut structured = Vec::new();
    let mut shown = 0usize;
    // Read in chunks so the join with PostgreSQL is one query per chunk, and memory stays
    // bounded by the chunk (ndjson streams straight out).
    const CHUNK: usize = 500;
    for channel in selection.channels() {
        let mut cursor = DlqCursor::open(app.broker.endpoints(), app.broker.topology(), channel).await?;
        let mut chunk = Vec::with_capacity(CHUNK);
        let full = loop {
            let next = cursor.next().await?;
            let done = next.is_none();
            if let Some(f) = next.filter(|f| selection.matches(&f.view)) {
                chunk.push(f.view);
                shown += 1;
            }
            let full = selection.limit.is_some_and(|l| shown >= l);
            if chunk.len() >= CHUNK || done || full {
                for r in join(app, std::mem::take(&mut chunk), show_recipient).await? {
                    match format {
                        Format::Ndjson => output::print_structured(Format::Ndjson, &r)?,
                        Format::Table => {
                            table.add_row(table_row(&r));
                        }
                        _ => structured.push(r),
                    }
                }
            }
            if done || full {
                break full;
            }
        };
        cursor.close().await;
        if full {
            break;
        }
    }
    match format {
        Format::Ndjson => {}
        Format::Table => {
            output::line(&table)?;
            let letters = if shown == 1 { "dead letter" } else { "dead letters" };
            let limited = if selection.limit.is_some_and(|l| shown >= l) {
                " (--limit reached: more may follow)"
            } else {
                ""
            };
            output::note(format!("{shown} {letters} shown{limited}; nothing was consumed"));
        }
        f => output::print_structured(f, &structured)?,
    }
    Ok(ExitCode::SUCCESS)
}

async fn join(app: &App, letters: Vec<DeadLetterView>, show_recipient: bool) -> anyhow::Result<Vec<ListedLetter>> {
    let ids: Vec<Uuid> = letters.iter().filter_map(|l| l.notification_id).collect();
    let details = app.store.failure_details(&ids).await?;
    Ok(letters
        .into_iter()
        .map(|letter| {
            let d = letter
                .notification_id
                .and_then(|id| details.iter().find(|d| d.id == id));
            ListedLetter {
                recipient: d.map(|d| {
                    if show_recipient {
                        d.recipient.clone()
                    } else {
                        mask(&d.recipient)
                    }
                }),
                status: d.map(|d| d.status.to_string()),
                last_response: d.and_then(|d| d.last_response.clone()),
                letter,
            }
        })
        .collect())
}

fn table_row(r: &ListedLetter) -> Vec<String> {
    let l = &r.letter;
    vec![
        output::or_dash(l.notification_id),
        l.channel.to_string(),
        output::or_dash(l.priority),
        output::or_dash(r.recipient.as_ref()),
        output::or_dash(l.attempts),
        output::or_dash(l.reason.as_ref()),
        output::or_dash(l.last_status_code),
        match (&l.last_error, &r.last_response) {
            (Some(e), Some(body)) => format!("{e}: {}", one_line(body, output::RESPONSE_CELL_CHARS)),
            (e, _) => output::or_dash(e.as_ref()),
        },
        output::or_dash(l.failed_at.map(output::time)),
    ]
}

/// Keeps enough of a recipient to recognise it: `+90*******567`, `a**@example.com`.
pub fn mask(recipient: &str) -> String {
    let chars: Vec<char> = recipient.chars().collect();
    if let Some(at) = recipient.find('@') {
        let (local, domain) = recipient.split_at(at);
        let first: String = local.chars().take(1).collect();
        return format!(
            "{first}{}{domain}",
            "*".repeat(local.chars().count().saturating_sub(1).max(2))
        );
    }
    if chars.len() <= 4 {
        return "*".repeat(chars.len());
    }
    let keep = (chars.len() / 4).clamp(1, 3);
    let head: String = chars[..keep].iter().collect();
    let tail: String = chars[chars.len() - keep..].iter().collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 2 * keep))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_phone_numbers_and_emails() {
        assert_eq!(mask("+905551234567"), "+90*******567");
        assert_eq!(mask("ada@example.com"), "a**@example.com");
        assert_eq!(mask("abc"), "***");
    }

    #[test]
    fn times_accept_rfc3339_and_ages() {
        assert!(parse_time("--since", "2026-01-02T03:04:05Z").is_ok());
        let t = parse_time("--since", "2h").unwrap();
        assert!((Utc::now() - t).num_minutes() >= 119);
        assert!(parse_time("--since", "yesterday").is_err());
    }
}
