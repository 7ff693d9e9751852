//! `--tls-cert`/`--tls-key`, shared by the commands that listen (serve, worker, scan-retries).

use std::path::PathBuf;

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
    /// The settings these flags set, to layer over the environment.
    pub fn flags(&self) -> Vec<(&'static str, String)> {
        [("TLS_CERT_FILE", &self.tls_cert), ("TLS_KEY_FILE", &self.tls_key)]
            .into_iter()
            .filter_map(|(key, path)| Some((key, path.as_ref()?.display().to_string())))
            .collect()
    }
}
