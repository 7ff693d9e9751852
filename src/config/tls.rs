//! The TLS and secret-file settings: `<SERVICE>_CA_FILE`/`_CERT_FILE`/`_KEY_FILE` of the
//! clients, `TLS_CERT_FILE`/`TLS_KEY_FILE` of the listeners, and `<SECRET>_FILE` for every
//! secret setting, so that a container's secrets can stay out of its environment. Files are
//! read and checked here, once, so that a bad one stops start-up with its setting's name.

use std::collections::HashMap;
use std::path::PathBuf;

use super::{invalid, ConfigError, Raw, SETTINGS};
use crate::tls::listener::{self, ListenerTlsFiles};
use crate::tls::{check_key_pair, load_certs, load_key, ClientTlsFiles};

/// The three setting names of one client.
pub(super) struct ClientKeys {
    pub ca: &'static str,
    pub cert: &'static str,
    pub key: &'static str,
}

pub(super) const RABBITMQ: ClientKeys = ClientKeys {
    ca: "RABBITMQ_CA_FILE",
    cert: "RABBITMQ_CERT_FILE",
    key: "RABBITMQ_KEY_FILE",
};
pub(super) const REDIS: ClientKeys = ClientKeys {
    ca: "REDIS_CA_FILE",
    cert: "REDIS_CERT_FILE",
    key: "REDIS_KEY_FILE",
};
pub(super) const PROVIDER: ClientKeys = ClientKeys {
    ca: "PROVIDER_CA_FILE",
    cert: "PROVIDER_CERT_FILE",
    key: "PROVIDER_KEY_FILE",
};

/// The OpenTelemetry specification's names, which collectors' documentation uses.
pub(super) const OTLP: ClientKeys = ClientKeys {
    ca: "OTEL_EXPORTER_OTLP_CERTIFICATE",
    cert: "OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE",
    key: "OTEL_EXPORTER_OTLP_CLIENT_KEY",
};

pub(super) fn client_files(raw: &Raw<'_>, keys: &ClientKeys) -> Result<ClientTlsFiles, ConfigError> {
    let pair = cert_and_key(raw, keys.cert, keys.key)?;
    let files = ClientTlsFiles {
        ca_file: raw.get(keys.ca).map(PathBuf::from),
        cert_file: pair.as_ref().map(|(cert, _)| PathBuf::from(cert)),
        key_file: pair.as_ref().map(|(_, key)| PathBuf::from(key)),
    };
    // Each file on its own first, so that the error names the setting at fault.
    if let Some(ca) = &files.ca_file {
        load_certs(ca).map_err(|e| invalid(keys.ca, e.to_string()))?;
    }
    if let (Some(cert), Some(key)) = (&files.cert_file, &files.key_file) {
        let certs = load_certs(cert).map_err(|e| invalid(keys.cert, e.to_string()))?;
        let key = load_key(key).map_err(|e| invalid(keys.key, e.to_string()))?;
        check_key_pair(certs, key).map_err(|e| invalid(keys.cert, e.to_string()))?;
    }
    Ok(files)
}

/// The certificate and key settings `cert` and `key`, which come together or not at all.
fn cert_and_key(raw: &Raw<'_>, cert: &'static str, key: &'static str) -> Result<Option<(String, String)>, ConfigError> {
    match (raw.get(cert), raw.get(key)) {
        (None, None) => Ok(None),
        (Some(_), None) => Err(invalid(key, format!("{cert} is set: the key must be too"))),
        (None, Some(_)) => Err(invalid(cert, format!("{key} is set: the certificate must be too"))),
        (Some(c), Some(k)) => Ok(Some((c, k))),
    }
}

pub(super) fn listener_files(raw: &Raw<'_>) -> Result<Option<ListenerTlsFiles>, ConfigError> {
    let Some((cert, key)) = cert_and_key(raw, "TLS_CERT_FILE", "TLS_KEY_FILE")? else {
        return Ok(None);
    };
    check_listener_files(ListenerTlsFiles {
        cert_file: cert.into(),
        key_file: key.into(),
    })
    .map(Some)
}

/// The listener's pair reads, and the key belongs to the certificate.
pub(super) fn check_listener_files(files: ListenerTlsFiles) -> Result<ListenerTlsFiles, ConfigError> {
    listener::certified_key(&files).map_err(|e| invalid("TLS_CERT_FILE", e.to_string()))?;
    Ok(files)
}

/// Replaces each `<SECRET>_FILE` by `<SECRET>` holding the file's text (one trailing newline
/// dropped). Setting both is refused: which one wins would be a guess.
pub(super) fn read_secret_files(values: &HashMap<String, String>) -> Result<HashMap<String, String>, ConfigError> {
    let mut out = values.clone();
    // API_TOKENS_FILE predates this and is joined with API_TOKENS, one token per line.
    for spec in SETTINGS.iter().filter(|s| s.secret && s.env != "API_TOKENS") {
        let Some(file_key) = SETTINGS
            .iter()
            .map(|s| s.env)
            .find(|k| k.strip_suffix("_FILE") == Some(spec.env))
        else {
            continue;
        };
        let Some(path) = values.get(file_key).map(|v| v.trim()).filter(|v| !v.is_empty()) else {
            continue;
        };
        if values.get(spec.env).is_some_and(|v| !v.trim().is_empty()) {
            return Err(invalid(file_key, format!("{} is set too; set one of them", spec.env)));
        }
        let text = std::fs::read_to_string(path).map_err(|e| invalid(file_key, format!("cannot read {path}: {e}")))?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        out.insert(spec.env.to_string(), text.to_string());
    }
    Ok(out)
}
