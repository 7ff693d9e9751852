//! The HTTP API: the v1 contract of the Go service plus `/livez`, `/readyz`, `/metrics`.
//! `router` builds it from explicit state; `serve` runs it on a listener it is given.

pub mod error;
pub mod handlers;

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
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::app::App;
use error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The API's routes and `ops` (`/livez`, `/readyz`, `/metrics`: the daemon's own, which the
/// caller builds), behind the same layers.
pub fn router(app: App, ops: Router) -> Router {
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
    let router = v1
        .with_state(app.clone())
        .merge(ops)
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .route_layer(middleware::from_fn_with_state(app, track_metrics));
    let mut router = guarded(router, settings.request_timeout, settings.max_concurrent_requests);
    if !settings.cors_allowed_origins.is_empty() {
        let origins: Vec<HeaderValue> = settings
            .cors_allowed_origins
            .iter()
            .filter_map(|o| HeaderValue::from_str(o).ok())
            .collect();
        let allowed = origins.clone();
        router = router
            .layer(
                CorsLayer::new()
                    .allow_origin(AllowOrigin::list(origins))
                    .allow_methods([Method::GET, Method::POST])
                    .allow_headers([
                        axum::http::header::CONTENT_TYPE,
                        axum::http::header::AUTHORIZATION,
                        REQUEST_ID,
                    ])
                    .max_age(Duration::from_secs(600)),
            )
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let allowed = allowed.clone();
                refuse_foreign_preflight(allowed, req, next)
            }));
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

/// REQUEST_TIMEOUT (a JSON 408), MAX_CONCURRENT_REQUESTS, and a JSON 500 for a handler that
/// panics, around `router`.
pub fn guarded(router: Router, request_timeout: Duration, max_concurrent: usize) -> Router {
    router
        .layer(middleware::from_fn_with_state(request_timeout, time_limit))
        .layer(GlobalConcurrencyLimitLayer::new(max_concurrent))
        // Inside the trace and request-id layers (added after this): a panic below still gets
        // its JSON 500, its request id and the span's log line.
        .layer(CatchPanicLayer::custom(panic_response))
}

/// The bearer token of a request ("" when there is none).
pub fn bearer(headers: &axum::http::HeaderMap) -> &str {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .unwrap_or_default()
}

/// A configured token (compared by digest, in constant time, against every one) whose
/// scope covers the request's method.
async fn require_token(State(app): State<App>, req: Request, next: Next) -> Response {
    let presented = bearer(req.headers());
    let Some(scope) = crate::config::scope_of(&app.settings.api_tokens, presented).filter(|_| !presented.is_empty())
    else {
        return ApiError::Unauthorized.into_response();
    };
    if !scope.allows(req.method()) {
        return ApiError::Forbidden(format!(
            "this token's scope is {}, which may only read (GET); {} needs a send: token or one without a scope",
            scope.as_str(),
            req.method()
        ))
        .into_response();
    }
    next.run(req).await
}

/// REQUEST_TIMEOUT as a JSON 408, where tower-http's timeout layer answers with no body.
async fn time_limit(State(limit): State<Duration>, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout(humantime::format_duration(limit).to_string()).into_response(),
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let what = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = what, "a request handler panicked; answered 500");
    ApiError::Panic.into_response()
}

/// A CORS preflight from an origin that CORS_ALLOWED_ORIGINS does not list gets a JSON 403
/// that says so, rather than a 200 without the headers the browser looks for.
async fn refuse_foreign_preflight(allowed: Vec<HeaderValue>, req: Request, next: Next) -> Response {
    let preflight = req.method() == Method::OPTIONS
        && req
            .headers()
            .contains_key(axum::http::header::ACCESS_CONTROL_REQUEST_METHOD);
    if let (true, Some(origin)) = (preflight, req.headers().get(axum::http::header::ORIGIN)) {
        if !allowed.contains(origin) {
            let origin = origin.to_str().unwrap_or("(not text)");
            return ApiError::CorsRefused(format!(
                "origin {origin} is not allowed; CORS_ALLOWED_ORIGINS lists the origins that are"
            ))
            .into_response();
        }
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
        crate::tls::listener::TlsListener::start(files, settings.tls_reload_interval, shutdown.clone())
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

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    async fn answer(router: Router) -> (axum::http::StatusCode, serde_json::Value) {
        let request = Request::builder()
            .uri("/x")
            .body(axum::body::Body::empty())
            .expect("request");
        let response = guarded(router, Duration::from_millis(50), 8)
            .oneshot(request)
            .await
            .expect("infallible");
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("a JSON body"))
    }

    #[tokio::test]
    async fn a_request_slower_than_the_timeout_gets_a_json_408() {
        let slow = Router::new().route(
            "/x",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(5)).await;
                "late"
            }),
        );
        let (status, body) = answer(slow).await;
        assert_eq!(status, axum::http::StatusCode::REQUEST_TIMEOUT);
        assert_eq!(body["code"], "request_timeout");
        assert!(body["error"].as_str().unwrap_or_default().contains("50ms"), "{body}");
    }

    #[tokio::test]
    async fn a_handler_that_panics_gets_a_json_500_not_a_dropped_connection() {
        let broken = Router::new().route("/x", get(|| async { panic!("a bug") as &str }));
        let (status, body) = answer(broken).await;
        assert_eq!(status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            body,
            serde_json::json!({"error": "internal error", "code": "internal_error"})
        );
    }
}
