//! `dispatchctl replay`: put dead letters back on the work queues.

use std::process::ExitCode;

use super::{Exit, GlobalArgs};

#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub async fn run(_global: &GlobalArgs, _args: Args) -> anyhow::Result<ExitCode> {
    Err(Exit::new(1, "replay is not implemented yet (issue #5)").into())
}
