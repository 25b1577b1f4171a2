//! Frame text. Frames are written by hand around a payload serialized once, so a shared
//! execution serializes each change once however many sockets and operation ids it reaches.
//!
//! A frame is what one subscriber's connection writes for one item, in its [`Wire`] format:
//! a WebSocket message (`graphql-transport-ws` or legacy `graphql-ws`), a Server-Sent Event
//! (graphql-sse, distinct connections mode) or a part of an Apollo multipart response.

use std::sync::Arc;

use async_graphql::{Response, ServerError, Value};
use axum::extract::ws::Utf8Bytes;

use crate::graphql::error::{code_of, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED};
use crate::ws::Protocol;

/// How a subscriber's connection frames what it receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Wire {
    /// A WebSocket subprotocol.
    Ws(Protocol),
    /// `text/event-stream`, graphql-sse's distinct connections mode: `event: next` with `id:`
    /// the item's position, `event: complete`.
    Sse,
    /// graphql-sse's single connection mode: one event stream carries every operation of a
    /// reservation, `data` is `{"id": operationId, "payload": result}` (and `{"id": …}` on
    /// `complete`).
    SseSingle,
    /// `multipart/mixed;subscriptionSpec="1.0"`, Apollo's multipart subscriptions: one
    /// `application/json` part per result, `{"payload": result}`.
    Multipart,
}

impl From<Protocol> for Wire {
    fn from(protocol: Protocol) -> Self {
        Wire::Ws(protocol)
    }
}

/// What a multipart response starts with: the first delimiter. Every part then ends with the
/// next delimiter, so a client reading up to a boundary has each part as soon as it is sent.
pub const MULTIPART_PREAMBLE: &str = "\r\n--graphql\r\n";
/// The multipart keep-alive: an empty JSON object, which clients skip.
pub const MULTIPART_HEARTBEAT: &str = "Content-Type: application/json\r\n\r\n{}\r\n--graphql\r\n";
/// The last multipart part and the close delimiter.
const MULTIPART_END: &str = "Content-Type: application/json\r\n\r\n{}\r\n--graphql--\r\n";
/// The event-stream keep-alive: a comment line, which clients skip.
pub const SSE_HEARTBEAT: &str = ":\n\n";
/// The event that ends a graphql-sse operation (with an empty `data` field, without which
/// browsers' `EventSource` would not dispatch it).
const SSE_COMPLETE: &str = "event: complete\ndata:\n\n";

/// Code of the error that ends an HTTP subscription stream whose client read too slowly: the
/// client resubscribes with `Last-Event-ID` (or `sinceVersion`/`afterSeq`).
pub const SLOW_CONSUMER: &str = "SLOW_CONSUMER";

/// A frame shape: wire and operation id, pre-escaped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Variant {
    pub(super) protocol: Wire,
    pub(super) id_json: Arc<str>,
}

impl Variant {
    pub(super) fn new(protocol: Wire, id: &str) -> Self {
        Self {
            protocol,
            id_json: serde_json::to_string(id).unwrap_or_default().into(),
        }
    }
}

/// The frame carrying one result (`payload`, serialized) whose item is at `position` (a
/// `version` or `seq`; 0 for none).
pub(super) fn next_frame(variant: &Variant, payload: &str, position: u64) -> Utf8Bytes {
    match variant.protocol {
        Wire::Ws(protocol) => frame(next_type(protocol), variant, payload),
        Wire::Sse => sse_next(payload, position),
        Wire::SseSingle => sse_next(
            &format!("{{\"id\":{},\"payload\":{payload}}}", variant.id_json),
            0,
        ),
        Wire::Multipart => multipart_part(&format!("{{\"payload\":{payload}}}")),
    }
}

/// The frame carrying one result of operation `id` on `protocol`, for an execution of its own.
pub fn result_frame(protocol: Wire, id: &str, payload: &str, position: u64) -> Utf8Bytes {
    next_frame(&Variant::new(protocol, id), payload, position)
}

/// A `next` event; `id:` is the item's position, which a reconnecting client sends back as
/// `Last-Event-ID`. The payload is compact JSON: one line.
fn sse_next(payload: &str, position: u64) -> Utf8Bytes {
    let mut text = String::with_capacity(payload.len() + 40);
    if position != 0 {
        text.push_str("id: ");
        text.push_str(&position.to_string());
        text.push('\n');
    }
    text.push_str("event: next\ndata: ");
    text.push_str(payload);
    text.push_str("\n\n");
    Utf8Bytes::from(text)
}

/// One multipart part holding `json`, followed by the next delimiter.
fn multipart_part(json: &str) -> Utf8Bytes {
    Utf8Bytes::from(format!(
        "Content-Type: application/json\r\n\r\n{json}\r\n--graphql\r\n"
    ))
}

/// The frame that ends operation `id` normally.
pub fn end_frame(protocol: impl Into<Wire>, id: &str) -> Utf8Bytes {
    match protocol.into() {
        Wire::Ws(_) => complete_frame(id),
        Wire::Sse => Utf8Bytes::from_static(SSE_COMPLETE),
        Wire::SseSingle => Utf8Bytes::from(format!(
            "event: complete\ndata: {{\"id\":{}}}\n\n",
            serde_json::to_string(id).unwrap_or_default()
        )),
        Wire::Multipart => Utf8Bytes::from_static(MULTIPART_END),
    }
}

/// Whether `frame` ends an HTTP stream (after it, the response body ends).
pub fn is_http_end(frame: &str) -> bool {
    frame == SSE_COMPLETE || frame == MULTIPART_END
}

/// The frames that end an HTTP stream whose client read too slowly: an error with code
/// [`SLOW_CONSUMER`], then the end of the stream.
pub fn slow_consumer_frames(protocol: Wire) -> Vec<Utf8Bytes> {
    let error = serde_json::json!([{
        "message": "slow consumer: the stream fell too far behind; resubscribe with Last-Event-ID (or sinceVersion/afterSeq)",
        "extensions": {"code": SLOW_CONSUMER},
    }]);
    match protocol {
        // A connection of many operations just ends: its client reconnects them all.
        Wire::Ws(_) | Wire::SseSingle => Vec::new(),
        Wire::Sse => vec![
            sse_next(&format!("{{\"errors\":{error}}}"), 0),
            end_frame(Wire::Sse, ""),
        ],
        // A transport error, as Apollo's protocol defines it: `payload` null, `errors` beside.
        Wire::Multipart => vec![
            multipart_part(&format!("{{\"payload\":null,\"errors\":{error}}}")),
            end_frame(Wire::Multipart, ""),
        ],
    }
}

pub(super) fn frame(kind: &str, variant: &Variant, payload: &str) -> Utf8Bytes {
    let mut text = String::with_capacity(payload.len() + variant.id_json.len() + 40);
    text.push_str("{\"type\":\"");
    text.push_str(kind);
    text.push_str("\",\"id\":");
    text.push_str(&variant.id_json);
    text.push_str(",\"payload\":");
    text.push_str(payload);
    text.push('}');
    Utf8Bytes::from(text)
}

/// The `next` (or legacy `data`) frame type of a protocol.
pub fn next_type(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::GraphqlTransportWs => "next",
        Protocol::LegacyGraphqlWs => "data",
    }
}

/// Refused before anything ran (parse, validation, NOT_FOUND): the operation ends with `error`.
pub fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty() && matches!(response.data, Value::Null)
}

/// The frames that end an operation refused before its first result, as the reference servers
/// send them: with graphql-transport-ws, a document that does not parse or validate gets
/// `error`, and any other refusal (`NOT_FOUND`, `PERSISTED_QUERY_NOT_FOUND`, a limit) a `next`
/// carrying the errors, then `complete`, so clients (Apollo, urql) show `extensions.code`; the
/// legacy protocol always sends `data` with the errors, then `complete`, and so do HTTP
/// streams (`next` event or multipart part, then the end of the stream).
pub fn refusal_frames(
    protocol: impl Into<Wire>,
    id: &str,
    errors: &[ServerError],
) -> [Option<Utf8Bytes>; 2] {
    let protocol = protocol.into();
    let errors_json = serde_json::to_string(errors).unwrap_or_default();
    let document_error = errors.iter().any(|e| {
        matches!(
            code_of(e),
            Some(GRAPHQL_PARSE_FAILED | GRAPHQL_VALIDATION_FAILED)
        )
    });
    if protocol == Wire::Ws(Protocol::GraphqlTransportWs) && document_error {
        return [Some(json_frame("error", id, &errors_json)), None];
    }
    let payload = format!("{{\"data\":null,\"errors\":{errors_json}}}");
    [
        Some(next_frame(&Variant::new(protocol, id), &payload, 0)),
        Some(end_frame(protocol, id)),
    ]
}

/// `{"type": kind, "id": id, "payload": payload}` with a payload already in JSON.
pub fn json_frame(kind: &str, id: &str, payload_json: &str) -> Utf8Bytes {
    frame(
        kind,
        &Variant::new(Protocol::GraphqlTransportWs.into(), id),
        payload_json,
    )
}

/// `{"type": "complete", "id": id}` (both protocols).
pub fn complete_frame(id: &str) -> Utf8Bytes {
    let id = serde_json::to_string(id).unwrap_or_default();
    Utf8Bytes::from(format!("{{\"type\":\"complete\",\"id\":{id}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_sse_next_event_carries_the_position_as_its_id_and_one_data_line() {
        let frame = result_frame(Wire::Sse, "", "{\"data\":{\"a\":\"x\\ny\"}}", 42);
        assert_eq!(
            frame.as_str(),
            "id: 42\nevent: next\ndata: {\"data\":{\"a\":\"x\\ny\"}}\n\n"
        );
        // No position (a query's result): no id, so EventSource keeps the last one.
        let frame = result_frame(Wire::Sse, "", "{}", 0);
        assert_eq!(frame.as_str(), "event: next\ndata: {}\n\n");
        assert_eq!(
            end_frame(Wire::Sse, "").as_str(),
            "event: complete\ndata:\n\n"
        );
        assert!(is_http_end(&end_frame(Wire::Sse, "")));
    }

    #[test]
    fn a_multipart_part_is_followed_by_the_next_crlf_delimiter() {
        let frame = result_frame(Wire::Multipart, "", "{\"data\":null}", 3);
        assert_eq!(
            frame.as_str(),
            "Content-Type: application/json\r\n\r\n{\"payload\":{\"data\":null}}\r\n--graphql\r\n"
        );
        let end = end_frame(Wire::Multipart, "");
        assert!(end.as_str().ends_with("\r\n--graphql--\r\n"));
        assert!(is_http_end(&end));
        assert!(MULTIPART_PREAMBLE.starts_with("\r\n--graphql\r\n"));
    }

    #[test]
    fn single_connection_events_name_their_operation_and_do_not_end_the_stream() {
        let frame = result_frame(Wire::SseSingle, "op-1", "{\"data\":{}}", 9);
        assert_eq!(
            frame.as_str(),
            "event: next\ndata: {\"id\":\"op-1\",\"payload\":{\"data\":{}}}\n\n"
        );
        let complete = end_frame(Wire::SseSingle, "op-1");
        assert_eq!(
            complete.as_str(),
            "event: complete\ndata: {\"id\":\"op-1\"}\n\n"
        );
        assert!(!is_http_end(&complete));
    }

    #[test]
    fn http_refusals_are_a_result_with_the_errors_then_the_end() {
        let error = ServerError::new("no match with id x", None);
        let [first, second] = refusal_frames(Wire::Sse, "", std::slice::from_ref(&error));
        assert!(first
            .unwrap()
            .as_str()
            .starts_with("event: next\ndata: {\"data\":null,\"errors\":"));
        assert!(is_http_end(&second.unwrap()));
        let frames = slow_consumer_frames(Wire::Multipart);
        assert!(frames[0].as_str().contains("\"payload\":null"));
        assert!(frames[0].as_str().contains(SLOW_CONSUMER));
        assert!(is_http_end(&frames[1]));
    }
}
