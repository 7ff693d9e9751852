//! The layer rule of ARCHITECTURE.md ("Layers"), checked over the `crate::` paths of src/:
//! a module names only modules of a lower layer, so the imports have no cycle and no arrow
//! points back up.

use std::collections::BTreeSet;
use std::path::Path;

/// Lowest first. A module may name a module of a lower layer only; modules of one layer do
/// not name each other.
const LAYERS: &[&[&str]] = &[
    // The pure core, and what it needs of the crate root.
    &["domain", "batch", "shutdown", "root_cause"],
    // What settings are made of and adapters share, importing nothing of ours but the core.
    &["tls", "metrics"],
    &["config"],
    // Adapters at the edges: one per service.
    &["telemetry", "redis_client", "store", "broker", "otel"],
    // Adapters that build on another: the rate limiter on Redis, the provider on the typed
    // lease (`store::Claimed`, which only a claim can make).
    &["ratelimit", "provider"],
    // Use cases.
    &["dispatch"],
    // The composition root.
    &["app"],
    &["api"],
    // The daemons' own endpoints, with the API's error body and token check.
    &["ops"],
    &["roles"],
    &["cli"],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The top-level modules of the crate that `source` names as `crate::<module>`, including
/// those in grouped imports (`use crate::{a::X, b}`).
fn named_modules(source: &str) -> BTreeSet<String> {
    let mut named = BTreeSet::new();
    let code: String = source
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() && name != "self" {
                    named.insert(name);
                }
            }
        } else {
            let name: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            named.insert(name);
        }
    }
    named
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn every_module_names_only_modules_of_lower_layers() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut unplaced = BTreeSet::new();
    let mut upward = Vec::new();
    let mut arrows = BTreeSet::new();
    for file in &files {
        let relative = file.strip_prefix(&src).expect("under src/");
        let first = relative
            .components()
            .next()
            .expect("a path")
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if matches!(module.as_str(), "lib" | "main") {
            continue;
        }
        let source = std::fs::read_to_string(file).expect("readable source");
        for named in named_modules(&source) {
            if named == module {
                continue;
            }
            arrows.insert((module.clone(), named.clone()));
            match (layer_of(&module), layer_of(&named)) {
                (Some(from), Some(to)) if to < from => {}
                (Some(_), Some(_)) => upward.push(format!("{} names crate::{named}", relative.display())),
                (None, _) => {
                    unplaced.insert(module.clone());
                }
                (_, None) => {
                    unplaced.insert(named);
                }
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and to ARCHITECTURE.md's Layers): {unplaced:?}"
    );
    assert!(
        upward.is_empty(),
        "imports that point up or sideways a layer (ARCHITECTURE.md, Layers):\n{}",
        upward.join("\n")
    );
    // The walk saw the crate: the composition root names the layers below it.
    assert!(arrows.contains(&("app".into(), "dispatch".into())), "{arrows:?}");
}

#[test]
fn the_walk_finds_plain_and_grouped_paths_and_ignores_comments() {
    let named = named_modules(
        "use crate::store::Store;\nuse crate::{broker::Broker, config};\n// crate::cli in a comment\nlet x = crate::root_cause(&e);",
    );
    let expected: BTreeSet<String> = ["store", "broker", "config", "root_cause"].map(String::from).into();
    assert_eq!(named, expected);
}

#[test]
fn the_domain_names_no_io_crate() {
    let domain = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/domain");
    let mut files = Vec::new();
    rust_files(&domain, &mut files);
    let mut found = Vec::new();
    for file in &files {
        let source = std::fs::read_to_string(file).expect("readable source");
        for (n, line) in source.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for io in [
                "sqlx", "tokio", "lapin", "reqwest", "redis", "axum", "hyper", "lettre", "clap",
            ] {
                if code.contains(&format!("{io}::")) || code.contains(&format!("use {io}")) {
                    found.push(format!("{}:{}: {io}", file.display(), n + 1));
                }
            }
        }
    }
    assert!(files.len() > 5, "the walk found the domain's files: {files:?}");
    assert!(
        found.is_empty(),
        "the domain names an I/O crate (ARCHITECTURE.md, Layers):\n{}",
        found.join("\n")
    );
}
