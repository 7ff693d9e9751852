//! `dispatchctl send`: scripted sends through the HTTP API.

use std::process::ExitCode;

use super::Exit;

#[derive(clap::Args, Debug, Clone)]
pub struct Args {}

pub async fn run(_args: Args) -> anyhow::Result<ExitCode> {
    Err(Exit::new(1, "send is not implemented yet (issue #5)").into())
}
