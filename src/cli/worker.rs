//! `dispatchctl worker`: consume the channel queues and deliver; `/livez`, `/readyz` and
//! `/metrics` on `--listen`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{fail, load_settings, require_schema, Exit, GlobalArgs};
use crate::app::App;
use crate::domain::Channel;
use crate::roles::worker;

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Stops gracefully on SIGTERM or SIGINT: it stops consuming and lets deliveries in flight finish within SHUTDOWN_TIMEOUT; what is left unacked is redelivered to another worker.\n\nExit status: 0 after a graceful stop; 1 when it cannot start (the message says why); 2 for invalid settings or a missing WEBHOOK_SITE_URL.\n\nSettings: WEBHOOK_SITE_URL, WEBHOOK_SECRET, DATABASE_DSN, RABBITMQ_URL (several nodes, comma-separated), QUEUE_TYPE, QUEUE_PREFIX, QUEUE_DELIVERY_LIMIT, REDIS_URL, WORKER_CONCURRENCY, RATE_LIMIT_*, PROVIDER_TIMEOUT, LEASE_TIMEOUT, RETRY_BACKOFF_*, SHUTDOWN_TIMEOUT (see docs/CONFIGURATION.md).\n\nExamples:\n  WEBHOOK_SITE_URL=https://provider.example.com/hook dispatchctl worker\n  dispatchctl worker --channels sms --concurrency 128 --listen 0.0.0.0:9091\n  RABBITMQ_URL=amqp://u:p@rmq-0:5672/%2f,rmq-1:5672,rmq-2:5672 QUEUE_TYPE=quorum dispatchctl worker"
)]
pub struct Args {
    /// Address of the /livez, /readyz and /metrics endpoints.
    #[arg(long, default_value = "0.0.0.0:9091", value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Channels to consume (comma-separated); all by default.
    #[arg(long, value_delimiter = ',', value_name = "CHANNELS")]
    pub channels: Vec<String>,
    /// Deliveries in flight [env: WORKER_CONCURRENCY; default 64].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<u16>,
    #[command(flatten)]
    pub tls: super::tls_args::ListenerTlsArgs,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let mut flags = args.tls.flags();
    if let Some(n) = args.concurrency {
        flags.push(("WORKER_CONCURRENCY", n.to_string()));
    }
    let settings = load_settings(global, &flags)?;
    if settings.webhook_site_url.is_none() {
        return Err(fail(
            2,
            "WEBHOOK_SITE_URL is not set: the worker has nowhere to deliver (example: WEBHOOK_SITE_URL=https://provider.example.com/hook)",
        ));
    }
    let channels = parse_channels(&args.channels)?;
    let app = App::start(settings, false).await?;
    require_schema(&app.store).await?;
    app.warn_if_autovacuum_is_off().await;
    let deliverer = worker::build(&app).map_err(|_| anyhow::anyhow!("cannot build the provider client"))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let shutdown = crate::shutdown::on_signal();
    tracing::info!(listen = %args.listen, "worker ops endpoints listening");
    worker::run(app.clone(), deliverer, channels, listener, shutdown).await;
    app.close().await;
    Ok(ExitCode::SUCCESS)
}

pub fn parse_channels(values: &[String]) -> anyhow::Result<Vec<Channel>> {
    if values.is_empty() {
        return Ok(Channel::ALL.to_vec());
    }
    let mut out = Vec::new();
    for v in values {
        let c: Channel = v
            .parse()
            .map_err(|e: String| Exit::new(2, format!("--channels: {e}")))?;
        if !out.contains(&c) {
            out.push(c);
        }
    }
    Ok(out)
}
