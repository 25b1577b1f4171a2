//! One access-log line per HTTP request: method, path (never the query string, which may carry
//! variables), status, latency, and what the handler knew: the GraphQL operation name and the
//! caller's subject. Health and metrics probes log at `debug`, everything else at `info`, with
//! the target `access` (`RUST_LOG=access=warn` silences them). WebSocket sessions log their own
//! line when they end (`ws`).

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;

/// What a handler tells the access log, as a response extension.
#[derive(Clone, Debug, Default)]
pub struct AccessNote {
    pub operation: Option<String>,
    pub subject: Option<String>,
}

pub async fn access_log(request: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = request.method().clone();
    let uri = request.uri().clone();
    let (method, path) = (method.as_str(), uri.path());
    let response = next.run(request).await;
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
    response
}
