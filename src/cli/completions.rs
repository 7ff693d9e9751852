//! Hidden helpers for packaging: completion scripts, man pages, and a container health check.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::CommandFactory;
use clap_complete::Shell;

use super::{fail, Cli, Exit};

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
    /// CA certificate (PEM) to verify an https:// listener with [default: with TLS_CERT_FILE
    /// set, trust exactly that certificate; else the system roots].
    #[arg(long, value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
}

/// The command tree as users see it: no hidden subcommands (completions would offer them)
/// and no `help` subcommand (it has no man page; every command has --help).
pub fn visible_command() -> clap::Command {
    let full = Cli::command();
    let mut cmd = clap::Command::new(full.get_name().to_string())
        .version(full.get_version().map(str::to_string).unwrap_or_default())
        .propagate_version(true)
        .disable_help_subcommand(true)
        .subcommand_required(full.is_subcommand_required_set());
    if let Some(about) = full.get_about() {
        cmd = cmd.about(about.clone());
    }
    if let Some(after) = full.get_after_help() {
        cmd = cmd.after_help(after.clone());
    }
    for arg in full
        .get_arguments()
        .filter(|a| !matches!(a.get_id().as_str(), "help" | "version"))
    {
        cmd = cmd.arg(arg.clone());
    }
    for sub in full.get_subcommands().filter(|s| !s.is_hide_set()) {
        cmd = cmd.subcommand(sub.clone());
    }
    cmd
}

pub fn completions(args: CompletionArgs) -> anyhow::Result<ExitCode> {
    let mut cmd = visible_command();
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
    for (file, page) in man_pages()? {
        std::fs::write(dir.join(file), page)?;
    }
    Ok(())
}

/// Each man page's file name and text: `dispatchctl.1`, then one per visible subcommand.
pub fn man_pages() -> anyhow::Result<Vec<(String, Vec<u8>)>> {
    let cmd = visible_command();
    let mut pages = vec![("dispatchctl.1".to_string(), page(cmd.clone(), None)?)];
    for sub in cmd.get_subcommands() {
        let name = format!("dispatchctl-{}", sub.get_name());
        let man = page(sub.clone().name(name.clone()), Some(sub.get_name()))?;
        pages.push((format!("{name}.1"), man));
    }
    Ok(pages)
}

/// clap_mangen's sections, with an ENVIRONMENT section before VERSION.
fn page(cmd: clap::Command, sub: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let cmd = cmd.version(env!("CARGO_PKG_VERSION"));
    let man = clap_mangen::Man::new(cmd.clone());
    let mut buf = Vec::new();
    man.render_title(&mut buf)?;
    man.render_name_section(&mut buf)?;
    man.render_synopsis_section(&mut buf)?;
    man.render_description_section(&mut buf)?;
    if cmd.get_arguments().any(|a| !a.is_hide_set()) {
        man.render_options_section(&mut buf)?;
    }
    if sub.is_none() {
        man.render_subcommands_section(&mut buf)?;
    } else if cmd.get_subcommands().any(|s| !s.is_hide_set()) {
        // Actions of a subcommand (migrate run|status|revert) have no pages of their own:
        // list them here instead of pointing at pages that do not exist.
        let mut roff = String::from(".SH ACTIONS\n");
        for action in cmd
            .get_subcommands()
            .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        {
            let about = action.get_about().map(|a| a.to_string()).unwrap_or_default();
            roff.push_str(&roff_item(action.get_name(), &about));
        }
        buf.extend_from_slice(roff.as_bytes());
    }
    if cmd.get_after_help().is_some() || cmd.get_after_long_help().is_some() {
        man.render_extra_section(&mut buf)?;
    }
    buf.extend_from_slice(environment(sub).as_bytes());
    man.render_version_section(&mut buf)?;
    Ok(buf)
}

/// One `.TP` entry: `name` in bold, then `text`.
fn roff_item(name: &str, text: &str) -> String {
    let escape = |s: &str| s.replace('\\', "\\\\").replace('-', "\\-");
    format!(".TP\n\\fB{}\\fR\n{}\n", escape(name), escape(text))
}

/// The settings a page's command reads, as roff.
fn environment(sub: Option<&str>) -> String {
    let mut out = String::from(".SH ENVIRONMENT\n");
    let mut item = |name: &str, help: &str| out.push_str(&roff_item(name, help));
    item(
        "DISPATCHCTL_CONFIG",
        "YAML file of settings (lower-case names); the environment and flags override it. Same as --config.",
    );
    let names: &[&str] = match sub {
        None | Some("serve" | "worker" | "scan-retries") => &[],
        Some("send") => &["API_HOST", "API_PORT", "API_TOKENS", "API_TOKENS_FILE"],
        Some("migrate") => &["DATABASE_DSN", "LOG_LEVEL", "LOG_FORMAT"],
        Some("notifications") => &["DATABASE_DSN", "QUEUE_PREFIX", "QUEUE_TYPE", "LOG_LEVEL", "LOG_FORMAT"],
        Some(_) => &[
            "DATABASE_DSN",
            "RABBITMQ_URL",
            "QUEUE_PREFIX",
            "QUEUE_TYPE",
            "QUEUE_DELIVERY_LIMIT",
            "LOG_LEVEL",
            "LOG_FORMAT",
        ],
    };
    if sub == Some("send") {
        item(
            "DISPATCH_API_URL",
            "Base URL of the API (wins over API_HOST and API_PORT). Same as --api-url.",
        );
        item(
            "DISPATCH_API_TOKEN",
            "Bearer token (wins over API_TOKENS). Same as --token.",
        );
    }
    for spec in crate::config::SETTINGS {
        if names.is_empty() || names.contains(&spec.env) {
            item(spec.env, spec.help);
        }
    }
    out.push_str(
        ".PP\nA .env file in the working directory is read too. docs/CONFIGURATION.md describes every setting.\n",
    );
    out
}

pub async fn healthcheck(global: &super::GlobalArgs, args: HealthcheckArgs) -> anyhow::Result<ExitCode> {
    let resolved = || super::send::ApiTarget::resolve(global, None, None).url;
    let url = args.url.unwrap_or_else(|| format!("{}/livez", resolved()));
    let tls = match &args.ca_file {
        Some(ca) => crate::tls::client_config(&crate::tls::ClientTlsFiles {
            ca_file: Some(ca.clone()),
            ..Default::default()
        })
        .map_err(|e| Exit::new(2, format!("--ca-file: {e}")))?,
        None => match crate::config::Settings::load(global.config.as_deref(), &Default::default())
            .ok()
            .and_then(|s| s.listener_tls)
        {
            Some(files) => crate::tls::pinned_client_config(&files.cert_file)
                .map_err(|e| Exit::new(2, format!("TLS_CERT_FILE: {e}")))?,
            None => crate::tls::client_config(&crate::tls::ClientTlsFiles::default())
                .map_err(|e| Exit::new(2, e.to_string()))?,
        },
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .use_preconfigured_tls(tls)
        .build()?;
    match client.get(&url).send().await {
        Ok(r) if r.status().is_success() => Ok(ExitCode::SUCCESS),
        Ok(r) => {
            // The body says why, e.g. "speaks HTTPS only" when checked over http://.
            let status = r.status();
            let body = r.text().await.unwrap_or_default();
            let why: String = body.lines().next().unwrap_or_default().chars().take(200).collect();
            let why = if why.is_empty() { why } else { format!(": {why}") };
            Err(fail(1, format!("{url} answered {status}{why}")))
        }
        Err(e) => {
            // reqwest's own text ("error sending request") hides the cause; name the deepest.
            let reason = crate::tls::describe(&e).unwrap_or_else(|| crate::root_cause(&e));
            Err(fail(
                1,
                format!("{url} unreachable: {reason}; pass --url to check another address"),
            ))
        }
    }
}
