//! Generated and documented artefacts stay in step with the code (their freshness: xtask's
//! `generated_files_are_fresh`).

use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;

use dispatchctl::cli::Cli;
use dispatchctl::config::SETTINGS;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
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
fn env_example_names_only_known_settings() {
    // Names docker-compose.yml reads for itself, not dispatchctl settings.
    const COMPOSE_ONLY: &[&str] = &[
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "RABBITMQ_USER",
        "RABBITMQ_PASSWORD",
        "DISPATCHCTL_IMAGE",
        "GRAFANA_ADMIN_PASSWORD",
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

/// The metric names a PromQL expression reads: its identifiers, less functions, keywords,
/// label matchers (`{…}`), ranges (`[…]`), strings and the label lists of `by (…)` and the like.
fn promql_metrics(expr: &str) -> Vec<String> {
    const GROUPING: &[&str] = &["by", "without", "on", "ignoring", "group_left", "group_right"];
    const KEYWORDS: &[&str] = &["and", "or", "unless", "bool", "offset", "group_left", "group_right"];
    // Aggregations may take their `by (…)` before their argument: `sum by (channel) (…)`.
    const AGGREGATIONS: &[&str] = &[
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
    ];
    let mut tokens: Vec<String> = Vec::new();
    let (mut chars, mut skip_until) = (expr.chars().peekable(), None::<char>);
    while let Some(c) = chars.next() {
        if let Some(end) = skip_until {
            if c == end {
                skip_until = None;
            }
            continue;
        }
        match c {
            '{' => skip_until = Some('}'),
            '[' => skip_until = Some(']'),
            '"' => skip_until = Some('"'),
            c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => {
                let mut word = c.to_string();
                while let Some(&n) = chars
                    .peek()
                    .filter(|n| n.is_ascii_alphanumeric() || **n == '_' || **n == ':')
                {
                    word.push(n);
                    chars.next();
                }
                tokens.push(word);
            }
            c if !c.is_whitespace() => tokens.push(c.to_string()),
            _ => {}
        }
    }
    let mut names = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let t = &tokens[i];
        let next = tokens.get(i + 1).map(String::as_str);
        if GROUPING.contains(&t.as_str()) && next == Some("(") {
            while tokens.get(i).is_some_and(|t| t != ")") {
                i += 1;
            }
        } else if next != Some("(")
            && !KEYWORDS.contains(&t.as_str())
            && !AGGREGATIONS.contains(&t.as_str())
            && t.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        {
            names.push(t.clone());
        }
        i += 1;
    }
    names
}

#[test]
fn promql_metrics_finds_the_metrics_and_nothing_else() {
    let expr = r#"sum by (channel, reason) (rate(dispatch_engine_failed_total{kind=~"a|b"}[5m])) / on (channel) group_left max(up) > 0.05 and process_open_fds offset 5m"#;
    assert_eq!(
        promql_metrics(expr),
        ["dispatch_engine_failed_total", "up", "process_open_fds"]
    );
}

/// Every expression of the Grafana dashboard and of the alerts, after a run of the real
/// service: so neither can name a metric that the binary does not export.
#[tokio::test]
async fn the_dashboard_and_alerts_name_only_metrics_the_binary_exports() {
    use crate::helpers::{wait_for, Env, ScriptedProvider, TestApp};
    let dashboard: serde_json::Value =
        serde_json::from_str(&read("docker/grafana/dashboards/dispatchctl.json")).unwrap();
    let mut exprs: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let title = format!("dashboard panel \"{}\"", panel["title"].as_str().unwrap_or_default());
            exprs.push((title, target["expr"].as_str().expect("expr").to_string()));
        }
    }
    let alerts: serde_yaml::Value = serde_yaml::from_str(&read("docker/alerts.yml")).unwrap();
    for group in alerts["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = format!("alert {}", rule["alert"].as_str().unwrap_or_default());
            exprs.push((name, rule["expr"].as_str().expect("expr").to_string()));
        }
    }
    assert!(exprs.len() > 20, "{} expressions", exprs.len());

    // A run that exercises what the panels show: sends, a retry, a dead letter, rate-limit
    // waits, the scanner's samples.
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("RATE_LIMIT_PER_SEC", "1000");
    let t = TestApp::spawn(env, false).await;
    let mut ids = Vec::new();
    for recipient in ["+905550000001", "flaky1-x", "reject-x"] {
        ids.push(
            t.create("sms", recipient, "dashboard").await["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    for (id, status) in ids.iter().zip(["SENT", "SENT", "FAILED"]) {
        t.wait_status(id, status, Duration::from_secs(20)).await;
    }
    let needed: Vec<(String, String)> = exprs
        .iter()
        .flat_map(|(place, expr)| {
            let names = promql_metrics(expr);
            assert!(!names.is_empty(), "{place} reads no metric: {expr}");
            names
                .into_iter()
                .filter(|n| n != "up")
                .map(|n| (place.clone(), n))
                .collect::<Vec<_>>()
        })
        .collect();
    let missing = || async {
        let text = t.metrics().await;
        let exported = |name: &str| {
            text.lines()
                .any(|l| l.strip_prefix(name).is_some_and(|rest| rest.starts_with(['{', ' '])))
        };
        needed
            .iter()
            .filter(|(_, name)| !exported(name))
            .map(|(place, name)| format!("{place}: {name}"))
            .collect::<Vec<_>>()
    };
    // The scanner samples depths on its own interval: wait for its first samples.
    wait_for(Duration::from_secs(10), || async { missing().await.is_empty() }).await;
    let absent = missing().await;
    assert!(absent.is_empty(), "not exported by the binary:\n{}", absent.join("\n"));
    crate::helpers::drain_at_least(
        &t.env.dlq(dispatchctl::domain::Channel::Sms),
        1,
        Duration::from_secs(10),
    )
    .await;
    t.stop().await;
}
