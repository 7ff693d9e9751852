//! The HTTP API: the v1 contract of the Go service plus `/livez`, `/readyz`, `/metrics`.
//! `router` builds it from explicit state; `serve` runs it on a listener it is given.

pub mod error;
pub mod handlers;
pub mod tls_listener;

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::app::App;
use crate::ops::{self, Readiness};
use error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: App, readiness: Readiness) -> Router {
    let settings = app.settings.clone();
    let mut v1 = Router::new()
        .route(
            "/v1/notifications",
            post(handlers::create_notification).get(handlers::list_notifications),
        )
        .route("/v1/notifications/batch", post(handlers::create_batch))
        .route("/v1/notifications/{id}", get(handlers::get_notification))
        .route("/v1/notifications/{id}/cancel", post(handlers::cancel_notification))
        .route("/v1/batches/{batch_id}", get(handlers::batch_summary));
    if !settings.api_tokens.is_empty() {
        v1 = v1.route_layer(middleware::from_fn_with_state(app.clone(), require_token));
    }
    let mut router = v1
        .with_state(app.clone())
        .merge(ops::router(readiness))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(app, track_metrics))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            settings.request_timeout,
        ))
        .layer(GlobalConcurrencyLimitLayer::new(settings.max_concurrent_requests));
    if !settings.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        router = router.layer(
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .allow_methods([Method::GET, Method::POST])
                .allow_headers([
                    axum::http::header::CONTENT_TYPE,
                    axum::http::header::AUTHORIZATION,
                    REQUEST_ID,
                ])
                .max_age(Duration::from_secs(600)),
        );
    }
    router
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .headers()
                        .get(&REQUEST_ID)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default();
                    tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id)
                })
                // A 503 from /readyz is an answer, not a failure; real failures are logged
                // once where they are handled (api::error).
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
}

async fn track_metrics(State(app): State<App>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let labels = [method.as_str(), route.as_str(), status.as_str()];
    app.metrics.http_requests.with_label_values(&labels).inc();
    app.metrics
        .http_duration
        .with_label_values(&labels)
        .observe(started.elapsed().as_secs_f64());
    response
}

/// Bearer tokens compared in constant time, against every configured token.
async fn require_token(State(app): State<App>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default();
    let mut ok = subtle::Choice::from(0u8);
    for token in &app.settings.api_tokens {
        ok |= presented.as_bytes().ct_eq(token.expose_secret().as_bytes());
    }
    if presented.is_empty() || !bool::from(ok) {
        return ApiError::Unauthorized.into_response();
    }
    next.run(req).await
}

/// Serves `router` on `listener` until `shutdown`, then lets in-flight requests finish for
/// at most `grace`. Unlike `axum::serve`, connections get a header read timeout, so a client
/// that sends its headers byte by byte (slow loris) cannot hold a connection forever.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: CancellationToken,
    settings: &crate::config::Settings,
) -> std::io::Result<()> {
    let (grace, header_timeout) = (settings.shutdown_timeout, settings.header_read_timeout);
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    let tls = settings.listener_tls.as_ref().map(|files| {
        tls_listener::TlsListener::start(files, settings.tls_reload_interval, shutdown.clone())
            .map_err(std::io::Error::other)
    });
    let tls = tls.transpose()?;
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(router.clone());
        if let Some(tls) = &tls {
            // The handshake runs in the connection's task, so a slow client holds up no other.
            let (tls, builder, watcher) = (tls.clone(), builder.clone(), graceful.watcher());
            tokio::spawn(async move {
                let Some(stream) = tls.accept(stream, header_timeout).await else {
                    return;
                };
                let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                let _ = watcher.watch(connection).await;
            });
            continue;
        }
        let connection = builder.serve_connection(TokioIo::new(stream), service).into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // Client resets and timeouts end connections; nothing to report.
            let _ = connection.await;
        });
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!(
            grace_ms = grace.as_millis() as u64,
            "requests still running after the shutdown timeout; closing"
        );
    }
    Ok(())
}
