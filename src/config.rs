//! Settings: defaults < YAML file < environment (and `.env`) < command-line flags, read and
//! validated once at start-up. Nothing else in the crate reads the environment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use crate::api::tls_listener::ListenerTlsFiles;
use crate::broker::QueueType;
use crate::domain::Channel;
use crate::tls::ClientTlsFiles;

mod providers;
pub use providers::{AuthHeader, ChannelProvider, Endpoint, SmtpEndpoint, SmtpTls};

mod tls;

mod tokens;
pub use tokens::{scope_of, ApiToken, Scope};

mod urls;
pub use urls::{parse_dsn, rabbitmq_nodes, redact_url, redis_sentinel, PgTargets, RedisSentinel};

#[cfg(test)]
mod tests;

/// One recognised setting. The YAML key is the environment name in lower case.
pub struct SettingSpec {
    pub env: &'static str,
    pub default: Option<&'static str>,
    pub help: &'static str,
    pub example: &'static str,
    pub secret: bool,
}

const fn spec(
    env: &'static str,
    default: Option<&'static str>,
    example: &'static str,
    help: &'static str,
) -> SettingSpec {
    SettingSpec {
        env,
        default,
        help,
        example,
        secret: false,
    }
}

const fn secret(env: &'static str, example: &'static str, help: &'static str) -> SettingSpec {
    SettingSpec {
        secret: true,
        ..spec(env, None, example, help)
    }
}

pub const DEFAULT_DATABASE_DSN: &str = "postgres://postgres@localhost:5432/dispatch_engine";
pub const DEFAULT_RABBITMQ_URL: &str = "amqp://guest:guest@localhost:5672/%2f";
pub const DEFAULT_REDIS_URL: &str = "redis://localhost:6379/0";

/// Every setting the program reads. `docs/CONFIGURATION.md` documents each one; a test keeps
/// the two in step.
pub const SETTINGS: &[SettingSpec] = &[
    secret("DATABASE_DSN", "postgres://dispatch:secret@db:5432/dispatch_engine", "PostgreSQL connection, as a URL or libpq key=value pairs. Several hosts (host=a,b port=5432,5433, or postgres://a:5432,b:5433/db) follow a fail-over: the first writable one is used (target_session_attrs=read-write, the default with several hosts; any takes the first that answers). Default: postgres://postgres@localhost:5432/dispatch_engine."),
    spec("DATABASE_DSN_FILE", None, "/run/secrets/database_dsn", "File holding DATABASE_DSN (container secrets; one trailing newline is dropped). TLS goes in the DSN: sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem (and sslcert, sslkey for a client certificate); see docs/SECURITY.md."),
    spec("DATABASE_MAX_CONNECTIONS", Some("20"), "20", "Size of the PostgreSQL connection pool of one process."),
    secret("RABBITMQ_URL", "amqp://guest:guest@rabbitmq:5672/%2f", "RabbitMQ connection URL (amqp:// or amqps://); for a cluster, several comma-separated, where an entry may be just host:port and takes the rest from the first (amqp://u:p@node1:5672/%2f,node2:5672,node3:5672). Default: amqp://guest:guest@localhost:5672/%2f."),
    spec("RABBITMQ_URL_FILE", None, "/run/secrets/rabbitmq_url", "File holding RABBITMQ_URL (container secrets)."),
    spec("RABBITMQ_CA_FILE", None, "/etc/ssl/rabbitmq-ca.pem", "With amqps://: CA certificates (PEM) trusted besides the system's."),
    spec("RABBITMQ_CERT_FILE", None, "/etc/ssl/dispatch-client.pem", "With amqps://: client certificate chain (PEM) presented to RabbitMQ; with RABBITMQ_KEY_FILE. Add ?auth_mechanism=external to the URL to log in by it."),
    spec("RABBITMQ_KEY_FILE", None, "/etc/ssl/dispatch-client.key", "With amqps://: private key (PEM) of RABBITMQ_CERT_FILE."),
    spec("QUEUE_TYPE", Some("classic"), "quorum", "classic (one priority queue per channel) or quorum (replicated; one queue per channel and priority). Every process of a deployment must agree; `dispatchctl convert-queues` switches."),
    spec("QUEUE_DELIVERY_LIMIT", Some("20"), "20", "With QUEUE_TYPE=quorum: deliveries of one work message (worker crashes, lost connections) before RabbitMQ dead-letters it to dlq.<channel> with reason delivery_limit."),
    secret("REDIS_URL", "redis://redis:6379/0", "Redis connection URL (redis:// or rediss://), or Redis Sentinel's: redis+sentinel://[:PASSWORD@]HOST:26379[,HOST:26379…]/MASTER[/DB] (rediss+sentinel:// for TLS); the password is the master's. Default: redis://localhost:6379/0."),
    spec("REDIS_URL_FILE", None, "/run/secrets/redis_url", "File holding REDIS_URL (container secrets)."),
    spec("REDIS_CA_FILE", None, "/etc/ssl/redis-ca.pem", "With rediss://: CA certificates (PEM) trusted instead of the built-in public roots."),
    spec("REDIS_CERT_FILE", None, "/etc/ssl/dispatch-client.pem", "With rediss://: client certificate chain (PEM); with REDIS_KEY_FILE."),
    spec("REDIS_KEY_FILE", None, "/etc/ssl/dispatch-client.key", "With rediss://: private key (PEM) of REDIS_CERT_FILE."),
    spec("WEBHOOK_SITE_URL", None, "https://provider.example.com/hook", "The webhook every channel delivers to (POST) unless its <CHANNEL>_PROVIDER_URL says otherwise. A worker consumes the channels that have a provider; with none, no worker runs."),
    secret("WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "When set, deliveries are signed per Standard Webhooks (whsec_<base64> or raw text)."),
    spec("WEBHOOK_SECRET_FILE", None, "/run/secrets/webhook_secret", "File holding WEBHOOK_SECRET (container secrets)."),
    spec("PROVIDER_TIMEOUT", Some("10s"), "10s", "Timeout of one provider request (one SMTP transaction)."),
    secret("SMS_PROVIDER_URL", "https://sms-gateway.example.com/send", "Where SMS notifications go: an http(s):// webhook. Default: WEBHOOK_SITE_URL."),
    secret("EMAIL_PROVIDER_URL", "smtp://dispatch@mail.example.com:587?tls=required", "Where e-mail notifications go: an http(s):// webhook, or an SMTP server: smtp:// (STARTTLS when offered; ?tls=required demands it; port 25, or 587 with tls=required) or smtps:// (TLS from the start; port 465), with the login as smtp://USER[:PASSWORD]@host. Default: WEBHOOK_SITE_URL."),
    secret("PUSH_PROVIDER_URL", "https://push-gateway.example.com/v1/push", "Where push notifications go: an http(s):// webhook. Default: WEBHOOK_SITE_URL."),
    secret("SMS_PROVIDER_AUTH_HEADER", "Authorization: Bearer <token>", "One header (Name: value) sent with every SMS webhook delivery; never logged."),
    spec("SMS_PROVIDER_AUTH_HEADER_FILE", None, "/run/secrets/sms_auth_header", "File holding SMS_PROVIDER_AUTH_HEADER (container secrets)."),
    secret("EMAIL_PROVIDER_AUTH_HEADER", "Authorization: Bearer <token>", "One header (Name: value) sent with every e-mail webhook delivery; never logged."),
    spec("EMAIL_PROVIDER_AUTH_HEADER_FILE", None, "/run/secrets/email_auth_header", "File holding EMAIL_PROVIDER_AUTH_HEADER (container secrets)."),
    secret("PUSH_PROVIDER_AUTH_HEADER", "Authorization: Bearer <token>", "One header (Name: value) sent with every push webhook delivery; never logged."),
    spec("PUSH_PROVIDER_AUTH_HEADER_FILE", None, "/run/secrets/push_auth_header", "File holding PUSH_PROVIDER_AUTH_HEADER (container secrets)."),
    secret("SMS_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "Signing secret of SMS webhook deliveries. Default: WEBHOOK_SECRET."),
    spec("SMS_WEBHOOK_SECRET_FILE", None, "/run/secrets/sms_webhook_secret", "File holding SMS_WEBHOOK_SECRET (container secrets)."),
    secret("EMAIL_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "Signing secret of e-mail webhook deliveries. Default: WEBHOOK_SECRET."),
    spec("EMAIL_WEBHOOK_SECRET_FILE", None, "/run/secrets/email_webhook_secret", "File holding EMAIL_WEBHOOK_SECRET (container secrets)."),
    secret("PUSH_WEBHOOK_SECRET", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "Signing secret of push webhook deliveries. Default: WEBHOOK_SECRET."),
    spec("PUSH_WEBHOOK_SECRET_FILE", None, "/run/secrets/push_webhook_secret", "File holding PUSH_WEBHOOK_SECRET (container secrets)."),
    spec("SMS_PROVIDER_TIMEOUT", None, "5s", "Timeout of one SMS provider request. Default: PROVIDER_TIMEOUT."),
    spec("EMAIL_PROVIDER_TIMEOUT", None, "30s", "Timeout of one e-mail provider request or SMTP transaction. Default: PROVIDER_TIMEOUT."),
    spec("PUSH_PROVIDER_TIMEOUT", None, "5s", "Timeout of one push provider request. Default: PROVIDER_TIMEOUT."),
    spec("EMAIL_FROM", None, "Dispatch <dispatch@example.com>", "Sender (From and envelope) of every mail when EMAIL_PROVIDER_URL is an SMTP server; required then."),
    secret("EMAIL_PROVIDER_PASSWORD", "app-password", "SMTP login password of the user in EMAIL_PROVIDER_URL, when it is not in the URL."),
    spec("EMAIL_PROVIDER_PASSWORD_FILE", None, "/run/secrets/smtp_password", "File holding EMAIL_PROVIDER_PASSWORD (container secrets)."),
    spec("PROVIDER_CA_FILE", None, "/etc/ssl/provider-ca.pem", "CA certificates (PEM) trusted besides the system's by every provider: https:// webhooks and SMTP servers over TLS."),
    spec("PROVIDER_CERT_FILE", None, "/etc/ssl/dispatch-client.pem", "Client certificate chain (PEM) presented to the provider (mutual TLS); with PROVIDER_KEY_FILE."),
    spec("PROVIDER_KEY_FILE", None, "/etc/ssl/dispatch-client.key", "Private key (PEM) of PROVIDER_CERT_FILE."),
    spec("LEASE_TIMEOUT", Some("15s"), "15s", "How long a worker's claim on a notification lasts; must exceed PROVIDER_TIMEOUT."),
    spec("RATE_LIMIT_PER_SEC", Some("100"), "100", "Deliveries per second per channel, shared by all workers (0 = unlimited)."),
    spec("RATE_LIMIT_SMS_PER_SEC", None, "50", "Override of RATE_LIMIT_PER_SEC for SMS."),
    spec("RATE_LIMIT_EMAIL_PER_SEC", None, "200", "Override of RATE_LIMIT_PER_SEC for EMAIL."),
    spec("RATE_LIMIT_PUSH_PER_SEC", None, "500", "Override of RATE_LIMIT_PER_SEC for PUSH."),
    spec("WORKER_CONCURRENCY", Some("192"), "192", "Deliveries in flight per worker process (also the prefetch of each queue it consumes). 192 delivered 29 % (single creates) and 41 % (batches) more than 64 here, and kept pace with accepts (docs/PERFORMANCE.md)."),
    spec("RETRY_BACKOFF_BASE", Some("1s"), "1s", "Delay before the first retry; doubled for each further attempt."),
    spec("RETRY_BACKOFF_MAX", Some("60s"), "60s", "Upper bound of the retry delay (and of an honoured Retry-After)."),
    spec("DEFAULT_MAX_RETRIES", Some("5"), "5", "Attempt budget (delivery attempts in all, the first one included) of a notification created without maxRetries."),
    spec("RETRY_SCAN_INTERVAL", Some("5s"), "5s", "Interval of the retry and recovery scans in loop mode."),
    spec("RETRY_SCAN_LIMIT", Some("100"), "100", "Most due retries (and expired leases) handled per scan pass."),
    spec("SCHEDULER_SCAN_INTERVAL", Some("5s"), "5s", "Interval of the scheduled/unpublished scan in loop mode."),
    spec("SCHEDULER_SCAN_LIMIT", Some("100"), "100", "Most due scheduled or unpublished notifications handled per pass."),
    spec("UNPUBLISHED_GRACE", Some("30s"), "30s", "Age after which a notification still owing its first work message (in the outbox) is published by the scanner."),
    spec("REQUEUE_LOST_AFTER", Some("2m"), "2m", "How long a QUEUED notification's work message may be missing from its queue before the scanner publishes it again (the broker lost it: a purge, a deleted queue, a lost disk, a max-length policy). A message is missing when its queue holds fewer messages than there are notifications waiting longer than this for it; a copy of one that was in fact still there is refused by the claim, never delivered twice."),
    spec("RETENTION_PERIOD", Some("off"), "90d", "Age (since the last change) after which SENT and CANCELED notifications, their attempts and emptied batches are deleted by `dispatchctl prune` and the scanner loop; FAILED ones are kept until replayed. Idempotency keys are remembered only this long. 0 or off keeps everything."),
    spec("AUDIT_RETENTION_PERIOD", Some("off"), "365d", "Age after which replay and discard audit rows are deleted by `dispatchctl prune` and the scanner loop. 0 or off keeps them."),
    spec("PRUNE_BATCH_SIZE", Some("500"), "500", "Rows deleted per prune transaction (small keeps each transaction short)."),
    spec("PRUNE_MAX_RATE", Some("1000"), "1000", "Most notifications a prune pass deletes per second (their attempts go with them), so that it does not slow creates down; 0 = no limit."),
    spec("PRUNE_INTERVAL", Some("5m"), "5m", "How often the scanner loop (serve, scan-retries --loop) runs a prune pass when RETENTION_PERIOD or AUDIT_RETENTION_PERIOD is set."),
    spec("API_HOST", Some("0.0.0.0"), "127.0.0.1", "Address the HTTP API listens on."),
    spec("API_PORT", Some("8080"), "8080", "Port the HTTP API listens on."),
    secret("API_TOKENS", "token-one,read:dashboard-token,send:ci-token", "Comma-separated bearer tokens; when set, every /v1 request needs one. A token may carry a scope: read:TOKEN may only GET, send:TOKEN may create, cancel and read; a bare token may do everything. A token of the wrong scope gets 403."),
    spec("API_TOKENS_FILE", None, "/run/secrets/api_tokens", "File with one bearer token per line, scopes as in API_TOKENS (joined with API_TOKENS)."),
    secret("METRICS_TOKEN", "scrape-token", "When set, /metrics (on every daemon) needs Authorization: Bearer METRICS_TOKEN; /livez and /readyz stay open."),
    spec("METRICS_TOKEN_FILE", None, "/run/secrets/metrics_token", "File holding METRICS_TOKEN (container secrets)."),
    spec("TLS_CERT_FILE", None, "/etc/tls/tls.crt", "Certificate chain (PEM) of the API and ops listeners; with TLS_KEY_FILE they speak HTTPS only (TLS 1.2+). Reloaded on SIGHUP and when the files change. Same as --tls-cert."),
    spec("TLS_KEY_FILE", None, "/etc/tls/tls.key", "Private key (PEM) of TLS_CERT_FILE. Same as --tls-key."),
    spec("TLS_RELOAD_INTERVAL", Some("10s"), "10s", "How often the listeners look for a changed TLS_CERT_FILE or TLS_KEY_FILE."),
    spec("CORS_ALLOWED_ORIGINS", None, "https://console.example.com", "Comma-separated origins allowed by CORS; CORS is off when unset."),
    spec("MAX_BODY_BYTES", Some("65536"), "65536", "Largest accepted body of a single create, in bytes (413 beyond)."),
    spec("MAX_BATCH_BODY_BYTES", Some("16777216"), "16777216", "Largest accepted body of a batch create, in bytes (413 beyond)."),
    spec("REQUEST_TIMEOUT", Some("30s"), "30s", "Longest time one API request may take."),
    spec("HEADER_READ_TIMEOUT", Some("10s"), "10s", "Time a client has to send its request headers (defends against slow-loris clients)."),
    spec("MAX_CONCURRENT_REQUESTS", Some("1024"), "1024", "Requests served at once by one API process; more wait."),
    spec("BACKLOG_LIMIT", Some("0"), "300", "Back-pressure: while a channel's work queues hold this many ready messages or more (all priorities, every worker's), a create due at once waits for them to drain below, and gets 503 backlog_full (nothing stored) after BACKLOG_WAIT. Creates wait in line, first come first served per channel. Bounds how long a new notification waits behind older ones when the workers are slower than the creates (a limit of 300 cost no measurable deliveries/s at c=32, docs/PERFORMANCE.md). 0 = no limit, the default: the Go service accepted whatever the backlog, and a client of it may not retry a 503."),
    spec("BACKLOG_WAIT", Some("2s"), "2s", "How long a create waits for its channel's backlog to fall below BACKLOG_LIMIT before it is refused; with BACKLOG_LIMIT set, less than REQUEST_TIMEOUT."),
    spec("PUBLISH_TIMEOUT", Some("2s"), "2s", "How long a publish waits for the broker's confirm before leaving the message to the scanner."),
    spec("SHUTDOWN_TIMEOUT", Some("15s"), "15s", "Grace period for in-flight requests and deliveries on SIGTERM."),
    spec("QUEUE_PREFIX", Some(""), "staging.", "Prefix of every queue and exchange name (isolates environments on one broker)."),
    spec("REDIS_KEY_PREFIX", Some("dispatch:"), "dispatch:", "Prefix of every Redis key."),
    spec("LOG_LEVEL", Some("info"), "debug", "Log level (trace, debug, info, warn, error, off) or tracing filter directives such as info,dispatchctl=debug."),
    spec("OTEL_EXPORTER_OTLP_ENDPOINT", None, "http://otel-collector:4318", "OTLP/HTTP (protobuf) endpoint that traces are exported to (/v1/traces is appended); tracing is off unless it is set. The SDK's standard variables apply too: OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER(_ARG), OTEL_EXPORTER_OTLP_HEADERS, OTEL_BSP_*."),
    spec("OTEL_EXPORTER_OTLP_CERTIFICATE", None, "/etc/ssl/otel-ca.pem", "CA certificates (PEM) trusted besides the system's by the OTLP export to an https:// OTEL_EXPORTER_OTLP_ENDPOINT (the OpenTelemetry name)."),
    spec("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE", None, "/etc/ssl/otel-client.pem", "Client certificate chain (PEM) presented to the OTLP endpoint (mutual TLS); with OTEL_EXPORTER_OTLP_CLIENT_KEY."),
    spec("OTEL_EXPORTER_OTLP_CLIENT_KEY", None, "/etc/ssl/otel-client.key", "Private key (PEM) of OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE."),
    spec("LOG_FORMAT", None, "json", "json or text; default: text on a terminal, json otherwise."),
];

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
    pub providers: [Option<ChannelProvider>; 3],
    /// PROVIDER_CA_FILE and the client certificate: every webhook and SMTP server.
    pub provider_tls: ClientTlsFiles,
    /// OTEL_EXPORTER_OTLP_CERTIFICATE and the client certificate: the OTLP export.
    pub otel_tls: ClientTlsFiles,
    pub lease_timeout: Duration,
    pub rate_limit_per_sec: u32,
    pub rate_limit_overrides: [Option<u32>; 3],
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
    pub fn load(file: Option<&Path>, flags: &[(&'static str, String)]) -> Result<Self, ConfigError> {
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
        for (key, value) in flags {
            layers.insert((*key).to_string(), value.clone());
            overridden.push(key);
        }
        Self::from_map(&layers).map_err(|e| match (e, file) {
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
        })
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
            .flatten()
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
            rate_limit_overrides: [
                raw.optional_number("RATE_LIMIT_SMS_PER_SEC")?,
                raw.optional_number("RATE_LIMIT_EMAIL_PER_SEC")?,
                raw.optional_number("RATE_LIMIT_PUSH_PER_SEC")?,
            ],
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
                Ok(0) => None,
                Ok(rate) => Some(f64::from(rate)),
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
        self.providers[channel.index()].as_ref()
    }

    /// The effective deliveries-per-second limit of one channel (0 = unlimited).
    pub fn rate_limit_for(&self, channel: Channel) -> u32 {
        self.rate_limit_overrides[channel.index()].unwrap_or(self.rate_limit_per_sec)
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
        let value = self.get(key).unwrap_or_default();
        if value.is_empty() || value == "0" || value.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        humantime::parse_duration(&value).map(Some).map_err(|e| {
            invalid(
                key,
                format!("\"{value}\" is not a duration ({e}); use e.g. 30d, 12h, or 0/off to keep everything"),
            )
        })
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
