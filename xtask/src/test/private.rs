//! The private services of one pass: a PostgreSQL (and its standby), a Redis (and Sentinel)
//! and a RabbitMQ node, started and stopped with scripts/chaos/services.sh.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{output, status};

/// A PostgreSQL (and its standby), a Redis (and Sentinel) and a RabbitMQ node of one pass,
/// speaking TLS too, with a CA of this run (TEST_TLS_*), for the tls:: tests.
pub(super) struct Private {
    root: PathBuf,
    dir: PathBuf,
    env: BTreeMap<String, String>,
}

impl Private {
    pub(super) fn start(root: &Path, rabbitmq: &str) -> anyhow::Result<Private> {
        // Kept until `stop`, which removes it; TMPDIR is honoured.
        let dir = tempfile::Builder::new()
            .prefix("dispatchctl-test.")
            .tempdir()
            .context("cannot create a directory for the private services")?
            .keep();
        // The private PostgreSQL runs as its own user.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))
            .with_context(|| format!("cannot open {} to the services' users", dir.display()))?;
        let mut private = Private {
            root: root.to_path_buf(),
            dir,
            env: BTreeMap::new(),
        };
        let started = private.services(&["start", "--tls"], Some(rabbitmq))
            // The multi-host DSN tests need a standby, the Sentinel test a Redis behind Sentinel.
            && private.services(&["pg-standby-start"], None)
            && private.services(&["redis-sentinel-start"], None);
        if !started {
            private.stop();
            anyhow::bail!("could not start private services in {}", private.dir.display());
        }
        let text = std::fs::read_to_string(private.dir.join("services.env")).context("no services.env")?;
        private.env = parse_env(&text);
        let version = output(private.script().args([private.dir.as_os_str()]).arg("rabbit-version"))
            .unwrap_or_else(|| "of unknown version".into());
        eprintln!(
            "test.sh: this pass runs against RabbitMQ {} (private node)",
            version.trim()
        );
        Ok(private)
    }

    fn script(&self) -> Command {
        let mut cmd = Command::new(self.root.join("scripts/chaos/services.sh"));
        cmd.current_dir(&self.root);
        cmd
    }

    fn services(&self, action: &[&str], rabbitmq: Option<&str>) -> bool {
        let mut cmd = self.script();
        cmd.arg(&self.dir).args(action);
        if let Some(version) = rabbitmq {
            cmd.env("CHAOS_RABBITMQ", version);
        }
        status(&mut cmd)
    }

    fn var(&self, key: &str) -> &str {
        self.env.get(key).map_or("", String::as_str)
    }

    pub(super) fn point(&self, runner: &mut Command) {
        let rabbitmqctl = format!(
            "{} {} rabbitmqctl",
            self.root.join("scripts/chaos/services.sh").display(),
            self.dir.display()
        );
        runner
            .env(
                "TEST_DATABASE_URL",
                format!("postgres://postgres@127.0.0.1:{}", self.var("CHAOS_PG_PORT")),
            )
            .env(
                "TEST_RABBITMQ_URL",
                format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.var("CHAOS_AMQP_PORT")),
            )
            .env(
                "TEST_REDIS_URL",
                format!("redis://127.0.0.1:{}/0", self.var("CHAOS_REDIS_PORT")),
            )
            .env("TEST_RABBITMQCTL", rabbitmqctl)
            .env("TEST_TLS_DIR", self.var("CHAOS_TLS_DIR"))
            .env("TEST_TLS_PG_PORT", self.var("CHAOS_PG_PORT"))
            .env("TEST_PG_STANDBY_PORT", self.var("CHAOS_PG_STANDBY_PORT"))
            .env("TEST_REDIS_SENTINEL_PORTS", self.var("CHAOS_SENTINEL_PORTS"))
            .env("TEST_TLS_REDIS_PORT", self.var("CHAOS_REDIS_TLS_PORT"))
            .env("TEST_TLS_AMQPS_PORT", self.var("CHAOS_AMQPS_PORT"));
    }

    /// A deprecated feature that the node still permits is one that the next version refuses.
    pub(super) fn refuses_nothing_deprecated(&self) -> bool {
        let Ok(logs) = std::fs::read_dir(self.dir.join("rabbit/log")) else {
            return true;
        };
        let mut found = Vec::new();
        for log in logs
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "log"))
        {
            let text = std::fs::read_to_string(log.path()).unwrap_or_default();
            found.extend(text.lines().filter(|l| deprecation_in_use(l)).map(str::to_string));
        }
        for line in found.iter().take(5) {
            eprintln!("{line}");
        }
        if !found.is_empty() {
            eprintln!("test.sh: the tests used a feature that RabbitMQ deprecates (above)");
        }
        found.is_empty()
    }

    pub(super) fn stop(&self) {
        let _ = self.script().arg(&self.dir).arg("stop").output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(super) fn deprecation_in_use(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("deprecated feature") && !line.contains("permit.") && !line.contains("is denied by configuration")
}

/// services.env: `KEY=value` or `KEY='value'` lines.
pub(super) fn parse_env(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|line| line.trim().split_once('='))
        .map(|(k, v)| {
            (
                k.trim_start_matches("export ").to_string(),
                v.trim_matches('\'').to_string(),
            )
        })
        .collect()
}
