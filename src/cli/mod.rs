//! The command line: one module per subcommand, each with its `Args` and `run`. This file
//! declares the tree, dispatches, and holds what every subcommand shares: loading settings,
//! the schema check, the confirmation prompt, and turning an error into an exit code and one
//! line (`exit_code`, `describe`).

pub mod completions;
pub mod convert_queues;
pub mod discard;
pub mod inspect_dlq;
pub mod migrate;
pub mod notifications;
pub mod output;
pub mod prune;
pub mod replay;
pub mod scan_retries;
pub mod send;
pub mod serve;
pub mod stuck;
pub mod tls_args;
mod values;
pub mod worker;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::app::App;
use crate::config::{ConfigError, Overrides, Settings};

#[derive(Parser, Debug)]
#[command(
    name = "dispatchctl",
    version,
    about = "Notification dispatch engine and its operations toolkit"
)]
#[command(propagate_version = true)]
#[command(
    after_help = "Examples:\n  dispatchctl serve                                  # API, worker and scanners in one process\n  dispatchctl send --channel sms --to +905551234567 --content 'Code 1234' --wait\n  dispatchctl inspect-dlq && dispatchctl replay --channel sms --dry-run\n\nExit status (every command; each one's --help says more):\n  0    success\n  1    the operation failed (the message says why and what to do)\n  2    invalid input, flags or settings\n  3    a --wait timed out\n  4    send: the API is unreachable\n  130  interrupted (Ctrl-C); what was done is kept and reported\n  141  stdout was closed early (| head); nothing else happened\n\nSettings: flags win over the environment (and .env), which wins over --config FILE; see ENVIRONMENT in dispatchctl(1) or docs/CONFIGURATION.md."
)]
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
    /// Re-enqueue due retries, due scheduled notifications, abandoned work and messages the broker lost (one pass, or --loop).
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
    /// Remove dead letters that must never be sent (dry run, confirmation, export, audit).
    Discard(discard::Args),
    /// Delete finished notifications, emptied batches and audit rows past their retention period.
    Prune(prune::Args),
    /// Show one notification (status, attempts, where it is now), or list them by filter.
    Notifications(notifications::Args),
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

/// An error that ends the command with exit status `code`, saying `message`.
pub fn fail(code: u8, message: impl Into<String>) -> anyhow::Error {
    Exit::new(code, message).into()
}

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let g = &cli.global;
    match cli.command {
        Command::Serve(a) => serve::run(g, a).await,
        Command::Worker(a) => worker::run(g, a).await,
        Command::ScanRetries(a) => scan_retries::run(g, a).await,
        Command::Migrate(a) => migrate::run(g, a).await,
        Command::Send(a) => send::run(g, a).await,
        Command::InspectDlq(a) => inspect_dlq::run(g, a).await,
        Command::Replay(a) => replay::run(g, a).await,
        Command::ConvertQueues(a) => convert_queues::run(g, a).await,
        Command::Discard(a) => discard::run(g, a).await,
        Command::Notifications(a) => notifications::run(g, a).await,
        Command::Prune(a) => prune::run(g, a).await,
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(a),
        Command::Healthcheck(a) => completions::healthcheck(g, a).await,
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

/// One line for an error that reached `main`: each cause once (sqlx and lapin repeat their
/// sources in their own messages), and what to do when the cause is a common one.
pub fn describe(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    for repeated in [
        "RabbitMQ is unreachable: ",
        "RabbitMQ: ",
        "error communicating with database: ",
    ] {
        let twice = format!("{repeated}{repeated}");
        while line.contains(&twice) {
            line = line.replace(&twice, repeated);
        }
    }
    line = line.replace("RabbitMQ: RabbitMQ ", "RabbitMQ ");
    if let Some(hint) = hint(&line) {
        line.push_str("; ");
        line.push_str(hint);
    }
    line
}

/// Names the broker an error concerns when the error itself does not (lapin's do not).
pub fn locate(error: anyhow::Error, settings: &Settings) -> anyhow::Error {
    let text = describe(&error);
    let host = settings.rabbitmq_host();
    if text.contains("RabbitMQ") && !text.contains(&host) {
        let located = match text.strip_prefix("RabbitMQ ") {
            Some(rest) => format!("RabbitMQ at {host} {rest}"),
            None => format!("RabbitMQ at {host}: {text}"),
        };
        return fail(exit_code(&error), located);
    }
    error
}

fn hint(line: &str) -> Option<&'static str> {
    let has = |s: &str| line.contains(s);
    if has("ACCESS_REFUSED") || has("ACCESS-REFUSED") {
        Some("check the user and password in RABBITMQ_URL")
    } else if has("NOT_ALLOWED") || has("vhost") && has("RabbitMQ") {
        Some("check the virtual host in RABBITMQ_URL and the user's permissions on it")
    } else if has("PostgreSQL") && (has("Connection refused") || has("timed out")) {
        Some("is PostgreSQL running at that address? check DATABASE_DSN")
    } else if has("PostgreSQL") && has("password authentication failed") {
        Some("check the user and password in DATABASE_DSN")
    } else if has("RabbitMQ") && (has("Connection refused") || has("no answer within")) {
        Some("is RabbitMQ running at that address? check RABBITMQ_URL")
    } else {
        None
    }
}

/// Asks a yes/no question on stderr and reads the answer from stdin (a terminal).
pub async fn confirm(question: &str) -> anyhow::Result<bool> {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    let _ = write!(err, "{question}");
    let _ = err.flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await??;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

/// Loads settings with the subcommand's flags on top, then starts logging.
pub fn load_settings(global: &GlobalArgs, flags: &Overrides) -> anyhow::Result<Settings> {
    let settings = Settings::load(global.config.as_deref(), flags)?;
    crate::telemetry::init(&settings);
    Ok(settings)
}

/// Like `load_settings`, with warnings-only logs unless LOG_LEVEL is set.
pub fn load_settings_quiet(global: &GlobalArgs) -> anyhow::Result<Settings> {
    load_settings_quiet_with(global, &Overrides::default())
}

/// Like `load_settings_quiet`, with the subcommand's flags on top.
pub fn load_settings_quiet_with(global: &GlobalArgs, flags: &Overrides) -> anyhow::Result<Settings> {
    let settings = Settings::load(global.config.as_deref(), flags)?;
    crate::telemetry::init_quiet(&settings);
    Ok(settings)
}

/// Runs an operator command on an `App` started with quietly loaded settings, closes the
/// app whatever the outcome, and names the broker in an error that concerns it.
pub async fn with_app<F>(global: &GlobalArgs, command: impl FnOnce(App) -> F) -> anyhow::Result<ExitCode>
where
    F: std::future::Future<Output = anyhow::Result<ExitCode>>,
{
    let app = App::start_operator(load_settings_quiet(global)?).await?;
    let outcome = match command(app.clone()).await {
        Ok(code) => Ok(code),
        Err(e) => Err(locate(explain_missing_queue(e, &app).await, &app.settings)),
    };
    app.close().await;
    outcome
}

/// Says of a queue that is not there which prefix was looked under, and which prefixes do
/// have that queue: the default one and those that daemons recorded with this database.
async fn explain_missing_queue(error: anyhow::Error, app: &App) -> anyhow::Error {
    use crate::broker::BrokerError;
    use crate::dispatch::{discard::DiscardError, replay::ReplayError};
    // The use cases wrap broker errors transparently, which hides them from a walk of sources.
    let missing = error.chain().find_map(|e| {
        let broker = e
            .downcast_ref::<BrokerError>()
            .or_else(|| match e.downcast_ref() {
                Some(ReplayError::Broker(b)) => Some(b),
                _ => None,
            })
            .or_else(|| match e.downcast_ref() {
                Some(DiscardError::Broker(b)) => Some(b),
                _ => None,
            });
        match broker {
            Some(BrokerError::MissingQueue { queue, prefix }) => Some((queue.clone(), prefix.clone())),
            _ => None,
        }
    });
    let Some((queue, prefix)) = missing else {
        return error;
    };
    let suffix = queue.strip_prefix(prefix.as_str()).unwrap_or(&queue);
    let mut candidates = app.store.queue_prefixes().await.unwrap_or_default();
    candidates.push(String::new());
    let mut present = Vec::new();
    for candidate in candidates {
        if candidate == prefix || present.contains(&candidate) {
            continue;
        }
        if let Ok(Some(_)) = app.broker.queue_stats(&format!("{candidate}{suffix}")).await {
            present.push(candidate);
        }
    }
    let quoted = |p: &String| format!("QUEUE_PREFIX=\"{p}\"");
    let advice = if present.is_empty() {
        "no other prefix known to this database has it on this broker: check QUEUE_PREFIX, and the \
         virtual host in RABBITMQ_URL (serve and worker declare the queues when they start)"
            .to_string()
    } else {
        format!(
            "it exists under {}; set QUEUE_PREFIX to the prefix you meant",
            present.iter().map(quoted).collect::<Vec<_>>().join(", ")
        )
    };
    fail(1, format!("{}; {advice}", describe(&error)))
}

/// Fails with a hint when the schema is older than this binary (for the daemons that do not
/// migrate by themselves).
pub async fn require_schema(store: &crate::store::Store) -> anyhow::Result<()> {
    let pending = store.pending_migrations().await?;
    if !pending.is_empty() {
        anyhow::bail!(
            "the database schema is not up to date ({} pending migrations); run `dispatchctl migrate` first",
            pending.len()
        );
    }
    Ok(())
}
