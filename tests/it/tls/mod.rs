//! TLS, proven against real endpoints: PostgreSQL, RabbitMQ and Redis speaking TLS with a
//! private CA (the private instances of scripts/test.sh, started with `services.sh start
//! --tls`), an HTTPS provider and our own HTTPS listener (certificates made here with rcgen).
//! Each client is shown a good certificate, one from an unknown CA and one for another host
//! name; each dropped TLS connection is shown to come back like a plain one. The clients'
//! tests are in `clients`, the listener's in `listener`; the CA they share and the settings
//! are here.

mod clients;
mod listener;

use std::path::{Path, PathBuf};

use dispatchctl::domain::Channel;
use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};

use crate::helpers::Env;

// ---- certificates ------------------------------------------------------------------------

pub(crate) struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut p = CertificateParams::new(Vec::<String>::new()).expect("params");
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.distinguished_name.push(DnType::CommonName, name);
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("key");
        let cert = p.self_signed(&key).expect("self-signed");
        Ca { cert, key }
    }

    /// A leaf for `names` (DNS names or IP addresses), written as `<stem>.pem`/`<stem>-key.pem`.
    pub(crate) fn issue(
        &self,
        dir: &Path,
        stem: &str,
        names: &[&str],
        usage: ExtendedKeyUsagePurpose,
    ) -> (PathBuf, PathBuf) {
        let mut p = CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>()).expect("params");
        p.distinguished_name
            .push(DnType::CommonName, names.first().copied().unwrap_or("client"));
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().expect("key");
        let cert = p.signed_by(&key, &self.cert, &self.key).expect("signed");
        let (cert_path, key_path) = (dir.join(format!("{stem}.pem")), dir.join(format!("{stem}-key.pem")));
        std::fs::write(&cert_path, cert.pem()).expect("write cert");
        std::fs::write(&key_path, key.serialize_pem()).expect("write key");
        (cert_path, key_path)
    }

    pub(crate) fn write(&self, dir: &Path, stem: &str) -> PathBuf {
        let path = dir.join(format!("{stem}.pem"));
        std::fs::write(&path, self.cert.pem()).expect("write ca");
        path
    }
}

// ---- settings -----------------------------------------------------------------------------

#[test]
fn secrets_can_come_from_files_and_not_from_both_places() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dsn_file = dir.path().join("dsn");
    std::fs::write(&dsn_file, "postgres://u:from-file@db:5433/x\n").expect("write");
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n").expect("write");
    let mut env = Env::new();
    env.values.remove("DATABASE_DSN");
    let env = env
        .set("DATABASE_DSN_FILE", dsn_file.display().to_string())
        .set("WEBHOOK_SITE_URL", "https://hooks.example.com/")
        .set("WEBHOOK_SECRET_FILE", secret_file.display().to_string());
    let s = env.settings();
    assert_eq!(s.database_display(), "db:5433/x");
    let signed = |c| {
        matches!(
            s.provider(c).map(|p| &p.endpoint),
            Some(dispatchctl::config::Endpoint::Webhook { secret: Some(_), .. })
        )
    };
    assert!(
        Channel::ALL.iter().all(|c| signed(*c)),
        "every channel signs with WEBHOOK_SECRET_FILE's secret"
    );
    let both = env.clone().set("DATABASE_DSN", "postgres://u@db/x");
    let err = dispatchctl::config::Settings::from_map(&both.values)
        .expect_err("both set")
        .to_string();
    assert!(
        err.contains("DATABASE_DSN_FILE") && err.contains("set one of them"),
        "{err}"
    );
    assert!(!err.contains("from-file"), "never echoes the secret: {err}");
    let missing = Env::new()
        .set("TLS_CERT_FILE", "/nonexistent/tls.crt")
        .set("TLS_KEY_FILE", "/nonexistent/tls.key");
    let err = dispatchctl::config::Settings::from_map(&missing.values)
        .expect_err("missing file")
        .to_string();
    assert!(
        err.contains("TLS_CERT_FILE") && err.contains("/nonexistent/tls.crt"),
        "{err}"
    );
}
