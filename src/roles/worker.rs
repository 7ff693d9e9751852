//! The worker role: consumes the channel queues and hands each message to the delivery use
//! case, with its ops endpoints.

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::broker::consumer::{self, Attachment, ConsumerOptions, Message};
use crate::dispatch::deliver::Deliverer;
use crate::domain::Channel;
use crate::ops::BrokerCheck;
use crate::provider::Provider;

/// No provider to deliver to: WEBHOOK_SITE_URL is not set (or its client cannot be built).
#[derive(Debug)]
pub struct NoProvider;

/// The deliverer of this process, or `NoProvider` without WEBHOOK_SITE_URL.
pub fn build(app: &App) -> Result<Arc<Deliverer>, NoProvider> {
    let s = &app.settings;
    let url = s.webhook_site_url.clone().ok_or(NoProvider)?;
    match Provider::new(
        url,
        s.webhook_secret.as_ref(),
        s.provider_timeout,
        usize::from(s.worker_concurrency),
        &s.provider_tls,
    ) {
        Ok(provider) => Ok(Deliverer::new(app.clone(), provider)),
        Err(e) => {
            tracing::error!(error = %e, "cannot build the provider client");
            Err(NoProvider)
        }
    }
}

/// Consumes until `shutdown`, then lets in-flight deliveries finish within SHUTDOWN_TIMEOUT.
pub async fn consume(
    app: App,
    deliverer: Arc<Deliverer>,
    channels: Vec<Channel>,
    attachment: Arc<Attachment>,
    shutdown: CancellationToken,
) {
    let s = &app.settings;
    let opts = ConsumerOptions {
        endpoints: app.broker.endpoints(),
        topology: app.broker.topology().clone(),
        channels,
        concurrency: s.worker_concurrency,
        shutdown_timeout: s.shutdown_timeout,
    };
    consumer::run(opts, shutdown, attachment, move |m: Arc<Message>| {
        let deliverer = deliverer.clone();
        async move { deliverer.process(m.channel, &m.queue, &m.body).await }
    })
    .await;
}

/// The `worker` daemon: consumes `channels` with `deliverer`, and serves its ops endpoints
/// on `listener`, until `shutdown`.
pub async fn run(
    app: App,
    deliverer: Arc<Deliverer>,
    channels: Vec<Channel>,
    listener: TcpListener,
    shutdown: CancellationToken,
) {
    let attachment = Arc::new(Attachment::default());
    let ops = tokio::spawn(super::ops_endpoints(
        app.clone(),
        BrokerCheck::Consumer(attachment.clone()),
        listener,
        shutdown.clone(),
    ));
    consume(app, deliverer, channels, attachment, shutdown.clone()).await;
    shutdown.cancel();
    let _ = ops.await;
}
