//! `dispatchctl serve`: the API, and by default the worker and scanners in the same process.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anyhow::Context;
use tokio::net::TcpListener;

use super::{load_settings, GlobalArgs};
use crate::app::App;
use crate::config::Overrides;

#[derive(clap::Args, Debug, Clone, Default)]
#[command(
    after_help = "Stops gracefully on SIGTERM or SIGINT (in-flight requests and deliveries finish within SHUTDOWN_TIMEOUT), whatever happens to its log output: logs never block it.\n\nExit status: 0 after a graceful stop; 1 when it cannot start (the message says why); 2 for invalid settings.\n\nSettings: every setting of docs/CONFIGURATION.md (API_HOST, API_PORT, API_TOKENS, DATABASE_DSN, RABBITMQ_URL, REDIS_URL, WEBHOOK_SITE_URL, ...).\n\nExamples:\n  dispatchctl serve\n  dispatchctl serve --api-only --port 8081\n  dispatchctl --config /etc/dispatchctl.yaml serve"
)]
pub struct Args {
    /// Run only the HTTP API (split deployments run `worker` and `scan-retries --loop` apart).
    #[arg(long)]
    pub api_only: bool,
    /// Do not apply pending migrations at start-up.
    #[arg(long)]
    pub no_migrate: bool,
    /// Address to listen on [env: API_HOST; default 0.0.0.0].
    #[arg(long, value_name = "ADDR", value_parser = super::values::address)]
    pub host: Option<IpAddr>,
    /// Port to listen on [env: API_PORT; default 8080].
    #[arg(long, short, value_parser = |v: &str| super::values::number(v, 0u16, "a port (0 to 65535, e.g. 8080", "API_PORT"))]
    pub port: Option<u16>,
    #[command(flatten)]
    pub tls: super::tls_args::ListenerTlsArgs,
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let flags = Overrides {
        api_host: args.host,
        api_port: args.port,
        ..args.tls.overrides()
    };
    let settings = load_settings(global, &flags)?;
    let addr = SocketAddr::new(settings.api_host, settings.api_port);
    let app = App::start(settings, !args.no_migrate).await?;
    app.warn_if_autovacuum_is_off().await;
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let shutdown = crate::shutdown::on_signal();
    crate::roles::serve(app.clone(), listener, args.api_only, shutdown).await?;
    app.close().await;
    Ok(ExitCode::SUCCESS)
}
