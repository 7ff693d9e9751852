//! TLS on the listeners (the API and the worker's and scanner's ops endpoints): TLS 1.2 and
//! 1.3 with rustls, a certificate that is reloaded on SIGHUP or when its files change
//! (cert-manager rotates them in place), and a plain-HTTP client told in plain HTTP that the
//! port wants HTTPS. A reload swaps what new handshakes get; established connections keep
//! their session and are never dropped. It does not serve HTTP: `api::serve` does.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

use crate::tls::{load_certs, load_key, provider, TlsError};

/// `TLS_CERT_FILE` and `TLS_KEY_FILE`: the listener's certificate chain and key (PEM).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenerTlsFiles {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

/// Reads the pair and checks that the key belongs to the first certificate.
pub fn certified_key(files: &ListenerTlsFiles) -> Result<CertifiedKey, TlsError> {
    let certs = load_certs(&files.cert_file)?;
    let key = load_key(&files.key_file)?;
    CertifiedKey::from_der(certs, key, &provider()).map_err(TlsError::Mismatch)
}

/// The certificate every new handshake gets; swapped whole on reload.
#[derive(Debug)]
pub struct ReloadingCert {
    files: ListenerTlsFiles,
    current: ArcSwap<CertifiedKey>,
    // std Mutex: the modification times of the files last loaded, read and written
    // without awaiting.
    loaded: Mutex<Option<(SystemTime, SystemTime)>>,
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl ReloadingCert {
    pub fn load(files: ListenerTlsFiles) -> Result<Arc<ReloadingCert>, TlsError> {
        let stamp = modified(&files.cert_file).zip(modified(&files.key_file));
        let key = certified_key(&files)?;
        Ok(Arc::new(ReloadingCert {
            files,
            current: ArcSwap::from_pointee(key),
            loaded: Mutex::new(stamp),
        }))
    }

    /// Loads the files again. A pair that does not load (a rotation caught between writing
    /// the certificate and the key) leaves the current certificate in place.
    pub fn reload(&self) -> Result<(), TlsError> {
        let stamp = modified(&self.files.cert_file).zip(modified(&self.files.key_file));
        let key = certified_key(&self.files)?;
        self.current.store(Arc::new(key));
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = stamp;
        Ok(())
    }

    fn changed_on_disk(&self) -> bool {
        let now = modified(&self.files.cert_file).zip(modified(&self.files.key_file));
        now.is_some() && now != *self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reloads on `hangup` (SIGHUP) and whenever a file's modification time changes (checked every
    /// `interval`), until `shutdown`. Each outcome is logged once, here.
    async fn watch(self: Arc<Self>, mut hangup: Hangup, interval: Duration, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let trigger = tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = next_hangup(&mut hangup) => "SIGHUP",
                _ = tick.tick() => {
                    if !self.changed_on_disk() {
                        continue;
                    }
                    "files changed"
                }
            };
            match self.reload() {
                Ok(()) => tracing::info!(
                    trigger,
                    cert_file = %self.files.cert_file.display(),
                    "TLS certificate reloaded; new connections get it"
                ),
                Err(e) => tracing::warn!(
                    trigger,
                    error = %e,
                    "TLS certificate not reloaded; the previous one stays in use"
                ),
            }
        }
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

#[cfg(unix)]
type Hangup = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangup = ();

#[cfg(unix)]
fn hangup_signal() -> Hangup {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok()
}

#[cfg(not(unix))]
fn hangup_signal() -> Hangup {}

#[cfg(unix)]
async fn next_hangup(signal: &mut Hangup) {
    match signal {
        Some(s) => {
            s.recv().await;
        }
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn next_hangup(_: &mut Hangup) {
    std::future::pending().await
}

/// What `api::serve` needs to speak TLS on a listener.
#[derive(Clone)]
pub struct TlsListener {
    acceptor: tokio_rustls::TlsAcceptor,
}

impl TlsListener {
    /// Loads the certificate, and reloads it (SIGHUP, file changes) until `shutdown`.
    pub fn start(
        files: &ListenerTlsFiles,
        reload_interval: Duration,
        shutdown: CancellationToken,
    ) -> Result<TlsListener, TlsError> {
        let cert = ReloadingCert::load(files.clone())?;
        // Registered before any connection is accepted: a SIGHUP that arrives before the
        // handler exists would end the process (its default action).
        let hangup = hangup_signal();
        tokio::spawn(cert.clone().watch(hangup, reload_interval, shutdown));
        Ok(TlsListener {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(server_config(cert)?)),
        })
    }

    /// The handshake, within `within`. A client that speaks plain HTTP gets a plain-HTTP 400
    /// saying to use https (and None), rather than a connection closed without a word.
    pub async fn accept(&self, stream: TcpStream, within: Duration) -> Option<TlsStream<TcpStream>> {
        let mut first = [0u8; 1];
        match tokio::time::timeout(within, stream.peek(&mut first)).await {
            Ok(Ok(1)) => {}
            _ => return None,
        }
        // 0x16: a TLS handshake record; anything else is not TLS (HTTP starts with a method).
        if first[0] != 0x16 {
            refuse_plain_http(stream).await;
            return None;
        }
        match tokio::time::timeout(within, self.acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Some(tls),
            Ok(Err(e)) => {
                // A client that does not trust us says so with an alert; nothing to fix here.
                tracing::debug!(error = %e, "TLS handshake failed");
                None
            }
            Err(_) => None,
        }
    }
}

fn server_config(cert: Arc<ReloadingCert>) -> Result<ServerConfig, TlsError> {
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(TlsError::Mismatch)?
        .with_no_client_auth()
        .with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

async fn refuse_plain_http(mut stream: TcpStream) {
    const BODY: &str = "This port speaks HTTPS only (TLS_CERT_FILE is set): use https://\n";
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        // Read the request first and what follows until the client closes: a socket closed
        // with unread data sends a reset, and the client would see that instead of the answer.
        let mut sink = [0u8; 4096];
        let _ = stream.read(&mut sink).await;
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await;
}
