//! Frame text. Frames are written by hand around a payload serialized once, so a shared
//! execution serializes each change once however many sockets and operation ids it reaches.

use std::sync::Arc;

use async_graphql::{Response, ServerError, Value};
use axum::extract::ws::Utf8Bytes;

use crate::graphql::error::{code_of, GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED};
use crate::ws::Protocol;

/// A frame shape: protocol and operation id, pre-escaped.
#[derive(Clone, PartialEq, Eq, Hash)]
pub(super) struct Variant {
    pub(super) protocol: Protocol,
    pub(super) id_json: Arc<str>,
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
/// legacy protocol always sends `data` with the errors, then `complete`.
pub fn refusal_frames(
    protocol: Protocol,
    id: &str,
    errors: &[ServerError],
) -> [Option<Utf8Bytes>; 2] {
    let errors_json = serde_json::to_string(errors).unwrap_or_default();
    let document_error = errors.iter().any(|e| {
        matches!(
            code_of(e),
            Some(GRAPHQL_PARSE_FAILED | GRAPHQL_VALIDATION_FAILED)
        )
    });
    if protocol == Protocol::GraphqlTransportWs && document_error {
        return [Some(json_frame("error", id, &errors_json)), None];
    }
    let payload = format!("{{\"data\":null,\"errors\":{errors_json}}}");
    [
        Some(json_frame(next_type(protocol), id, &payload)),
        Some(complete_frame(id)),
    ]
}

/// `{"type": kind, "id": id, "payload": payload}` with a payload already in JSON.
pub fn json_frame(kind: &str, id: &str, payload_json: &str) -> Utf8Bytes {
    let variant = Variant {
        protocol: Protocol::GraphqlTransportWs,
        id_json: serde_json::to_string(id).unwrap_or_default().into(),
    };
    frame(kind, &variant, payload_json)
}

/// `{"type": "complete", "id": id}` (both protocols).
pub fn complete_frame(id: &str) -> Utf8Bytes {
    let id = serde_json::to_string(id).unwrap_or_default();
    Utf8Bytes::from(format!("{{\"type\":\"complete\",\"id\":{id}}}"))
}
