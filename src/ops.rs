//! `/livez`, `/readyz` and `/metrics`: the same three endpoints on every daemon (the API's
//! port, or `--listen` for the worker and scanner).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use crate::app::App;
use crate::broker::consumer::Attachment;

const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// How this process judges RabbitMQ.
#[derive(Clone)]
pub enum BrokerCheck {
    /// The publisher can (re)connect; reported, but an API keeps accepting durably without it.
    Publisher,
    /// A worker's consumers are attached; the process is useless without them.
    Consumer(Arc<Attachment>),
}

#[derive(Clone)]
pub struct Readiness {
    pub app: App,
    pub broker: BrokerCheck,
}

pub fn router(readiness: Readiness) -> Router {
    Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn livez() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn check<F, E>(f: F) -> bool
where
    F: std::future::Future<Output = Result<(), E>>,
{
    matches!(tokio::time::timeout(CHECK_TIMEOUT, f).await, Ok(Ok(())))
}

async fn readyz(State(r): State<Readiness>) -> Response {
    let (postgres, redis, rabbitmq) = tokio::join!(check(r.app.store.ping()), check(r.app.redis.ping()), async {
        match &r.broker {
            BrokerCheck::Publisher => check(async { r.app.broker.channel().await.map(|_| ()) }).await,
            BrokerCheck::Consumer(attachment) => attachment.is_attached(),
        }
    });
    let required_broker = matches!(r.broker, BrokerCheck::Consumer(_));
    let ready = postgres && redis && (rabbitmq || !required_broker);
    let state = |ok: bool| if ok { "ok" } else { "down" };
    // Which RabbitMQ node each connection is on, so an operator can follow a cluster failover.
    let mut nodes = Map::new();
    nodes.insert("publisher".into(), r.app.broker.node().into());
    if let BrokerCheck::Consumer(attachment) = &r.broker {
        nodes.insert("worker".into(), attachment.node().into());
    }
    let body = Json(json!({
        "status": if ready { "ready" } else { "not_ready" },
        "checks": {"postgres": state(postgres), "redis": state(redis), "rabbitmq": state(rabbitmq)},
        "rabbitmq": nodes,
    }));
    let code = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

async fn metrics(State(r): State<Readiness>, headers: axum::http::HeaderMap) -> Response {
    if let Some(token) = &r.app.settings.metrics_token {
        let presented = crate::api::bearer(&headers);
        if crate::config::scope_of(std::slice::from_ref(token), presented).is_none() {
            return crate::api::error::ApiError::Unauthorized.into_response();
        }
    }
    let pool = r.app.store.pool();
    r.app
        .metrics
        .set_db_pool(pool.size(), pool.num_idle(), r.app.settings.database_max_connections);
    let channels = &r.app.metrics.amqp_channels;
    channels
        .with_label_values(&["publisher"])
        .set(i64::from(r.app.broker.node().is_some()));
    if let BrokerCheck::Consumer(attachment) = &r.broker {
        channels
            .with_label_values(&["consumer"])
            .set(i64::from(attachment.is_attached()));
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        r.app.metrics.render(),
    )
        .into_response()
}
