//! `--tls-cert`/`--tls-key`, shared by the commands that listen (serve, worker, scan-retries).

use std::path::PathBuf;

use crate::config::Overrides;
use crate::tls::listener::ListenerTlsFiles;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ListenerTlsArgs {
    /// Certificate chain (PEM) of the listener, which then speaks HTTPS only (TLS 1.2+);
    /// reloaded on SIGHUP and when the file changes [env: TLS_CERT_FILE].
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of --tls-cert [env: TLS_KEY_FILE].
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

impl ListenerTlsArgs {
    /// The flags as settings (clap requires the two together).
    pub fn overrides(&self) -> Overrides {
        let listener_tls = match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Some(ListenerTlsFiles {
                cert_file: cert.clone(),
                key_file: key.clone(),
            }),
            _ => None,
        };
        Overrides {
            listener_tls,
            ..Overrides::default()
        }
    }
}
