//! `cargo xtask`: the project's own tooling, in Rust, reading the product's own types.
//!
//! - `cargo xtask gen` writes what is generated from the code: docs/CONFIGURATION.md from
//!   the `SETTINGS` table, completions/ and man/ from the clap definitions.
//! - `cargo xtask gen --check` writes nothing and fails, naming each file, when one is stale
//!   (the test `generated_files_are_fresh` runs the same comparison in `scripts/test.sh`).
//! - `cargo xtask test [ARGS]` chooses and runs the passes of the test suite (`test.rs`);
//!   `scripts/test.sh` installs what is missing first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use clap_complete::{Generator, Shell};
use dispatchctl::config::{SettingSpec, SETTINGS};

mod test;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "dispatchctl's project tooling")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Regenerate docs/CONFIGURATION.md, completions/ and man/ from the code.
    Gen {
        /// Write nothing; exit 1 naming each generated file that differs from the code.
        #[arg(long)]
        check: bool,
    },
    /// Run the test suite's passes (scripts/test.sh installs what they need, then calls this).
    Test {
        /// Arguments for the runner (cargo-nextest, or cargo test): one pass with them.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

fn main() -> ExitCode {
    let check = match Cli::parse().command {
        Command::Gen { check } => check,
        Command::Test { args } => {
            return test::run(&root(), args).unwrap_or_else(|e| {
                eprintln!("xtask: {e:#}");
                ExitCode::FAILURE
            })
        }
    };
    match gen(&root(), check) {
        Ok(stale) if stale.is_empty() => ExitCode::SUCCESS,
        Ok(stale) => {
            for file in &stale {
                eprintln!("{file} is stale: run cargo xtask gen");
            }
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The repository: xtask/ lives in it.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ has a parent")
        .to_path_buf()
}

/// Every generated file, by its path under the repository, with what the code says it holds.
fn generated() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let mut files = vec![("docs/CONFIGURATION.md".to_string(), configuration().into_bytes())];
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
        let mut script = Vec::new();
        let mut cmd = dispatchctl::cli::completions::visible_command();
        clap_complete::generate(shell, &mut cmd, "dispatchctl", &mut script);
        files.push((format!("completions/{}", shell.file_name("dispatchctl")), script));
    }
    for (file, page) in dispatchctl::cli::completions::man_pages()? {
        files.push((format!("man/{file}"), page));
    }
    Ok(files)
}

/// Writes (or with `check`, compares) every generated file; returns the stale ones. A file in
/// completions/ or man/ that the code no longer generates is stale too.
fn gen(root: &Path, check: bool) -> anyhow::Result<Vec<String>> {
    let files = generated()?;
    let mut stale = Vec::new();
    for dir in ["completions", "man"] {
        for entry in std::fs::read_dir(root.join(dir)).with_context(|| format!("cannot read {dir}/"))? {
            let name = format!("{dir}/{}", entry?.file_name().to_string_lossy());
            if !files.iter().any(|(path, _)| *path == name) {
                if !check {
                    std::fs::remove_file(root.join(&name)).with_context(|| format!("cannot remove {name}"))?;
                }
                stale.push(name);
            }
        }
    }
    for (path, text) in &files {
        let target = root.join(path);
        if std::fs::read(&target).ok().as_deref() == Some(text.as_slice()) {
            continue;
        }
        if !check {
            std::fs::write(&target, text).with_context(|| format!("cannot write {path}"))?;
        }
        stale.push(path.clone());
    }
    if !check {
        for path in &stale {
            println!("wrote {path}");
        }
        println!("{} files generated, {} changed", files.len(), stale.len());
        stale.clear();
    }
    Ok(stale)
}

/// The settings' flags, where a command has one.
const FLAGS: &[(&str, &str)] = &[
    ("API_HOST", "`serve --host`"),
    ("API_PORT", "`serve --port`"),
    ("WORKER_CONCURRENCY", "`worker --concurrency`"),
    ("TLS_CERT_FILE", "`--tls-cert`"),
    ("TLS_KEY_FILE", "`--tls-key`"),
    ("RETENTION_PERIOD", "`prune --older-than`"),
    ("AUDIT_RETENTION_PERIOD", "`prune --audit-older-than`"),
    ("PRUNE_BATCH_SIZE", "`prune --batch-size`"),
    ("PRUNE_MAX_RATE", "`prune --max-rate`"),
];

fn configuration() -> String {
    let rows: Vec<String> = SETTINGS.iter().map(row).collect();
    format!(
        "{}{}\n{}",
        include_str!("configuration_head.md"),
        rows.join("\n"),
        include_str!("configuration_tail.md")
    )
}

fn row(s: &SettingSpec) -> String {
    let shown = match s.default {
        _ if s.secret => "—".to_string(),
        None => "—".to_string(),
        Some("") => "(empty)".to_string(),
        Some(default) => format!("`{default}`"),
    };
    let lock = if s.secret { " 🔒" } else { "" };
    let flag = FLAGS.iter().find(|(env, _)| *env == s.env).map_or("", |(_, f)| f);
    format!(
        "| `{env}`{lock} | `{key}` | {flag} | {shown} | {help} Example: `{example}`. |",
        env = s.env,
        key = s.env.to_ascii_lowercase(),
        help = s.help,
        example = s.example,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_are_fresh() {
        let stale = gen(&root(), true).expect("the generators run");
        assert!(stale.is_empty(), "stale, run cargo xtask gen: {stale:?}");
    }

    #[test]
    fn the_check_names_a_stale_file_and_one_the_code_no_longer_makes() {
        let temp = tempfile::tempdir().expect("a temporary directory");
        let dir = temp.path();
        for (path, text) in generated().expect("the generators run") {
            let target = dir.join(&path);
            std::fs::create_dir_all(target.parent().expect("a parent")).expect("mkdir");
            std::fs::write(target, text).expect("write");
        }
        assert_eq!(gen(dir, true).expect("check"), Vec::<String>::new());
        std::fs::write(dir.join("man/dispatchctl-gone.1"), "old").expect("write");
        std::fs::write(dir.join("docs/CONFIGURATION.md"), "edited by hand").expect("write");
        assert_eq!(
            gen(dir, true).expect("check"),
            ["man/dispatchctl-gone.1", "docs/CONFIGURATION.md"]
        );
        assert!(gen(dir, false).expect("gen").is_empty());
        assert_eq!(gen(dir, true).expect("check"), Vec::<String>::new());
        assert!(!dir.join("man/dispatchctl-gone.1").exists());
    }

    #[test]
    fn a_secret_shows_no_default_and_a_flag_is_named() {
        let port = SETTINGS.iter().find(|s| s.env == "API_PORT").expect("API_PORT");
        assert!(
            row(port).starts_with("| `API_PORT` | `api_port` | `serve --port` | `8080` |"),
            "{}",
            row(port)
        );
        let dsn = SETTINGS.iter().find(|s| s.env == "DATABASE_DSN").expect("DATABASE_DSN");
        assert!(
            row(dsn).starts_with("| `DATABASE_DSN` 🔒 | `database_dsn` |  | — |"),
            "{}",
            row(dsn)
        );
    }
}
