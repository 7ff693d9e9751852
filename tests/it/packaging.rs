//! Generated and documented artefacts stay in step with the code.

use std::path::Path;

use clap::CommandFactory;
use clap_complete::{Generator, Shell};
use dispatchctl::cli::Cli;
use dispatchctl::config::SETTINGS;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn completions_are_fresh() {
    for shell in [Shell::Bash, Shell::Zsh, Shell::Fish, Shell::PowerShell, Shell::Elvish] {
        let mut generated = Vec::new();
        clap_complete::generate(
            shell,
            &mut dispatchctl::cli::completions::visible_command(),
            "dispatchctl",
            &mut generated,
        );
        let file = format!("completions/{}", shell.file_name("dispatchctl"));
        assert!(
            read(&file).as_bytes() == generated.as_slice(),
            "{file} is stale: run scripts/gen-completions.sh"
        );
    }
}

#[test]
fn man_pages_are_fresh() {
    let dir = tempfile::tempdir().unwrap();
    dispatchctl::cli::completions::write_man_pages(dir.path()).unwrap();
    let mut count = 0;
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let committed = read(&format!("man/{name}"));
        assert!(
            committed == std::fs::read_to_string(entry.path()).unwrap(),
            "man/{name} is stale: run scripts/gen-completions.sh"
        );
        count += 1;
    }
    assert!(count >= 8, "dispatchctl.1 and one page per subcommand");
    assert_eq!(
        std::fs::read_dir(root().join("man")).unwrap().count(),
        count,
        "man/ holds a page no subcommand has"
    );
}

#[test]
fn completions_offer_no_hidden_command_and_complete_values() {
    let bash = read("completions/dispatchctl.bash");
    for hidden in Cli::command().get_subcommands().filter(|s| s.is_hide_set()) {
        assert!(
            !bash.contains(&format!(" {} ", hidden.get_name())) && !bash.contains(&format!("__{}", hidden.get_name())),
            "completions offer the hidden `{}`",
            hidden.get_name()
        );
    }
    for values in [
        "sms email push",
        "permanent_error retry_exhausted invalid_message not_found",
        "ACCEPTED QUEUED SENDING SENT FAILED CANCELED",
        "table json yaml ndjson",
    ] {
        assert!(bash.contains(values), "bash completes {values}");
    }
}

#[test]
fn man_pages_have_an_environment_section_and_point_only_at_pages_that_exist() {
    for entry in std::fs::read_dir(root().join("man")).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(".SH ENVIRONMENT"), "{}", path.display());
        for (i, _) in text.match_indices("(1)") {
            let start = text[..i].rfind(|c: char| c.is_whitespace()).map_or(0, |s| s + 1);
            let page = text[start..i].replace("\\-", "-");
            assert!(
                root().join("man").join(format!("{page}.1")).exists(),
                "{} refers to {page}(1), which does not exist",
                path.display()
            );
        }
    }
}

#[test]
fn every_flag_of_every_visible_command_has_a_description() {
    fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
        for arg in cmd.get_arguments() {
            if arg.is_hide_set() || arg.get_help().is_some() || arg.get_long_help().is_some() {
                continue;
            }
            missing.push(format!("{path} {}", arg.get_id()));
        }
        for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
            walk(sub, &format!("{path} {}", sub.get_name()), missing);
        }
    }
    let mut cmd = dispatchctl::cli::completions::visible_command();
    cmd.build();
    let mut missing = Vec::new();
    walk(&cmd, "dispatchctl", &mut missing);
    assert!(missing.is_empty(), "flags without a description: {missing:?}");
}

#[test]
fn every_setting_is_documented() {
    let docs = read("docs/CONFIGURATION.md");
    for s in SETTINGS {
        assert!(
            docs.contains(&format!("`{}`", s.env)),
            "{} is missing from docs/CONFIGURATION.md",
            s.env
        );
        assert!(
            docs.contains(&format!("`{}`", s.env.to_ascii_lowercase())),
            "YAML key of {} is missing",
            s.env
        );
    }
}

#[test]
fn env_example_names_only_known_settings() {
    // Names docker-compose.yml reads for itself, not dispatchctl settings.
    const COMPOSE_ONLY: &[&str] = &[
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "RABBITMQ_USER",
        "RABBITMQ_PASSWORD",
        "DISPATCHCTL_IMAGE",
    ];
    for line in read(".env.example").lines() {
        let line = line.trim_start_matches('#').trim();
        let Some((key, _)) = line.split_once('=') else { continue };
        if key.is_empty() || key.contains(' ') {
            continue;
        }
        let known = SETTINGS.iter().any(|s| s.env == key) || COMPOSE_ONLY.contains(&key) || key.ends_with("_PORT");
        assert!(known, ".env.example names {key}, which the code does not read");
    }
}

#[test]
fn deployment_files_parse() {
    for file in [
        "docker-compose.yml",
        ".github/workflows/ci.yml",
        "docker/prometheus.yml",
        "docker/alerts.yml",
    ] {
        let parsed: Result<serde_yaml::Value, _> = serde_yaml::from_str(&read(file));
        assert!(parsed.is_ok(), "{file}: {:?}", parsed.err());
    }
    let workflow: serde_yaml::Value = serde_yaml::from_str(&read(".github/workflows/ci.yml")).unwrap();
    assert!(
        workflow["jobs"].as_mapping().is_some_and(|j| j.len() >= 3),
        "test, audit and image jobs"
    );
}
