//! Rendering: tables for people, JSON/YAML for scripts. Data goes to stdout, chatter to stderr.

use std::io::IsTerminal;

use clap::ValueEnum;
use comfy_table::presets::UTF8_FULL_CONDENSED;
use comfy_table::{ContentArrangement, Table};
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

pub fn table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_preset(UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Dynamic)
        .set_header(headers.to_vec());
    t
}

pub fn print_structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<()> {
    match format {
        Format::Yaml => print!("{}", serde_yaml::to_string(value)?),
        Format::Ndjson => println!("{}", serde_json::to_string(value)?),
        _ => println!("{}", serde_json::to_string_pretty(value)?),
    }
    Ok(())
}
