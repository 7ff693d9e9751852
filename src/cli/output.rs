//! Rendering: tables for people, JSON/YAML for scripts. Data goes to stdout, chatter to stderr.

use std::io::{IsTerminal, Write};

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Yaml,
    /// One JSON object per line (exports).
    Ndjson,
}

/// Table on a terminal, JSON otherwise, unless the user chose.
pub fn resolve(chosen: Option<Format>) -> Format {
    chosen.unwrap_or(if std::io::stdout().is_terminal() {
        Format::Table
    } else {
        Format::Json
    })
}

/// Progress on stderr for a person at a terminal (hidden when `quiet` or not a terminal):
/// a bar of `total` or, without one, a ticking spinner; `template` in indicatif's syntax.
pub fn progress(quiet: bool, total: Option<u64>, template: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
    bar.set_style(progress_style(template));
    if total.is_none() {
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
    }
    bar
}

pub fn progress_style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ")
}

/// A table cell: the value, or `-` when there is none.
/// Characters of a provider's answer shown in a table cell (JSON output has the excerpt).
pub const RESPONSE_CELL_CHARS: usize = 120;

pub fn or_dash(value: Option<impl std::fmt::Display>) -> String {
    value.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// A time in a table cell, to the second.
pub fn time(at: chrono::DateTime<chrono::Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// Opens `--export FILE` for appending (created when missing); exit 2 when it cannot be.
pub fn open_export(path: &std::path::Path) -> anyhow::Result<std::fs::File> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path);
    file.map_err(|e| super::fail(2, format!("--export: cannot open {}: {e}", path.display())))
}

pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    // An id broken over two lines cannot be copied; other columns wrap instead.
    for (i, h) in headers.iter().enumerate() {
        if matches!(*h, "id" | "notification" | "batch" | "replay id") {
            if let Some(column) = t.column_mut(i) {
                column.set_constraint(comfy_table::ColumnConstraint::ContentWidth);
            }
        }
    }
    t
}

pub fn print_structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    match format {
        Format::Yaml => write_out(serde_yaml::to_string(value)?),
        Format::Ndjson => line(serde_json::to_string(value)?),
        _ => line(serde_json::to_string_pretty(value)?),
    }
}

/// Rows as one JSON or YAML list, or with ndjson one line each.
pub fn print_rows<T: Serialize>(format: Format, rows: &[T]) -> anyhow::Result<()> {
    if format != Format::Ndjson {
        return print_structured(format, &rows);
    }
    rows.iter().try_for_each(|r| print_structured(Format::Ndjson, r))
}

/// The reader of stdout went away (`| head`): the command stops quietly, and `main` exits
/// with the status a shell expects of a program killed by SIGPIPE.
#[derive(Debug, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct ClosedPipe;

/// Exit status of a command whose stdout was closed: 128 + SIGPIPE, as a shell reports it.
pub const CLOSED_PIPE_EXIT: u8 = 141;

/// Writes `text` and a newline to stdout.
pub fn line(text: impl std::fmt::Display) -> anyhow::Result<()> {
    write_out(format!("{text}\n"))
}

/// Writes `text` to stdout; a closed pipe becomes `ClosedPipe` instead of println!'s panic.
pub fn write_out(text: impl AsRef<str>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_ref().as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(ClosedPipe.into()),
        Err(e) => Err(anyhow::Error::new(e).context("cannot write to stdout")),
    }
}

/// A message for the person at the terminal (stderr); lost if stderr is gone, never a panic.
pub fn note(text: impl std::fmt::Display) {
    let _ = writeln!(std::io::stderr(), "{text}");
}

/// Whether an error (anywhere in its chain) is a write to a closed pipe.
pub fn is_closed_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|c| {
        c.is::<ClosedPipe>()
            || c.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
