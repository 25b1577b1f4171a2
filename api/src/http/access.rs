//! One access-log line per HTTP request: method, path (never the query string, which may carry
//! variables), status, latency, and what the handler knew: the GraphQL operation name and the
//! caller's subject. Health and metrics probes log at `debug`, everything else at `info`, with
//! the target `access` (`RUST_LOG=access=warn` silences them). WebSocket sessions log their own
//! line when they end (`ws`).

use std::time::Instant;

use axum::http::Method;
use axum::response::Response;

/// What a handler tells the access log, as a response extension.
#[derive(Clone, Debug, Default)]
pub struct AccessNote {
    pub operation: Option<String>,
    pub subject: Option<String>,
}

/// The line of a request that started at `start` and was answered with `response`
/// ([`super::front`] calls it for every request).
pub(super) fn log(method: &Method, path: &str, start: Instant, response: &Response) {
    let method = method.as_str();
    let note = response.extensions().get::<AccessNote>();
    let operation = note.and_then(|n| n.operation.as_deref()).unwrap_or("");
    let subject = note.and_then(|n| n.subject.as_deref()).unwrap_or("");
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1e3;
    // Plain `&str` fields: a field recorded through `Display` is formatted into a string of its
    // own before the line is.
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        tracing::debug!(target: "access", method, path, status, latency_ms, "request");
    } else {
        tracing::info!(
            target: "access",
            method,
            path,
            status,
            latency_ms,
            operation,
            subject,
            "request"
        );
    }
}
