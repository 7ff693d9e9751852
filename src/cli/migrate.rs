//! `dispatchctl migrate [run|status|revert]`: the embedded sqlx migrations.

use std::io::IsTerminal;
use std::process::ExitCode;

use super::output::{self, Format};
use super::{load_settings_quiet, GlobalArgs};
use crate::store::migrations::MigrationState;
use crate::store::Store;

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

pub async fn run(global: &GlobalArgs, args: Args) -> anyhow::Result<ExitCode> {
    let settings = load_settings_quiet(global)?;
    let store = Store::connect(&settings.database, 2).await?;
    let settings_display = settings.database_display();
    match args.action.unwrap_or(Action::Run) {
        Action::Run => {
            let before = store.pending_migrations().await?.len();
            store.migrate().await?;
            output::note(format!("applied {before} migrations; the schema is up to date"));
        }
        Action::Status => {
            let states = store.migrations().await?;
            match output::resolve(args.output) {
                Format::Table => {
                    let mut t = output::table(&["version", "description", "state"]);
                    for m in &states {
                        let state = m
                            .applied_at
                            .map_or("pending".to_string(), |at| format!("applied {}", output::time(at)));
                        t.add_row(vec![m.version.to_string(), m.description.clone(), state]);
                    }
                    output::line(&t)?;
                }
                f => output::print_structured(f, &states)?,
            }
        }
        Action::Revert => {
            let states = store.migrations().await?;
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
            store.revert_to(target).await?;
            output::note(format!("reverted {} {}", last.version, last.description));
        }
    }
    Ok(ExitCode::SUCCESS)
}
