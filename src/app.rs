//! The process's shared handles, built once at start-up in the documented order and passed
//! explicitly to the API, worker and scanner.

use std::sync::Arc;

use anyhow::Context;

use crate::broker::{Broker, Endpoints, Topology};
use crate::config::Settings;
use crate::dispatch::backlog::Backlog;
use crate::dispatch::create::Intake;
use crate::dispatch::deliver::{self, Deliverer};
use crate::dispatch::outbox::Publisher;
use crate::dispatch::scan::{ScanSettings, Scanner};
use crate::dispatch::Backends;
use crate::domain::backoff::Backoff;
use crate::domain::PerChannel;
use crate::metrics::Metrics;
use crate::provider::Providers;
use crate::ratelimit::RateLimiter;
use crate::redis_client::RedisHandle;
use crate::store::batched::BatchedWrites;
use crate::store::Store;

#[derive(Clone)]
pub struct App {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub broker: Arc<Broker>,
    pub redis: Arc<RedisHandle>,
    pub metrics: Arc<Metrics>,
    /// Group-committed writes of the hot paths (creates, claims, outcomes).
    pub writes: BatchedWrites,
    /// Accepts notifications: holds creates back while their channel's queues are over
    /// BACKLOG_LIMIT, commits them, and hands them to the background publisher.
    pub intake: Intake,
}

impl App {
    /// PostgreSQL (database created if missing, migrations unless `migrate` is false), then
    /// Redis and RabbitMQ. Only PostgreSQL is required to start: it is what makes a 202
    /// durable. Redis and RabbitMQ outages are reported by `/readyz` and retried.
    pub async fn start(settings: Settings, migrate: bool) -> anyhow::Result<App> {
        crate::otel::init(&settings);
        if !settings.defaulted.is_empty() {
            tracing::info!(settings = ?settings.defaulted, "not set; using the local defaults");
        }
        let store = Store::connect(&settings.database, settings.database_max_connections)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {}", settings.database_display()))?;
        if migrate {
            store.migrate().await.context("cannot apply database migrations")?;
        }
        tracing::info!(database = %settings.database_display(), server = %store.server(), "PostgreSQL ready");
        let app = App::from_store(settings, store);
        if let Err(e) = app.redis.ping().await {
            tracing::warn!(redis = %app.settings.redis_display(), error = %e, "Redis unreachable at start-up; continuing");
        }
        match app.broker.channel().await {
            // Already said by the broker adapter, with what to do.
            Err(crate::broker::BrokerError::QueueMismatch { .. }) => {}
            Err(e) => {
                tracing::warn!(broker = %app.settings.rabbitmq_display(), error = %e, "RabbitMQ unreachable at start-up; notifications stay durable in PostgreSQL until it returns")
            }
            Ok(_) => {
                tracing::info!("RabbitMQ topology declared");
                if let Err(e) = app.store.record_queue_prefix(&app.settings.queue_prefix).await {
                    tracing::debug!(error = %e, "could not record the queue prefix");
                }
            }
        }
        Ok(app)
    }

    /// For operator commands: PostgreSQL as it is (no migrations), and a broker handle that
    /// never declares a queue, so settings that point at nothing are reported, not created.
    /// Redis and RabbitMQ are reached only when the command needs them.
    pub async fn start_operator(settings: Settings) -> anyhow::Result<App> {
        let store = Store::connect(&settings.database, settings.database_max_connections)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {}", settings.database_display()))?;
        Ok(App::wire(settings, store, false))
    }

    /// Says once, for the long-running roles, when nothing vacuums the notifications table.
    pub async fn warn_if_autovacuum_is_off(&self) {
        match self.store.autovacuum_covers_notifications().await {
            Ok(true) => {}
            Ok(false) => tracing::warn!(
                "PostgreSQL autovacuum is off for the notifications table: dead row versions pile up in its \
                 indexes, so creates, deliveries and the scanner's sweeps slow down as the table grows; turn \
                 autovacuum on, or run VACUUM (ANALYZE) notifications, notification_attempts on a schedule"
            ),
            // Before the first migration the table does not exist yet; nothing to say then.
            Err(e) => tracing::debug!(error = %e, "could not read the autovacuum setting"),
        }
    }

    /// Wires handles around an existing store without touching the network (within a tokio
    /// runtime: it starts the batching and publishing tasks).
    pub fn from_store(settings: Settings, store: Store) -> App {
        App::wire(settings, store, true)
    }

    fn wire(settings: Settings, store: Store, declares_topology: bool) -> App {
        let topology = Topology::new(
            settings.queue_prefix.clone(),
            settings.queue_type,
            settings.queue_delivery_limit,
        );
        let endpoints = Endpoints::parse(&settings.rabbitmq_url, &settings.rabbitmq_tls);
        let broker = Broker::new(endpoints, topology, settings.publish_timeout);
        let broker = Arc::new(if declares_topology {
            broker
        } else {
            broker.without_declaring()
        });
        let redis = Arc::new(RedisHandle::new(
            &settings.redis_url,
            &settings.redis_tls,
            settings.redis_key_prefix.clone(),
        ));
        let metrics = Arc::new(Metrics::new());
        let writes = BatchedWrites::spawn(&store, &metrics);
        let publisher = Publisher::spawn(broker.clone(), store.clone(), metrics.clone(), settings.request_timeout);
        let backlog = Backlog::new(settings.backlog_limit, settings.backlog_wait, metrics.clone());
        let intake = Intake {
            store: store.clone(),
            writes: writes.clone(),
            backlog,
            publisher,
            default_max_retries: settings.default_max_retries,
        };
        App {
            settings: Arc::new(settings),
            store,
            broker,
            redis,
            metrics,
            writes,
            intake,
        }
    }

    /// Closes network connections that would otherwise be cut when the runtime stops.
    pub async fn close(&self) {
        crate::otel::flush().await;
        self.broker.close().await;
        self.store.pool().close().await;
    }

    pub fn backoff(&self) -> Backoff {
        Backoff {
            base: self.settings.retry_backoff_base,
            max: self.settings.retry_backoff_max,
        }
    }

    /// The rows and the queues, for the operator use cases.
    pub fn backends(&self) -> Backends {
        Backends {
            store: self.store.clone(),
            broker: self.broker.clone(),
        }
    }

    pub fn scanner(&self) -> Scanner {
        let s = &self.settings;
        let settings = ScanSettings {
            requeue_lost_after: s.requeue_lost_after,
            retry_scan_limit: s.retry_scan_limit,
            scheduler_scan_limit: s.scheduler_scan_limit,
            unpublished_grace: s.unpublished_grace,
            backoff: self.backoff(),
        };
        Scanner::new(self.store.clone(), self.broker.clone(), self.metrics.clone(), settings)
    }

    pub fn deliverer(&self, providers: Providers) -> Arc<Deliverer> {
        let limits = PerChannel::from_fn(|c| self.settings.rate_limit_for(c));
        let handles = deliver::Handles {
            store: self.store.clone(),
            broker: self.broker.clone(),
            writes: self.writes.clone(),
            metrics: self.metrics.clone(),
            limiter: RateLimiter::new(self.redis.clone(), limits, self.metrics.clone()),
            lease_timeout: self.settings.lease_timeout,
            backoff: self.backoff(),
        };
        Deliverer::new(handles, providers)
    }
}
