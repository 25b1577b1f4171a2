//! HTTP: GraphQL over POST and GET (and the WebSocket upgrade on GET), GraphiQL, health,
//! readiness, metrics, and the signed publish endpoint. Errors map to status codes here.
//!
//! # Layout
//! - `graphql`: GraphQL over HTTP (media types, status codes, batches, persisted documents),
//!   and the WebSocket upgrade.
//! - `stream`: subscriptions as HTTP streams (graphql-sse, Apollo multipart), through the same
//!   fan-out as WebSocket; `single`: graphql-sse's single connection mode (reservations);
//!   `pump`: the body of such a stream.
//! - `graphiql`: the GraphiQL page and its files, embedded in the binary.
//! - `pages`: the console and scoreboard pages, their files and service worker, embedded too.
//! - `oidc`: the console's sign-in settings, and its OpenID provider's discovery document.
//! - `publish`: `POST /internal/publish`; `replay`: the memory of requests it received.
//! - `front`: what surrounds the router: the access log (`access`), CORS (`cors`), the
//!   timeout, the body limits and the panic guard.
//! - here: health, readiness, metrics.

mod access;
mod cors;
mod front;
mod graphiql;
mod graphql;
mod oidc;
mod pages;
mod publish;
mod pump;
mod replay;
mod single;
mod stream;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub use cors::Cors;
pub use front::{Front, FrontOptions, PUBLISH_PATH};
pub use graphiql::{graphiql_asset, graphiql_page};
pub use graphql::{graphql_get, graphql_post};
pub use oidc::{ConsoleSignIn, ConsoleToken, SignInConfig};
pub use pages::{console_page, console_worker, page_asset, scoreboard_page, ConsolePage};
pub use publish::{publish, publish_auth, PublishAuth};
pub use single::{reserve as graphql_put, stop as graphql_delete, Reservations};

use crate::startup::AppState;

pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    use std::sync::atomic::Ordering::Relaxed;
    let mut text = state.metrics.render();
    let admission = &state.admission;
    let persisted = state.persisted.stats();
    let extra: [(&str, &str, &str, u64); 11] = [
        (
            "scoreline_tcp_connections",
            "TCP connections open.",
            "gauge",
            state.connections.open.load(Relaxed) as u64,
        ),
        (
            "scoreline_tcp_connections_refused_total",
            "Connections refused at accept (MAX_CONNECTIONS).",
            "counter",
            state.connections.refused.load(Relaxed),
        ),
        (
            "scoreline_streams",
            "WebSockets and HTTP streams open.",
            "gauge",
            admission.streams.open() as u64,
        ),
        (
            "scoreline_streams_refused_total",
            "Streams refused (MAX_STREAMS, MAX_STREAMS_PER_ADDRESS).",
            "counter",
            admission.streams.refused(),
        ),
        (
            "scoreline_rate_limited_address_total",
            "Anonymous requests and operations refused by the per-address rate.",
            "counter",
            admission.by_address.limited(),
        ),
        (
            "scoreline_rate_limited_subject_total",
            "Mutations and subscriptions refused by the per-subject rate.",
            "counter",
            admission.by_subject.limited(),
        ),
        (
            "scoreline_rate_limiter_keys",
            "Addresses and subjects with a rate bucket.",
            "gauge",
            (admission.by_address.keys() + admission.by_subject.keys()) as u64,
        ),
        (
            "scoreline_rate_limiter_untracked_total",
            "Requests let through unmetered because the bucket map was full.",
            "counter",
            admission.by_address.untracked() + admission.by_subject.untracked(),
        ),
        (
            "scoreline_apq_documents",
            "Documents held for automatic persisted queries.",
            "gauge",
            persisted.apq_documents as u64,
        ),
        (
            "scoreline_apq_bytes",
            "Bytes held for automatic persisted queries (APQ_CACHE_BYTES).",
            "gauge",
            persisted.apq_bytes as u64,
        ),
        (
            "scoreline_persisted_documents",
            "Documents in the trusted-documents manifest.",
            "gauge",
            persisted.manifest_documents as u64,
        ),
    ];
    for (name, help, kind, value) in extra {
        crate::metrics::write_metric(&mut text, name, help, kind, value);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Ready when the store and the broker answer.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let store = state.store.check().await;
    let broker = state.broker.check().await;
    let status = |r: bool| if r { "ok" } else { "unavailable" };
    let ok = store.is_ok() && broker.is_ok();
    if let Err(e) = &store {
        tracing::warn!(error = %e, "readiness: store unavailable");
    }
    if let Err(e) = &broker {
        tracing::warn!(error = %e, "readiness: broker unavailable");
    }
    let body = Json(json!({"store": status(store.is_ok()), "broker": status(broker.is_ok())}));
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, body).into_response()
}

fn plain(status: StatusCode, message: &'static str) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}
