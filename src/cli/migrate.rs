//! `dispatchctl migrate [run|status|revert]`: the embedded sqlx migrations.

use std::io::IsTerminal;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::output::{self, Format};
use super::{load_settings_quiet, GlobalArgs};
use crate::store::{Store, MIGRATOR};

#[derive(clap::Args, Debug, Clone)]
#[command(
    after_help = "Exit status:\n  0  done (also when nothing was pending or nothing reverted)\n  1  PostgreSQL unreachable or a migration failed\n  2  invalid settings\n\nSettings: DATABASE_DSN (the database is created if it does not exist); see docs/CONFIGURATION.md.\n\nExamples:\n  dispatchctl migrate\n  dispatchctl migrate status -o json\n  dispatchctl migrate revert --yes"
)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
    /// Output format of `status`: table (default on a terminal), json (default otherwise),
    /// yaml or ndjson.
    #[arg(short, long, value_enum, global = true)]
    pub output: Option<Format>,
    /// `revert` without asking (it asks only on a terminal).
    #[arg(long, short, global = true)]
    pub yes: bool,
}

#[derive(clap::Subcommand, Debug, Clone, Copy)]
pub enum Action {
    /// Apply pending migrations (the default).
    Run,
    /// List applied and pending migrations.
    Status,
    /// Undo the most recently applied migration.
    Revert,
}

#[derive(Serialize)]
pub struct MigrationState {
    pub version: i64,
    pub description: String,
    pub applied_at: Option<DateTime<Utc>>,
}

/// Every known migration with when it was applied (None = pending).
pub async fn status(store: &Store) -> anyhow::Result<Vec<MigrationState>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(store.pool())
        .await?;
    let applied: Vec<(i64, DateTime<Utc>)> = if exists {
        sqlx::query_as("SELECT version, installed_on FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(store.pool())
            .await?
    } else {
        Vec::new()
    };
    Ok(MIGRATOR
        .iter()
        .filter(|m| m.migration_type.is_up_migration())
        .map(|m| MigrationState {
            version: m.version,
            description: m.description.to_string(),
            applied_at: applied.iter().find(|(v, _)| *v == m.version).map(|(_, at)| *at),
        })
        .collect())
}

pub async fn pending(store: &Store) -> anyhow::Result<Vec<MigrationState>> {
    Ok(status(store)
        .await?
        .into_iter()
        .filter(|m| m.applied_at.is_none())
        .collect())
}

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let settings = load_settings_quiet(global)?;
    let store = Store::connect(&settings.database, 2).await?;
    let settings_display = settings.database_display();
    match args.action.unwrap_or(Action::Run) {
        Action::Run => {
            let before = pending(&store).await?.len();
            store.migrate().await?;
            output::note(format!("applied {before} migrations; the schema is up to date"));
        }
        Action::Status => {
            let states = status(&store).await?;
            match output::resolve(args.output) {
                Format::Table => {
                    let mut t = output::table(&["version", "description", "state"]);
                    for m in &states {
                        let state = m.applied_at.map_or("pending".to_string(), |at| {
                            format!("applied {}", at.format("%Y-%m-%d %H:%M:%S"))
                        });
                        t.add_row(vec![m.version.to_string(), m.description.clone(), state]);
                    }
                    output::line(&t)?;
                }
                f => output::print_structured(f, &states)?,
            }
        }
        Action::Revert => {
            let states = status(&store).await?;
            let applied: Vec<&MigrationState> = states.iter().filter(|m| m.applied_at.is_some()).collect();
            let Some(last) = applied.last() else {
                output::note("nothing to revert: no migration is applied");
                return Ok(ExitCode::SUCCESS);
            };
            if !args.yes && std::io::stdin().is_terminal() {
                let question = format!(
                    "Revert migration {} ({}) of {}? Its down script may drop data. [y/N] ",
                    last.version, last.description, settings_display
                );
                if !super::confirm(&question).await? {
                    output::note("nothing reverted");
                    return Ok(ExitCode::SUCCESS);
                }
            }
            let target = applied.iter().rev().nth(1).map_or(0, |m| m.version);
            MIGRATOR.undo(store.pool(), target).await?;
            output::note(format!("reverted {} {}", last.version, last.description));
        }
    }
    Ok(ExitCode::SUCCESS)
}
