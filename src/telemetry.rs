//! Logging: JSON when not on a terminal (containers) or with LOG_FORMAT=json, readable text
//! otherwise; always to stderr, so stdout stays for command output.
//!
//! Log lines go through a bounded in-memory queue to a writer thread, and are dropped when
//! the queue is full: a log reader that stops reading (a full pipe, a stalled log shipper)
//! must never stall the program, and one that went away (EPIPE) must never make it panic.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Settings};

/// Keeps the writer thread alive; `flush` drops it at exit so the last lines get out.
static GUARD: Mutex<Option<WorkerGuard>> = Mutex::new(None);

/// Daemons log at LOG_LEVEL (info by default).
pub fn init(settings: &Settings) {
    init_with(settings, &settings.log_level, false);
}

/// Operator commands print their own results; their logs default to warnings, and never
/// include SQL text (sqlx's slow-statement warnings are for daemons' logs, not a terminal).
pub fn init_quiet(settings: &Settings) {
    let level = if settings.log_level_set {
        settings.log_level.as_str()
    } else {
        "warn"
    };
    init_with(settings, level, !settings.log_level_set);
}

/// Writes out what is queued (bounded by tracing-appender's own 1 s limit).
pub fn flush() {
    if let Ok(mut guard) = GUARD.lock() {
        guard.take();
    }
}

fn init_with(settings: &Settings, level: &str, hide_sql: bool) {
    // lapin logs connection trouble at ERROR from its own I/O thread, including a benign
    // race when the process exits; our adapters report every lost connection themselves.
    let mut level = if level.contains("lapin") {
        level.to_string()
    } else {
        format!("{level},lapin=off")
    };
    if hide_sql {
        // The command's own error line names a connection failure once, with what to do;
        // the retry warnings of the connection layers would only repeat it.
        level.push_str(",sqlx::query=off,dispatchctl::broker=error,dispatchctl::app=error,pinky_swear=off");
    }
    let filter = EnvFilter::try_new(&level).unwrap_or_else(|_| EnvFilter::new("info,lapin=off"));
    let format = settings.log_format.unwrap_or(if std::io::stderr().is_terminal() {
        LogFormat::Text
    } else {
        LogFormat::Json
    });
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(true)
        .thread_name("dispatchctl-log")
        .finish(QuietStderr);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        // Its fallback is eprintln!, which panics when stderr is a closed pipe.
        .log_internal_errors(false);
    // A second init (tests, or a CLI that logs quietly) keeps the first subscriber.
    let installed = match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() {
        if let Ok(mut slot) = GUARD.lock() {
            *slot = Some(guard);
        }
    }
}

/// stderr that swallows write errors: a log line that cannot be written is lost, nothing more.
struct QuietStderr;

impl Write for QuietStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let _ = std::io::stderr().write_all(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        let _ = std::io::stderr().flush();
        Ok(())
    }
}
