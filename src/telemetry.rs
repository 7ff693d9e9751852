//! Logging: JSON when not on a terminal (containers) or with LOG_FORMAT=json, readable text
//! otherwise; always to stderr, so stdout stays for command output.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Daemons log at LOG_LEVEL (info by default).
pub fn init(settings: &Settings) {
    init_with(settings, &settings.log_level);
}

/// Operator commands print their own results; their logs default to warnings.
pub fn init_quiet(settings: &Settings) {
    let level = if settings.log_level_set {
        settings.log_level.as_str()
    } else {
        "warn"
    };
    init_with(settings, level);
}

fn init_with(settings: &Settings, level: &str) {
    // lapin logs connection trouble at ERROR from its own I/O thread, including a benign
    // race when the process exits; our adapters report every lost connection themselves.
    let level = if level.contains("lapin") {
        level.to_string()
    } else {
        format!("{level},lapin=off")
    };
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info,lapin=off"));
    let format = settings.log_format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second init (tests, or a CLI that logs quietly) keeps the first subscriber.
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
