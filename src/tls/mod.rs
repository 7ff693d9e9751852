//! All of the process's TLS, in one place. Who uses it:
//! - the clients: `broker` (`amqp.rs`: `amqps://` with our rustls configuration, where lapin's
//!   own wants PKCS#12), `redis_client`, `provider` (webhook and SMTP), `otel`'s exporter and
//!   `cli::completions`' fetch, through `client_config` (system roots + CA file, client
//!   certificate);
//! - the listeners of `api` and `ops` (`listener.rs`: HTTPS, reloading its certificate);
//! - `config/tls.rs`, which reads the `*_CA_FILE`/`*_CERT_FILE`/`*_KEY_FILE` and `TLS_*`
//!   settings and checks their files once at start-up with the loaders here;
//! - `store`, for the one-line "which TLS check failed" wording (`describe`): PostgreSQL
//!   builds its TLS from the DSN (sqlx).
//!
//! Nothing here reads settings; only `amqp::connect` and the listener open sockets.

pub mod amqp;
pub mod listener;

use std::error::Error as StdError;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{CertificateError, ClientConfig, RootCertStore};

/// The files of one client's TLS settings (`<SERVICE>_CA_FILE`, `_CERT_FILE`, `_KEY_FILE`).
/// Config checks that the certificate and key come together and that the files parse.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientTlsFiles {
    /// Extra trusted CA certificates (PEM).
    pub ca_file: Option<PathBuf>,
    /// Client certificate chain (PEM) for mutual TLS, with `key_file`.
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

impl ClientTlsFiles {
    pub fn is_empty(&self) -> bool {
        self.ca_file.is_none() && self.cert_file.is_none() && self.key_file.is_none()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no PEM certificate")]
    NoCertificate { path: String },
    #[error("{path} holds no PEM private key (PKCS#8, PKCS#1 or SEC1)")]
    NoKey { path: String },
    #[error("{path}: {reason}")]
    BadCertificate { path: String, reason: String },
    #[error("the certificate and key do not go together: {0}")]
    Mismatch(rustls::Error),
}

fn read_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Read {
        path: path.display().to_string(),
        source,
    }
}

/// Every certificate of a PEM file, in order (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = std::fs::read(path).map_err(read_error(path))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_error(path))?;
    if certs.is_empty() {
        let path = path.display().to_string();
        return Err(TlsError::NoCertificate { path });
    }
    Ok(certs)
}

/// The first private key of a PEM file.
pub fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = std::fs::read(path).map_err(read_error(path))?;
    let key = rustls_pemfile::private_key(&mut pem.as_slice()).map_err(read_error(path))?;
    key.ok_or_else(|| TlsError::NoKey {
        path: path.display().to_string(),
    })
}

/// One crypto provider for every config, named rather than taken from the process default:
/// the dependency tree compiles only `ring`, and an explicit choice cannot become ambiguous.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The system's trusted roots (the CA bundle of the image), plus `ca_file` when given.
/// Certificates of the bundle that rustls cannot parse are skipped, as every other client does.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut store = RootCertStore::empty();
    // A machine without a bundle still reaches a private CA given as a file.
    if let Ok(native) = rustls_native_certs::load_native_certs() {
        store.add_parsable_certificates(native);
    }
    if let Some(path) = ca_file {
        for cert in load_certs(path)? {
            store.add(cert).map_err(|e| TlsError::BadCertificate {
                path: path.display().to_string(),
                reason: format!("not a usable CA certificate ({e})"),
            })?;
        }
    }
    Ok(store)
}

/// TLS 1.2 and 1.3 with the one crypto provider; the trust comes next.
fn client_builder() -> Result<rustls::ConfigBuilder<ClientConfig, rustls::WantsVerifier>, TlsError> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(TlsError::Mismatch)
}

/// A client configuration: TLS 1.2 and 1.3, the system roots plus `files.ca_file`, and the
/// client certificate when one is given.
pub fn client_config(files: &ClientTlsFiles) -> Result<ClientConfig, TlsError> {
    let builder = client_builder()?.with_root_certificates(roots(files.ca_file.as_deref())?);
    match (&files.cert_file, &files.key_file) {
        (Some(cert), Some(key)) => builder
            .with_client_auth_cert(load_certs(cert)?, load_key(key)?)
            .map_err(TlsError::Mismatch),
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// Checks that `key` signs for the first of `certs`, without touching the system roots.
pub fn check_key_pair(certs: Vec<CertificateDer<'static>>, key: PrivateKeyDer<'static>) -> Result<(), TlsError> {
    // Builds a throwaway config: the cheapest check that the key signs for the certificate.
    client_builder()?
        .with_root_certificates(RootCertStore::empty())
        .with_client_auth_cert(certs, key)
        .map_err(TlsError::Mismatch)?;
    Ok(())
}

/// A client configuration that trusts exactly the certificates of `cert_file` (the
/// listener's own TLS_CERT_FILE), whatever their issuer and host names: for a health check
/// run beside the server, which has the file but perhaps not the CA that signed it.
pub fn pinned_client_config(cert_file: &Path) -> Result<ClientConfig, TlsError> {
    let verifier = Arc::new(PinnedCertificate {
        pinned: load_certs(cert_file)?,
        algorithms: provider().signature_verification_algorithms,
    });
    Ok(client_builder()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth())
}

#[derive(Debug)]
struct PinnedCertificate {
    pinned: Vec<CertificateDer<'static>>,
    algorithms: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl rustls::client::danger::ServerCertVerifier for PinnedCertificate {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        if self.pinned.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Says which TLS check failed, when `error` (or anything in its source chain) is a failed
/// handshake: "TLS: certificate not trusted (unknown CA)", "TLS: host name mismatch (…)", …
/// None when the failure has nothing to do with TLS.
pub fn describe(error: &(dyn StdError + 'static)) -> Option<String> {
    let mut cause: Option<&(dyn StdError + 'static)> = Some(error);
    let mut texts = Vec::new();
    while let Some(e) = cause {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(describe_rustls(r));
        }
        // io::Error hides its payload from `source()` in some versions: look inside.
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            if let Some(r) = io.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
                return Some(describe_rustls(r));
            }
        }
        texts.push(e.to_string());
        cause = e.source();
    }
    // Some clients flatten the error into text (redis, lapin); recognise rustls's wording.
    describe_text(&texts.join(": "))
}

fn describe_rustls(e: &rustls::Error) -> String {
    use rustls::AlertDescription as A;
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => "TLS: certificate not trusted (unknown CA)".into(),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS: host name mismatch (the certificate does not name the host connected to)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => "TLS: certificate expired".into(),
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS: certificate not valid yet".into()
            }
            CertificateError::Revoked => "TLS: certificate revoked".into(),
            CertificateError::BadSignature => "TLS: certificate signature invalid".into(),
            CertificateError::ApplicationVerificationFailure => {
                "TLS: certificate is not the one expected (pinned)".into()
            }
            other => format!("TLS: certificate rejected ({other:?})"),
        },
        rustls::Error::AlertReceived(
            a @ (A::BadCertificate
            | A::CertificateRequired
            | A::UnknownCA
            | A::UnsupportedCertificate
            | A::AccessDenied
            | A::CertificateUnknown),
        ) => {
            format!("TLS: the server refused our client certificate (alert {a:?}); check the *_CERT_FILE and *_KEY_FILE settings")
        }
        rustls::Error::AlertReceived(a) => format!("TLS: the server ended the handshake (alert {a:?})"),
        rustls::Error::InvalidMessage(_) | rustls::Error::InappropriateMessage { .. } => {
            "TLS: the server does not speak TLS on this port".into()
        }
        rustls::Error::PeerIncompatible(p) => format!("TLS: no protocol version or cipher in common ({p:?})"),
        other => format!("TLS: handshake failed ({other})"),
    }
}

fn describe_text(text: &str) -> Option<String> {
    let t = text.to_ascii_lowercase();
    let reason = if t.contains("unknownissuer") || t.contains("unknown issuer") {
        "TLS: certificate not trusted (unknown CA)"
    } else if t.contains("notvalidforname") || t.contains("not valid for name") {
        "TLS: host name mismatch (the certificate does not name the host connected to)"
    } else if t.contains("certificate expired") || t.contains("expired") && t.contains("certificate") {
        "TLS: certificate expired"
    } else if t.contains("certificaterequired") || t.contains("badcertificate") {
        "TLS: the server refused our client certificate; check the *_CERT_FILE and *_KEY_FILE settings"
    } else if t.contains("server does not support tls") {
        "TLS: the server does not support TLS (sslmode asks for it)"
    } else if t.contains("invalidcontenttype") || t.contains("corrupt message") {
        "TLS: the server does not speak TLS on this port"
    } else {
        return None;
    };
    Some(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattened_texts_are_recognised() {
        let e = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        assert!(describe(&e).unwrap().contains("unknown CA"));
        let e = std::io::Error::other("server does not support TLS");
        assert!(describe(&e).unwrap().contains("does not support TLS"));
        assert_eq!(describe(&std::io::Error::other("connection refused")), None);
    }
}
