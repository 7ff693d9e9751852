//! Values given as command-line flags. clap parses each into its type; `Settings::load` sets
//! it after reading the file and the environment, and does not read that setting's variable
//! at all, so a flag wins even over a malformed one.

use std::net::IpAddr;
use std::num::{NonZeroU16, NonZeroU32};
use std::str::FromStr;
use std::time::Duration;

use super::{parse_period, ConfigError, Settings};
use crate::tls::listener::ListenerTlsFiles;

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// `serve --host` (API_HOST).
    pub api_host: Option<IpAddr>,
    /// `serve --port` (API_PORT).
    pub api_port: Option<u16>,
    /// `worker --concurrency` (WORKER_CONCURRENCY).
    pub worker_concurrency: Option<NonZeroU16>,
    /// `--tls-cert` and `--tls-key` (TLS_CERT_FILE, TLS_KEY_FILE).
    pub listener_tls: Option<ListenerTlsFiles>,
    /// `prune --older-than` (RETENTION_PERIOD).
    pub retention_period: Option<Period>,
    /// `prune --audit-older-than` (AUDIT_RETENTION_PERIOD).
    pub audit_retention_period: Option<Period>,
    /// `prune --batch-size` (PRUNE_BATCH_SIZE).
    pub prune_batch_size: Option<NonZeroU32>,
    /// `prune --max-rate` (PRUNE_MAX_RATE; 0 = no limit).
    pub prune_max_rate: Option<u32>,
}

/// A retention period: a duration, or `0`/`off` for none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period(pub Option<Duration>);

impl FromStr for Period {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_period(s).map(Period)
    }
}

impl Overrides {
    /// The settings these flags replace.
    pub(super) fn keys(&self) -> Vec<&'static str> {
        let set = [
            ("API_HOST", self.api_host.is_some()),
            ("API_PORT", self.api_port.is_some()),
            ("WORKER_CONCURRENCY", self.worker_concurrency.is_some()),
            ("TLS_CERT_FILE", self.listener_tls.is_some()),
            ("TLS_KEY_FILE", self.listener_tls.is_some()),
            ("RETENTION_PERIOD", self.retention_period.is_some()),
            ("AUDIT_RETENTION_PERIOD", self.audit_retention_period.is_some()),
            ("PRUNE_BATCH_SIZE", self.prune_batch_size.is_some()),
            ("PRUNE_MAX_RATE", self.prune_max_rate.is_some()),
        ];
        set.into_iter().filter(|(_, on)| *on).map(|(key, _)| key).collect()
    }

    pub(super) fn apply(&self, s: &mut Settings) -> Result<(), ConfigError> {
        if let Some(host) = self.api_host {
            s.api_host = host;
        }
        if let Some(port) = self.api_port {
            s.api_port = port;
        }
        if let Some(n) = self.worker_concurrency {
            s.worker_concurrency = n.get();
        }
        if let Some(files) = &self.listener_tls {
            s.listener_tls = Some(super::tls::check_listener_files(files.clone())?);
        }
        if let Some(Period(period)) = self.retention_period {
            s.retention_period = period;
        }
        if let Some(Period(period)) = self.audit_retention_period {
            s.audit_retention_period = period;
        }
        if let Some(n) = self.prune_batch_size {
            s.prune_batch_size = i64::from(n.get());
        }
        if let Some(rate) = self.prune_max_rate {
            s.prune_max_rate = super::max_rate(rate);
        }
        Ok(())
    }
}
