//! Providers per channel: two webhooks with their own auth headers, and e-mail through a real
//! SMTP server (aiosmtpd, tests/support/smtp_server.py): envelope, headers and body, a 451
//! retried, a 550 dead-lettered with its reply, STARTTLS with the test CA, AUTH, and a
//! refused connection that is transient.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use dispatchctl::broker::messages::{H_LAST_ERROR, H_LAST_STATUS, H_REASON};
use dispatchctl::domain::Channel;
use rcgen::ExtendedKeyUsagePurpose;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::helpers::{closed_port, drain_at_least, header, run, Env, ScriptedProvider, TestApp};
use crate::tls::Ca;

const WITHIN: Duration = Duration::from_secs(20);
const FROM: &str = "Dispatch <dispatch@example.com>";

// ---- the SMTP server ---------------------------------------------------------------------

/// One aiosmtpd server of this test, on a port of its own; stops when dropped.
struct SmtpServer {
    port: u16,
    mails: Arc<Mutex<Vec<Value>>>,
    _child: tokio::process::Child,
}

impl SmtpServer {
    /// None (and a note) without aiosmtpd, outside scripts/test.sh; a failure under CI=true.
    async fn start(args: &[&str]) -> Option<SmtpServer> {
        let (child, port, mails) = python_server("SMTP server (aiosmtpd)", "smtp_server.py", args).await?;
        Some(SmtpServer {
            port,
            mails,
            _child: child,
        })
    }

    fn mails(&self) -> Vec<Value> {
        self.mails.lock().expect("lock").clone()
    }

    fn url(&self, query: &str) -> String {
        format!("smtp://127.0.0.1:{}{query}", self.port)
    }
}

/// Starts tests/support/`script` with the test Python: it prints {"port": N}, then one JSON
/// line per event, collected here (a `mail` event's mail, or the line itself).
async fn python_server(
    what: &str,
    script: &str,
    args: &[&str],
) -> Option<(tokio::process::Child, u16, Arc<Mutex<Vec<Value>>>)> {
    let python = crate::helpers::test_python(what)?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support")
        .join(script);
    let mut child = tokio::process::Command::new(python)
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the test server");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(WITHIN, lines.next_line())
        .await
        .expect("the test server starts in time")
        .expect("read its stdout")
        .expect("it prints its port");
    let port = serde_json::from_str::<Value>(&first).expect("JSON")["port"]
        .as_u64()
        .expect("a port") as u16;
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = events.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Ok(event) = serde_json::from_str::<Value>(&line) {
                let event = event.get("mail").cloned().unwrap_or(event);
                sink.lock().expect("lock").push(event);
            }
        }
    });
    Some((child, port, events))
}

/// The value of header `name` of a mail, as the server parsed it.
fn mail_header(mail: &Value, name: &str) -> Option<String> {
    mail["headers"].as_array()?.iter().find_map(|pair| {
        let n = pair[0].as_str()?;
        n.eq_ignore_ascii_case(name)
            .then(|| pair[1].as_str().unwrap_or_default().to_string())
    })
}

async fn create(t: &TestApp, channel: &str, recipient: &str, content: &str, max_retries: i64) -> String {
    let (status, body) = t
        .post(
            "/v1/notifications",
            &json!({"channel": channel, "priority": "NORMAL", "recipient": recipient, "content": content, "maxRetries": max_retries}),
        )
        .await;
    assert_eq!(status.as_u16(), 202, "{body}");
    body["id"].as_str().expect("id").to_string()
}

/// (number, outcome, status code, error, provider) of each attempt.
async fn attempts(t: &TestApp, id: &str) -> Vec<(i32, String, Option<i32>, Option<String>, Option<String>)> {
    let (_, attempts) = t.app.store.lookup(id.parse().unwrap()).await.unwrap().expect("stored");
    attempts
        .into_iter()
        .map(|a| (a.attempt_number, a.outcome, a.status_code, a.error, a.provider))
        .collect()
}

fn email_env(url: String) -> Env {
    Env::new().set("EMAIL_PROVIDER_URL", url).set("EMAIL_FROM", FROM)
}

// ---- webhooks per channel ----------------------------------------------------------------

#[tokio::test]
async fn two_channels_reach_two_webhooks_each_with_only_its_own_auth_header() {
    let (sms, push) = (ScriptedProvider::start().await, ScriptedProvider::start().await);
    let env = Env::new()
        .set("SMS_PROVIDER_URL", sms.url.clone())
        .set("SMS_PROVIDER_AUTH_HEADER", "Authorization: Bearer t0k")
        .set("PUSH_PROVIDER_URL", push.url.clone())
        .set("PUSH_PROVIDER_AUTH_HEADER", "X-Api-Key: k3y");
    let t = TestApp::spawn(env, false).await;
    let sms_id = create(&t, "SMS", "+905550000001", "by sms", 3).await;
    let push_id = create(&t, "PUSH", "device-token-1", "by push", 3).await;
    t.wait_status(&sms_id, "SENT", WITHIN).await;
    t.wait_status(&push_id, "SENT", WITHIN).await;

    let (to_sms, to_push) = (sms.received(), push.received());
    assert_eq!(to_sms.len(), 1, "the SMS webhook got only the SMS");
    assert_eq!(to_push.len(), 1, "the push webhook got only the push");
    assert_eq!(to_sms[0].notification_id, sms_id);
    assert_eq!(to_sms[0].headers["authorization"], "Bearer t0k");
    assert!(
        to_sms[0].headers.get("x-api-key").is_none(),
        "push's header reached the SMS webhook"
    );
    assert_eq!(to_push[0].notification_id, push_id);
    assert_eq!(to_push[0].headers["x-api-key"], "k3y");
    assert!(
        to_push[0].headers.get("authorization").is_none(),
        "SMS's header reached the push webhook"
    );

    // Each attempt names where it went, and the operator's view shows it.
    let sms_host = sms.url.trim_start_matches("http://").trim_end_matches("/hook");
    let rows = attempts(&t, &sms_id).await;
    assert_eq!(
        rows[0].4.as_deref(),
        Some(format!("webhook {sms_host}").as_str()),
        "{rows:?}"
    );
    let shown = run(&t.env.values, &["notifications", &sms_id]).await;
    let out = String::from_utf8_lossy(&shown.stdout);
    assert!(
        shown.status.success() && out.contains(&format!("webhook {sms_host}")),
        "{out}"
    );
    assert!(!out.contains("t0k"), "the auth header's value is shown: {out}");
    t.stop().await;
}

// ---- e-mail over SMTP --------------------------------------------------------------------

#[tokio::test]
async fn an_email_arrives_as_a_mail_with_its_envelope_headers_and_body() {
    let Some(smtp) = SmtpServer::start(&[]).await else {
        return;
    };
    let t = TestApp::spawn(email_env(smtp.url("")), false).await;
    let content = "Your code is 1234.\nIt expires in 10 minutes: çà va ✓";
    let id = create(&t, "EMAIL", "ada@example.org", content, 3).await;
    let n = t.wait_status(&id, "SENT", WITHIN).await;

    let mails = smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:?}");
    let mail = &mails[0];
    assert_eq!(mail["mail_from"], "dispatch@example.com");
    assert_eq!(mail["rcpt_tos"], json!(["ada@example.org"]));
    assert_eq!(mail_header(mail, "To").as_deref(), Some("ada@example.org"));
    assert_eq!(
        mail_header(mail, "From").as_deref(),
        Some("Dispatch <dispatch@example.com>")
    );
    assert_eq!(mail_header(mail, "Message-ID"), Some(format!("<{id}@example.com>")));
    assert_eq!(mail_header(mail, "X-Notification-Id").as_deref(), Some(id.as_str()));
    assert_eq!(
        mail_header(mail, "X-Correlation-Id").as_deref(),
        n["correlationId"].as_str()
    );
    let content_type = mail_header(mail, "Content-Type")
        .unwrap_or_default()
        .to_ascii_lowercase();
    assert!(
        content_type.starts_with("text/plain") && content_type.contains("utf-8"),
        "{content_type}"
    );
    assert!(mail_header(mail, "Subject").is_none(), "the API has no subject: {mail}");
    let body = mail["body"].as_str().unwrap_or_default();
    assert_eq!(body.replace("\r\n", "\n").trim_end_matches('\n'), content);
    assert_eq!(
        n["providerMessageId"], mail["queue_id"],
        "the server's queue id is the provider message id"
    );
    let rows = attempts(&t, &id).await;
    assert_eq!(rows[0].1, "SUCCESS");
    assert_eq!(rows[0].2, Some(250));
    assert_eq!(rows[0].4, Some(format!("smtp 127.0.0.1:{}", smtp.port)));
    t.stop().await;
}

#[tokio::test]
async fn a_451_is_retried_and_then_delivered_with_the_same_message_id() {
    let Some(smtp) = SmtpServer::start(&[]).await else {
        return;
    };
    let t = TestApp::spawn(email_env(smtp.url("")), false).await;
    let id = create(&t, "EMAIL", "tempfail@example.org", "hello", 3).await;
    let n = t.wait_status(&id, "SENT", WITHIN).await;
    assert_eq!(n["attemptCount"], 2);
    let rows = attempts(&t, &id).await;
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("TRANSIENT", Some(451)), "{rows:?}");
    let error = rows[0].3.clone().unwrap_or_default();
    assert!(error.contains("451") && error.contains("Greylisted"), "{error}");
    assert_eq!((rows[1].1.as_str(), rows[1].2), ("SUCCESS", Some(250)));
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(
        mail_header(&mails[0], "Message-ID"),
        Some(format!("<{id}@example.com>"))
    );
    t.stop().await;
}

#[tokio::test]
async fn a_550_fails_at_once_and_is_dead_lettered_with_the_reply() {
    let Some(smtp) = SmtpServer::start(&[]).await else {
        return;
    };
    let t = TestApp::spawn(email_env(smtp.url("")), false).await;
    let id = create(&t, "EMAIL", "reject@example.org", "hello", 5).await;
    let n = t.wait_status(&id, "FAILED", WITHIN).await;
    assert_eq!(n["attemptCount"], 1, "a 5xx is permanent");
    let error = n["lastError"].as_str().unwrap_or_default().to_string();
    assert!(error.contains("550") && error.contains("User unknown"), "{n}");
    let letters = drain_at_least(&t.env.dlq(Channel::Email), 1, WITHIN).await;
    assert_eq!(letters.len(), 1);
    let h = &letters[0].0;
    assert_eq!(header(h, H_REASON).as_deref(), Some("permanent_error"));
    assert_eq!(header(h, H_LAST_STATUS).as_deref(), Some("550"));
    assert!(header(h, H_LAST_ERROR).unwrap_or_default().contains("User unknown"));
    assert!(smtp.mails().is_empty());
    t.stop().await;
}

/// A certificate for 127.0.0.1 from a CA of this test: the CA file, and the server's pair.
fn test_ca(dir: &std::path::Path) -> (PathBuf, PathBuf, PathBuf) {
    let ca = Ca::new("dispatchctl SMTP test CA");
    let (cert, key) = ca.issue(dir, "smtp", &["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    (ca.write(dir, "smtp-ca"), cert, key)
}

#[tokio::test]
async fn starttls_is_required_and_trusts_the_provider_ca_and_auth_logs_in() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = test_ca(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let Some(smtp) = SmtpServer::start(&["--tls", &cert, &key, "--auth", "mailer", "s3cret pass"]).await else {
        return;
    };
    let password = dir.path().join("smtp-password");
    std::fs::write(&password, "s3cret pass\n").unwrap();
    let env = email_env(format!("smtp://mailer@127.0.0.1:{}?tls=required", smtp.port))
        .set("PROVIDER_CA_FILE", ca.display().to_string())
        .set("EMAIL_PROVIDER_PASSWORD_FILE", password.display().to_string());
    let t = TestApp::spawn(env, false).await;
    let id = create(&t, "EMAIL", "ada@example.org", "over TLS", 3).await;
    t.wait_status(&id, "SENT", WITHIN).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0]["tls"], true, "sent after STARTTLS");
    assert_eq!(mails[0]["authenticated"], true, "sent after AUTH");
    t.stop().await;
}

#[tokio::test]
async fn an_smtp_server_whose_certificate_is_not_trusted_gets_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (_, cert, key) = test_ca(dir.path());
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let Some(smtp) = SmtpServer::start(&["--tls", &cert, &key]).await else {
        return;
    };
    let t = TestApp::spawn(email_env(smtp.url("?tls=required")), false).await;
    let id = create(&t, "EMAIL", "ada@example.org", "not in clear", 1).await;
    let n = t.wait_status(&id, "FAILED", WITHIN).await;
    let rows = attempts(&t, &id).await;
    let error = rows[0].3.clone().unwrap_or_default();
    assert_eq!((rows[0].1.as_str(), rows[0].2), ("TRANSIENT", None), "{rows:?}");
    assert!(
        error.to_lowercase().contains("certificate"),
        "the error says why: {error}"
    );
    assert_eq!(n["failureReason"], "retry_exhausted", "{n}");
    assert!(smtp.mails().is_empty(), "a mail went to an untrusted server");
    drain_at_least(&t.env.dlq(Channel::Email), 1, WITHIN).await;
    t.stop().await;
}

#[tokio::test]
async fn a_refused_connection_is_transient_and_retried() {
    let t = TestApp::spawn(email_env(format!("smtp://127.0.0.1:{}", closed_port())), false).await;
    let id = create(&t, "EMAIL", "ada@example.org", "nobody listens", 2).await;
    let n = t.wait_status(&id, "FAILED", WITHIN).await;
    assert_eq!(n["attemptCount"], 2, "retried once: {n}");
    assert_eq!(n["failureReason"], "retry_exhausted");
    let rows = attempts(&t, &id).await;
    for row in &rows {
        assert_eq!((row.1.as_str(), row.2), ("TRANSIENT", None), "{rows:?}");
        let error = row.3.clone().unwrap_or_default().to_lowercase();
        assert!(error.contains("refused"), "{error}");
    }
    drain_at_least(&t.env.dlq(Channel::Email), 1, WITHIN).await;
    t.stop().await;
}

#[tokio::test]
async fn a_recipient_that_is_not_an_address_fails_without_a_connection() {
    let Some(smtp) = SmtpServer::start(&[]).await else {
        return;
    };
    let t = TestApp::spawn(email_env(smtp.url("")), false).await;
    let id = create(&t, "EMAIL", "+905550000001", "wrong channel", 5).await;
    let n = t.wait_status(&id, "FAILED", WITHIN).await;
    assert_eq!(n["attemptCount"], 1);
    assert!(
        n["lastError"]
            .as_str()
            .unwrap_or_default()
            .contains("not an e-mail address"),
        "{n}"
    );
    drain_at_least(&t.env.dlq(Channel::Email), 1, WITHIN).await;
    assert!(smtp.mails().is_empty(), "a mail was sent");
    t.stop().await;
}

// ---- trace context -----------------------------------------------------------------------

#[tokio::test]
async fn a_callers_traceparent_reaches_the_provider_on_every_attempt_with_a_span_of_its_own() {
    let provider = ScriptedProvider::start().await;
    let t = TestApp::spawn(Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()), false).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let parent = format!("00-{trace_id}-00f067aa0ba902b7-01");
    let send = |recipient: &str, traceparent: &str| {
        t.client
            .post(t.url("/v1/notifications"))
            .header("traceparent", traceparent)
            .header("tracestate", "congo=t61rcWkgMzE")
            .json(&json!({"channel": "SMS", "priority": "NORMAL", "recipient": recipient, "content": "traced", "maxRetries": 3}))
            .send()
    };
    // flaky1: a 500 first, so a retry shows that each attempt is a span of its own.
    let r = send("flaky1-traced", &parent).await.unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let traced = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    let r = send("+905550000009", "00-not-a-trace-01").await.unwrap();
    assert_eq!(
        r.status().as_u16(),
        202,
        "a malformed traceparent is ignored, not refused"
    );
    let untraced = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    t.wait_status(&traced, "SENT", WITHIN).await;
    t.wait_status(&untraced, "SENT", WITHIN).await;

    let attempts = provider.for_notification(&traced);
    assert_eq!(attempts.len(), 2, "a 500, then the retry");
    let mut spans = Vec::new();
    for a in &attempts {
        let tp = a.headers["traceparent"].to_str().unwrap().to_string();
        let fields: Vec<&str> = tp.split('-').collect();
        assert_eq!((fields[0], fields[1], fields[3]), ("00", trace_id, "01"), "{tp}");
        assert_ne!(
            fields[2], "00f067aa0ba902b7",
            "the provider call is a child span, not the caller's"
        );
        assert_eq!(a.headers["tracestate"], "congo=t61rcWkgMzE");
        spans.push(fields[2].to_string());
    }
    assert_ne!(spans[0], spans[1], "each attempt has a span id of its own");
    let plain = provider.for_notification(&untraced);
    assert!(
        plain[0].headers.get("traceparent").is_none(),
        "no trace was brought, none is invented"
    );
    t.stop().await;
}

/// A collector behind TLS with a private CA: OTEL_EXPORTER_OTLP_CERTIFICATE is trusted.
#[tokio::test]
async fn the_otlp_export_trusts_otel_exporter_otlp_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("dispatchctl OTLP test CA");
    let (cert, key) = ca.issue(dir.path(), "otlp", &["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth);
    let ca_file = ca.write(dir.path(), "otlp-ca");
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let Some((_receiver, port, spans)) = python_server(
        "OTLP receiver (opentelemetry-proto)",
        "otlp_receiver.py",
        &["--tls", &cert, &key],
    )
    .await
    else {
        return;
    };
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("OTEL_EXPORTER_OTLP_ENDPOINT", format!("https://127.0.0.1:{port}"))
        .set("OTEL_EXPORTER_OTLP_CERTIFICATE", ca_file.display().to_string());
    let t = TestApp::spawn(env, false).await;
    let id = create(&t, "SMS", "+905550001111", "traced over TLS", 3).await;
    t.wait_status(&id, "SENT", WITHIN).await;
    let exported = crate::helpers::wait_for(WITHIN, || async {
        dispatchctl::otel::flush().await;
        spans
            .lock()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "consume and claim" && s["attributes"]["notification.id"] == id.as_str())
    })
    .await;
    assert!(exported, "no span of {id} reached the receiver over https");
    t.stop().await;
}

#[tokio::test]
async fn one_notifications_spans_share_the_callers_trace_and_reach_a_real_otlp_receiver() {
    let Some((_receiver, port, spans)) =
        python_server("OTLP receiver (opentelemetry-proto)", "otlp_receiver.py", &[]).await
    else {
        return;
    };
    let provider = ScriptedProvider::start().await;
    let env = Env::new()
        .set("WEBHOOK_SITE_URL", provider.url.clone())
        .set("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://127.0.0.1:{port}"));
    let t = TestApp::spawn(env, false).await;
    let (trace_id, caller) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let r = t
        .client
        .post(t.url("/v1/notifications"))
        .header("traceparent", format!("00-{trace_id}-{caller}-01"))
        .json(&json!({"channel": "SMS", "priority": "HIGH", "recipient": "flaky1-otel", "content": "traced", "maxRetries": 3}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 202);
    let id = r.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_string();
    t.wait_status(&id, "SENT", WITHIN).await;

    let wanted = [
        ("POST /v1/notifications", 1),
        ("outbox publish", 1),
        ("consume and claim", 2),
        ("provider call", 2),
        ("outcome commit", 2),
    ];
    let of_trace = || -> Vec<Value> {
        spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s["trace_id"] == trace_id)
            .cloned()
            .collect()
    };
    let complete = crate::helpers::wait_for(WITHIN, || async {
        dispatchctl::otel::flush().await;
        let got = of_trace();
        wanted
            .iter()
            .all(|(name, n)| got.iter().filter(|s| s["name"] == *name).count() >= *n)
    })
    .await;
    let got = of_trace();
    let names: Vec<&str> = got.iter().map(|s| s["name"].as_str().unwrap_or_default()).collect();
    assert!(complete, "spans of the trace: {names:?}");

    let named = |name: &str| got.iter().filter(|s| s["name"] == name).collect::<Vec<_>>();
    let api = named("POST /v1/notifications")[0];
    assert_eq!(api["parent_span_id"], caller, "the API's span continues the caller's");
    assert_eq!(api["kind"], 2, "SERVER");
    assert_eq!(api["attributes"]["http.response.status_code"], 202);
    assert_eq!(api["service"], "dispatchctl");
    let api_span = api["span_id"].as_str().unwrap();
    for name in ["outbox publish", "consume and claim", "provider call", "outcome commit"] {
        for span in named(name) {
            assert_eq!(
                span["parent_span_id"], api_span,
                "{name} is a child of the create: {span}"
            );
        }
    }
    // The provider saw each attempt's own span as its parent, and each span its answer.
    let calls = named("provider call");
    // The retry's call links to the first attempt's.
    let by_code = |code: i64| {
        calls
            .iter()
            .find(|c| c["attributes"]["http.response.status_code"] == code)
            .copied()
            .unwrap_or_else(|| panic!("no provider call answered {code}"))
    };
    let (first, retry) = (by_code(500), by_code(200));
    assert_eq!(first["links"], json!([]), "the first attempt links to nothing");
    assert_eq!(
        retry["links"],
        json!([[trace_id, first["span_id"]]]),
        "the retry links to the attempt before it"
    );
    let mut codes: Vec<i64> = calls
        .iter()
        .map(|s| s["attributes"]["http.response.status_code"].as_i64().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, [200, 500]);
    for received in provider.for_notification(&id) {
        let tp = received.headers["traceparent"].to_str().unwrap().to_string();
        let fields: Vec<&str> = tp.split('-').collect();
        assert_eq!(fields[1], trace_id);
        assert!(
            calls.iter().any(|c| c["span_id"] == fields[2]),
            "{tp} is not a provider call span"
        );
    }
    t.stop().await;
}

#[tokio::test]
async fn a_dead_collector_costs_spans_not_deliveries() {
    let provider = ScriptedProvider::start().await;
    let env = Env::new().set("WEBHOOK_SITE_URL", provider.url.clone()).set(
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        format!("http://127.0.0.1:{}", closed_port()),
    );
    let t = TestApp::spawn(env, false).await;
    let mut ids = Vec::new();
    for i in 0..20 {
        ids.push(create(&t, "SMS", &format!("+90555000{i:04}"), "collector down", 3).await);
    }
    for id in &ids {
        t.wait_status(id, "SENT", WITHIN).await;
    }
    // The flush gives up on the collector (its own time-out) rather than holding shutdown.
    let flushed = tokio::time::timeout(Duration::from_secs(30), dispatchctl::otel::flush()).await;
    assert!(flushed.is_ok(), "flushing to a dead collector hung");
    t.stop().await;
}
