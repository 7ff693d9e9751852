//! The provider adapters at the edge: each channel delivers to its webhook or, for e-mail,
//! to an SMTP server (`EMAIL_PROVIDER_URL=smtp://…`). Both classify what they got into a
//! `DeliveryResult` the same way: success, transient (retried with backoff) or permanent
//! (dead-lettered with the provider's answer).

use crate::config::{Endpoint, Settings};
use crate::domain::{Channel, DeliveryResult, PerChannel, TraceContext};
use crate::store::Claimed;

mod smtp;
mod webhook;

pub use smtp::Smtp;
pub use webhook::{sign, Webhook};

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("invalid webhook secret: {0}")]
    Secret(&'static str),
    #[error("the auth header {0} cannot be sent")]
    AuthHeader(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error("provider TLS settings: {0}")]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot set up the SMTP client: {0}")]
    Smtp(String),
}

enum Adapter {
    Webhook(Webhook),
    Smtp(Smtp),
}

/// The provider of one channel.
pub struct Provider {
    adapter: Adapter,
    /// Kind and host (`webhook hooks.example.com`, `smtp mail.example.com:587`), recorded
    /// with each attempt.
    name: String,
}

impl Provider {
    /// One attempt. Never fails: every failure is classified into the result. Takes a
    /// `Claimed`, which only a claim makes: nothing is sent without a lease (invariant 2).
    /// `trace`: the context the provider's own spans continue (sent as `traceparent`).
    pub async fn deliver(&self, claimed: &Claimed, trace: Option<&TraceContext>) -> DeliveryResult {
        match &self.adapter {
            Adapter::Webhook(w) => w.deliver(claimed, trace).await,
            Adapter::Smtp(s) => s.deliver(claimed).await,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The attribute that carries an attempt's answer code in its span.
    pub fn code_attribute(&self) -> &'static str {
        match self.adapter {
            Adapter::Webhook(_) => "http.response.status_code",
            Adapter::Smtp(_) => "smtp.reply_code",
        }
    }
}

/// The providers of this process, one per channel that has one.
pub struct Providers {
    by_channel: PerChannel<Option<Provider>>,
}

impl Providers {
    /// Clients for every channel with a provider in `settings`; `pool_size` connections
    /// kept per provider.
    pub fn build(settings: &Settings, pool_size: usize) -> Result<Providers, ProviderError> {
        let mut by_channel: PerChannel<Option<Provider>> = PerChannel::default();
        for &channel in Channel::ALL {
            let Some(p) = settings.provider(channel) else {
                continue;
            };
            let adapter = match &p.endpoint {
                Endpoint::Webhook {
                    url,
                    auth_header,
                    secret,
                } => Adapter::Webhook(Webhook::new(
                    url.clone(),
                    auth_header.as_ref(),
                    secret.as_ref(),
                    p.timeout,
                    pool_size,
                    &settings.provider_tls,
                )?),
                Endpoint::Smtp(endpoint) => {
                    Adapter::Smtp(Smtp::new(endpoint, p.timeout, pool_size, &settings.provider_tls)?)
                }
            };
            *by_channel.of_mut(channel) = Some(Provider {
                adapter,
                name: p.describe(),
            });
        }
        Ok(Providers { by_channel })
    }

    pub fn get(&self, channel: Channel) -> Option<&Provider> {
        self.by_channel.of(channel).as_ref()
    }

    /// The channels that have a provider.
    pub fn channels(&self) -> Vec<Channel> {
        Channel::ALL
            .iter()
            .copied()
            .filter(|c| self.get(*c).is_some())
            .collect()
    }
}
