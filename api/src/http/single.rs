//! graphql-sse's single connection mode: one event stream carries every operation of a client,
//! for browsers that allow few HTTP/1 connections per origin.
//!
//! - `PUT /graphql` reserves a stream: 201 with a token (text). The reservation counts against
//!   the stream caps (`MAX_STREAMS`, `MAX_STREAMS_PER_ADDRESS`) and the address's rate, like a
//!   WebSocket; one not connected within [`RESERVATION_TTL`] is dropped.
//! - `GET /graphql` with `Accept: text/event-stream` and the token (header
//!   `X-GraphQL-Event-Stream-Token`, or `?token=`) opens the stream; one stream per token.
//! - `POST /graphql` with the token and `extensions.operationId` starts an operation: 202, and
//!   its results arrive on the stream as `event: next` with `{"id", "payload"}`, then
//!   `event: complete` with `{"id"}`. Requests that do not parse or validate get 400 JSON.
//! - `DELETE /graphql?operationId=…` with the token stops one.
//!
//! The stream is an [`Outbox`] like a WebSocket connection's, its operations subscribers of the
//! same fan-out (at most `MAX_SUBSCRIPTIONS_PER_CONNECTION` at once). When the stream ends, the
//! reservation and its operations go with it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_graphql::parser::types::OperationType;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rand::RngCore as _;

use super::access::AccessNote;
use super::graphql::{principal, refuse, refused, run, Media, Params, Peer};
use super::pump::Pump;
use super::stream::{json_response, operation_type, start, stream_response, validate, Running};
use crate::admission::StreamPermit;
use crate::fanout::{self, end_frame, result_frame, Fanout, Outbox, Wire};
use crate::graphql::error::{BAD_REQUEST, NOT_FOUND, TOO_MANY_SUBSCRIPTIONS};
use crate::metrics::Metrics;
use crate::startup::AppState;

/// The header that carries a reservation token.
pub const TOKEN_HEADER: &str = "x-graphql-event-stream-token";
/// How long a reservation waits for its stream.
pub const RESERVATION_TTL: Duration = Duration::from_secs(30);

/// One reserved (then connected) stream.
struct Reservation {
    outbox: Arc<Outbox>,
    /// Operations by client id, with their generation in the outbox.
    operations: Mutex<HashMap<String, (u64, Running)>>,
    generation: std::sync::atomic::AtomicU64,
    connected: std::sync::atomic::AtomicBool,
    _permit: StreamPermit,
}

impl Reservation {
    fn operations(&self) -> MutexGuard<'_, HashMap<String, (u64, Running)>> {
        self.operations.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Forgets operations that ended on their own.
    fn reap(&self, fanout: &Fanout, metrics: &Metrics) {
        let ended = self.outbox.take_ended();
        if ended.is_empty() {
            return;
        }
        let mut operations = self.operations();
        for (id, generation) in ended {
            if operations.get(&id).is_some_and(|(g, _)| *g == generation) {
                if let Some((_, running)) = operations.remove(&id) {
                    running.stop(fanout, metrics);
                }
            }
        }
    }

    fn stop_all(&self, fanout: &Fanout, metrics: &Metrics) {
        let operations: Vec<Running> = self.operations().drain().map(|(_, (_, r))| r).collect();
        for running in operations {
            running.stop(fanout, metrics);
        }
    }
}

/// Reservations by token.
#[derive(Default)]
pub struct Reservations {
    map: Mutex<HashMap<String, Arc<Reservation>>>,
}

impl Reservations {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Arc<Reservation>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, token: &str) -> Option<Arc<Reservation>> {
        self.lock().get(token).cloned()
    }

    fn remove(&self, token: &str) -> Option<Arc<Reservation>> {
        self.lock().remove(token)
    }
}

/// The token of a request, from its header or the `token` query parameter.
pub fn token(headers: &HeaderMap, uri: &Uri) -> Option<String> {
    if let Some(value) = headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()) {
        return Some(value.trim().to_string());
    }
    query_param(uri, "token")
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(uri.query()?).ok()?;
    pairs.into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

fn unknown_token() -> Response {
    refuse(
        Media::Json,
        StatusCode::NOT_FOUND,
        "no stream is reserved with this token: reserve one with PUT",
        NOT_FOUND,
    )
}

/// `PUT /graphql`: reserves a stream.
pub async fn reserve(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = principal(&state, &headers, Media::Json).await {
        return response;
    }
    let address: IpAddr = state.admission.address(peer, &headers);
    if let Err(refusal) = state.admission.by_address.take(&address, 1) {
        return refused(Media::Json, &refusal);
    }
    let permit = match state.admission.streams.admit(address) {
        Ok(permit) => permit,
        Err(refusal) => return refused(Media::Json, &refusal),
    };
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let token = hex::encode(bytes);
    let reservation = Arc::new(Reservation {
        outbox: Arc::new(Outbox::new(state.metrics.clone())),
        operations: Mutex::new(HashMap::new()),
        generation: Default::default(),
        connected: Default::default(),
        _permit: permit,
    });
    state
        .reservations
        .lock()
        .insert(token.clone(), reservation.clone());
    // A reservation nobody connects to is dropped, with its operations and its permit.
    let reservations = state.reservations.clone();
    let (fanout, metrics) = (state.fanout.clone(), state.metrics.clone());
    let expiring = token.clone();
    // Weak: a stream that ends before the timer frees its permit at once.
    let reservation = Arc::downgrade(&reservation);
    tokio::spawn(async move {
        tokio::time::sleep(RESERVATION_TTL).await;
        let unconnected = reservation
            .upgrade()
            .is_some_and(|r| !r.connected.load(std::sync::atomic::Ordering::Acquire));
        if unconnected {
            if let Some(r) = reservations.remove(&expiring) {
                r.stop_all(&fanout, &metrics);
            }
        }
    });
    (
        StatusCode::CREATED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        token,
    )
        .into_response()
}

/// What the single stream holds until it ends: the reservation, removed when it does.
struct Connected {
    token: String,
    state: AppState,
}

impl Drop for Connected {
    fn drop(&mut self) {
        if let Some(r) = self.state.reservations.remove(&self.token) {
            r.stop_all(&self.state.fanout, &self.state.metrics);
        }
    }
}

/// `GET /graphql` with a token and `Accept: text/event-stream`: the reserved stream.
pub async fn connect(state: AppState, token: String) -> Response {
    let Some(reservation) = state.reservations.get(&token) else {
        return unknown_token();
    };
    if reservation
        .connected
        .swap(true, std::sync::atomic::Ordering::AcqRel)
    {
        return refuse(
            Media::Json,
            StatusCode::CONFLICT,
            "a stream is already connected with this token",
            BAD_REQUEST,
        );
    }
    let guard = Connected {
        token,
        state: state.clone(),
    };
    // Operations that end on their own (completed, refused) are forgotten at once, so they
    // neither count as running nor hold a slot.
    let weak = Arc::downgrade(&reservation);
    let (fanout, metrics) = (state.fanout.clone(), state.metrics.clone());
    let reaper = move || {
        if let Some(r) = weak.upgrade() {
            r.reap(&fanout, &metrics);
        }
    };
    let pump = Pump::new(
        Wire::SseSingle,
        reservation.outbox.clone(),
        state.ws.keepalive,
        state.shutdown.clone(),
        Box::new(guard),
    )
    .with_reaper(Box::new(reaper));
    let note = AccessNote {
        operation: None,
        subject: None,
    };
    stream_response(Wire::SseSingle, Body::from_stream(pump.into_stream()), note)
}

/// `POST /graphql` with a token: starts an operation on the reserved stream (202).
pub async fn operation(
    state: AppState,
    address: IpAddr,
    headers: &HeaderMap,
    token: &str,
    body: &Bytes,
) -> Response {
    let media = Media::Json;
    let Some(reservation) = state.reservations.get(token) else {
        return unknown_token();
    };
    let principal = match principal(&state, headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let params: Params = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                format!("the body is not a GraphQL request: {e}"),
                BAD_REQUEST,
            )
        }
    };
    let mut request = params.into_request();
    let Some(id) = request.extensions.get("operationId").and_then(|v| match v {
        async_graphql::Value::String(s) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }) else {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            "single connection mode: name the operation in extensions.operationId",
            BAD_REQUEST,
        );
    };
    let rate = match &principal {
        None => state.admission.by_address.take(&address, 1),
        Some(p) => state.admission.by_subject.take(&p.subject, 1),
    };
    if let Err(refusal) = rate {
        return refused(media, &refusal);
    }
    reservation.reap(&state.fanout, &state.metrics);
    {
        let operations = reservation.operations();
        if operations.contains_key(&id) {
            return refuse(
                media,
                StatusCode::CONFLICT,
                "an operation with this operationId is running",
                BAD_REQUEST,
            );
        }
        if operations.len() >= state.ws.max_subscriptions {
            let message = format!(
                "at most {} operations may run on one stream",
                state.ws.max_subscriptions
            );
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                message,
                TOO_MANY_SUBSCRIPTIONS,
            );
        }
    }
    let note = AccessNote {
        operation: request.operation_name.clone(),
        subject: principal.as_ref().map(|p| p.subject.clone()),
    };
    let operation = match operation_type(&state, &mut request, principal.as_ref(), &note) {
        Ok(operation) => operation,
        Err(response) => return *response,
    };
    let outbox = reservation.outbox.clone();
    let accepted = || {
        let mut response = StatusCode::ACCEPTED.into_response();
        response.extensions_mut().insert(note.clone());
        response
    };
    if operation != Some(OperationType::Subscription) {
        let answer = run(
            &state,
            request,
            principal.as_ref(),
            &Method::POST,
            Media::GraphqlResponse,
        )
        .await;
        if answer.status != StatusCode::OK {
            return answer.into_response(Media::Json, principal.as_ref(), None);
        }
        let payload = String::from_utf8_lossy(&answer.body).into_owned();
        outbox.push_frame(result_frame(Wire::SseSingle, &id, &payload, 0));
        outbox.push_frame(end_frame(Wire::SseSingle, &id));
        return accepted();
    }
    if let Err(errors) = validate(&state.schema, &request).await {
        let body = serde_json::json!({ "errors": errors });
        return json_response(StatusCode::BAD_REQUEST, &body, note);
    }
    let Some(analysis) = fanout::analyze(&request) else {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            "not a subscription",
            BAD_REQUEST,
        );
    };
    let generation = reservation
        .generation
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        + 1;
    let running = start(
        &state,
        request,
        &analysis,
        principal,
        Wire::SseSingle,
        outbox,
        id.clone(),
        generation,
    );
    reservation.operations().insert(id, (generation, running));
    accepted()
}

/// `DELETE /graphql?operationId=…` with a token: stops an operation.
pub async fn stop(State(state): State<AppState>, headers: HeaderMap, uri: Uri) -> Response {
    let Some(token) = token(&headers, &uri) else {
        return refuse(
            Media::Json,
            StatusCode::BAD_REQUEST,
            "send the reservation token in X-GraphQL-Event-Stream-Token",
            BAD_REQUEST,
        );
    };
    let Some(reservation) = state.reservations.get(&token) else {
        return unknown_token();
    };
    let Some(id) = query_param(&uri, "operationId") else {
        return refuse(
            Media::Json,
            StatusCode::BAD_REQUEST,
            "name the operation to stop with ?operationId=",
            BAD_REQUEST,
        );
    };
    let removed = reservation.operations().remove(&id);
    if let Some((_, running)) = removed {
        running.stop(&state.fanout, &state.metrics);
    }
    StatusCode::OK.into_response()
}
