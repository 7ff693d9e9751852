//! Settings: defaults < YAML file < environment (and `.env`) < command-line flags, read and
//! validated once at start-up. Nothing else in the crate reads the environment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::domain::{Channel, PerChannel};
use crate::tls::listener::ListenerTlsFiles;
use crate::tls::ClientTlsFiles;

mod overrides;
pub use overrides::{Overrides, Period};

mod providers;
pub use providers::{AuthHeader, ChannelProvider, Endpoint, SmtpEndpoint, SmtpTls};

mod tls;

mod types;
pub use types::QueueType;

mod tokens;
pub use tokens::{scope_of, ApiToken, Scope};

mod urls;
pub use urls::{parse_dsn, rabbitmq_nodes, redact_url, redis_sentinel, PgTargets, RedisSentinel};

#[cfg(test)]
mod tests;

mod spec;
pub use spec::{SettingSpec, DEFAULT_DATABASE_DSN, DEFAULT_RABBITMQ_URL, DEFAULT_REDIS_URL, SETTINGS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid {key}: {reason} (example: {key}={example})")]
    Invalid {
        key: &'static str,
        reason: String,
        example: &'static str,
    },
    #[error("cannot read config file {path}: {reason}")]
    File { path: String, reason: String },
    #[error("unknown setting `{key}` in config file {path}; accepted keys are the lower-case names listed in docs/CONFIGURATION.md")]
    UnknownKey { key: String, path: String },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

/// Validated settings shared by every subcommand.
#[derive(Clone, Debug)]
pub struct Settings {
    pub database: PgTargets,
    pub database_max_connections: u32,
    pub rabbitmq_url: SecretString,
    pub rabbitmq_tls: ClientTlsFiles,
    pub redis_url: SecretString,
    pub redis_tls: ClientTlsFiles,
    /// Where each channel delivers (None: nowhere), indexed as `Channel::index`.
    pub providers: PerChannel<Option<ChannelProvider>>,
    /// PROVIDER_CA_FILE and the client certificate: every webhook and SMTP server.
    pub provider_tls: ClientTlsFiles,
    /// OTEL_EXPORTER_OTLP_CERTIFICATE and the client certificate: the OTLP export.
    pub otel_tls: ClientTlsFiles,
    pub lease_timeout: Duration,
    pub rate_limit_per_sec: u32,
    pub rate_limit_overrides: PerChannel<Option<u32>>,
    pub worker_concurrency: u16,
    pub queue_type: QueueType,
    pub queue_delivery_limit: u32,
    pub retry_backoff_base: Duration,
    pub retry_backoff_max: Duration,
    pub default_max_retries: i32,
    pub retry_scan_interval: Duration,
    pub retry_scan_limit: i64,
    pub scheduler_scan_interval: Duration,
    pub scheduler_scan_limit: i64,
    pub unpublished_grace: Duration,
    pub requeue_lost_after: Duration,
    /// None keeps finished notifications forever.
    pub retention_period: Option<Duration>,
    /// None keeps the replay/discard audit forever.
    pub audit_retention_period: Option<Duration>,
    pub prune_batch_size: i64,
    pub prune_interval: Duration,
    /// None: no limit.
    pub prune_max_rate: Option<f64>,
    pub api_host: IpAddr,
    pub api_port: u16,
    pub api_tokens: Vec<ApiToken>,
    /// Some: /metrics needs this bearer token.
    pub metrics_token: Option<ApiToken>,
    /// Some: the API and ops listeners speak HTTPS only.
    pub listener_tls: Option<ListenerTlsFiles>,
    pub tls_reload_interval: Duration,
    pub cors_allowed_origins: Vec<String>,
    pub max_body_bytes: usize,
    pub max_batch_body_bytes: usize,
    pub request_timeout: Duration,
    pub header_read_timeout: Duration,
    pub max_concurrent_requests: usize,
    pub publish_timeout: Duration,
    /// Ready messages per channel beyond which creates wait, then get 503 (0: no limit).
    pub backlog_limit: u32,
    pub backlog_wait: Duration,
    pub shutdown_timeout: Duration,
    pub queue_prefix: String,
    pub redis_key_prefix: String,
    pub log_level: String,
    pub log_format: Option<LogFormat>,
    /// Some: spans are exported over OTLP/HTTP to this base URL.
    pub otel_endpoint: Option<url::Url>,
    /// Whether LOG_LEVEL was set: operator commands are quieter by default.
    pub log_level_set: bool,
    /// Connection settings that fell back to a local default, to be logged once the logger runs.
    pub defaulted: Vec<&'static str>,
}

impl Settings {
    /// Reads `.env`, the optional YAML file, the environment and `flags` (highest precedence).
    pub fn load(file: Option<&Path>, flags: &Overrides) -> Result<Self, ConfigError> {
        // A missing .env is the normal case in containers.
        let _ = dotenvy::dotenv();
        let mut layers: HashMap<String, String> = HashMap::new();
        if let Some(path) = file {
            layers.extend(read_yaml(path)?);
        }
        let from_file: Vec<String> = layers.keys().cloned().collect();
        let mut overridden = Vec::new();
        for spec in SETTINGS {
            if let Ok(value) = std::env::var(spec.env) {
                layers.insert(spec.env.to_string(), value);
                overridden.push(spec.env);
            }
        }
        for key in flags.keys() {
            layers.remove(key);
        }
        let settings = Self::from_map(&layers).map_err(|e| match (e, file) {
            // Name the file and its key, not the environment variable nobody set.
            (ConfigError::Invalid { key, reason, .. }, Some(path))
                if from_file.iter().any(|k| k == key) && !overridden.contains(&key) =>
            {
                let name = key.to_ascii_lowercase();
                ConfigError::File {
                    path: path.display().to_string(),
                    reason: format!("`{name}`: {reason} (example: {name}: {})", spec_of(key).example),
                }
            }
            (e, _) => e,
        });
        let mut settings = settings?;
        flags.apply(&mut settings)?;
        Ok(settings)
    }

    /// Builds settings from explicit values only (defaults fill the rest); used by tests and
    /// by `load` after layering.
    pub fn from_map(values: &HashMap<String, String>) -> Result<Self, ConfigError> {
        let values = &tls::read_secret_files(values)?;
        let raw = Raw { values };
        let mut defaulted = Vec::new();
        let mut connection = |key: &'static str, default: &str| {
            raw.get(key).unwrap_or_else(|| {
                defaulted.push(key);
                default.to_string()
            })
        };
        let dsn = connection("DATABASE_DSN", DEFAULT_DATABASE_DSN);
        let rabbitmq_url = connection("RABBITMQ_URL", DEFAULT_RABBITMQ_URL);
        let redis_url = connection("REDIS_URL", DEFAULT_REDIS_URL);
        let database = parse_dsn(&dsn).map_err(|reason| invalid("DATABASE_DSN", reason))?;
        rabbitmq_nodes(&rabbitmq_url).map_err(|reason| invalid("RABBITMQ_URL", reason))?;
        let queue_type: QueueType = raw
            .get("QUEUE_TYPE")
            .unwrap_or_default()
            .parse()
            .map_err(|reason| invalid("QUEUE_TYPE", reason))?;
        if redis_sentinel(&redis_url)
            .map_err(|reason| invalid("REDIS_URL", reason))?
            .is_none()
        {
            check_url(
                "REDIS_URL",
                &redis_url,
                &["redis", "rediss", "redis+sentinel", "rediss+sentinel"],
            )?;
        }
        let providers = providers::channel_providers(&raw)?;
        let lease_timeout = raw.duration("LEASE_TIMEOUT")?;
        let (timeout_key, provider_timeout) = providers
            .iter()
            .filter_map(|(_, p)| p.as_ref())
            .map(|p| (p.timeout_key, p.timeout))
            .chain([("PROVIDER_TIMEOUT", raw.duration("PROVIDER_TIMEOUT")?)])
            .max_by_key(|&(_, t)| t)
            .unwrap_or(("PROVIDER_TIMEOUT", Duration::ZERO));
        if lease_timeout <= provider_timeout {
            return Err(invalid(
                "LEASE_TIMEOUT",
                format!(
                    "{} must be longer than {timeout_key} ({}), or a slow send would lose its claim",
                    humantime::format_duration(lease_timeout),
                    humantime::format_duration(provider_timeout)
                ),
            ));
        }
        let (backlog_wait, request_timeout) = (raw.duration("BACKLOG_WAIT")?, raw.duration("REQUEST_TIMEOUT")?);
        let backlog_limit: u32 = raw.number("BACKLOG_LIMIT")?;
        // Only a limit makes a create wait; without one, a short REQUEST_TIMEOUT stays valid.
        if backlog_limit > 0 && backlog_wait >= request_timeout {
            return Err(invalid(
                "BACKLOG_WAIT",
                format!(
                    "{} must be shorter than REQUEST_TIMEOUT ({}), or a held create would time out instead of being refused",
                    humantime::format_duration(backlog_wait),
                    humantime::format_duration(request_timeout)
                ),
            ));
        }
        let mut entries: Vec<(&'static str, String)> = raw
            .get("API_TOKENS")
            .map(|v| split_list(&v).into_iter().map(|t| ("API_TOKENS", t)).collect())
            .unwrap_or_default();
        if let Some(path) = raw.get("API_TOKENS_FILE") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| invalid("API_TOKENS_FILE", format!("cannot read {path}: {e}")))?;
            entries.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(|l| ("API_TOKENS_FILE", l.to_string())),
            );
        }
        let mut tokens = Vec::with_capacity(entries.len());
        for (key, entry) in entries {
            let token = ApiToken::parse(&entry);
            if token.token().is_empty() {
                return Err(invalid(
                    key,
                    format!("an entry is the scope {}: with no token after it", token.scope.as_str()),
                ));
            }
            tokens.push(token);
        }
        let metrics_token = raw.get("METRICS_TOKEN").map(|t| ApiToken::parse_unscoped(&t));
        let log_format = match raw.get("LOG_FORMAT").map(|v| v.to_ascii_lowercase()) {
            None => None,
            Some(v) if v == "json" => Some(LogFormat::Json),
            Some(v) if v == "text" || v == "pretty" => Some(LogFormat::Text),
            Some(v) => return Err(invalid("LOG_FORMAT", format!("\"{v}\" is not json or text"))),
        };
        let max_retries = raw.number::<i32>("DEFAULT_MAX_RETRIES")?;
        if max_retries < 1 {
            return Err(invalid("DEFAULT_MAX_RETRIES", "must be at least 1".into()));
        }
        let concurrency = raw.number::<u16>("WORKER_CONCURRENCY")?;
        if concurrency == 0 {
            return Err(invalid("WORKER_CONCURRENCY", "must be at least 1".into()));
        }
        Ok(Settings {
            database,
            database_max_connections: raw.positive("DATABASE_MAX_CONNECTIONS")?,
            rabbitmq_url: SecretString::from(rabbitmq_url),
            rabbitmq_tls: tls::client_files(&raw, &tls::RABBITMQ)?,
            redis_url: SecretString::from(redis_url),
            redis_tls: tls::client_files(&raw, &tls::REDIS)?,
            providers,
            provider_tls: tls::client_files(&raw, &tls::PROVIDER)?,
            otel_tls: tls::client_files(&raw, &tls::OTLP)?,
            lease_timeout,
            rate_limit_per_sec: raw.number("RATE_LIMIT_PER_SEC")?,
            rate_limit_overrides: PerChannel {
                sms: raw.optional_number("RATE_LIMIT_SMS_PER_SEC")?,
                email: raw.optional_number("RATE_LIMIT_EMAIL_PER_SEC")?,
                push: raw.optional_number("RATE_LIMIT_PUSH_PER_SEC")?,
            },
            worker_concurrency: concurrency,
            queue_type,
            queue_delivery_limit: raw.positive("QUEUE_DELIVERY_LIMIT")?,
            retry_backoff_base: raw.duration("RETRY_BACKOFF_BASE")?,
            retry_backoff_max: raw.duration("RETRY_BACKOFF_MAX")?,
            default_max_retries: max_retries,
            retry_scan_interval: raw.duration("RETRY_SCAN_INTERVAL")?,
            retry_scan_limit: raw.positive::<i64>("RETRY_SCAN_LIMIT")?,
            scheduler_scan_interval: raw.duration("SCHEDULER_SCAN_INTERVAL")?,
            scheduler_scan_limit: raw.positive::<i64>("SCHEDULER_SCAN_LIMIT")?,
            unpublished_grace: raw.duration("UNPUBLISHED_GRACE")?,
            requeue_lost_after: raw.duration("REQUEUE_LOST_AFTER")?,
            retention_period: raw.period("RETENTION_PERIOD")?,
            audit_retention_period: raw.period("AUDIT_RETENTION_PERIOD")?,
            prune_batch_size: raw.positive::<i64>("PRUNE_BATCH_SIZE")?,
            prune_interval: raw.duration("PRUNE_INTERVAL")?,
            prune_max_rate: match raw.get("PRUNE_MAX_RATE").unwrap_or_default().parse::<u32>() {
                Ok(rate) => max_rate(rate),
                Err(_) => {
                    return Err(invalid(
                        "PRUNE_MAX_RATE",
                        "not a whole number of notifications per second; use e.g. 1000, or 0 for no limit".into(),
                    ))
                }
            },
            api_host: raw.number("API_HOST")?,
            api_port: raw.number("API_PORT")?,
            api_tokens: tokens,
            metrics_token,
            listener_tls: tls::listener_files(&raw)?,
            tls_reload_interval: raw.duration("TLS_RELOAD_INTERVAL")?,
            cors_allowed_origins: raw
                .get("CORS_ALLOWED_ORIGINS")
                .map(|v| split_list(&v))
                .unwrap_or_default(),
            max_body_bytes: raw.positive("MAX_BODY_BYTES")?,
            max_batch_body_bytes: raw.positive("MAX_BATCH_BODY_BYTES")?,
            request_timeout,
            header_read_timeout: raw.duration("HEADER_READ_TIMEOUT")?,
            max_concurrent_requests: raw.positive("MAX_CONCURRENT_REQUESTS")?,
            publish_timeout: raw.duration("PUBLISH_TIMEOUT")?,
            backlog_limit,
            backlog_wait,
            shutdown_timeout: raw.duration("SHUTDOWN_TIMEOUT")?,
            queue_prefix: raw.get("QUEUE_PREFIX").unwrap_or_default(),
            redis_key_prefix: raw.get("REDIS_KEY_PREFIX").unwrap_or_default(),
            log_level: log_level(raw.get("LOG_LEVEL").unwrap_or_else(|| "info".into()))?,
            log_format,
            otel_endpoint: raw
                .get("OTEL_EXPORTER_OTLP_ENDPOINT")
                .map(|v| check_url("OTEL_EXPORTER_OTLP_ENDPOINT", &v, &["http", "https"]))
                .transpose()?,
            log_level_set: values.get("LOG_LEVEL").is_some_and(|v| !v.trim().is_empty()),
            defaulted,
        })
    }

    /// The provider of `channel`, if it has one.
    pub fn provider(&self, channel: Channel) -> Option<&ChannelProvider> {
        self.providers.of(channel).as_ref()
    }

    /// The effective deliveries-per-second limit of one channel (0 = unlimited).
    pub fn rate_limit_for(&self, channel: Channel) -> u32 {
        self.rate_limit_overrides.of(channel).unwrap_or(self.rate_limit_per_sec)
    }

    /// The database location without credentials, safe for logs.
    pub fn database_display(&self) -> String {
        self.database.display()
    }

    pub fn rabbitmq_display(&self) -> String {
        match rabbitmq_nodes(self.rabbitmq_url.expose_secret()) {
            Ok(nodes) => nodes.iter().map(|n| redact_url(n)).collect::<Vec<_>>().join(","),
            Err(_) => "(invalid RABBITMQ_URL)".into(),
        }
    }

    /// `host:port` of the broker, for error messages.
    pub fn rabbitmq_host(&self) -> String {
        url::Url::parse(self.rabbitmq_url.expose_secret())
            .ok()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port().unwrap_or(5672))))
            .unwrap_or_else(|| self.rabbitmq_display())
    }

    pub fn redis_display(&self) -> String {
        match redis_sentinel(self.redis_url.expose_secret()) {
            Ok(Some(sentinel)) => sentinel.display(),
            _ => redact_url(self.redis_url.expose_secret()),
        }
    }
}

/// A retention period's text: a duration, or empty, `0` or `off` for none.
pub(crate) fn parse_period(value: &str) -> Result<Option<Duration>, String> {
    let value = value.trim();
    if value.is_empty() || value == "0" || value.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    humantime::parse_duration(value)
        .map(Some)
        .map_err(|e| format!("\"{value}\" is not a duration ({e}); use e.g. 30d, 12h, or 0/off to keep everything"))
}

/// PRUNE_MAX_RATE: 0 is no limit.
fn max_rate(rate: u32) -> Option<f64> {
    (rate > 0).then(|| f64::from(rate))
}

struct Raw<'a> {
    values: &'a HashMap<String, String>,
}

impl Raw<'_> {
    /// The value set for `key`, or its default; an empty string counts as unset.
    fn get(&self, key: &'static str) -> Option<String> {
        let set = self
            .values
            .get(key)
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty());
        set.or_else(|| spec_of(key).default.map(str::to_string))
    }

    fn duration(&self, key: &'static str) -> Result<Duration, ConfigError> {
        let value = self.get(key).unwrap_or_default();
        let parsed = humantime::parse_duration(&value).map_err(|e| {
            invalid(
                key,
                format!("\"{value}\" is not a duration ({e}); use a number with a unit such as 250ms, 5s or 1m"),
            )
        })?;
        if parsed.is_zero() {
            return Err(invalid(key, "must be longer than zero".into()));
        }
        Ok(parsed)
    }

    /// A retention period: `0` or `off` means none (keep everything).
    fn period(&self, key: &'static str) -> Result<Option<Duration>, ConfigError> {
        parse_period(&self.get(key).unwrap_or_default()).map_err(|reason| invalid(key, reason))
    }

    fn number<T: FromStr>(&self, key: &'static str) -> Result<T, ConfigError> {
        let value = self.get(key).unwrap_or_default();
        value
            .parse::<T>()
            .map_err(|_| invalid(key, format!("\"{value}\" is not a valid value")))
    }

    fn positive<T: FromStr + PartialOrd + Default>(&self, key: &'static str) -> Result<T, ConfigError> {
        let n: T = self.number(key)?;
        if n <= T::default() {
            return Err(invalid(key, "must be greater than zero".into()));
        }
        Ok(n)
    }

    fn optional_number<T: FromStr>(&self, key: &'static str) -> Result<Option<T>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(_) => self.number(key).map(Some),
        }
    }
}

fn spec_of(key: &str) -> &'static SettingSpec {
    SETTINGS
        .iter()
        .find(|s| s.env == key)
        .unwrap_or_else(|| panic!("setting {key} is not declared in SETTINGS"))
}

fn invalid(key: &'static str, reason: String) -> ConfigError {
    ConfigError::Invalid {
        key,
        reason,
        example: spec_of(key).example,
    }
}

const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// LOG_LEVEL as tracing filter directives. tracing reads a bare word as a target to trace,
/// so a mistyped level (`infoo`, `verbose`) would be accepted and silence every log line:
/// a bare word must be a level, and `target=level` names its target explicitly.
fn log_level(value: String) -> Result<String, ConfigError> {
    let accepted = "use one of trace, debug, info, warn, error, off, or tracing directives such as \
                    info,dispatchctl=debug";
    for directive in value.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains(['=', '[', ':']);
        if bare && !LOG_LEVELS.contains(&directive.to_ascii_lowercase().as_str()) {
            return Err(invalid(
                "LOG_LEVEL",
                format!("\"{directive}\" is not a level; {accepted}"),
            ));
        }
    }
    if let Err(e) = tracing_subscriber::EnvFilter::builder().parse(&value) {
        return Err(invalid(
            "LOG_LEVEL",
            format!("\"{value}\" is not a tracing filter ({e}); {accepted}"),
        ));
    }
    Ok(value)
}

fn split_list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// `value` parsed, once it is a URL of one of `schemes` with a host.
fn check_url(key: &'static str, value: &str, schemes: &[&str]) -> Result<url::Url, ConfigError> {
    let parsed = url::Url::parse(value).map_err(|e| invalid(key, format!("not a URL ({e})")))?;
    if !schemes.contains(&parsed.scheme()) {
        return Err(invalid(
            key,
            format!("scheme \"{}\" is not one of {}", parsed.scheme(), schemes.join(", ")),
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid(key, "the URL has no host".into()));
    }
    Ok(parsed)
}

/// `user@host` of whoever runs an operator command, for audit records.
pub fn operator_identity() -> String {
    // The name the password database gives the uid first: $USER is unset under cron,
    // systemd and `env -i`, and says whatever it was set to. A uid without an entry (a
    // container's arbitrary uid) is recorded as its number.
    let user = whoami::fallible::username()
        .ok()
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| {
            // SAFETY: geteuid has no preconditions and cannot fail.
            format!("uid-{}", unsafe { libc::geteuid() })
        });
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{user}@{host}")
}

fn read_yaml(path: &Path) -> Result<HashMap<String, String>, ConfigError> {
    let display = path.display().to_string();
    let file_error = |reason: String| ConfigError::File {
        path: display.clone(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_error(e.to_string()))?;
    let value: serde_yaml::Value = serde_yaml::from_str(&text).map_err(|e| file_error(e.to_string()))?;
    let mut out = HashMap::new();
    let serde_yaml::Value::Mapping(map) = value else {
        if value.is_null() {
            return Ok(out);
        }
        return Err(file_error("expected a mapping of setting names to values".into()));
    };
    for (k, v) in map {
        let key = k.as_str().unwrap_or_default().to_ascii_uppercase();
        if !SETTINGS.iter().any(|s| s.env == key) {
            return Err(ConfigError::UnknownKey {
                key: k.as_str().unwrap_or("?").to_string(),
                path: display.clone(),
            });
        }
        let text = match v {
            serde_yaml::Value::String(s) => s,
            serde_yaml::Value::Number(n) => n.to_string(),
            serde_yaml::Value::Bool(b) => b.to_string(),
            serde_yaml::Value::Sequence(items) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect::<Vec<_>>()
                .join(","),
            _ => {
                return Err(file_error(format!(
                    "`{}` must be a string or a number",
                    key.to_ascii_lowercase()
                )))
            }
        };
        out.insert(key, text);
    }
    Ok(out)
}
