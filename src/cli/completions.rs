//! Hidden helpers for packaging: completion scripts, man pages, and a container health check.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{Cli, Exit};

#[derive(clap::Args, Debug, Clone)]
pub struct CompletionArgs {
    #[arg(value_enum)]
    pub shell: Shell,
}

#[derive(clap::Args, Debug, Clone)]
pub struct ManArgs {
    /// Directory to write dispatchctl.1 and one page per subcommand into.
    pub dir: PathBuf,
}

#[derive(clap::Args, Debug, Clone)]
pub struct HealthcheckArgs {
    /// URL to check [default: /livez on API_HOST and API_PORT, as `serve` reads them].
    #[arg(long)]
    pub url: Option<String>,
}

pub fn completions(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = Cli::command();
    // Into a buffer first: generate() panics when its writer fails (stdout closed early).
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "dispatchctl", &mut script);
    super::output::write_out(String::from_utf8_lossy(&script))?;
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.dir)?;
    write_man_pages(&args.dir)?;
    Ok(ExitCode::SUCCESS)
}

/// Writes `dispatchctl.1` and `dispatchctl-<sub>.1` for every visible subcommand.
pub fn write_man_pages(dir: &std::path::Path) -> anyhow::Result<()> {
    let cmd = Cli::command();
    let mut buf = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut buf)?;
    std::fs::write(dir.join("dispatchctl.1"), buf)?;
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("dispatchctl-{}", sub.get_name());
        let page = sub.clone().name(name.clone());
        let mut buf = Vec::new();
        clap_mangen::Man::new(page).render(&mut buf)?;
        std::fs::write(dir.join(format!("{name}.1")), buf)?;
    }
    Ok(())
}

pub async fn healthcheck(global: &super::GlobalArgs, args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let url = match args.url {
        Some(url) => url,
        None => format!("{}/livez", super::send::ApiTarget::resolve(global, None, None).url),
    };
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build()?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => Err(Exit::new(1, format!("{url} answered {}", r.status())).into()),
        Err(e) => Err(Exit::new(
            1,
            format!("{url} unreachable: {e}; pass --url to check another address"),
        )
        .into()),
    }
}
