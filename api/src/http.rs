//! HTTP handlers: GraphQL over POST and GET (and the WebSocket upgrade on GET), GraphiQL,
//! health, readiness, and the signed publish endpoint. Errors map to status codes here.

use std::time::{SystemTime, UNIX_EPOCH};

use async_graphql::http::GraphiQLSource;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawQuery, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use scoreline_core::publish::{self, PublishError, Publisher};
use scoreline_core::ChangeBatch;
use serde_json::json;

use crate::auth::Principal;
use crate::graphql::documents::DocumentCache;
use crate::graphql::error::{BAD_REQUEST, UNAUTHENTICATED};
use crate::graphql::guard::HttpGet;
use crate::graphql::response_cache::ResponseCache;
use crate::metrics::Metrics;
use crate::startup::AppState;
use crate::ws::{self, Protocol, WsContext};
use async_graphql::parser::types::OperationType;

/// Initial read buffer of a WebSocket connection; it grows for a larger message.
const WS_READ_BUFFER: usize = 512;
/// Bytes buffered before a write goes to the socket (a flush writes them anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;

fn graphql_error(status: StatusCode, message: impl Into<String>, code: &str) -> Response {
    let body = json!({"errors": [{"message": message.into(), "extensions": {"code": code}}]});
    (status, Json(body)).into_response()
}

async fn principal(state: &AppState, headers: &HeaderMap) -> Result<Option<Principal>, Response> {
    let value = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => match v.to_str() {
            Ok(v) => Some(v),
            Err(_) => {
                return Err(graphql_error(
                    StatusCode::UNAUTHORIZED,
                    "the Authorization header is not valid text",
                    UNAUTHENTICATED,
                ))
            }
        },
    };
    state
        .auth
        .authenticate(value)
        .await
        .map_err(|e| graphql_error(StatusCode::UNAUTHORIZED, e.to_string(), UNAUTHENTICATED))
}

async fn execute(
    state: &AppState,
    mut request: async_graphql::Request,
    principal: Option<Principal>,
) -> Response {
    let anonymous = principal.is_none();
    if let Some(p) = principal {
        request = request.data(p);
    }
    let operation = state
        .documents
        .prepare(&mut request)
        .and_then(|doc| DocumentCache::operation_type(&doc, &request));
    let cache = &state.responses;
    let cacheable = cache.enabled() && anonymous && operation == Some(OperationType::Query);
    if !cacheable {
        let response = state.schema.execute(request).await;
        if operation == Some(OperationType::Mutation) {
            cache.changed();
        }
        return Json(response).into_response();
    }
    let key = ResponseCache::key(&request);
    if let Some(body) = cache.get(&key) {
        Metrics::inc(&state.metrics.query_cache_hits);
        return json_body(body);
    }
    let changes = cache.changes();
    let response = state.schema.execute(request).await;
    let ok = response.errors.is_empty();
    let Ok(body) = serde_json::to_vec(&response) else {
        return Json(response).into_response();
    };
    let body = Bytes::from(body);
    if ok {
        cache.put(key, body.clone(), changes);
    }
    json_body(body)
}

fn json_body(body: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `POST /graphql` with a JSON body `{query, variables, operationName, extensions}`.
pub async fn graphql_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match principal(&state, &headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a GraphQL request: {e}"),
                BAD_REQUEST,
            )
        }
    };
    execute(&state, request, principal).await
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the query string.
pub async fn graphql_get(
    State(state): State<AppState>,
    request: Request<axum::body::Body>,
) -> Response {
    let (mut parts, _body) = request.into_parts();
    let principal = match principal(&state, &parts.headers).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    if parts.headers.contains_key(header::UPGRADE) {
        // Clients may offer their subprotocols in one header or several.
        let offered: Vec<&str> = parts
            .headers
            .get_all(header::SEC_WEBSOCKET_PROTOCOL)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let protocol = Protocol::from_header(&offered.join(","));
        let Some(protocol) = protocol else {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                "WebSocket clients must ask for the graphql-transport-ws or graphql-ws subprotocol",
                BAD_REQUEST,
            );
        };
        let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
            Ok(u) => u,
            Err(rejection) => return rejection.into_response(),
        };
        let ctx = WsContext {
            schema: state.schema.clone(),
            auth: state.auth.clone(),
            settings: state.ws.clone(),
            fanout: state.fanout.clone(),
            metrics: state.metrics.clone(),
            shutdown: state.shutdown.clone(),
        };
        // Client messages are small and server frames are written as they come, so the
        // buffers stay small: tungstenite's 128 KiB defaults would cost 128 KiB of memory per
        // connection (its read buffer is zero-filled to capacity on every read).
        return upgrade
            .protocols([protocol.name()])
            .read_buffer_size(WS_READ_BUFFER)
            .write_buffer_size(WS_WRITE_BUFFER)
            .max_message_size(state.max_body_bytes)
            .max_frame_size(state.max_body_bytes)
            .on_upgrade(move |socket| ws::serve(socket, protocol, principal, ctx));
    }
    let RawQuery(query) = RawQuery::from_request_parts(&mut parts, &state)
        .await
        .unwrap_or(RawQuery(None));
    let request = match async_graphql::http::parse_query_string(query.as_deref().unwrap_or("")) {
        Ok(r) => r,
        Err(e) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                format!("the query string is not a GraphQL request: {e}"),
                BAD_REQUEST,
            )
        }
    };
    execute(&state, request.data(HttpGet), principal).await
}

pub async fn graphiql() -> Html<String> {
    Html(
        GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql")
            .title("Scoreline")
            .finish(),
    )
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /metrics`: Prometheus text.
pub async fn metrics(State(state): State<AppState>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response()
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

/// `POST /internal/publish`: a signed change batch from the stream-handler. Answers 204 only
/// once the broker has accepted the batch, so a failure makes the sender retry.
pub async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.publish_secret.as_ref().map(|s| s.expose()) else {
        return plain(
            StatusCode::NOT_FOUND,
            "publishing is not enabled: set PUBLISH_SECRET",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = publish::verify(
        secret,
        header(publish::TIMESTAMP_HEADER),
        header(publish::SIGNATURE_HEADER),
        &body,
        now,
    );
    if let Err(reason) = verified {
        tracing::warn!(%reason, "refused a publish request");
        return plain(StatusCode::UNAUTHORIZED, "invalid or missing signature");
    }
    let batch: ChangeBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not a change batch"),
    };
    match state.intake.publish(batch, None).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(PublishError::Refused(_)) => plain(StatusCode::BAD_REQUEST, "the batch was refused"),
        Err(PublishError::Unavailable(e)) => {
            tracing::error!(error = %e, "publish failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, "the broker is unavailable")
        }
    }
}
