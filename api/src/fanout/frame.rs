//! Frame text. Frames are written by hand around a payload serialized once, so a shared
//! execution serializes each change once however many sockets and operation ids it reaches.

use std::sync::Arc;

use async_graphql::{Response, Value};
use axum::extract::ws::Utf8Bytes;

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
