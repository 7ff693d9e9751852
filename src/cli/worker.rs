//! `dispatchctl worker`: consume the channel queues and deliver; `/livez`, `/readyz` and
//! `/metrics` on `--listen`.

use std::net::SocketAddr;
use std::num::NonZeroU16;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{fail, load_settings, require_schema, GlobalArgs};
use crate::app::App;
use crate::config::Overrides;
use crate::domain::Channel;
use crate::roles::worker;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Stops gracefully on SIGTERM or SIGINT: it stops consuming and lets deliveries in flight finish within SHUTDOWN_TIMEOUT; what is left unacked is redelivered to another worker.\n\nExit status: 0 after a graceful stop; 1 when it cannot start (the message says why); 2 for invalid settings, or when a channel it is to consume has no provider.\n\nProviders: every channel delivers to WEBHOOK_SITE_URL unless its own <CHANNEL>_PROVIDER_URL is set (http(s):// webhooks; smtp:// or smtps:// for e-mail, with EMAIL_FROM). Without --channels the worker consumes the channels that have a provider.\n\nSettings: WEBHOOK_SITE_URL, WEBHOOK_SECRET, SMS_PROVIDER_URL, EMAIL_PROVIDER_URL, PUSH_PROVIDER_URL, <CHANNEL>_PROVIDER_AUTH_HEADER, <CHANNEL>_WEBHOOK_SECRET, <CHANNEL>_PROVIDER_TIMEOUT, EMAIL_FROM, DATABASE_DSN, RABBITMQ_URL (several nodes, comma-separated), QUEUE_TYPE, QUEUE_PREFIX, QUEUE_DELIVERY_LIMIT, REDIS_URL, WORKER_CONCURRENCY, RATE_LIMIT_*, PROVIDER_TIMEOUT, LEASE_TIMEOUT, RETRY_BACKOFF_*, SHUTDOWN_TIMEOUT (see docs/CONFIGURATION.md).\n\nExamples:\n  WEBHOOK_SITE_URL=https://provider.example.com/hook dispatchctl worker\n  EMAIL_PROVIDER_URL=smtp://dispatch@mail.example.com:587?tls=required EMAIL_FROM=dispatch@example.com dispatchctl worker --channels email\n  dispatchctl worker --channels sms --concurrency 128 --listen 0.0.0.0:9091\n  RABBITMQ_URL=amqp://u:p@rmq-0:5672/%2f,rmq-1:5672,rmq-2:5672 QUEUE_TYPE=quorum dispatchctl worker"
)]
pub struct Args {
    /// Address of the /livez, /readyz and /metrics endpoints.
    #[arg(long, default_value = "0.0.0.0:9091", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Channels to consume (comma-separated); by default every channel that has a provider.
    #[arg(long, value_delimiter = ',', value_name = "CHANNELS", ignore_case = true)]
    pub channels: Vec<Channel>,
    /// Deliveries in flight [env: WORKER_CONCURRENCY; default 192].
    #[arg(long, value_name = "N", value_parser = |v: &str| super::values::number(v, 1u16, "a number of deliveries in flight (1 to 65535, e.g. 192", "WORKER_CONCURRENCY"))]
    pub concurrency: Option<u16>,
    #[command(flatten)]
    pub tls: super::tls_args::ListenerTlsArgs,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Overrides {
        worker_concurrency: args.concurrency.and_then(NonZeroU16::new),
        ..args.tls.overrides()
    };
    let settings = load_settings(global, &flags)?;
    let requested = requested_channels(&args.channels);
    if !args.channels.is_empty() {
        if let Some(c) = requested.iter().find(|c| settings.provider(**c).is_none()) {
            return Err(fail(
                2,
                format!(
                    "{} has no provider: set {}_PROVIDER_URL or WEBHOOK_SITE_URL (example: WEBHOOK_SITE_URL=https://provider.example.com/hook)",
                    c.as_str(),
                    c.as_str()
                ),
            ));
        }
    } else if Channel::ALL.iter().all(|c| settings.provider(*c).is_none()) {
        return Err(fail(
            2,
            "no channel has a provider: the worker has nowhere to deliver; set WEBHOOK_SITE_URL, or SMS_PROVIDER_URL, EMAIL_PROVIDER_URL, PUSH_PROVIDER_URL (example: WEBHOOK_SITE_URL=https://provider.example.com/hook)",
        ));
    }
    let app = App::start(settings, false).await?;
    require_schema(&app.store).await?;
    app.warn_if_autovacuum_is_off().await;
    let deliverer = worker::build(&app).context("cannot set up the providers")?;
    // Without --channels: every channel that has a provider (checked above to be one or more).
    let served = deliverer.channels();
    let channels: Vec<Channel> = requested.into_iter().filter(|c| served.contains(c)).collect();
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = crate::shutdown::on_signal();
    tracing::info!(listen = %args.listen, "worker ops endpoints listening");
    worker::run(app.clone(), deliverer, channels, listener, shutdown).await;
    app.close().await;
    Ok(ExitCode::SUCCESS)
}

/// `--channels` in the order given, each once; all of them without the flag.
fn requested_channels(given: &[Channel]) -> Vec<Channel> {
    if given.is_empty() {
        return Channel::ALL.to_vec();
    }
    let mut out = Vec::new();
    for &c in given {
        if !out.contains(&c) {
            out.push(c);
        }
    }
    out
}
