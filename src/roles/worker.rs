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
use crate::provider::{ProviderError, Providers};

#[derive(Debug, thiserror::Error)]
pub enum NoProvider {
    /// No channel has a provider: neither WEBHOOK_SITE_URL nor a `<CHANNEL>_PROVIDER_URL`.
    #[error(
        "no channel has a provider: set WEBHOOK_SITE_URL, or SMS_PROVIDER_URL, EMAIL_PROVIDER_URL, PUSH_PROVIDER_URL"
    )]
    Unset,
    #[error(transparent)]
    Client(#[from] ProviderError),
}

/// The deliverer of this process, with a client for each channel that has a provider.
pub fn build(app: &App) -> Result<Arc<Deliverer>, NoProvider> {
    let providers = Providers::build(&app.settings, usize::from(app.settings.worker_concurrency))?;
    if providers.channels().is_empty() {
        return Err(NoProvider::Unset);
    }
    for &channel in Channel::ALL {
        match providers.get(channel) {
            Some(p) => tracing::info!(channel = channel.lower(), provider = p.name(), "provider"),
            None => tracing::warn!(
                channel = channel.lower(),
                "no provider: this channel is not consumed here, and its notifications wait in their queue"
            ),
        }
    }
    Ok(app.deliverer(providers))
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
