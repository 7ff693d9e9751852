//! dispatchctl: a notification dispatch engine (HTTP API, worker, scanner) and the operator
//! tools around it. See ARCHITECTURE.md for the map and the invariants.

pub mod api;
pub mod app;
pub mod batch;
pub mod broker;
pub mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod metrics;
pub mod ops;
pub mod otel;
pub mod provider;
pub mod ratelimit;
pub mod redis_client;
pub mod roles;
pub mod shutdown;
pub mod store;
pub mod telemetry;
pub mod tls;

/// The innermost cause of an error, whose text names what really failed (HTTP clients wrap
/// it in "error sending request" and the like).
pub fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
