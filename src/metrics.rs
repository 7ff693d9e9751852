//! Prometheus metrics of one process. A registry per process (not the global one), so tests
//! that run several apps in one binary do not read each other's counters. Label sets that are
//! known in advance are created at start, so every series exists from the first scrape.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts, Registry, TextEncoder};

use crate::domain::{Channel, DeadLetterReason, Status};

const NS: &str = "dispatch_engine";

/// The statuses of a notification that is not final, the labels of the unfinished-age gauge.
pub const UNFINISHED: [Status; 3] = [Status::Accepted, Status::Queued, Status::Sending];

pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub sent: IntCounterVec,
    pub failed: IntCounterVec,
    pub inflight: IntGaugeVec,
    pub retry_scheduled: IntCounterVec,
    pub send_duration: HistogramVec,
    pub dead_lettered: IntCounterVec,
    pub skipped: IntCounterVec,
    pub rate_limit_wait: HistogramVec,
    pub rate_limit_fallback: IntCounterVec,
    pub scanner_enqueued: IntCounterVec,
    pub outbox_published: IntCounterVec,
    pub scan_duration: HistogramVec,
    pub due_backlog: IntGaugeVec,
    pub dlq_depth: IntGaugeVec,
    pub queue_depth: IntGaugeVec,
    /// Creates that waited for their channel's backlog (BACKLOG_LIMIT), and those refused.
    pub backlog_waits: IntCounterVec,
    pub backlog_refused: IntCounterVec,
    pub write_batch_size: HistogramVec,
    pub pruned: IntCounterVec,
    pub oldest_finished_age: IntGaugeVec,
    pub oldest_unfinished_age: IntGaugeVec,
    pub lost_messages: IntGaugeVec,
    /// PostgreSQL pool connections by state (in_use, idle), and the pool's bound (max).
    pub db_pool_connections: IntGaugeVec,
    /// AMQP channels this process holds open, by role; set at each scrape.
    pub amqp_channels: IntGaugeVec,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help).namespace(NS), labels).expect("static metric definition");
    registry.register(Box::new(c.clone())).expect("metric registered once");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let g = IntGaugeVec::new(Opts::new(name, help).namespace(NS), labels).expect("static metric definition");
    registry.register(Box::new(g.clone())).expect("metric registered once");
    g
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str], buckets: Vec<f64>) -> HistogramVec {
    let h = HistogramVec::new(HistogramOpts::new(name, help).namespace(NS).buckets(buckets), labels)
        .expect("static metric definition");
    registry.register(Box::new(h.clone())).expect("metric registered once");
    h
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        let latency = vec![
            0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
        ];
        let m = Metrics {
            http_requests: counter(
                &r,
                "http_requests_total",
                "HTTP requests served.",
                &["method", "route", "status"],
            ),
            http_duration: histogram(
                &r,
                "http_request_duration_seconds",
                "HTTP request latency.",
                &["method", "route", "status"],
                latency.clone(),
            ),
            sent: counter(
                &r,
                "notifications_sent_total",
                "Notifications delivered to the provider.",
                &["channel"],
            ),
            failed: counter(
                &r,
                "notifications_failed_total",
                "Notifications that failed for good.",
                &["channel", "reason"],
            ),
            inflight: gauge(&r, "worker_inflight", "Deliveries in progress.", &["channel"]),
            retry_scheduled: counter(
                &r,
                "retry_scheduled_total",
                "Attempts that failed transiently and were scheduled for retry.",
                &["channel"],
            ),
            send_duration: histogram(
                &r,
                "notification_send_duration_seconds",
                "Duration of one provider request.",
                &["channel"],
                latency.clone(),
            ),
            dead_lettered: counter(
                &r,
                "dead_lettered_total",
                "Dead letters confirmed by the broker.",
                &["channel", "reason"],
            ),
            skipped: counter(
                &r,
                "worker_skipped_total",
                "Work messages acked without delivery (terminal, canceled, leased elsewhere, not due).",
                &["channel", "status"],
            ),
            rate_limit_wait: histogram(
                &r,
                "rate_limit_wait_seconds",
                "Time a delivery waited for the rate limiter.",
                &["channel"],
                latency.clone(),
            ),
            rate_limit_fallback: counter(
                &r,
                "rate_limit_local_fallback_total",
                "Rate-limit decisions taken locally because Redis was unreachable.",
                &["channel"],
            ),
            scanner_enqueued: counter(
                &r,
                "scanner_enqueued_total",
                "Notifications the scanner published or recovered.",
                &["kind", "channel"],
            ),
            outbox_published: counter(
                &r,
                "outbox_published_total",
                "First work messages of created notifications, by what became of them: confirmed, or left in the outbox for the scanner (unconfirmed: the publish failed; deferred: not tried, the broker having failed within the last second or the publisher staying full).",
                &["outcome"],
            ),
            scan_duration: histogram(
                &r,
                "scanner_duration_seconds",
                "Duration of one scan pass per kind.",
                &["kind"],
                latency,
            ),
            due_backlog: gauge(
                &r,
                "scanner_due_backlog",
                "Rows due for the scanner, per kind (each counted up to 100,000).",
                &["kind"],
            ),
            dlq_depth: gauge(&r, "dlq_depth", "Messages waiting in dlq.<channel>.", &["channel"]),
            queue_depth: gauge(
                &r,
                "queue_depth",
                "Messages waiting in the work queue of a channel.",
                &["channel"],
            ),
            backlog_waits: counter(
                &r,
                "backlog_waits_total",
                "Creates that waited because their channel's work queues held BACKLOG_LIMIT ready messages or more.",
                &["channel"],
            ),
            backlog_refused: counter(
                &r,
                "backlog_refused_total",
                "Creates refused with 503 backlog_full: their channel's backlog stayed at BACKLOG_LIMIT or over for BACKLOG_WAIT.",
                &["channel"],
            ),
            write_batch_size: histogram(
                &r,
                "db_write_batch_size",
                "Items written by one group-commit statement, per kind of write.",
                &["kind"],
                vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
            ),
            pruned: counter(
                &r,
                "pruned_total",
                "Rows deleted by retention (the scanner loop's prune), per kind: notification, attempt, batch, audit.",
                &["kind"],
            ),
            oldest_finished_age: gauge(
                &r,
                "oldest_finished_age_seconds",
                "Age of the oldest SENT or CANCELED notification still stored (by created_at).",
                &[],
            ),
            oldest_unfinished_age: gauge(
                &r,
                "oldest_unfinished_age_seconds",
                "Age of the oldest due notification that is not final, per channel and status (ACCEPTED, QUEUED, SENDING), since it was created or became due; 0 when there is none. A retrying notification counts its whole life.",
                &["channel", "status"],
            ),
            lost_messages: gauge(
                &r,
                "lost_messages",
                "QUEUED notifications whose work message their queue no longer held at the scanner's last check (the scanner publishes them again).",
                &["channel"],
            ),
            db_pool_connections: gauge(
                &r,
                "db_pool_connections",
                "PostgreSQL connections of this process's pool: in_use, idle, and max (DATABASE_MAX_CONNECTIONS); in_use at max means requests wait for a connection.",
                &["state"],
            ),
            amqp_channels: gauge(
                &r,
                "amqp_channels",
                "AMQP channels this process holds open, by role: publisher (creates' and dead letters' publishes, with confirms; every process) and consumer (the worker's consumers of all its queues; processes that run a worker). Each role has one connection with one channel; 0 means that role is disconnected and reconnecting.",
                &["role"],
            ),
            registry: r,
        };
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds,
        // process_max_fds, process_start_time_seconds...: read from /proc at each scrape.
        #[cfg(target_os = "linux")]
        if let Err(e) = m
            .registry
            .register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))
        {
            tracing::warn!(error = %e, "process metrics unavailable");
        }
        for kind in ["notification", "attempt", "batch", "audit"] {
            m.pruned.with_label_values(&[kind]);
        }
        for ch in Channel::ALL {
            let c = ch.lower();
            m.sent.with_label_values(&[c]);
            m.inflight.with_label_values(&[c]);
            m.retry_scheduled.with_label_values(&[c]);
            m.lost_messages.with_label_values(&[c]);
            m.backlog_waits.with_label_values(&[c]);
            m.backlog_refused.with_label_values(&[c]);
            for status in UNFINISHED {
                m.oldest_unfinished_age.with_label_values(&[c, status.as_str()]);
            }
            for reason in DeadLetterReason::ALL {
                m.failed.with_label_values(&[c, reason.as_str()]);
                m.dead_lettered.with_label_values(&[c, reason.as_str()]);
            }
        }
        m
    }

    /// Sets the pool gauges from `size` connections open, `idle` of them idle, at most `max`.
    pub fn set_db_pool(&self, size: u32, idle: usize, max: u32) {
        let idle = i64::try_from(idle).unwrap_or(i64::MAX);
        let g = &self.db_pool_connections;
        g.with_label_values(&["in_use"]).set(i64::from(size) - idle);
        g.with_label_values(&["idle"]).set(idle);
        g.with_label_values(&["max"]).set(i64::from(max));
    }

    /// Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        // Encoding into a string cannot fail for well-formed metric families.
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
