//! The scanner role: the scan loops (retries with lease recovery and the dead-letter sweep;
//! scheduled and never-published notifications), retention every PRUNE_INTERVAL when a
//! period is set, and the queue-depth gauges.

use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::dispatch::prune::{prune, PrunePlan};
use crate::dispatch::scan::ScanScope;
use crate::domain::Channel;
use crate::ops::BrokerCheck;
use crate::store::prune::PruneCounts;
use crate::store::ScanKind;

/// The `scan-retries --loop` daemon: the loops (every `interval`, or each loop's own
/// setting) and the ops endpoints on `listener`, until `shutdown`.
pub async fn run(
    app: App,
    interval: Option<Duration>,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let mut tasks = JoinSet::new();
    spawn_loops(&app, interval, &mut tasks, shutdown.clone());
    super::ops_endpoints(app, BrokerCheck::Publisher, listener, shutdown).await?;
    while tasks.join_next().await.is_some() {}
    Ok(())
}

/// The two scan loops `serve` and `scan-retries --loop` run: retries (with lease recovery
/// and dead-letter sweep) and scheduled (with never-published) notifications.
pub fn spawn_loops(app: &App, interval: Option<Duration>, tasks: &mut JoinSet<()>, shutdown: CancellationToken) {
    // Present from the first scrape, before the first pass has measured anything.
    for kind in ScanKind::ALL {
        app.metrics.due_backlog.with_label_values(&[kind.as_str()]);
    }
    let s = &app.settings;
    for (scope, every) in [
        (ScanScope::RETRIES, interval.unwrap_or(s.retry_scan_interval)),
        (ScanScope::SCHEDULED, interval.unwrap_or(s.scheduler_scan_interval)),
    ] {
        tasks.spawn(scan_loop(app.clone(), scope, every, shutdown.clone()));
    }
    if s.retention_period.is_some() || s.audit_retention_period.is_some() {
        tasks.spawn(prune_loop(app.clone(), shutdown));
    }
}

/// Retention in the daemon: one prune pass every PRUNE_INTERVAL, stopped between batches
/// by a shutdown (what was deleted stays deleted; the next start continues).
async fn prune_loop(app: App, shutdown: CancellationToken) {
    let s = &app.settings;
    let plan = PrunePlan::of(s, false);
    let mut counted = PruneCounts::default();
    loop {
        let mut on_progress = |c: &PruneCounts| {
            // Counted as each batch commits, so an interrupted pass still shows its work.
            for (kind, now, before) in [
                ("notification", c.notification_total(), counted.notification_total()),
                ("attempt", c.attempts, counted.attempts),
                ("batch", c.batches, counted.batches),
                ("audit", c.audit, counted.audit),
            ] {
                app.metrics
                    .pruned
                    .with_label_values(&[kind])
                    .inc_by(now.saturating_sub(before));
            }
            counted = c.clone();
        };
        match prune(&app.store, plan, &shutdown, None, &mut on_progress).await {
            Ok(r) if r.counts.total() > 0 => {
                tracing::info!(deleted = r.counts.total(), duration_ms = r.duration_ms, detail = ?r.counts, "prune pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "prune pass incomplete; the next pass continues"),
        }
        counted = PruneCounts::default();
        if let Ok(oldest) = app.store.oldest_finished().await {
            let age = oldest.map_or(0, |at| (chrono::Utc::now() - at).num_seconds().max(0));
            app.metrics
                .oldest_finished_age
                .with_label_values(&[] as &[&str])
                .set(age);
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(s.prune_interval) => {}
        }
    }
}

/// The retries' loop also samples the queue depths.
async fn scan_loop(app: App, scope: ScanScope, every: Duration, shutdown: CancellationToken) {
    let scanner = app.scanner();
    loop {
        let span = crate::otel::Span::start(scope.span_name(), opentelemetry::trace::SpanKind::Internal, None);
        let pass = scanner.pass(scope, false).await;
        match &pass {
            Ok(r) => span.set("dispatch.handled", i64::try_from(r.total()).unwrap_or(i64::MAX)),
            Err(e) => span.fail(e.to_string()),
        }
        span.end();
        match pass {
            Ok(r) if r.total() > 0 => {
                tracing::info!(handled = r.total(), duration_ms = r.duration_ms, detail = ?r.handled, "scan pass")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "scan pass incomplete; due rows stay due"),
        }
        if scope.retries {
            sample_depths(&app).await;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(every) => {}
        }
    }
}

/// Queue and DLQ depths, and the age of the oldest unfinished notifications, for the alerts.
async fn sample_depths(app: &App) {
    match app.store.oldest_unfinished().await {
        Ok(oldest) => {
            let now = chrono::Utc::now();
            for (channel, status, since) in oldest {
                let age = since.map_or(0, |at| (now - at).num_seconds().max(0));
                app.metrics
                    .oldest_unfinished_age
                    .with_label_values(&[channel.lower(), status.as_str()])
                    .set(age);
            }
        }
        Err(e) => tracing::debug!(error = %e, "oldest unfinished notifications not sampled"),
    }
    let topology = app.broker.topology().clone();
    for channel in Channel::ALL {
        if let Ok(n) = app.broker.channel_depth(*channel).await {
            app.metrics
                .queue_depth
                .with_label_values(&[channel.lower()])
                .set(i64::from(n));
        }
        if let Ok(n) = app.broker.queue_depth(&topology.dead_letter_queue(*channel)).await {
            app.metrics
                .dlq_depth
                .with_label_values(&[channel.lower()])
                .set(i64::from(n));
        }
    }
}
