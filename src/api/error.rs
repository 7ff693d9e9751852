//! The one place that maps failures to HTTP statuses, always with an
//! `{"error": "...", "code": "..."}` body: `error` as the Go service wrote it, `code` a stable
//! snake_case identifier for programs (docs/API.md lists them).

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::dispatch::backlog::BacklogFull;
use crate::dispatch::create::CreateError;
use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// A valid token whose scope does not cover the request.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    CorsRefused(String),
    #[error("method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error(
        "the request took longer than {0}; nothing is known about its effect, retry with the same idempotency key"
    )]
    Timeout(String),
    /// A handler panicked (a bug): logged, and answered instead of dropping the connection.
    #[error("internal error")]
    Panic,
    /// The workers are behind: the create was held back, then refused (nothing stored).
    #[error(transparent)]
    BacklogFull(BacklogFull),
    /// PostgreSQL cannot be reached: nothing was stored, and a retry may succeed.
    #[error("the database is unavailable; nothing was stored, retry later")]
    Unavailable(#[source] StoreError),
    #[error("internal error")]
    Internal(#[source] StoreError),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_unavailable() {
            ApiError::Unavailable(e)
        } else {
            ApiError::Internal(e)
        }
    }
}

impl From<CreateError> for ApiError {
    fn from(e: CreateError) -> Self {
        match e {
            CreateError::Invalid(msg) => ApiError::BadRequest(msg),
            CreateError::Backlog(e) => ApiError::BacklogFull(e),
            CreateError::Store(e) => e.into(),
        }
    }
}

impl ApiError {
    /// The stable, machine-readable name of this error (the `code` field).
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_request",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CorsRefused(_) => "cors_origin_not_allowed",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::BacklogFull(_) => "backlog_full",
            ApiError::Unavailable(_) => "database_unavailable",
            ApiError::Internal(_) | ApiError::Panic => "internal_error",
        }
    }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CorsRefused(_) => StatusCode::FORBIDDEN,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Panic => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::BacklogFull(_) | ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match &self {
            ApiError::Unavailable(e) => tracing::warn!(error = %e, "request refused: database unavailable"),
            // Said once per episode by the backlog's watcher; per request it would flood the log.
            ApiError::BacklogFull(e) => tracing::debug!(error = %e, "create refused"),
            // Logged once here, where it is handled; the client gets no internals.
            ApiError::Internal(e) => tracing::error!(error = %e, "request failed"),
            _ => {}
        }
        let status = self.status();
        let mut response = (status, Json(json!({"error": self.to_string(), "code": self.code()}))).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if matches!(self, ApiError::Unavailable(_) | ApiError::BacklogFull(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}
