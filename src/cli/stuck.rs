//! `dispatchctl notifications --stuck`: the unfinished notifications that have waited longer
//! than a threshold, why each waits, and what the scanner will do about it. Read from
//! PostgreSQL and from passive looks at the work queues (which never create one).

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

use chrono::Utc;
use serde::Serialize;

use super::output::{self, Format};
use crate::app::App;
use crate::domain::stuck::{diagnose, Diagnosis, QueueState, ScanRules, Waiting};
use crate::domain::{Channel, Priority};
use crate::store::lookup::NotificationRow;
use crate::store::scan::{count_waiting, QueueWaiters};

/// How far past a queue's depth the waiting notifications are counted (each costs a row read).
const MISSING_COUNT_CAP: i64 = 10_000;

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stuck {
    #[serde(flatten)]
    row: NotificationRow,
    queue: String,
    waiting_seconds: i64,
    why: String,
    next: String,
}

pub async fn show(
    app: &App,
    older_than: Duration,
    channel: Option<Channel>,
    limit: i64,
    format: Format,
    mask: impl Fn(NotificationRow) -> NotificationRow,
) -> anyhow::Result<ExitCode> {
    let rows = app.store.stuck(older_than, channel, limit).await?;
    let settings = &app.settings;
    let rules = ScanRules {
        unpublished_grace: settings.unpublished_grace,
        requeue_lost_after: settings.requeue_lost_after,
    };
    let topology = app.broker.topology().clone();
    // One look per queue these rows wait on, however many rows wait there.
    let mut queues: BTreeMap<String, QueueState> = BTreeMap::new();
    let now = Utc::now();
    let mut shown = Vec::with_capacity(rows.len());
    for row in rows {
        let priority = row.priority.parse().unwrap_or(Priority::Normal);
        let queue = topology.work_queue(row.channel, priority);
        if !queues.contains_key(&queue) {
            let state = queue_state(app, row.channel, &queue).await;
            queues.insert(queue.clone(), state);
        }
        let state = &queues[&queue];
        let waiting = Waiting {
            status: row.status,
            attempt_count: row.attempt_count,
            scheduled_at: row.scheduled_at,
            next_retry_at: row.next_retry_at,
            lease_expires_at: row.lease_expires_at,
            awaiting_publish: row.awaiting_publish,
            created_at: row.created_at,
            updated_at: row.updated_at,
            queue: &queue,
            queue_state: state,
        };
        let Diagnosis { why, next } = diagnose(&waiting, rules, now);
        let waiting_seconds = (now - waiting.waiting_since()).num_seconds().max(0);
        shown.push(Stuck {
            row: mask(row),
            queue,
            waiting_seconds,
            why,
            next,
        });
    }
    // Not one of the queues exists: the prefix points at nothing, and every reason would be
    // "the queue is gone". Say that once, with the prefixes that do exist.
    if let Some(queue) = queues.keys().next() {
        if queues.values().all(|q| matches!(q, QueueState::Missing)) {
            return Err(app.broker.missing(queue).into());
        }
    }
    if format != Format::Table {
        output::print_rows(format, &shown)?;
        return Ok(ExitCode::SUCCESS);
    }
    let threshold = humantime::format_duration(older_than);
    if shown.is_empty() {
        output::note(format!("nothing unfinished has waited longer than {threshold}"));
        return Ok(ExitCode::SUCCESS);
    }
    let mut t = output::table(&["id", "channel", "priority", "status", "waiting", "why", "next"]);
    for s in &shown {
        t.add_row(vec![
            s.row.id.to_string(),
            s.row.channel.to_string(),
            s.row.priority.clone(),
            s.row.status.to_string(),
            humantime::format_duration(Duration::from_secs(s.waiting_seconds as u64)).to_string(),
            s.why.clone(),
            s.next.clone(),
        ]);
    }
    output::line(&t)?;
    output::note(match shown.len() {
        1 => format!("1 notification has waited longer than {threshold}"),
        n if n as i64 == limit => format!("the {n} that have waited longest of those over {threshold} (--limit)"),
        n => format!("{n} notifications have waited longer than {threshold}"),
    });
    Ok(ExitCode::SUCCESS)
}

/// What the queue holds, and how many of the notifications waiting for it have no message
/// there (the scanner's lost-message rule, read without locking anything).
async fn queue_state(app: &App, channel: Channel, queue: &str) -> QueueState {
    let stats = match app.broker.queue_stats(queue).await {
        Ok(Some(stats)) => stats,
        Ok(None) => return QueueState::Missing,
        Err(e) => return QueueState::Unknown(e.to_string()),
    };
    let topology = app.broker.topology();
    let priorities = topology
        .work_queues_by_priority(channel)
        .into_iter()
        .find(|(name, _)| name == queue)
        .map_or_else(|| Priority::ALL.to_vec(), |(_, p)| p);
    let waiters = QueueWaiters { channel, priorities };
    let ready = i64::from(stats.messages);
    let waiting = match app.store.pool().acquire().await {
        Ok(mut conn) => {
            count_waiting(
                &mut conn,
                &waiters,
                app.settings.requeue_lost_after,
                ready.saturating_add(MISSING_COUNT_CAP),
            )
            .await
        }
        Err(e) => Err(e.into()),
    };
    match waiting {
        Ok(waiting) => QueueState::Holds {
            ready: stats.messages,
            consumers: stats.consumers,
            missing: (waiting - ready).max(0),
        },
        Err(e) => QueueState::Unknown(e.to_string()),
    }
}
