//! The daemons' roles, assembled from the use cases and adapters: the API, the worker
//! (`worker.rs`) and the scanner (`scanner.rs`: scan loops, retention, queue-depth sampling).
//! `serve` runs them together, `worker` and `scan-retries --loop` one each; cli/ only parses
//! their arguments. Each role takes its listener and shutdown token from its caller.

pub mod scanner;
pub mod worker;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::broker::consumer::Attachment;
use crate::ops::{BrokerCheck, Readiness};

/// The API on `listener` and, unless `api_only`, the worker and scanner in the same
/// process, until `shutdown`; returns once everything has stopped.
pub async fn serve(app: App, listener: TcpListener, api_only: bool, shutdown: CancellationToken) -> anyhow::Result<()> {
    let mut background = JoinSet::new();
    let mut broker_check = BrokerCheck::Publisher;
    if !api_only {
        match worker::build(&app) {
            Ok(deliverer) => {
                let attachment = Arc::new(Attachment::default());
                broker_check = BrokerCheck::Consumer(attachment.clone());
                let channels = deliverer.channels();
                background.spawn(worker::consume(
                    app.clone(),
                    deliverer,
                    channels,
                    attachment,
                    shutdown.clone(),
                ));
            }
            Err(e @ worker::NoProvider::Unset) => {
                tracing::warn!("{e}: no worker runs in this process until then; the API and scanners run");
            }
            Err(e) => return Err(anyhow::anyhow!("cannot set up the providers: {e}")),
        }
        scanner::spawn_loops(&app, None, &mut background, shutdown.clone());
    }
    if app.intake.backlog.enabled() {
        background.spawn(app.intake.backlog.clone().watch(app.broker.clone(), shutdown.clone()));
    }
    let readiness = Readiness {
        app: app.clone(),
        broker: broker_check,
    };
    let router = crate::api::router(app.clone(), crate::ops::router(readiness));
    let local = listener.local_addr()?;
    tracing::info!(addr = %local, api_only, "API listening");
    crate::api::serve(listener, router, shutdown.clone(), &app.settings).await?;
    // What the last creates accepted goes out before the broker connection closes; anything
    // the deadline cuts off stays in the outbox for the next scanner.
    if !app.intake.publisher.drain(app.settings.shutdown_timeout).await {
        tracing::warn!("stopped before every accepted notification was published; the scanner publishes the rest");
    }
    while background.join_next().await.is_some() {}
    tracing::info!("stopped");
    Ok(())
}

/// `/livez`, `/readyz` and `/metrics` of a worker or scanner on `listener`, until `shutdown`.
async fn ops_endpoints(
    app: App,
    broker: BrokerCheck,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let readiness = Readiness {
        app: app.clone(),
        broker,
    };
    crate::api::serve(listener, crate::ops::router(readiness), shutdown, &app.settings).await
}
