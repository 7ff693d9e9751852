//! `cargo xtask test [ARGS]`: which passes of the suite run, against which services.
//! `scripts/test.sh` (the command README.md gives) installs what is missing and calls it.
//!
//! Without ARGS: the whole suite with the queue type of TEST_QUEUE_TYPE (classic by default),
//! then the tests that talk to the broker's queues again with quorum queues, then the worker
//! and broker tests once more on the other RabbitMQ (TEST_RABBITMQ_ALSO, 3.10 by default;
//! empty skips it). With ARGS: one pass, ARGS going to the runner (cargo-nextest, or
//! `cargo test` without it).
//!
//! Where are the services? TEST_DATABASE_URL, TEST_RABBITMQ_URL and TEST_REDIS_URL when given
//! (DISPATCHCTL_SKIP_SERVICES=1 with them, as the GitHub workflow runs). Otherwise each pass
//! gets a PostgreSQL (with a standby), Redis (with Sentinel) and RabbitMQ node of its own
//! (scripts/chaos/services.sh, about 5 s to start, stopped after the pass), on RabbitMQ
//! TEST_RABBITMQ (4, Debian 13's 4.0, by default): a broker that other runs share, and that
//! RabbitMQ 3.10 can wedge under quorum-queue churn, would otherwise decide whether a run
//! passes. A pass fails when the node's log shows a feature RabbitMQ deprecates.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

mod private;
use private::Private;

/// The tests that talk to the broker's queues, run again with quorum queues.
const QUORUM: Filter = Filter {
    expression: "test(/^(worker|scanner|operator|broker)::/)",
    prefixes: &["worker::", "scanner::", "operator::", "broker::"],
};
/// The tests run again on the other RabbitMQ.
const ALSO: Filter = Filter {
    expression: "test(/^(worker|broker)::/)",
    prefixes: &["worker::", "broker::"],
};
/// Tests named `…::quorum_…` run in the quorum pass (on a private node) only.
const NOT_QUORUM: &str = "not test(/::quorum_/)";

/// A subset of the integration tests, for nextest (`expression`) and for `cargo test` without
/// it (`prefixes` of the test names in the `it` binary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Filter {
    expression: &'static str,
    prefixes: &'static [&'static str],
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Selection {
    Everything,
    /// Everything but the `quorum_` tests (with nextest only; `cargo test` runs them too).
    AllButQuorumNamed,
    Only(Filter),
    /// The caller's own arguments for the runner.
    Given(Vec<String>),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Services {
    /// The ones the environment names (or the machine's, by default).
    Shared,
    /// A private node of this RabbitMQ major version, with PostgreSQL and Redis of its own.
    Private { rabbitmq: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Pass {
    services: Services,
    /// TEST_QUEUE_TYPE for this pass (None: as the environment says).
    queue_type: Option<&'static str>,
    selection: Selection,
}

/// What the plan depends on, read from the environment once.
#[derive(Clone, Debug)]
struct Setup {
    skip_services: bool,
    /// No service URL was given: every pass runs against private services.
    private: bool,
    /// The shared broker did not answer (no vhost of our own): private services then too.
    shared_broker_sick: bool,
    queue_type: Option<String>,
    rabbitmq: String,
    also: Option<String>,
    nextest: bool,
}

fn plan(s: &Setup, args: &[String]) -> Vec<Pass> {
    let private = |rabbitmq: &str| Services::Private {
        rabbitmq: rabbitmq.to_string(),
    };
    let first_services = if s.private || s.shared_broker_sick {
        private(&s.rabbitmq)
    } else {
        Services::Shared
    };
    let selection = if !args.is_empty() {
        Selection::Given(args.to_vec())
    } else if s.queue_type.as_deref() == Some("quorum") || s.skip_services || !s.nextest {
        Selection::Everything
    } else {
        Selection::AllButQuorumNamed
    };
    let mut passes = vec![Pass {
        services: first_services,
        queue_type: None,
        selection,
    }];
    if !args.is_empty() || s.queue_type.is_some() {
        return passes;
    }
    passes.push(Pass {
        services: if s.skip_services {
            Services::Shared
        } else {
            private(&s.rabbitmq)
        },
        queue_type: Some("quorum"),
        selection: Selection::Only(QUORUM),
    });
    if let Some(also) = s.also.as_deref() {
        if also != s.rabbitmq && !s.skip_services && s.nextest {
            passes.push(Pass {
                services: private(also),
                queue_type: None,
                selection: Selection::Only(ALSO),
            });
        }
    }
    passes
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

pub fn run(root: &Path, args: Vec<String>) -> anyhow::Result<ExitCode> {
    catch_interrupts();
    let skip_services = env("DISPATCHCTL_SKIP_SERVICES").as_deref() == Some("1");
    let given = ["TEST_DATABASE_URL", "TEST_RABBITMQ_URL", "TEST_REDIS_URL"]
        .iter()
        .any(|k| env(k).is_some());
    let mut run = Run::new(root);
    let mut setup = Setup {
        skip_services,
        private: !skip_services && !given,
        shared_broker_sick: false,
        queue_type: env("TEST_QUEUE_TYPE"),
        rabbitmq: env("TEST_RABBITMQ").unwrap_or_else(|| "4".into()),
        // Unset: 3 (the machine's 3.10); set but empty: no such pass.
        also: match std::env::var("TEST_RABBITMQ_ALSO") {
            Err(_) => Some("3".into()),
            Ok(v) => Some(v).filter(|v| !v.is_empty()),
        },
        nextest: Command::new("cargo")
            .args(["nextest", "--version"])
            .output()
            .is_ok_and(|o| o.status.success()),
    };
    if !setup.private && env("TEST_RABBITMQ_URL").is_none() && which("rabbitmqctl") {
        setup.shared_broker_sick = !run.own_vhost();
    }
    if env("TEST_RABBITMQ_URL").is_none() {
        std::env::set_var("TEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2f");
    }
    run.drop_test_databases();
    let mut failed = false;
    for pass in plan(&setup, &args) {
        if interrupted() {
            failed = true;
            break;
        }
        match run.pass(&pass, &setup) {
            Ok(true) => {}
            Ok(false) => failed = true,
            Err(e) => {
                eprintln!("test.sh: {e:#}");
                failed = true;
            }
        }
    }
    run.clean_up();
    Ok(if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// This run's names and what it must remove at the end.
struct Run {
    root: PathBuf,
    /// Each run has its own vhost and database names (keyed by this process's id), so two
    /// runs on one machine (a developer's and CI's, or two worktrees) never delete each
    /// other's state; what runs that died left behind is removed by the next one.
    id: String,
    database_url: String,
    own_vhost: Option<String>,
}

impl Run {
    fn new(root: &Path) -> Run {
        let id = format!("r{}", std::process::id());
        std::env::set_var("DISPATCHCTL_TEST_RUN", &id);
        let database_url = env("TEST_DATABASE_URL").unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432".into());
        std::env::set_var("TEST_DATABASE_URL", &database_url);
        if env("TEST_REDIS_URL").is_none() {
            std::env::set_var("TEST_REDIS_URL", "redis://127.0.0.1:6379/0");
        }
        Run {
            root: root.to_path_buf(),
            id,
            database_url,
            own_vhost: None,
        }
    }

    /// A vhost of this run on the shared broker, after deleting those of runs that died.
    /// False when the broker did not make one in time.
    fn own_vhost(&mut self) -> bool {
        let vhosts = rabbitmqctl(&["list_vhosts"]).unwrap_or_default();
        for vhost in vhosts.lines() {
            if let Some(run) = vhost.strip_prefix("dispatchctl-test-") {
                if run_is_dead(run) {
                    let _ = rabbitmqctl(&["delete_vhost", vhost]);
                }
            }
        }
        // Left by older versions of the script.
        let _ = rabbitmqctl(&["delete_vhost", "dispatchctl-test"]);
        let vhost = format!("dispatchctl-test-{}", self.id);
        let made = rabbitmqctl(&["add_vhost", &vhost]).is_some()
            && rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]).is_some();
        if made {
            std::env::set_var(
                "TEST_RABBITMQ_URL",
                format!("amqp://guest:guest@127.0.0.1:5672/{vhost}"),
            );
            self.own_vhost = Some(vhost);
        } else {
            eprintln!(
                "test.sh: the shared RabbitMQ did not create vhost {vhost} in time; this run uses private services"
            );
        }
        made
    }

    /// Every test creates its own database, `dtest_<run>_<id>`: this run's go at the end,
    /// those of runs no longer alive (or older than run ids) at the start.
    fn drop_test_databases(&self) {
        let admin = format!("{}/postgres", self.database_url);
        let Some(list) = output(Command::new("psql").args([
            &admin,
            "-Atqc",
            "SELECT datname FROM pg_database WHERE datname LIKE 'dtest\\_%'",
        ])) else {
            return;
        };
        for db in list.lines() {
            let run = db.strip_prefix("dtest_").and_then(|rest| rest.split('_').next());
            let ours_or_dead = match run {
                Some(run) if run.starts_with('r') && run[1..].chars().all(|c| c.is_ascii_digit()) => {
                    run == self.id || run_is_dead(run)
                }
                _ => true,
            };
            if ours_or_dead {
                let drop = format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)");
                let _ = output(Command::new("psql").args([&admin, "-qc", &drop]));
            }
        }
    }

    fn clean_up(&self) {
        self.drop_test_databases();
        if let Some(vhost) = &self.own_vhost {
            let _ = rabbitmqctl(&["delete_vhost", vhost]);
        }
    }

    fn pass(&self, pass: &Pass, setup: &Setup) -> anyhow::Result<bool> {
        if let Some(queue_type) = pass.queue_type {
            eprintln!("test.sh: the worker, scanner, operator and broker tests again with QUEUE_TYPE={queue_type}");
        }
        let mut runner = runner(&self.root, &pass.selection, setup.nextest);
        if let Some(queue_type) = pass.queue_type {
            runner.env("TEST_QUEUE_TYPE", queue_type);
        }
        match &pass.services {
            Services::Shared => {
                if !setup.skip_services {
                    let url = std::env::var("TEST_RABBITMQ_URL").unwrap_or_default();
                    let version = rabbitmqctl(&["version"]).unwrap_or_else(|| "version unknown".into());
                    let at = url.rsplit('@').next().unwrap_or_default();
                    eprintln!(
                        "test.sh: this pass runs against the RabbitMQ at {at} ({})",
                        version.trim()
                    );
                }
                Ok(status(&mut runner))
            }
            Services::Private { rabbitmq } => {
                if pass.queue_type.is_none() && pass.selection == Selection::Only(ALSO) {
                    eprintln!("test.sh: the worker and broker tests again on RabbitMQ {rabbitmq}");
                }
                let private = Private::start(&self.root, rabbitmq)?;
                private.point(&mut runner);
                let passed = status(&mut runner);
                let clean = private.refuses_nothing_deprecated();
                private.stop();
                Ok(passed && clean)
            }
        }
    }
}

/// The runner's command for a selection. Most tests wait on I/O, so more run at once than
/// there are cores (TEST_THREADS, 8).
fn runner(root: &Path, selection: &Selection, nextest: bool) -> Command {
    let threads = env("TEST_THREADS").unwrap_or_else(|| "8".into());
    let mut cmd = Command::new("cargo");
    cmd.current_dir(root);
    forget_cargo_run(&mut cmd, root);
    if nextest {
        cmd.args([
            "nextest",
            "run",
            "--workspace",
            "--locked",
            "--no-fail-fast",
            "--test-threads",
            &threads,
        ]);
        match selection {
            Selection::Everything => {}
            Selection::AllButQuorumNamed => {
                cmd.args(["-E", NOT_QUORUM]);
            }
            Selection::Only(filter) => {
                cmd.args(["-E", filter.expression]);
            }
            Selection::Given(args) => {
                cmd.args(args);
            }
        }
    } else {
        cmd.args(["test", "--workspace", "--locked", "--no-fail-fast"]);
        match selection {
            Selection::Everything | Selection::AllButQuorumNamed => {
                cmd.args(["--", "--test-threads", &threads]);
            }
            Selection::Only(filter) => {
                cmd.args(["--test", "it", "--", "--test-threads", &threads])
                    .args(filter.prefixes);
            }
            Selection::Given(args) => {
                cmd.args(args).args(["--", "--test-threads", &threads]);
            }
        }
    }
    cmd
}

/// Under `cargo xtask test` (cargo run) this process has the variables cargo sets for the
/// package it runs, and a build started with them rebuilds a score of dependencies whose
/// build scripts watch them; the runner gets the environment the caller had instead.
fn forget_cargo_run(cmd: &mut Command, root: &Path) {
    const SET_BY_CARGO_RUN: &[&str] = &[
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_CRATE_NAME",
        "CARGO_BIN_NAME",
        "CARGO_PRIMARY_PACKAGE",
    ];
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_PKG_") || SET_BY_CARGO_RUN.contains(&key.as_ref()) {
            cmd.env_remove(key.as_ref());
        }
    }
    // cargo run puts the target directory's library paths first.
    if let Some(paths) = std::env::var_os("LD_LIBRARY_PATH") {
        // Relative to the workspace, as cargo reads it.
        let target =
            root.join(std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| PathBuf::from("target"), PathBuf::from));
        let kept: Vec<PathBuf> = std::env::split_paths(&paths)
            .filter(|p| !p.starts_with(&target) && !p.to_string_lossy().contains("/.rustup/toolchains/"))
            .collect();
        match std::env::join_paths(kept) {
            Ok(joined) if !joined.is_empty() => cmd.env("LD_LIBRARY_PATH", joined),
            _ => cmd.env_remove("LD_LIBRARY_PATH"),
        };
    }
}

fn which(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run_is_dead(run: &str) -> bool {
    let pid = run.trim_start_matches('r');
    pid.is_empty() || !Path::new("/proc").join(pid).exists()
}

/// A broker that stops answering management commands must fail the run, never hang it.
fn rabbitmqctl(args: &[&str]) -> Option<String> {
    let timeout = env("RABBITMQCTL_TIMEOUT").unwrap_or_else(|| "60".into());
    output(
        Command::new("timeout")
            .arg(timeout)
            .args(["rabbitmqctl", "-q"])
            .args(args),
    )
}

/// The command's stdout when it succeeded.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.stderr(std::process::Stdio::null()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

fn status(cmd: &mut Command) -> bool {
    cmd.status().is_ok_and(|s| s.success())
}

static INTERRUPTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst)
}

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Ctrl-C or SIGTERM stops the runner (it gets the signal too) and then the passes, and this
/// process stays to stop the private services and drop the databases. A handler, not
/// SIG_IGN: children get the default action back when they exec.
fn catch_interrupts() {
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}

#[cfg(test)]
mod tests;
