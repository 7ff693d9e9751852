//! Where each channel delivers: `<CHANNEL>_PROVIDER_URL` (or the Go service's single
//! `WEBHOOK_SITE_URL`), with that channel's auth header, signing secret and timeout, and the
//! SMTP settings of an e-mail channel that sends mail itself.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};

use super::{check_url, invalid, ConfigError, Raw};
use crate::domain::{Channel, PerChannel};

/// The setting names of one channel.
pub(super) struct ChannelKeys {
    pub url: &'static str,
    pub auth_header: &'static str,
    pub secret: &'static str,
    pub timeout: &'static str,
}

pub(super) const CHANNEL_KEYS: PerChannel<ChannelKeys> = PerChannel {
    sms: ChannelKeys {
        url: "SMS_PROVIDER_URL",
        auth_header: "SMS_PROVIDER_AUTH_HEADER",
        secret: "SMS_WEBHOOK_SECRET",
        timeout: "SMS_PROVIDER_TIMEOUT",
    },
    email: ChannelKeys {
        url: "EMAIL_PROVIDER_URL",
        auth_header: "EMAIL_PROVIDER_AUTH_HEADER",
        secret: "EMAIL_WEBHOOK_SECRET",
        timeout: "EMAIL_PROVIDER_TIMEOUT",
    },
    push: ChannelKeys {
        url: "PUSH_PROVIDER_URL",
        auth_header: "PUSH_PROVIDER_AUTH_HEADER",
        secret: "PUSH_WEBHOOK_SECRET",
        timeout: "PUSH_PROVIDER_TIMEOUT",
    },
};

/// The provider of one channel.
#[derive(Clone, Debug)]
pub struct ChannelProvider {
    pub endpoint: Endpoint,
    /// Of one request (one SMTP transaction).
    pub timeout: Duration,
    /// The setting that timeout came from, for errors that name it.
    pub timeout_key: &'static str,
}

#[derive(Clone, Debug)]
pub enum Endpoint {
    Webhook {
        url: url::Url,
        auth_header: Option<AuthHeader>,
        secret: Option<SecretString>,
    },
    Smtp(SmtpEndpoint),
}

/// One header sent with every webhook delivery. Its value is a credential: `Debug` hides it.
#[derive(Clone, Debug)]
pub struct AuthHeader {
    pub name: reqwest::header::HeaderName,
    pub value: SecretString,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// `smtp://`: STARTTLS when the server offers it.
    Opportunistic,
    /// `smtp://…?tls=required`: STARTTLS or no mail.
    Required,
    /// `smtps://`: TLS from the first byte.
    Implicit,
}

#[derive(Clone, Debug)]
pub struct SmtpEndpoint {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    pub user: Option<String>,
    pub password: Option<SecretString>,
    /// EMAIL_FROM, checked to be a mailbox.
    pub from: lettre::message::Mailbox,
}

impl ChannelProvider {
    /// Kind and host, as each attempt records it: `webhook hooks.example.com`,
    /// `smtp mail.example.com:587`. Never a path, a query or a credential.
    pub fn describe(&self) -> String {
        match &self.endpoint {
            Endpoint::Webhook { url, .. } => {
                let host = url.host_str().unwrap_or_default();
                match url.port() {
                    Some(port) => format!("webhook {host}:{port}"),
                    None => format!("webhook {host}"),
                }
            }
            Endpoint::Smtp(s) => format!("smtp {}:{}", s.host, s.port),
        }
    }
}

/// The provider of each channel (None: the channel has nowhere to deliver).
pub(super) fn channel_providers(raw: &Raw<'_>) -> Result<PerChannel<Option<ChannelProvider>>, ConfigError> {
    let global_url = raw
        .get("WEBHOOK_SITE_URL")
        .map(|v| check_url("WEBHOOK_SITE_URL", &v, &["http", "https"]))
        .transpose()?;
    let global_timeout = raw.duration("PROVIDER_TIMEOUT")?;
    let mut out: PerChannel<Option<ChannelProvider>> = PerChannel::default();
    for &channel in Channel::ALL {
        let keys = CHANNEL_KEYS.of(channel);
        let timeout_key = if raw.get(keys.timeout).is_some() {
            keys.timeout
        } else {
            "PROVIDER_TIMEOUT"
        };
        let timeout = match timeout_key {
            "PROVIDER_TIMEOUT" => global_timeout,
            key => raw.duration(key)?,
        };
        let auth_header = raw
            .get(keys.auth_header)
            .map(|v| auth_header(keys.auth_header, &v))
            .transpose()?;
        let own_secret = raw.get(keys.secret).map(SecretString::from);
        let endpoint = match raw.get(keys.url) {
            Some(value) => channel_endpoint(raw, channel, keys, &value)?,
            None => global_url.clone().map(|url| Endpoint::Webhook {
                url,
                auth_header: None,
                secret: None,
            }),
        };
        let endpoint = match endpoint {
            Some(Endpoint::Webhook { url, .. }) => Endpoint::Webhook {
                url,
                auth_header,
                secret: own_secret.or_else(|| raw.get("WEBHOOK_SECRET").map(SecretString::from)),
            },
            Some(smtp @ Endpoint::Smtp(_)) => {
                for key in [keys.auth_header, keys.secret] {
                    if raw.get(key).is_some() {
                        return Err(invalid(
                            key,
                            format!("applies to webhooks only, and {} is an SMTP server", keys.url),
                        ));
                    }
                }
                smtp
            }
            None => {
                for key in [keys.auth_header, keys.secret, keys.timeout] {
                    if raw.get(key).is_some() {
                        return Err(invalid(
                            key,
                            format!(
                                "is set, but {} has no provider: set {} or WEBHOOK_SITE_URL",
                                channel.as_str(),
                                keys.url
                            ),
                        ));
                    }
                }
                continue;
            }
        };
        *out.of_mut(channel) = Some(ChannelProvider {
            endpoint,
            timeout,
            timeout_key,
        });
    }
    Ok(out)
}

fn channel_endpoint(
    raw: &Raw<'_>,
    channel: Channel,
    keys: &ChannelKeys,
    value: &str,
) -> Result<Option<Endpoint>, ConfigError> {
    let parsed = url::Url::parse(value).map_err(|e| invalid(keys.url, format!("not a URL ({e})")))?;
    match (parsed.scheme(), channel) {
        ("http" | "https", _) => Ok(Some(Endpoint::Webhook {
            url: check_url(keys.url, value, &["http", "https"])?,
            auth_header: None,
            secret: None,
        })),
        ("smtp" | "smtps", Channel::Email) => smtp_endpoint(raw, &parsed).map(|s| Some(Endpoint::Smtp(s))),
        ("smtp" | "smtps", _) => Err(invalid(
            keys.url,
            format!(
                "{}:// is for the e-mail channel only (EMAIL_PROVIDER_URL); {} delivers to a webhook: http:// or https://",
                parsed.scheme(),
                channel.as_str()
            ),
        )),
        (scheme, Channel::Email) => Err(invalid(
            keys.url,
            format!("scheme \"{scheme}\" is not one of http, https (a webhook), smtp, smtps (an SMTP server)"),
        )),
        (scheme, _) => Err(invalid(
            keys.url,
            format!("scheme \"{scheme}\" is not one of http, https"),
        )),
    }
}

fn smtp_endpoint(raw: &Raw<'_>, url: &url::Url) -> Result<SmtpEndpoint, ConfigError> {
    const KEY: &str = "EMAIL_PROVIDER_URL";
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid(KEY, "the URL has no host".into()))?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let mut tls = if url.scheme() == "smtps" {
        SmtpTls::Implicit
    } else {
        SmtpTls::Opportunistic
    };
    for (name, value) in url.query_pairs() {
        match (name.as_ref(), value.as_ref(), tls) {
            ("tls", "required", SmtpTls::Opportunistic | SmtpTls::Required) => tls = SmtpTls::Required,
            ("tls", "opportunistic", SmtpTls::Opportunistic) => {}
            ("tls", other, SmtpTls::Implicit) => {
                return Err(invalid(
                    KEY,
                    format!("smtps:// is TLS from the start; tls={other} is for smtp:// (STARTTLS)"),
                ))
            }
            ("tls", other, _) => {
                return Err(invalid(
                    KEY,
                    format!("tls={other} is not one of tls=required, tls=opportunistic (the default)"),
                ))
            }
            (other, _, _) => {
                return Err(invalid(
                    KEY,
                    format!("unknown parameter \"{other}\"; the one accepted is tls=required"),
                ))
            }
        }
    }
    // The ports of RFC 8314: implicit TLS on 465, submission with STARTTLS on 587.
    let port = url.port().unwrap_or(match tls {
        SmtpTls::Implicit => 465,
        SmtpTls::Required => 587,
        SmtpTls::Opportunistic => 25,
    });
    let decode = |s: &str| percent_decode(s).map_err(|reason| invalid(KEY, reason));
    let user = Some(url.username()).filter(|u| !u.is_empty()).map(decode).transpose()?;
    let in_url = url.password().map(decode).transpose()?.map(SecretString::from);
    let password = match (in_url, raw.get("EMAIL_PROVIDER_PASSWORD")) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "EMAIL_PROVIDER_PASSWORD",
                "EMAIL_PROVIDER_URL holds a password too; give it in one place".into(),
            ))
        }
        (Some(p), None) => Some(p),
        (None, Some(p)) => Some(SecretString::from(p)),
        (None, None) => None,
    };
    if password.is_some() && user.is_none() {
        return Err(invalid(
            "EMAIL_PROVIDER_PASSWORD",
            "is set, but EMAIL_PROVIDER_URL names no user to log in as (smtp://USER@host:587)".into(),
        ));
    }
    let from = raw.get("EMAIL_FROM").ok_or_else(|| {
        invalid(
            "EMAIL_FROM",
            "must be set when EMAIL_PROVIDER_URL is an SMTP server: it is the sender of every mail".into(),
        )
    })?;
    let from = from.parse::<lettre::message::Mailbox>().map_err(|e| {
        invalid(
            "EMAIL_FROM",
            format!(
                "\"{from}\" is not an address ({e}); use dispatch@example.com or \"Dispatch <dispatch@example.com>\""
            ),
        )
    })?;
    Ok(SmtpEndpoint {
        host,
        port,
        tls,
        user,
        password,
        from,
    })
}

fn percent_decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|d| d.into_owned())
        .map_err(|_| "the user or password is not UTF-8 once percent-decoded".into())
}

/// `Name: value`. The error never repeats the value: it is a credential.
fn auth_header(key: &'static str, text: &str) -> Result<AuthHeader, ConfigError> {
    let accepted = "use one header as Name: value, e.g. Authorization: Bearer <token>";
    let Some((name, value)) = text.split_once(':') else {
        return Err(invalid(key, format!("has no colon; {accepted}")));
    };
    let name = reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
        .map_err(|_| invalid(key, format!("\"{}\" is not a header name; {accepted}", name.trim())))?;
    let value = value.trim();
    if value.is_empty() {
        return Err(invalid(
            key,
            format!("the value after \"{name}:\" is empty; {accepted}"),
        ));
    }
    if reqwest::header::HeaderValue::from_str(value).is_err() {
        return Err(invalid(
            key,
            format!(
                "the value of {name} holds a character a header cannot carry (a control character or a line break)"
            ),
        ));
    }
    Ok(AuthHeader {
        name,
        value: SecretString::from(value.to_string()),
    })
}

impl AuthHeader {
    pub fn value(&self) -> &str {
        self.value.expose_secret()
    }
}
