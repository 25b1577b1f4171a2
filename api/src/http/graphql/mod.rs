//! GraphQL over HTTP, as the GraphQL-over-HTTP spec and Apollo's clients expect it:
//!
//! - `POST /graphql` with `Content-Type: application/json`: one request object, or a JSON array
//!   of them (a batch, at most `MAX_BATCH_OPERATIONS`), answered with an array in order.
//! - `GET /graphql?query=…&operationName=…&variables=…&extensions=…` for queries (and APQ
//!   hashes); a WebSocket upgrade on the same path.
//! - Subscriptions as HTTP streams on both methods, chosen by `Accept` (`text/event-stream`, or
//!   `multipart/mixed;subscriptionSpec="1.0"`): see [`super::stream`].
//! - Media types: a client that accepts `application/graphql-response+json` gets it, with the
//!   spec's status codes (400 for a request refused before execution: unparsable, invalid, over
//!   a limit; 405 for a mutation over GET; no `data` entry then). Others get `application/json`
//!   as always: 200 for every GraphQL result, 4xx only for a request that is not GraphQL at all.
//! - Persisted documents (APQ and trusted documents) are resolved before anything else
//!   ([`crate::graphql::persisted`]).
//!
//! # Layout
//! - here: the handlers (content type, credentials, admission, batches) and the WebSocket
//!   upgrade;
//! - `execute`: one request through persisted documents, the GET rules, the response cache and the
//!   schema, and its answer in the negotiated media type;
//! - `get`: a GET request's query string, and HTTP caching of its answer (`ETag`, 304).

mod execute;
mod get;

use axum::body::Bytes;
use axum::extract::{FromRequestParts, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use std::net::IpAddr;

use crate::admission::{Refusal, StreamPermit};
use crate::auth::Principal;
use crate::graphql::error::{BAD_REQUEST, UNAUTHENTICATED};
use crate::startup::AppState;
use crate::ws::{self, Protocol, WsContext};

use execute::{refusal_answer, APPLICATION_JSON};
pub(super) use execute::{run, Answer, Media, Params};
use get::{http_cached, GetParams};

/// Initial read buffer of a WebSocket connection; it grows for a larger message.
const WS_READ_BUFFER: usize = 512;
/// Bytes buffered before a write goes to the socket (a flush writes them anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;

/// The TCP peer of a request, as the accept loop recorded it (unspecified when the router is
/// served some other way).
pub struct Peer(pub std::net::SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(([0, 0, 0, 0], 0).into(), |c| c.0),
        ))
    }
}

/// A request refused by admission: 429 with `Retry-After` for a rate, 503 for a bound.
pub(super) fn refused(media: Media, refusal: &Refusal) -> Response {
    let retry_after = HeaderValue::from(refusal.retry_after_secs());
    refusal_answer(refusal).into_response(media, None, Some((header::RETRY_AFTER, retry_after)))
}

/// Charges an anonymous request to its address's rate; the refusal when over it.
fn admit_anonymous(
    state: &AppState,
    principal: Option<&Principal>,
    address: IpAddr,
    operations: usize,
    media: Media,
) -> Option<Response> {
    if principal.is_some() {
        return None;
    }
    let cost = u32::try_from(operations).unwrap_or(u32::MAX);
    let refusal = state.admission.by_address.take(&address, cost).err()?;
    Some(refused(media, &refusal))
}

/// An error about the HTTP request itself, in the chosen media type.
pub(super) fn refuse(
    media: Media,
    status: StatusCode,
    message: impl Into<String>,
    code: &str,
) -> Response {
    let error = json!({"errors": [{"message": message.into(), "extensions": {"code": code}}]});
    Answer::new(status, serde_json::to_vec(&error).unwrap_or_default())
        .into_response(media, None, None)
}

/// The caller, from `Authorization`. A present but invalid credential is refused (401), never
/// downgraded to anonymous; so is more than one `Authorization` header.
pub(super) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    media: Media,
) -> Result<Option<Principal>, Response> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next();
    let unauthenticated = |message: String| {
        tracing::info!(reason = %message, "authentication refused");
        refuse(media, StatusCode::UNAUTHORIZED, message, UNAUTHENTICATED)
    };
    if values.next().is_some() {
        return Err(unauthenticated(
            "send one Authorization header, not several".into(),
        ));
    }
    let value = match value.map(HeaderValue::to_str).transpose() {
        Ok(v) => v,
        Err(_) => {
            return Err(unauthenticated(
                "the Authorization header is not valid text".into(),
            ))
        }
    };
    state
        .auth
        .authenticate(value)
        .await
        .map_err(|e| unauthenticated(e.to_string()))
}

/// `POST /graphql`: one request object or a batch (a JSON array).
pub async fn graphql_post(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = Media::negotiate(&headers);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(APPLICATION_JSON));
    if !json {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send GraphQL requests as JSON, with Content-Type: application/json",
            BAD_REQUEST,
        );
    }
    if let Some(token) = headers
        .get(super::single::TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let address = state.admission.address(peer, &headers);
        let token = token.trim().to_string();
        return super::single::operation(state, address, &headers, &token, &body).await;
    }
    if let Some(wire) = super::stream::negotiate(&headers) {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'[') {
            let params: Params = match serde_json::from_slice(&body) {
                Ok(p) => p,
                Err(e) => return not_graphql(media, &e),
            };
            if super::stream::wanted(&headers, &params) {
                let address = state.admission.address(peer, &headers);
                return super::stream::serve(state, address, &headers, &Method::POST, params, wire)
                    .await;
            }
        }
    }
    let principal = match principal(&state, &headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let address = state.admission.address(peer, &headers);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<Params> = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return not_graphql(media, &e),
        };
        if let Some(response) =
            admit_anonymous(&state, principal.as_ref(), address, batch.len(), media)
        {
            return response;
        }
        return batch_response(&state, batch, principal.as_ref(), media).await;
    }
    if let Some(response) = admit_anonymous(&state, principal.as_ref(), address, 1, media) {
        return response;
    }
    let params: Params = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return not_graphql(media, &e),
    };
    run(
        &state,
        params.into_request(),
        principal.as_ref(),
        &Method::POST,
        media,
    )
    .await
    .into_response(media, principal.as_ref(), None)
}

fn not_graphql(media: Media, error: &serde_json::Error) -> Response {
    refuse(
        media,
        StatusCode::BAD_REQUEST,
        format!("the body is not a GraphQL request: {error}"),
        BAD_REQUEST,
    )
}

/// A GET whose query string is not a GraphQL request.
fn not_a_request(media: Media, message: &str) -> Response {
    refuse(
        media,
        StatusCode::BAD_REQUEST,
        format!("not a GraphQL request: {message}"),
        BAD_REQUEST,
    )
}

/// A batch: each request in order, answered as a JSON array in the same order.
async fn batch_response(
    state: &AppState,
    batch: Vec<Params>,
    principal: Option<&Principal>,
    media: Media,
) -> Response {
    if batch.is_empty() || batch.len() > state.max_batch_operations {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            format!(
                "a batch holds from 1 to {} operations (MAX_BATCH_OPERATIONS); this one has {}",
                state.max_batch_operations,
                batch.len()
            ),
            BAD_REQUEST,
        );
    }
    let count = batch.len();
    let mut body = Vec::with_capacity(256 * count);
    body.push(b'[');
    for (i, params) in batch.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let answer = run(
            state,
            params.into_request(),
            principal,
            &Method::POST,
            media,
        )
        .await;
        body.extend_from_slice(&answer.body);
    }
    body.push(b']');
    let mut answer = Answer::new(StatusCode::OK, body);
    answer.operation = Some(format!("batch of {count}"));
    answer.into_response(media, principal, None)
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the query string.
pub async fn graphql_get(
    State(state): State<AppState>,
    Peer(peer): Peer,
    request: Request<axum::body::Body>,
) -> Response {
    let (parts, _body) = request.into_parts();
    let media = Media::negotiate(&parts.headers);
    let principal = match principal(&state, &parts.headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let address = state.admission.address(peer, &parts.headers);
    if parts.headers.contains_key(header::UPGRADE) {
        // Every connection attempt counts against its address's rate, signed in or not.
        if let Err(refusal) = state.admission.by_address.take(&address, 1) {
            return refused(Media::Json, &refusal);
        }
        let permit = match state.admission.streams.admit(address) {
            Ok(permit) => permit,
            Err(refusal) => return refused(Media::Json, &refusal),
        };
        return upgrade(state, parts, principal, address, permit).await;
    }
    if let Some(wire) = super::stream::negotiate(&parts.headers) {
        if let Some(token) = super::single::token(&parts.headers, &parts.uri) {
            if wire == crate::fanout::Wire::Sse {
                return super::single::connect(state, token).await;
            }
        }
        let params = match GetParams::parse(parts.uri.query().unwrap_or("")) {
            Ok(p) => p,
            Err(message) => return not_a_request(media, &message),
        };
        if super::stream::wanted(&parts.headers, &params) {
            return super::stream::serve(
                state,
                address,
                &parts.headers,
                &Method::GET,
                params,
                wire,
            )
            .await;
        }
    }
    if let Some(response) = admit_anonymous(&state, principal.as_ref(), address, 1, media) {
        return response;
    }
    let params = match GetParams::parse(parts.uri.query().unwrap_or("")) {
        Ok(p) => p,
        Err(message) => return not_a_request(media, &message),
    };
    let answer = run(
        &state,
        params.into_request(),
        principal.as_ref(),
        &Method::GET,
        media,
    )
    .await;
    http_cached(
        answer,
        media,
        principal.as_ref(),
        &parts.headers,
        state.http_cache_max_age,
    )
}

async fn upgrade(
    state: AppState,
    mut parts: axum::http::request::Parts,
    principal: Option<Principal>,
    address: IpAddr,
    permit: StreamPermit,
) -> Response {
    // Clients may offer their subprotocols in one header or several.
    let offered: Vec<&str> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let Some(protocol) = Protocol::from_header(&offered.join(",")) else {
        return refuse(
            Media::Json,
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
        persisted: state.persisted.clone(),
        admission: state.admission.clone(),
        address,
        shutdown: state.shutdown.clone(),
    };
    // Client messages are small and server frames are written as they come, so the buffers
    // stay small: tungstenite's 128 KiB defaults would cost 128 KiB of memory per connection
    // (its read buffer is zero-filled to capacity on every read).
    upgrade
        .protocols([protocol.name()])
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(state.max_body_bytes)
        .max_frame_size(state.max_body_bytes)
        .on_upgrade(move |socket| async move {
            ws::serve(socket, protocol, principal, ctx).await;
            drop(permit);
        })
}
