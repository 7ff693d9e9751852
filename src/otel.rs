//! OpenTelemetry traces, exported over OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set
//! (a no-op tracer otherwise). Spans are made explicitly, with explicit parents, because a
//! notification's path crosses tasks, processes and time: the API's span is the child of the
//! caller's `traceparent`; its context is stored with the notification, and every later span
//! (publish, claim, provider call, outcome) is its child, in whichever process it happens.
//!
//! Export is batched on the SDK's own thread with a bounded queue (OTEL_BSP_MAX_QUEUE_SIZE,
//! 2048 spans): a collector that is down or slow costs dropped spans and a warning, never
//! latency or memory on the delivery path.

use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use bytes::Bytes;
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer as _,
    TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};

use crate::config::Settings;
use crate::domain::TraceContext;
use crate::tls::ClientTlsFiles;

static TRACER: OnceLock<Tracer> = OnceLock::new();
static PROVIDER: Mutex<Option<SdkTracerProvider>> = Mutex::new(None);

/// Starts the exporter when OTEL_EXPORTER_OTLP_ENDPOINT is set; once per process (later
/// calls keep the first). Needs a tokio runtime: exports run on it.
pub fn init(settings: &Settings) {
    let Some(endpoint) = &settings.otel_endpoint else {
        return;
    };
    if TRACER.get().is_some() {
        return;
    }
    let traces = format!("{}/v1/traces", endpoint.as_str().trim_end_matches('/'));
    let client = match ExportClient::new(&settings.otel_tls) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "tracing off: cannot build the OTLP client");
            return;
        }
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(traces.clone())
        .with_http_client(client)
        .build();
    let exporter = match exporter {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "tracing off: cannot build the OTLP exporter");
            return;
        }
    };
    // Resource (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES) and sampler
    // (OTEL_TRACES_SAMPLER, parent-based always-on by default) come from the environment.
    let resource = opentelemetry_sdk::Resource::builder()
        .with_service_name(std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| "dispatchctl".into()))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("dispatchctl");
    if TRACER.set(tracer).is_ok() {
        if let Ok(mut slot) = PROVIDER.lock() {
            *slot = Some(provider);
        }
        tracing::info!(endpoint = %traces, "exporting traces over OTLP/HTTP");
    }
}

/// Exports what is queued (at shutdown, and in tests). The SDK's flush blocks until the
/// export is done, and the export runs on this runtime: it waits on a blocking thread.
pub async fn flush() {
    let Some(provider) = PROVIDER.lock().ok().and_then(|p| p.clone()) else {
        return;
    };
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || provider.force_flush()).await {
        tracing::warn!(error = %e, "could not export the last spans");
    }
}

/// One span; ended when dropped, or by `end`.
pub struct Span {
    cx: Context,
}

impl Span {
    /// A span named `name` under `parent` (a caller's context, or none for a root).
    pub fn start(name: &'static str, kind: SpanKind, parent: Option<&TraceContext>) -> Span {
        Self::start_at(name, kind, parent, None)
    }

    /// A span that began at `start` (the claim's span starts when the message arrived,
    /// before the claim told which trace it belongs to).
    pub fn start_at(
        name: &'static str,
        kind: SpanKind,
        parent: Option<&TraceContext>,
        start: Option<SystemTime>,
    ) -> Span {
        Self::begin(name, kind, parent, start, None)
    }

    /// A span under `parent` linked to span `linked` (16 hex digits) of the same trace: a
    /// retry's provider call, linked to the attempt before it.
    pub fn start_linked(
        name: &'static str,
        kind: SpanKind,
        parent: Option<&TraceContext>,
        linked: Option<&str>,
    ) -> Span {
        Self::begin(name, kind, parent, None, linked)
    }

    fn begin(
        name: &'static str,
        kind: SpanKind,
        parent: Option<&TraceContext>,
        start: Option<SystemTime>,
        linked: Option<&str>,
    ) -> Span {
        let Some(tracer) = TRACER.get() else {
            return Span { cx: Context::new() };
        };
        let parent_cx = parent.map(remote).unwrap_or_default();
        let mut builder = tracer.span_builder(name).with_kind(kind);
        if let Some(at) = start {
            builder = builder.with_start_time(at);
        }
        let earlier = parent_cx.span().span_context().clone();
        if let Some(span_id) = linked
            .and_then(|s| SpanId::from_hex(s).ok())
            .filter(|_| earlier.is_valid())
        {
            let sc = SpanContext::new(
                earlier.trace_id(),
                span_id,
                earlier.trace_flags(),
                true,
                earlier.trace_state().clone(),
            );
            builder = builder.with_links(vec![opentelemetry::trace::Link::with_context(sc)]);
        }
        let span = builder.start_with_context(tracer, &parent_cx);
        Span {
            cx: parent_cx.with_span(span),
        }
    }

    /// Whether this span records (tracing on and sampled): attributes that cost an
    /// allocation are worth making only then.
    pub fn recording(&self) -> bool {
        self.cx.span().is_recording()
    }

    pub fn set(&self, key: &'static str, value: impl Into<opentelemetry::Value>) {
        self.cx.span().set_attribute(KeyValue::new(key, value.into()));
    }

    pub fn fail(&self, why: impl Into<String>) {
        self.cx.span().set_status(Status::error(why.into()));
    }

    /// This span's context as a `traceparent`, when it is a real span (tracing on).
    pub fn context(&self) -> Option<TraceContext> {
        let span = self.cx.span();
        let sc = span.span_context();
        if !sc.is_valid() {
            return None;
        }
        let state = sc.trace_state().header();
        TraceContext::parse(
            &format!("00-{}-{}-{:02x}", sc.trace_id(), sc.span_id(), sc.trace_flags().to_u8()),
            Some(&state),
        )
    }

    pub fn end(self) {}
}

impl Drop for Span {
    fn drop(&mut self) {
        self.cx.span().end();
    }
}

fn remote(t: &TraceContext) -> Context {
    let (Ok(trace_id), Ok(span_id), Ok(flags)) = (
        TraceId::from_hex(t.trace_id()),
        SpanId::from_hex(t.parent_id()),
        u8::from_str_radix(t.flags(), 16),
    ) else {
        return Context::new();
    };
    let state = t
        .tracestate
        .as_deref()
        .and_then(|s| s.parse::<TraceState>().ok())
        .unwrap_or_default();
    let sc = SpanContext::new(trace_id, span_id, TraceFlags::new(flags), true, state);
    Context::new().with_remote_span_context(sc)
}

/// The OTLP exporter's HTTP client: a reqwest client (rustls, the system's roots and
/// OTEL_EXPORTER_OTLP_CERTIFICATE, the client certificate if one is set), run on the
/// tokio runtime that `init` was called on, because the SDK's batch thread has none.
#[derive(Debug)]
struct ExportClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl ExportClient {
    fn new(tls: &ClientTlsFiles) -> Result<Self, String> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|e| e.to_string())?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .user_agent(concat!("dispatchctl/", env!("CARGO_PKG_VERSION")))
            .use_preconfigured_tls(crate::tls::client_config(tls).map_err(|e| e.to_string())?)
            .build()
            .map_err(|e| e.to_string())?;
        Ok(ExportClient { client, runtime })
    }
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for ExportClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, opentelemetry_http::HttpError> {
        let client = self.client.clone();
        let exchange = async move {
            let (parts, body) = request.into_parts();
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut out = http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                out = out.header(name, value);
            }
            let bytes = response.bytes().await?;
            Ok::<_, opentelemetry_http::HttpError>(out.body(bytes)?)
        };
        self.runtime.spawn(exchange).await?
    }
}
