//! The v1 endpoints of the contract. Handlers decode and validate input, call a use case or
//! the store, and shape the response; status mapping lives in `error.rs`.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::error::ApiError;
use crate::app::App;
use crate::domain::{BatchStatus, Channel, Notification, NotificationRequest, Status, TraceContext, Transition};
use crate::otel::Span;
use crate::store::{CancelOutcome, ListFilter};
use opentelemetry::trace::SpanKind;

pub const DEFAULT_PAGE_SIZE: i64 = 50;
pub const MAX_PAGE_SIZE: i64 = 100;

fn request_id(headers: &HeaderMap) -> Option<&str> {
    headers.get("x-request-id").and_then(|v| v.to_str().ok())
}

/// The server span of a create, child of the caller's `traceparent`, and the context the
/// notification keeps: this span's when tracing is on, else the caller's as it came.
fn create_span(name: &'static str, headers: &HeaderMap) -> (Span, Option<TraceContext>) {
    let incoming = trace(headers);
    let span = Span::start(name, SpanKind::Server, incoming.as_ref());
    span.set("http.request.method", "POST");
    span.set("http.route", name.trim_start_matches("POST "));
    let kept = span.context().or(incoming);
    (span, kept)
}

/// Records the create's answer on its span: 202, or the error's status and code.
fn answered(span: &Span, error: Option<&ApiError>) {
    match error {
        None => span.set("http.response.status_code", 202_i64),
        Some(e) => {
            span.set("http.response.status_code", i64::from(e.status().as_u16()));
            span.set("error.type", e.code());
        }
    }
}

/// The W3C trace context of the request, when its `traceparent` is valid.
fn trace(headers: &HeaderMap) -> Option<TraceContext> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    TraceContext::parse(header("traceparent")?, header("tracestate"))
}

/// Reads a JSON body within `limit` bytes. A missing Content-Type is read as JSON, so that
/// scripts which forget the header keep working; any other type (a form, text) is refused.
async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Body, limit: usize) -> Result<T, ApiError> {
    if let Some(ct) = headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or_default().to_ascii_lowercase();
        let essence = ct.split(';').next().unwrap_or_default().trim();
        if essence != "application/json" && !essence.ends_with("+json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type \"{essence}\" is not supported; send application/json"
            )));
        }
    }
    let bytes = axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
        if too_large {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!("cannot read request body: {e}"))
        }
    })?;
    decode_json(&bytes)
}

/// Decodes a request body into `T`, naming the offending field on error. Pure, so the
/// fuzz targets and property tests drive it directly.
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest("request body is empty; send a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut *de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." || path.is_empty() {
            ApiError::BadRequest(format!("invalid JSON body: {inner}"))
        } else {
            ApiError::BadRequest(format!("invalid JSON body: {path}: {inner}"))
        }
    })?;
    // Anything after the value (a second object, stray text) would otherwise be dropped
    // unseen; the client most likely meant to send it.
    de.end()
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}; send exactly one JSON value")))?;
    Ok(value)
}

/// An id that is not a UUID names nothing that can exist, so it is a 404 (the only
/// failure the contract lists for these paths), with a body that says why.
fn parse_uuid(value: &str, what: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(value).map_err(|_| ApiError::NotFound(format!("{what} not found: \"{value}\" is not a valid UUID")))
}

pub async fn create_notification(State(app): State<App>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let (span, trace) = create_span("POST /v1/notifications", &headers);
    let created = async {
        let request: NotificationRequest = read_json(&headers, body, app.settings.max_body_bytes).await?;
        Ok::<_, ApiError>(
            app.intake
                .create_one(&request, request_id(&headers), trace.as_ref())
                .await?,
        )
    }
    .await;
    answered(&span, created.as_ref().err());
    Ok((StatusCode::ACCEPTED, Json(created?)).into_response())
}

#[derive(Deserialize)]
pub struct BatchRequest {
    pub notifications: Option<Vec<NotificationRequest>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BatchResponse {
    batch_id: Uuid,
    status: BatchStatus,
    total_count: usize,
    notifications: Vec<Notification>,
}

pub async fn create_batch(State(app): State<App>, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let (span, trace) = create_span("POST /v1/notifications/batch", &headers);
    let created = async {
        let request: BatchRequest = read_json(&headers, body, app.settings.max_batch_body_bytes).await?;
        let items = request
            .notifications
            .ok_or_else(|| ApiError::BadRequest("notifications: is required".into()))?;
        Ok::<_, ApiError>(
            app.intake
                .create_batch(&items, request_id(&headers), trace.as_ref())
                .await?,
        )
    }
    .await;
    answered(&span, created.as_ref().err());
    let created = created?;
    let counts: Vec<(Status, i64)> = created.notifications.iter().map(|n| (n.status, 1)).collect();
    let response = BatchResponse {
        batch_id: created.batch_id,
        status: BatchStatus::from_counts(&counts),
        total_count: created.notifications.len(),
        notifications: created.notifications,
    };
    Ok((StatusCode::ACCEPTED, Json(response)).into_response())
}

pub async fn get_notification(State(app): State<App>, Path(id): Path<String>) -> Result<Json<Notification>, ApiError> {
    let id = parse_uuid(&id, "notification")?;
    app.store
        .get(id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("notification not found".into()))
}

pub async fn cancel_notification(State(app): State<App>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_uuid(&id, "notification")?;
    match app.store.cancel(id).await? {
        CancelOutcome::Canceled => Ok(Json(json!({"notificationId": id, "status": Status::Canceled})).into_response()),
        CancelOutcome::NotCancelable(status) => {
            let cancelable: Vec<&str> = Transition::Cancel.from().iter().map(|s| s.as_str()).collect();
            Err(ApiError::Conflict(format!(
                "notification cannot be canceled in status {status}; only {} can",
                cancelable.join(" or ")
            )))
        }
        CancelOutcome::NotFound => Err(ApiError::NotFound("notification not found".into())),
    }
}

pub async fn list_notifications(
    State(app): State<App>,
    query: Result<Query<HashMap<String, String>>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = query.map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))?;
    let filter = parse_list_filter(&params)?;
    let (data, total) = app.store.list(&filter).await?;
    Ok(
        Json(json!({"data": data, "meta": {"page": filter.page, "pageSize": filter.page_size, "total": total}}))
            .into_response(),
    )
}

fn parse_list_filter(params: &HashMap<String, String>) -> Result<ListFilter, ApiError> {
    let get = |k: &str| params.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    fn parsed<T: std::str::FromStr<Err = String>>(k: &str, v: Option<&str>) -> Result<Option<T>, ApiError> {
        v.map(|v| v.parse().map_err(|e| ApiError::BadRequest(format!("{k}: {e}"))))
            .transpose()
    }
    let status: Option<Status> = parsed("status", get("status"))?;
    let channel: Option<Channel> = parsed("channel", get("channel"))?;
    let time = |k: &'static str| -> Result<Option<DateTime<Utc>>, ApiError> {
        get(k)
            .map(|v| {
                DateTime::parse_from_rfc3339(v)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| {
                        ApiError::BadRequest(format!(
                            "{k}: \"{v}\" is not an RFC 3339 timestamp such as 2026-01-02T15:04:05Z"
                        ))
                    })
            })
            .transpose()
    };
    let (from, to) = (time("from")?, time("to")?);
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(ApiError::BadRequest("from must not be later than to".into()));
        }
    }
    let number =
        |k: &'static str, default: i64, max: i64| -> Result<i64, ApiError> {
            match get(k) {
                None => Ok(default),
                Some(v) => v.parse::<i64>().ok().filter(|n| (1..=max).contains(n)).ok_or_else(|| {
                    ApiError::BadRequest(format!("{k}: \"{v}\" must be a whole number from 1 to {max}"))
                }),
            }
        };
    Ok(ListFilter {
        status,
        channel,
        from,
        to,
        // The contract sets no maximum; past the last page is an empty page, as in the Go
        // service, up to the largest page an int64 can hold.
        page: number("page", 1, i64::MAX)?,
        page_size: number("pageSize", DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)?,
    })
}

pub async fn batch_summary(State(app): State<App>, Path(batch_id): Path<String>) -> Result<Response, ApiError> {
    let id = parse_uuid(&batch_id, "batch")?;
    let (total, counts) = app
        .store
        .batch_summary(id)
        .await?
        .ok_or_else(|| ApiError::NotFound("batch not found".into()))?;
    let items: Vec<_> = counts.iter().map(|(s, n)| json!({"status": s, "count": n})).collect();
    Ok(Json(json!({
        "batchId": id,
        "totalCount": total,
        "status": BatchStatus::from_counts(&counts),
        "counts": items,
    }))
    .into_response())
}

pub async fn not_found() -> ApiError {
    ApiError::NotFound("no such endpoint; see the v1 API (/v1/notifications, /v1/batches/{batchId})".into())
}

pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_json::<NotificationRequest>(&bytes);
            let _ = decode_json::<BatchRequest>(&bytes);
        }
    }
}
