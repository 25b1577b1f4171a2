//! WebSocket client messages as the connection loop reads them: the JSON `ClientMessage`, the
//! credential of `connection_init` (read from the text and from the parsed payload), and the
//! GraphQL request of `subscribe` / `start`. Nothing may panic, and the two ways of reading a
//! credential must agree wherever the text holds no repeated key.

#![no_main]

use api::fuzzing::{client_message, token_from_init_message, token_from_init_payload, AuthError};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some((kind, _id, payload)) = client_message(text) else {
        return;
    };
    match kind.as_str() {
        "connection_init" => {
            let from_text = token_from_init_message(text);
            let from_value = token_from_init_payload(payload.as_ref().unwrap_or(&Value::Null));
            // The text sees every key; the parsed value only the last of a repeated one. So
            // one credential in the text is the value's too, and what the value finds
            // ambiguous the text does.
            if let Ok(token) = &from_text {
                assert_eq!(from_value.as_ref(), Ok(token), "{text}");
            }
            if from_value == Err(AuthError::AmbiguousCredentials) {
                assert_eq!(from_text, Err(AuthError::AmbiguousCredentials), "{text}");
            }
        }
        "subscribe" | "start" => {
            if let Some(payload) = payload {
                let _ = serde_json::from_value::<async_graphql::Request>(payload);
            }
        }
        _ => {}
    }
});
