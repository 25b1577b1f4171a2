//! GraphQL subscriptions over HTTP, on `/graphql` beside plain requests and the WebSocket:
//!
//! - graphql-sse, distinct connections mode: `POST` (or `GET`) with `Accept: text/event-stream`
//!   streams `event: next` (with `id:`, the item's `version` or `seq`) and `event: complete`.
//!   A request with `Last-Event-ID` resumes exactly as `sinceVersion`/`afterSeq` do.
//! - Apollo multipart subscriptions: `Accept: multipart/mixed;subscriptionSpec="1.0"` streams
//!   one `application/json` part `{"payload": result}` per result, `{}` as a heartbeat.
//!
//! A stream is one subscriber of the same fan-out as WebSocket operations: it has an
//! [`Outbox`] of its own (the same bounded queues, conflation and slow-consumer policy) and
//! joins the shared execution of its operation, or runs its own when it cannot share one. The
//! response body drains the outbox as the client reads, with a heartbeat every
//! `WS_KEEPALIVE_SECS`. Admission is the WebSocket's: a stream counts against `MAX_STREAMS` and
//! `MAX_STREAMS_PER_ADDRESS` (503 `TOO_MANY_CONNECTIONS` before anything runs) and against the
//! rates (429 `RATE_LIMITED`).
//!
//! Errors: a request that is not GraphQL, a document that does not parse, or (multipart) does
//! not validate is answered with a 4xx JSON response; over graphql-sse, validation errors are
//! streamed (a `next` with the errors, then `complete`), as its protocol requires. Refusals at
//! subscribe time (`NOT_FOUND`) are a result with the errors, then the end of the stream.

use std::convert::Infallible;
use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use async_graphql::parser::types::OperationType;
use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::{FutureExt as _, StreamExt as _};
use tokio::task::AbortHandle;

use super::access::AccessNote;
use super::graphql::{principal, refuse, refused, run, Media, Params};
use super::pump::Pump;
use crate::admission::StreamPermit;
use crate::fanout::{
    self, end_frame, internal_error, is_request_error, refusal_frames, result_frame, Fanout,
    MemberSpec, Membership, Outbox, PositionTap, Pushed, Wire, MULTIPART_PREAMBLE,
};
use crate::graphql::documents::DocumentCache;
use crate::graphql::error::{
    code_of, BAD_REQUEST, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED,
};
use crate::graphql::ScorelineSchema;
use crate::metrics::Metrics;
use crate::startup::AppState;

const EVENT_STREAM: &str = "text/event-stream; charset=utf-8";
const MULTIPART: &str = "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\"";

/// The only operation of a stream: its generation in the outbox.
const OP: u64 = 1;

/// The streaming format `Accept` asks for, if any: `text/event-stream`, or `multipart/mixed`
/// with a `subscriptionSpec` parameter (Apollo Client sends `multipart/mixed;deferSpec=…` for
/// queries, which get plain JSON).
pub fn negotiate(headers: &HeaderMap) -> Option<Wire> {
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let kind = parts.next().unwrap_or("");
            let params: Vec<(&str, &str)> = parts
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim(), v.trim().trim_matches('"')))
                .collect();
            if params
                .iter()
                .any(|(k, v)| *k == "q" && v.parse::<f32>().is_ok_and(|q| q <= 0.0))
            {
                continue;
            }
            if kind.eq_ignore_ascii_case("text/event-stream") {
                return Some(Wire::Sse);
            }
            if kind.eq_ignore_ascii_case("multipart/mixed")
                && params
                    .iter()
                    .any(|(k, _)| k.eq_ignore_ascii_case("subscriptionSpec"))
            {
                return Some(Wire::Multipart);
            }
        }
    }
    None
}

/// Whether a request that accepts a stream ([`negotiate`]) gets one: a subscription always;
/// a query or mutation only when the client accepts no JSON (graphql-sse's client sends
/// `Accept: text/event-stream` alone; urql lists the stream types after JSON for every
/// request, and gets JSON for its queries).
pub(super) fn wanted(headers: &HeaderMap, params: &Params) -> bool {
    params.is_subscription() || !accepts_json(headers)
}

/// Whether `Accept` lists a JSON media type (or a wildcard) with a quality above zero.
fn accepts_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let kind = parts.next().unwrap_or("").to_ascii_lowercase();
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.trim().parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            !refused
                && matches!(
                    kind.as_str(),
                    "application/json"
                        | "application/graphql-response+json"
                        | "application/*"
                        | "*/*"
                )
        })
}

/// Serves a GraphQL request as a stream in `wire` format.
pub async fn serve(
    state: AppState,
    address: IpAddr,
    headers: &HeaderMap,
    method: &Method,
    params: Params,
    wire: Wire,
) -> Response {
    // Errors before the stream starts are JSON, as for any request.
    let media = Media::negotiate(headers);
    let principal = match principal(&state, headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let last_event_id = match last_event_id(headers) {
        Ok(id) => id,
        Err(message) => return refuse(media, StatusCode::BAD_REQUEST, message, BAD_REQUEST),
    };
    // Every stream counts against its address's rate, as a WebSocket connection does.
    if let Err(refusal) = state.admission.by_address.take(&address, 1) {
        return refused(media, &refusal);
    }
    let permit = match state.admission.streams.admit(address) {
        Ok(permit) => permit,
        Err(refusal) => return refused(media, &refusal),
    };
    let mut request = params.into_request();
    let operation_name = request.operation_name.clone();
    let note = AccessNote {
        operation: operation_name.clone(),
        subject: principal.as_ref().map(|p| p.subject.clone()),
    };
    let operation = match operation_type(&state, &mut request, principal.as_ref(), &note) {
        Ok(operation) => operation,
        Err(response) => return *response,
    };
    if operation != Some(OperationType::Subscription) {
        // A query or mutation (or a document that does not parse): answered once, as over
        // plain HTTP, then the stream ends.
        let answer = run(
            &state,
            request,
            principal.as_ref(),
            method,
            Media::GraphqlResponse,
        )
        .await;
        if answer.status != StatusCode::OK && !(wire == Wire::Sse && streamed_error(&answer.body)) {
            let mut response = answer.into_response(Media::Json, principal.as_ref(), None);
            response.extensions_mut().insert(note);
            return response;
        }
        let payload = String::from_utf8_lossy(&answer.body).into_owned();
        let frames = vec![
            Bytes::from(result_frame(wire, "", &payload, 0)),
            Bytes::from(end_frame(wire, "")),
        ];
        let body = prelude(wire)
            .into_iter()
            .chain(frames)
            .map(Ok::<_, Infallible>);
        let body = futures::stream::iter(body).chain(futures::stream::once(async move {
            drop(permit);
            Ok(Bytes::new())
        }));
        return stream_response(wire, Body::from_stream(body), note);
    }
    if let Err(errors) = validate(&state.schema, &request).await {
        let parse = errors
            .iter()
            .any(|e| code_of(e) == Some(GRAPHQL_PARSE_FAILED));
        if wire == Wire::Multipart || parse {
            let body = serde_json::json!({ "errors": errors });
            return json_response(StatusCode::BAD_REQUEST, &body, note);
        }
        // graphql-sse: validation errors travel in the stream.
        let frames: Vec<Bytes> = prelude(wire)
            .into_iter()
            .chain(
                refusal_frames(wire, "", &errors)
                    .into_iter()
                    .flatten()
                    .map(Bytes::from),
            )
            .collect();
        drop(permit);
        let body = futures::stream::iter(frames.into_iter().map(Ok::<_, Infallible>));
        return stream_response(wire, Body::from_stream(body), note);
    }

    // A signed-in subscriber counts against its subject's rate, as over WebSocket.
    if let Some(p) = &principal {
        if let Err(refusal) = state.admission.by_subject.take(&p.subject, 1) {
            return refused(media, &refusal);
        }
    }
    let Some(mut analysis) = fanout::analyze(&request) else {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            "not a subscription",
            BAD_REQUEST,
        );
    };
    if let Some(position) = last_event_id {
        request = analysis.resume_from(request, position);
    }
    let outbox = Arc::new(Outbox::new(state.metrics.clone()));
    let running = start(
        &state,
        request,
        &analysis,
        principal,
        wire,
        outbox.clone(),
        String::new(),
        OP,
    );
    let guard = Guard {
        fanout: state.fanout.clone(),
        metrics: state.metrics.clone(),
        running: Some(running),
        _permit: permit,
    };
    let pump = Pump::new(
        wire,
        outbox,
        state.ws.keepalive,
        state.shutdown.clone(),
        Box::new(guard),
    );
    stream_response(wire, Body::from_stream(pump.into_stream()), note)
}

/// Starts subscription `request` (which `analysis` describes) as operation `id` (generation
/// `op`) of `outbox`: in its shared execution, or in one of its own. Counts it in
/// `scoreline_subscriptions`; [`Running::stop`] undoes both.
#[allow(clippy::too_many_arguments)]
pub(super) fn start(
    state: &AppState,
    mut request: async_graphql::Request,
    analysis: &fanout::Analysis,
    principal: Option<crate::auth::Principal>,
    wire: Wire,
    outbox: Arc<Outbox>,
    id: String,
    op: u64,
) -> Running {
    Metrics::add(&state.metrics.subscriptions, 1);
    if analysis.shareable {
        return Running::Shared(state.fanout.join(
            request,
            analysis,
            principal,
            MemberSpec {
                outbox,
                protocol: wire,
                id,
                op,
            },
        ));
    }
    if let Some(p) = principal {
        request = request.data(p);
    }
    let task = tokio::spawn(own_execution(
        state.schema.clone(),
        request,
        wire,
        outbox,
        state.metrics.clone(),
        id,
        op,
    ));
    Running::Task(task.abort_handle())
}

/// `Last-Event-ID`: the position (`version` or `seq`) of the last event the client received.
fn last_event_id(headers: &HeaderMap) -> Result<Option<u64>, String> {
    let Some(value) = headers.get("last-event-id") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<u64>()
        .ok()
        .filter(|&n| i64::try_from(n).is_ok())
        .map(Some)
        .ok_or_else(|| {
            "Last-Event-ID must be the id of an event this server sent (a version or seq)".into()
        })
}

/// Whether a 4xx answer's errors are ones graphql-sse streams (validation, not parsing).
fn streamed_error(body: &[u8]) -> bool {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let codes: Vec<&str> = value["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .filter_map(|e| e["extensions"]["code"].as_str())
                .collect()
        })
        .unwrap_or_default();
    !codes.is_empty() && codes.iter().all(|c| *c == GRAPHQL_VALIDATION_FAILED)
}

/// Parses and validates a subscription without running it: the schema refuses to run a
/// subscription outside a stream, after parsing and validating it, so the errors it reports
/// with a parse or validation code are the document's.
pub(super) async fn validate(
    schema: &ScorelineSchema,
    request: &async_graphql::Request,
) -> Result<(), Vec<async_graphql::ServerError>> {
    let mut probe = async_graphql::Request::new(request.query.clone());
    probe.operation_name = request.operation_name.clone();
    probe.variables = request.variables.clone();
    let response = schema.execute(probe).await;
    let errors: Vec<_> = response
        .errors
        .into_iter()
        .filter(|e| {
            matches!(
                code_of(e),
                Some(GRAPHQL_PARSE_FAILED | GRAPHQL_VALIDATION_FAILED)
            )
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Resolves a request's persisted document (APQ, trusted documents) and reads its operation's
/// type (none for a document that does not parse); a refusal is the response to send.
pub(super) fn operation_type(
    state: &AppState,
    request: &mut async_graphql::Request,
    principal: Option<&crate::auth::Principal>,
    note: &AccessNote,
) -> Result<Option<OperationType>, Box<Response>> {
    if let Err(error) = state.persisted.resolve(request, principal.is_none()) {
        let status = if error.is_negotiation() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        let body = serde_json::json!({ "errors": [error.to_server_error()] });
        return Err(Box::new(json_response(status, &body, note.clone())));
    }
    Ok(state
        .documents
        .prepare(request)
        .and_then(|doc| DocumentCache::operation_type(doc.parsed(), request)))
}

pub(super) fn json_response(
    status: StatusCode,
    body: &serde_json::Value,
    note: AccessNote,
) -> Response {
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(body).unwrap_or_default(),
    )
        .into_response();
    response.extensions_mut().insert(note);
    response
}

/// What a stream starts with: the first multipart delimiter.
pub(super) fn prelude(wire: Wire) -> Option<Bytes> {
    (wire == Wire::Multipart).then_some(Bytes::from_static(MULTIPART_PREAMBLE.as_bytes()))
}

pub(super) fn stream_response(wire: Wire, body: Body, note: AccessNote) -> Response {
    let content_type = match wire {
        Wire::Multipart => MULTIPART,
        _ => EVENT_STREAM,
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx would otherwise buffer the stream.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.extensions_mut().insert(note);
    response
}

/// A subscription that shares no execution (a literal resume argument, a fragment at the
/// root): run for this stream alone, waiting for room in its queue, containing a panic.
async fn own_execution(
    schema: ScorelineSchema,
    request: async_graphql::Request,
    wire: Wire,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    id: String,
    op: u64,
) {
    let run = AssertUnwindSafe(execute(
        schema,
        request,
        wire,
        outbox.clone(),
        metrics,
        &id,
        op,
    ));
    if run.catch_unwind().await.is_err() {
        tracing::error!("an HTTP subscription stream panicked; its subscriber is told");
        outbox.op_ended(id.clone(), op);
        for frame in refusal_frames(wire, &id, &[internal_error()])
            .into_iter()
            .flatten()
        {
            outbox.push_frame(frame);
        }
    }
}

async fn execute(
    schema: ScorelineSchema,
    request: async_graphql::Request,
    wire: Wire,
    outbox: Arc<Outbox>,
    metrics: Arc<Metrics>,
    id: &str,
    op: u64,
) {
    let tap = PositionTap::default();
    let mut responses = schema.execute_stream(request.data(tap.clone()));
    let mut first = true;
    while let Some(response) = responses.next().await {
        let position = tap.take();
        if first && is_request_error(&response) {
            outbox.op_ended(id.to_string(), op);
            for frame in refusal_frames(wire, id, &response.errors)
                .into_iter()
                .flatten()
            {
                outbox.push_frame(frame);
            }
            return;
        }
        first = false;
        Metrics::inc(&metrics.subscription_executions);
        let payload = serde_json::to_string(&response).unwrap_or_default();
        let frame = result_frame(wire, id, &payload, position);
        if outbox.push_op_waiting(op, frame, &metrics).await == Pushed::Closed {
            return;
        }
    }
    outbox.op_ended(id.to_string(), op);
    outbox.push_frame(end_frame(wire, id));
}

/// How a stream's operation runs.
pub(super) enum Running {
    Shared(Membership),
    Task(AbortHandle),
}

impl Running {
    /// Stops the operation (a no-op for one that already ended) and uncounts it.
    pub(super) fn stop(self, fanout: &Fanout, metrics: &Metrics) {
        match self {
            Running::Shared(membership) => fanout.leave(membership),
            Running::Task(task) => task.abort(),
        }
        Metrics::add(&metrics.subscriptions, -1);
    }
}

/// What a stream holds until its response body is dropped (finished, or the client went
/// away): its place in the fan-out, its subscription count and its admission permit.
struct Guard {
    fanout: Arc<Fanout>,
    metrics: Arc<Metrics>,
    running: Option<Running>,
    _permit: StreamPermit,
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            running.stop(&self.fanout, &self.metrics);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn streams_are_chosen_by_accept_and_apollo_query_headers_stay_json() {
        assert_eq!(negotiate(&accept("text/event-stream")), Some(Wire::Sse));
        assert_eq!(
            negotiate(&accept(
                "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\",application/json"
            )),
            Some(Wire::Multipart)
        );
        assert_eq!(
            negotiate(&accept(
                "multipart/mixed;subscriptionSpec=1.0, application/json"
            )),
            Some(Wire::Multipart)
        );
        // Apollo Client's header for queries: incremental delivery, which is not a stream here.
        assert_eq!(
            negotiate(&accept(
                "multipart/mixed;deferSpec=20220824,application/graphql-response+json,application/json;q=0.9"
            )),
            None
        );
        assert_eq!(negotiate(&accept("application/json")), None);
        assert_eq!(negotiate(&accept("text/event-stream;q=0")), None);
        assert_eq!(negotiate(&HeaderMap::new()), None);
    }

    #[test]
    fn only_clients_that_accept_no_json_get_their_queries_as_a_stream() {
        assert!(!accepts_json(&accept("text/event-stream")));
        assert!(accepts_json(&accept(
            "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed"
        )));
        assert!(accepts_json(&accept("text/event-stream, */*")));
        assert!(!accepts_json(&accept(
            "text/event-stream, application/json;q=0"
        )));
    }

    #[test]
    fn a_last_event_id_is_a_position_or_refused() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_event_id(&headers), Ok(None));
        headers.insert("last-event-id", HeaderValue::from_static(" 42 "));
        assert_eq!(last_event_id(&headers), Ok(Some(42)));
        headers.insert("last-event-id", HeaderValue::from_static("abc"));
        assert!(last_event_id(&headers).is_err());
        headers.insert("last-event-id", HeaderValue::from_static("-1"));
        assert!(last_event_id(&headers).is_err());
    }
}
