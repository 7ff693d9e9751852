//! Our TLS clients against real endpoints: PostgreSQL, RabbitMQ and Redis speaking TLS with the
//! private CA of scripts/test.sh, and an HTTPS provider. Each is shown a good certificate, one
//! from an unknown CA and one for another host name; each dropped TLS connection comes back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use dispatchctl::broker::{Broker, BrokerError, Endpoints};
use dispatchctl::domain::{Channel, PerChannel};
use dispatchctl::metrics::Metrics;
use dispatchctl::ratelimit::RateLimiter;
use dispatchctl::redis_client::RedisHandle;
use dispatchctl::store::Store;
use dispatchctl::tls::ClientTlsFiles;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::ExtendedKeyUsagePurpose;
use secrecy::SecretString;
use tokio::net::TcpListener;

use super::Ca;
use crate::helpers::{init_logs, wait_for, Env, TestApp};

/// A CA the services have never heard of.
fn other_ca(dir: &Path) -> PathBuf {
    Ca::new("some other CA").write(dir, "other-ca")
}

// ---- the TLS services of scripts/test.sh --------------------------------------------------

struct Services {
    dir: PathBuf,
    pg_port: u16,
    redis_port: u16,
    amqps_port: u16,
}

impl Services {
    /// The private TLS services of this run; None (and a note) when the suite runs without
    /// them (a developer's shared services); a failure under `CI=true`.
    fn get() -> Option<Services> {
        let dir = std::env::var("TEST_TLS_DIR").ok().filter(|d| !d.is_empty());
        let port = |k: &str| std::env::var(k).ok().and_then(|v| v.parse().ok());
        match (
            dir,
            port("TEST_TLS_PG_PORT"),
            port("TEST_TLS_REDIS_PORT"),
            port("TEST_TLS_AMQPS_PORT"),
        ) {
            (Some(dir), Some(pg_port), Some(redis_port), Some(amqps_port)) => Some(Services {
                dir: dir.into(),
                pg_port,
                redis_port,
                amqps_port,
            }),
            _ => crate::helpers::without_service("TLS services (TEST_TLS_*)"),
        }
    }

    fn file(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }

    fn client_files(&self, ca: Option<String>, client_cert: bool) -> ClientTlsFiles {
        ClientTlsFiles {
            ca_file: ca.map(PathBuf::from),
            cert_file: client_cert.then(|| self.dir.join("client.pem")),
            key_file: client_cert.then(|| self.dir.join("client-key.pem")),
        }
    }
}

fn database_name(env: &Env) -> String {
    let run = std::env::var("DISPATCHCTL_TEST_RUN").map_or_else(|_| String::new(), |r| format!("{r}_"));
    format!("dtest_{run}{}", env.id)
}

// ---- PostgreSQL ---------------------------------------------------------------------------

#[tokio::test]
async fn postgres_verify_full_with_a_client_certificate_connects_over_tls_and_survives_a_dropped_connection() {
    let Some(s) = Services::get() else { return };
    let env = Env::new();
    // "guest" may log in only with a certificate (services.sh's pg_hba).
    let dsn = format!(
        "postgres://guest@localhost:{}/{}?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
        s.pg_port,
        database_name(&env),
        s.file("ca.pem"),
        s.file("client.pem"),
        s.file("client-key.pem"),
    );
    let env = env.set("DATABASE_DSN", dsn);
    let settings = env.settings();
    let store = Store::connect(&settings.database, 2).await.expect("TLS connect");
    let (ssl, user): (bool, String) =
        sqlx::query_as("SELECT ssl, current_user::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("query");
    assert!(ssl, "the session is encrypted");
    assert_eq!(user, "guest", "logged in by the client certificate");

    // The server drops every connection of this database: the pool reconnects over TLS.
    let plain = Store::connect(
        &dispatchctl::config::parse_dsn(&format!(
            "postgres://postgres@127.0.0.1:{}/{}",
            s.pg_port,
            database_name(&env)
        ))
        .expect("dsn"),
        1,
    )
    .await
    .expect("plain connect");
    let killed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid() AND usename = 'guest') t",
    )
    .fetch_one(plain.pool())
    .await
    .expect("terminate");
    assert!(killed >= 1, "the TLS session was cut");
    assert!(
        wait_for(Duration::from_secs(10), || async { store.ping().await.is_ok() }).await,
        "the pool reconnects over TLS"
    );
    let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .fetch_one(store.pool())
        .await
        .expect("query");
    assert!(ssl);
}

#[tokio::test]
async fn postgres_sslmode_require_and_verify_ca_connect_where_their_checks_allow() {
    let Some(s) = Services::get() else { return };
    let env = Env::new();
    let db = database_name(&env);
    // require: encrypted, nothing verified (127.0.0.1 is not in the certificate). verify-ca
    // should not check the name either, but sqlx 0.8.6 with rustls 0.23.46 does (it waives
    // NotValidForName, and rustls now says NotValidForNameContext): it is shown on
    // "localhost" here, and docs/SECURITY.md says so.
    for dsn in [
        format!("postgres://postgres@127.0.0.1:{}/{db}?sslmode=require", s.pg_port),
        format!(
            "postgres://postgres@localhost:{}/{db}?sslmode=verify-ca&sslrootcert={}",
            s.pg_port,
            s.file("ca.pem")
        ),
    ] {
        let options = dispatchctl::config::parse_dsn(&dsn).expect("dsn");
        let store = Store::connect(&options, 1)
            .await
            .unwrap_or_else(|e| panic!("{dsn}: {e}"));
        let ssl: bool = sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_one(store.pool())
            .await
            .expect("query");
        assert!(ssl, "{dsn}");
        store.pool().close().await;
    }
}

#[tokio::test]
async fn postgres_wrong_ca_or_host_name_fails_start_up_with_one_line_naming_the_check() {
    let Some(s) = Services::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let other = other_ca(dir.path());
    let env = Env::new();
    let db = database_name(&env);
    let cases = [
        (
            format!(
                "postgres://postgres@localhost:{}/{db}?sslmode=verify-full&sslrootcert={}",
                s.pg_port,
                other.display()
            ),
            "certificate not trusted (unknown CA)",
        ),
        (
            format!(
                "postgres://postgres@127.0.0.1:{}/{db}?sslmode=verify-full&sslrootcert={}",
                s.pg_port,
                s.file("ca.pem")
            ),
            "host name mismatch",
        ),
    ];
    for (dsn, check) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_dispatchctl"))
            .args(["migrate"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("DATABASE_DSN", &dsn)
            .env("LOG_FORMAT", "text")
            .current_dir(std::env::temp_dir())
            .output()
            .expect("run dispatchctl");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains(&format!("TLS: {check}")), "{check}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    }
}

// ---- RabbitMQ -----------------------------------------------------------------------------

fn broker(url: String, files: ClientTlsFiles, env: &Env) -> Broker {
    Broker::new(
        Endpoints::parse(&SecretString::from(url), &files),
        env.topology(),
        Duration::from_secs(2),
    )
}

/// `pid` and `ssl` of the broker connections whose client properties hold `marker`.
fn amqp_connections(marker: &str) -> Vec<(String, String)> {
    let out = crate::helpers::rabbitmqctl()
        .args([
            "list_connections",
            "pid",
            "ssl",
            "client_properties",
            "-q",
            "--no-table-headers",
        ])
        .output()
        .expect("rabbitmqctl");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains(marker))
        .filter_map(|l| {
            let mut f = l.split('\t');
            Some((f.next()?.to_string(), f.next()?.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn amqps_with_the_private_ca_declares_and_reconnects_after_the_server_drops_it() {
    let Some(s) = Services::get() else { return };
    init_logs();
    let env = Env::new();
    let url = format!("amqps://guest:guest@localhost:{}/%2f", s.amqps_port);
    let broker = broker(url, s.client_files(Some(s.file("ca.pem")), false), &env);
    broker
        .channel()
        .await
        .expect("amqps connects and declares the topology");
    let marker = format!("t{}.", env.id);
    let before = amqp_connections(&marker);
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0].1, "true", "the connection is TLS: {before:?}");

    let closed = crate::helpers::rabbitmqctl()
        .args(["-q", "close_connection", &before[0].0, "tls test"])
        .status()
        .expect("rabbitmqctl");
    assert!(closed.success());
    assert!(
        wait_for(Duration::from_secs(15), || async {
            broker.channel().await.is_ok()
                && amqp_connections(&marker)
                    .iter()
                    .any(|(pid, ssl)| *pid != before[0].0 && ssl == "true")
        })
        .await,
        "the publisher reconnects over TLS"
    );
    broker.close().await;
}

#[tokio::test]
async fn amqps_client_certificate_logs_in_with_external() {
    let Some(s) = Services::get() else { return };
    let env = Env::new();
    // No password in the URL: the broker takes the user from the certificate (CN=guest).
    let url = format!("amqps://localhost:{}/%2f?auth_mechanism=external", s.amqps_port);
    let broker = broker(url, s.client_files(Some(s.file("ca.pem")), true), &env);
    broker
        .channel()
        .await
        .expect("EXTERNAL login by the client certificate");
    broker.close().await;
}

#[tokio::test]
async fn amqps_wrong_ca_or_host_name_fails_naming_the_check() {
    let Some(s) = Services::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let env = Env::new();
    let cases = [
        (
            format!("amqps://guest:guest@localhost:{}/%2f", s.amqps_port),
            Some(other_ca(dir.path()).display().to_string()),
            "TLS: certificate not trusted (unknown CA)",
        ),
        (
            format!("amqps://guest:guest@127.0.0.1:{}/%2f", s.amqps_port),
            Some(s.file("ca.pem")),
            "TLS: host name mismatch",
        ),
    ];
    for (url, ca, check) in cases {
        let broker = broker(url, s.client_files(ca, false), &env);
        match broker.channel().await {
            Err(BrokerError::Unavailable(reason)) => assert!(reason.contains(check), "{check}: {reason}"),
            Err(e) => panic!("{check}: unexpected error {e}"),
            Ok(_) => panic!("{check}: connected"),
        }
    }
}

// ---- Redis --------------------------------------------------------------------------------

#[tokio::test]
async fn rediss_with_a_client_certificate_answers_and_reconnects_after_the_server_drops_it() {
    let Some(s) = Services::get() else { return };
    let url = SecretString::from(format!("rediss://localhost:{}/0", s.redis_port));
    let redis = RedisHandle::new(&url, &s.client_files(Some(s.file("ca.pem")), true), "t:".into());
    redis.ping().await.expect("rediss ping");
    // The server closes this very connection (and no other test's).
    let mut conn = redis.connection().await.expect("connection");
    let id: i64 = redis::cmd("CLIENT")
        .arg("ID")
        .query_async(&mut conn)
        .await
        .expect("client id");
    let _: Result<i64, _> = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("ID")
        .arg(id)
        .arg("SKIPME")
        .arg("no")
        .query_async(&mut conn)
        .await;
    assert!(
        wait_for(Duration::from_secs(10), || async {
            let mut c = match redis.connection().await {
                Ok(c) => c,
                Err(_) => return false,
            };
            let now: Result<i64, _> = redis::cmd("CLIENT").arg("ID").query_async(&mut c).await;
            now.is_ok_and(|n| n != id)
        })
        .await,
        "the connection manager reconnects over TLS"
    );
}

#[tokio::test]
async fn rediss_wrong_ca_or_host_name_fails_naming_the_check_and_the_limiter_falls_back() {
    let Some(s) = Services::get() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            format!("rediss://localhost:{}/0", s.redis_port),
            other_ca(dir.path()).display().to_string(),
            "TLS: certificate not trusted (unknown CA)",
        ),
        (
            format!("rediss://127.0.0.1:{}/0", s.redis_port),
            s.file("ca.pem"),
            "TLS: host name mismatch",
        ),
    ];
    for (url, ca, check) in cases {
        let redis = Arc::new(RedisHandle::new(
            &SecretString::from(url),
            &s.client_files(Some(ca), false),
            "t:".into(),
        ));
        let err = redis.ping().await.expect_err("handshake fails").to_string();
        assert!(err.contains(check), "{check}: {err}");
        let metrics = Arc::new(Metrics::new());
        let limiter = RateLimiter::new(redis, PerChannel::from_fn(|_| 1000), metrics.clone());
        let waited = tokio::time::timeout(Duration::from_secs(10), limiter.acquire(Channel::Sms))
            .await
            .expect("the limiter decides alone instead of waiting for Redis");
        assert!(waited < Duration::from_secs(1));
        let fallback = metrics.rate_limit_fallback.with_label_values(&["sms"]).get();
        assert!(fallback >= 1, "fallback counted: {fallback}");
    }
}

// ---- the provider -------------------------------------------------------------------------

/// A provider CA, its file, and an HTTPS provider with a "localhost" certificate it signed;
/// with `demand_client_cert`, the provider also demands a client certificate of that CA.
async fn provider_pki(dir: &Path, demand_client_cert: bool) -> (Ca, PathBuf, String) {
    let ca = Ca::new("provider CA");
    let ca_file = ca.write(dir, "ca");
    let (cert, key) = ca.issue(dir, "server", &["localhost"], ExtendedKeyUsagePurpose::ServerAuth);
    let url = https_provider(&cert, &key, demand_client_cert.then_some(ca_file.as_path())).await;
    (ca, ca_file, url)
}

/// An HTTPS provider that answers 200 to every POST /hook; with `client_ca`, it demands a
/// client certificate that CA signed.
async fn https_provider(cert: &Path, key: &Path, client_ca: Option<&Path>) -> String {
    let certs = dispatchctl::tls::load_certs(cert).expect("certs");
    let key = dispatchctl::tls::load_key(key).expect("key");
    let builder = rustls::ServerConfig::builder_with_provider(dispatchctl::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("versions");
    let builder = match client_ca {
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in dispatchctl::tls::load_certs(ca).expect("ca") {
                roots.add(c).expect("root");
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                dispatchctl::tls::provider(),
            )
            .build()
            .expect("verifier");
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let config = builder.with_single_cert(certs, key).expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let router = axum::Router::new().route(
        "/hook",
        axum::routing::post(|| async { axum::Json(serde_json::json!({"id": "prov-tls"})) }),
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, router) = (acceptor.clone(), router.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(router);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    format!("https://localhost:{port}/hook")
}

#[tokio::test]
async fn provider_over_https_with_a_private_ca_and_mutual_tls_delivers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ca, ca_file, url) = provider_pki(dir.path(), true).await;
    let (client_cert, client_key) = ca.issue(dir.path(), "client", &["dispatch"], ExtendedKeyUsagePurpose::ClientAuth);
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", url)
        .set("PROVIDER_CA_FILE", ca_file.display().to_string())
        .set("PROVIDER_CERT_FILE", client_cert.display().to_string())
        .set("PROVIDER_KEY_FILE", client_key.display().to_string());
    let app = TestApp::spawn(env, false).await;
    let created = app.create("SMS", "+905551234567", "over mutual TLS").await;
    let id = created["id"].as_str().expect("id").to_string();
    let done = app.wait_status(&id, "SENT", Duration::from_secs(20)).await;
    assert_eq!(done["providerMessageId"], "prov-tls", "{done}");
    app.stop().await;
}

/// Waits until `id` has `attempts` attempts with an error, then checks that they were
/// transient (neither FAILED nor SENT) and that the recorded error says `reason`.
async fn assert_transient_attempts_saying(app: &TestApp, id: &str, attempts: i64, reason: &str) {
    let recorded = wait_for(Duration::from_secs(20), || async {
        let n = app.notification(id).await;
        n["attemptCount"].as_i64().unwrap_or(0) >= attempts && !n["lastError"].is_null()
    })
    .await;
    let last = app.notification(id).await;
    assert!(recorded, "retried, not failed or crashed: {last}");
    assert_ne!(last["status"], "FAILED", "{last}");
    assert_ne!(last["status"], "SENT", "{last}");
    let error = last["lastError"].as_str().unwrap_or_default();
    assert!(error.contains(reason), "the attempt says why: {last}");
}

#[tokio::test]
async fn provider_certificate_errors_are_transient_attempts_with_a_clear_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, _ca_file, url) = provider_pki(dir.path(), false).await;
    // The system roots only: the provider's CA is unknown.
    let env = Env::new().set("WEBHOOK_SITE_URL", url).set("DEFAULT_MAX_RETRIES", "10");
    let app = TestApp::spawn(env, false).await;
    let created = app.create("SMS", "+905551234568", "untrusted").await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_transient_attempts_saying(&app, &id, 2, "TLS: certificate not trusted (unknown CA)").await;
    // Still retrying by design: its next attempt may be in the queue when the app stops.
    app.stop_leaving_messages().await;
}

#[tokio::test]
async fn provider_that_demands_a_client_certificate_we_lack_is_a_transient_attempt_saying_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_ca, ca_file, url) = provider_pki(dir.path(), true).await;
    // Trusts the provider, but has no certificate to show it.
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", url)
        .set("PROVIDER_CA_FILE", ca_file.display().to_string())
        .set("DEFAULT_MAX_RETRIES", "10");
    let app = TestApp::spawn(env, false).await;
    let created = app.create("SMS", "+905551234569", "no client certificate").await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_transient_attempts_saying(&app, &id, 1, "TLS: the server refused our client certificate").await;
    // Still retrying by design: its next attempt may be in the queue when the app stops.
    app.stop_leaving_messages().await;
}
