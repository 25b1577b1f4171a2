//! HTTP handlers: GraphQL over POST and GET (and the WebSocket upgrade on GET), GraphiQL,
//! health, readiness, and the signed publish endpoint. Errors map to status codes here.

use std::time::{SystemTime, UNIX_EPOCH};

use async_graphql::http::GraphiQLSource;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, RawQuery, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, Request, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use hmac::{Hmac, Mac};
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::ChangeBatch;
use serde_json::json;
use sha2::Sha256;

use crate::auth::Principal;
use crate::graphql::error::{BAD_REQUEST, UNAUTHENTICATED};
use crate::graphql::guard::HttpGet;
use crate::startup::AppState;
use crate::ws::{self, Protocol, WsContext};

/// Publish requests older than this (or this far in the future) are refused as replays.
pub const PUBLISH_MAX_AGE_SECS: i64 = 300;

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
    if let Some(p) = principal {
        request = request.data(p);
    }
    let response = state.schema.execute(request).await;
    Json(response).into_response()
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
        let protocol = parts
            .headers
            .get(header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok())
            .and_then(Protocol::from_header);
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
            shutdown: state.shutdown.clone(),
        };
        return upgrade
            .protocols(Protocol::ALL)
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

/// Checks `X-Scoreline-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>` and the
/// timestamp's age.
pub fn verify_signature(
    secret: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_unix: i64,
) -> Result<(), &'static str> {
    let timestamp = headers
        .get("x-scoreline-timestamp")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing X-Scoreline-Timestamp")?;
    let signature = headers
        .get("x-scoreline-signature")
        .and_then(|v| v.to_str().ok())
        .ok_or("missing X-Scoreline-Signature")?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| "malformed X-Scoreline-Timestamp")?;
    if (now_unix - ts).abs() > PUBLISH_MAX_AGE_SECS {
        return Err("stale X-Scoreline-Timestamp");
    }
    let hex_sig = signature
        .strip_prefix("v1=")
        .ok_or("unsupported signature version")?;
    let given = hex::decode(hex_sig).map_err(|_| "malformed X-Scoreline-Signature")?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| "bad secret")?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    // Constant-time comparison.
    mac.verify_slice(&given).map_err(|_| "wrong signature")
}

/// Signs a publish body: the headers the stream-handler sends.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// `POST /internal/publish`: a signed change batch from the stream-handler. Answers 204 only
/// once the broker has accepted the batch, so a failure makes the sender retry.
pub async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.publish_secret.as_deref() else {
        return plain(
            StatusCode::NOT_FOUND,
            "publishing is not enabled: set PUBLISH_SECRET",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if let Err(reason) = verify_signature(secret, &headers, &body, now) {
        tracing::warn!(reason, "refused a publish request");
        return plain(StatusCode::UNAUTHORIZED, "invalid or missing signature");
    }
    let batch: ChangeBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not a change batch"),
    };
    match state.intake.publish(batch).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(PublishError::Refused(_)) => plain(StatusCode::BAD_REQUEST, "the batch was refused"),
        Err(PublishError::Unavailable(e)) => {
            tracing::error!(error = %e, "publish failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, "the broker is unavailable")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(ts: i64, sig: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            "x-scoreline-timestamp",
            HeaderValue::from_str(&ts.to_string()).unwrap(),
        );
        h.insert("x-scoreline-signature", HeaderValue::from_str(sig).unwrap());
        h
    }

    #[test]
    fn a_correct_signature_verifies() {
        let sig = sign("s3cret", 1_000, b"{}");
        assert_eq!(
            verify_signature("s3cret", &headers(1_000, &sig), b"{}", 1_010),
            Ok(())
        );
    }

    #[test]
    fn a_signature_with_another_secret_or_body_is_refused() {
        let sig = sign("other", 1_000, b"{}");
        assert!(verify_signature("s3cret", &headers(1_000, &sig), b"{}", 1_000).is_err());
        let sig = sign("s3cret", 1_000, b"{}");
        assert!(verify_signature("s3cret", &headers(1_000, &sig), b"{ }", 1_000).is_err());
    }

    #[test]
    fn a_stale_or_missing_timestamp_is_refused() {
        let sig = sign("s3cret", 1_000, b"{}");
        assert_eq!(
            verify_signature(
                "s3cret",
                &headers(1_000, &sig),
                b"{}",
                1_000 + PUBLISH_MAX_AGE_SECS + 1
            ),
            Err("stale X-Scoreline-Timestamp")
        );
        assert!(verify_signature("s3cret", &HeaderMap::new(), b"{}", 1_000).is_err());
    }
}
