//! The command line: one module per subcommand, each with its `Args` and `run`. This file
//! only declares the tree and dispatches.

pub mod completions;
pub mod convert_queues;
pub mod inspect_dlq;
pub mod migrate;
pub mod output;
pub mod replay;
pub mod scan_retries;
pub mod send;
pub mod serve;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{ConfigError, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "dispatchctl",
    version,
    about = "Notification dispatch engine and its operations toolkit"
)]
#[command(propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub struct GlobalArgs {
    /// YAML file with settings (lower-case names of the environment variables); the
    /// environment and flags override it.
    #[arg(long, global = true, env = "DISPATCHCTL_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the HTTP API; by default also the worker and the scanners in the same process.
    Serve(serve::Args),
    /// Consume the channel queues and deliver notifications to the provider.
    Worker(worker::Args),
    /// Re-enqueue due retries, due scheduled notifications and abandoned work (one pass, or --loop).
    ScanRetries(scan_retries::Args),
    /// Apply, list or revert database migrations.
    Migrate(migrate::Args),
    /// Send notifications through the HTTP API (for scripts and CI).
    Send(send::Args),
    /// Look into the dead-letter queues without consuming them.
    InspectDlq(inspect_dlq::Args),
    /// Put dead letters back on the work queues.
    Replay(replay::Args),
    /// Move the queues between the classic and the quorum type without losing a message.
    ConvertQueues(convert_queues::Args),
    /// Print a shell completion script.
    #[command(hide = true)]
    Completions(completions::CompletionArgs),
    /// Write man pages into a directory.
    #[command(hide = true)]
    Man(completions::ManArgs),
    /// Exit 0 when an HTTP endpoint answers 200 (container health checks; the image has no curl).
    #[command(hide = true)]
    Healthcheck(completions::HealthcheckArgs),
}

/// Errors that choose their own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Exit {
    pub code: u8,
    pub message: String,
}

impl Exit {
    pub fn new(code: u8, message: impl Into<String>) -> Exit {
        Exit {
            code,
            message: message.into(),
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(a) => serve::run(g, a).await,
        Command::Worker(a) => worker::run(g, a).await,
        Command::ScanRetries(a) => scan_retries::run(g, a).await,
        Command::Migrate(a) => migrate::run(g, a).await,
        Command::Send(a) => send::run(a).await,
        Command::InspectDlq(a) => inspect_dlq::run(g, a).await,
        Command::Replay(a) => replay::run(g, a).await,
        Command::ConvertQueues(a) => convert_queues::run(g, a).await,
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
        Command::Healthcheck(a) => completions::healthcheck(a).await,
    }
}

/// Exit code for an error that reached `main`: 2 for configuration and input errors.
pub fn exit_code(error: &anyhow::Error) -> u8 {
    if let Some(exit) = error.downcast_ref::<Exit>() {
        return exit.code;
    }
    if error.downcast_ref::<ConfigError>().is_some() {
        return 2;
    }
    1
}

/// Loads settings with the subcommand's flags on top, then starts logging.
pub fn load_settings(global: &GlobalArgs, flags: &[(&'static str, String)]) -> anyhow::Result<Settings> {
    let settings = Settings::load(global.config.as_deref(), flags)?;
    crate::telemetry::init(&settings);
    Ok(settings)
}

/// Like `load_settings`, with warnings-only logs unless LOG_LEVEL is set.
pub fn load_settings_quiet(global: &GlobalArgs) -> anyhow::Result<Settings> {
    let settings = Settings::load(global.config.as_deref(), &[])?;
    crate::telemetry::init_quiet(&settings);
    Ok(settings)
}

/// Fails with a hint when the schema is older than this binary (for the daemons that do not
/// migrate by themselves).
pub async fn require_schema(store: &crate::store::Store) -> anyhow::Result<()> {
    let pending = migrate::pending(store).await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is not up to date ({} pending migrations); run `dispatchctl migrate` first",
            pending.len()
        );
    }
    Ok(())
}
