//! `dispatchctl inspect-dlq`: look into the dead-letter queues without consuming them.

use std::process::ExitCode;

use super::{Exit, GlobalArgs};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<ExitCode> {
    Err(Exit::new(1, "inspect-dlq is not implemented yet (issue #5)").into())
}
