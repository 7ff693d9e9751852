//! Every setting the program reads, with its default, an example and what it means: the
//! one table that `Settings::load` checks names against, `--help` and the man pages cite, and
//! `cargo xtask gen` writes docs/CONFIGURATION.md from.

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
