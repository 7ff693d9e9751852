//! The SMTP provider of the e-mail channel: one text/plain mail per attempt, to the
//! notification's recipient, over a pooled lettre transport. Replies are classified as the
//! webhook's status codes are: 2xx sent, 4xx and connection failures transient, 5xx
//! permanent (the dead letter keeps the reply's code and text).

use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Identity, Tls, TlsParameters};
use lettre::transport::smtp::response::Response;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use secrecy::ExposeSecret;

use super::ProviderError;
use crate::config::{SmtpEndpoint, SmtpTls};
use crate::domain::{response_excerpt, DeliveryResult};
use crate::store::Claimed;
use crate::tls::ClientTlsFiles;

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    /// The right-hand side of every Message-ID: the sender's domain.
    id_domain: String,
    timeout: Duration,
}

impl Smtp {
    pub fn new(
        endpoint: &SmtpEndpoint,
        timeout: Duration,
        pool_size: usize,
        tls: &ClientTlsFiles,
    ) -> Result<Self, ProviderError> {
        let smtp_error = |e: lettre::transport::smtp::Error| ProviderError::Smtp(crate::root_cause(&e));
        let mut params = TlsParameters::builder(endpoint.host.clone());
        if let Some(ca) = &tls.ca_file {
            let pem =
                std::fs::read(ca).map_err(|e| ProviderError::Smtp(format!("cannot read {}: {e}", ca.display())))?;
            params = params.add_root_certificate(Certificate::from_pem(&pem).map_err(smtp_error)?);
        }
        if let (Some(cert), Some(key)) = (&tls.cert_file, &tls.key_file) {
            let read = |path: &std::path::Path| {
                std::fs::read(path).map_err(|e| ProviderError::Smtp(format!("cannot read {}: {e}", path.display())))
            };
            params = params.identify_with(Identity::from_pem(&read(cert)?, &read(key)?).map_err(smtp_error)?);
        }
        let params = params.build_rustls().map_err(smtp_error)?;
        let tls = match endpoint.tls {
            SmtpTls::Opportunistic => Tls::Opportunistic(params),
            SmtpTls::Required => Tls::Required(params),
            SmtpTls::Implicit => Tls::Wrapper(params),
        };
        // "dangerous" only means that TLS is what the caller sets: `tls` above.
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(endpoint.host.as_str())
            .port(endpoint.port)
            .tls(tls)
            .timeout(Some(timeout))
            .pool_config(PoolConfig::new().max_size(u32::try_from(pool_size).unwrap_or(u32::MAX).max(1)));
        if let Some(user) = &endpoint.user {
            let password = endpoint
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Smtp {
            transport: builder.build(),
            id_domain: endpoint.from.email.domain().to_string(),
            from: endpoint.from.clone(),
            timeout,
        })
    }

    pub async fn deliver(&self, claimed: &Claimed) -> DeliveryResult {
        let (n, attempt) = (claimed.notification(), claimed.attempt());
        let to: Mailbox = match n.recipient.parse() {
            Ok(to) => to,
            Err(e) => return DeliveryResult::permanent(None, &format!("the recipient is not an e-mail address ({e})")),
        };
        let raw = |name: &'static str, value: String| HeaderValue::new(HeaderName::new_from_ascii_str(name), value);
        // The same Message-ID on every attempt: a retry that reaches the mailbox after all
        // threads as the same mail, not a new one.
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .message_id(Some(format!("<{}@{}>", n.id, self.id_domain)))
            .header(ContentType::TEXT_PLAIN)
            .raw_header(raw("X-Notification-Id", n.id.to_string()))
            .raw_header(raw("X-Correlation-Id", n.correlation_id.clone()))
            .raw_header(raw("X-Attempt", attempt.to_string()))
            .body(n.content.clone());
        let message = match message {
            Ok(m) => m,
            Err(e) => return DeliveryResult::permanent(None, &format!("cannot build the mail: {e}")),
        };
        // lettre's timeout bounds each read and write; this one bounds the transaction.
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(reply)) => DeliveryResult::Success {
                status: u16::from(reply.code()),
                provider_message_id: queue_id(&reply),
                body: response_excerpt(reply_text(&reply).as_bytes()),
            },
            Ok(Err(e)) => classify(&e),
            Err(_) => DeliveryResult::transient(
                None,
                &format!(
                    "the SMTP server did not finish within {}",
                    humantime::format_duration(self.timeout)
                ),
            ),
        }
    }
}

/// 4xx transient, 5xx permanent, anything else (refused, reset, TLS, no STARTTLS offered
/// with tls=required) transient: the server may come back or be fixed.
fn classify(e: &lettre::transport::smtp::Error) -> DeliveryResult {
    let text = || std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default();
    match e.status() {
        Some(code) => {
            let (status, error) = (Some(u16::from(code)), format!("SMTP server answered {code} {}", text()));
            if e.is_permanent() {
                DeliveryResult::permanent(status, &error)
            } else {
                DeliveryResult::transient(status, &error)
            }
        }
        None => {
            let reason = crate::tls::describe(e).unwrap_or_else(|| crate::root_cause(e));
            DeliveryResult::transient(None, &format!("cannot send through the SMTP server: {reason}"))
        }
    }
}

fn reply_text(reply: &Response) -> String {
    reply.message().collect::<Vec<_>>().join(" ")
}

/// The server's queue id, where its reply names one: `250 2.0.0 Ok: queued as 4F3A91C2`
/// (Postfix, aiosmtpd's custom handlers) or `250 OK id=1tqX9b-000Abc-7Q` (Exim).
fn queue_id(reply: &Response) -> Option<String> {
    let text = reply_text(reply);
    let after = |marker: &str| {
        let start = text.find(marker)? + marker.len();
        text[start..]
            .split_whitespace()
            .next()
            .map(|id| id.trim_end_matches(['.', ',', ';']).to_string())
            .filter(|id| !id.is_empty())
    };
    after("queued as ").or_else(|| after("id="))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lettre::transport::smtp::response::{Category, Code, Detail, Severity};

    fn ok(lines: &[&str]) -> Response {
        let code = Code::new(Severity::PositiveCompletion, Category::MailSystem, Detail::Zero);
        Response::new(code, lines.iter().map(|l| l.to_string()).collect())
    }

    #[test]
    fn queue_ids_come_from_the_reply() {
        assert_eq!(
            queue_id(&ok(&["2.0.0 Ok: queued as 4F3A91C2"])).as_deref(),
            Some("4F3A91C2")
        );
        assert_eq!(
            queue_id(&ok(&["OK id=1tqX9b-000Abc-7Q"])).as_deref(),
            Some("1tqX9b-000Abc-7Q")
        );
        assert_eq!(queue_id(&ok(&["Message accepted for delivery"])), None);
    }
}
