//! The credential in a WebSocket `connection_init` payload: an `Authorization` key (any case)
//! at the top level, or inside a `headers` object (`{"headers": {"Authorization": ...}}`).
//!
//! More than one value is refused as [`AuthError::AmbiguousCredentials`], never resolved by a
//! rule the client cannot see: two keys differing only in case (`Authorization` and
//! `authorization`, at either level), the same key twice (JSON allows it; a parsed object keeps
//! only the last), two `headers` objects, or a top-level value and a `headers` value that
//! differ. Otherwise `{"Authorization": "Bearer <valid admin>", "authorization": "garbage"}`
//! would be whichever one a lookup happened to find first.
//!
//! The payload is read with a serde visitor rather than from a parsed `Value`, so that repeated
//! keys are seen.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize as _;
use serde_json::Value;

use super::AuthError;

/// The authorization value of a `connection_init` payload; `Ok(None)` when absent or `null`.
///
/// A present value that is not a string is returned as its JSON text, so that it fails
/// [`super::Authenticator::authenticate`] as malformed instead of silently meaning anonymous.
pub fn token_from_init_payload(payload: &Value) -> Result<Option<String>, AuthError> {
    // Every JSON value reads (anything but an object holds no credential).
    Credentials::read(payload).unwrap_or(Err(AuthError::MalformedHeader))
}

/// [`token_from_init_payload`] for a whole `connection_init` message as received, where a key
/// repeated exactly is still visible.
pub fn token_from_init_message(text: &str) -> Result<Option<String>, AuthError> {
    #[derive(serde::Deserialize)]
    struct Message {
        #[serde(default)]
        payload: Option<Payload>,
    }
    struct Payload(Result<Option<String>, AuthError>);
    impl<'de> serde::Deserialize<'de> for Payload {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            Ok(Payload(Credentials::read(deserializer)?))
        }
    }
    match serde_json::from_str::<Message>(text) {
        Ok(Message { payload }) => payload.map_or(Ok(None), |p| p.0),
        // The connection loop parsed it already; a message it took but this does not (a
        // `payload` key twice) has no single meaning either.
        Err(_) => Err(AuthError::AmbiguousCredentials),
    }
}

/// What one object (the payload, or its `headers`) holds.
#[derive(Default)]
struct Credentials {
    /// The `Authorization` value (`None` for `null`), if the key is present.
    authorization: Option<Option<String>>,
    /// The `headers` object's value, if the key is present (`None` when it holds none).
    headers: Option<Option<String>>,
    ambiguous: bool,
}

impl Credentials {
    fn read<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Result<Option<String>, AuthError>, D::Error> {
        let found = deserializer.deserialize_any(ObjectVisitor { nested: false })?;
        if found.ambiguous {
            return Ok(Err(AuthError::AmbiguousCredentials));
        }
        let top = found.authorization.flatten();
        let nested = found.headers.flatten();
        Ok(match (top, nested) {
            (Some(top), Some(nested)) if top != nested => Err(AuthError::AmbiguousCredentials),
            (top, nested) => Ok(top.or(nested)),
        })
    }
}

/// Reads an object's keys; anything that is not an object holds no credential.
struct ObjectVisitor {
    /// Inside `headers`: only `Authorization` counts there.
    nested: bool,
}

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = Credentials;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Credentials, A::Error> {
        let mut found = Credentials::default();
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("authorization") {
                found.ambiguous |= found.authorization.is_some();
                found.authorization = Some(map.next_value_seed(AuthorizationValue)?);
            } else if !self.nested && key.eq_ignore_ascii_case("headers") {
                found.ambiguous |= found.headers.is_some();
                let headers = map.next_value_seed(Nested)?;
                found.ambiguous |= headers.ambiguous;
                found.headers = Some(headers.authorization.flatten());
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Credentials, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Credentials::default())
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_unit<E: de::Error>(self) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Credentials, E> {
        Ok(Credentials::default())
    }
}

/// The value of a `headers` key.
struct Nested;

impl<'de> DeserializeSeed<'de> for Nested {
    type Value = Credentials;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Credentials, D::Error> {
        deserializer.deserialize_any(ObjectVisitor { nested: true })
    }
}

/// The value of an `Authorization` key: a string as it is, `null` as absent, anything else
/// as its JSON text.
struct AuthorizationValue;

impl<'de> DeserializeSeed<'de> for AuthorizationValue {
    type Value = Option<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        Ok(match Value::deserialize(deserializer)? {
            Value::Null => None,
            Value::String(s) => Some(s),
            other => Some(other.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn both(text: &str) -> Result<Option<String>, AuthError> {
        let from_text =
            token_from_init_message(&format!(r#"{{"type":"connection_init","payload":{text}}}"#));
        // A parsed value has lost exact repeats; where there are none, both agree.
        if let Ok(value) = serde_json::from_str::<Value>(text) {
            let has_exact_repeat = text.matches("\"Authorization\"").count() > 1;
            if !has_exact_repeat {
                assert_eq!(token_from_init_payload(&value), from_text, "{text}");
            }
        }
        from_text
    }

    #[test]
    fn one_authorization_key_of_any_case_at_either_level_is_the_credential() {
        for text in [
            r#"{"Authorization": "Bearer abc"}"#,
            r#"{"authorization": "Bearer abc"}"#,
            r#"{"AUTHORIZATION": "Bearer abc", "other": {"Authorization": "x"}}"#,
            r#"{"headers": {"authorization": "Bearer abc"}}"#,
            r#"{"Headers": {"Authorization": "Bearer abc", "X-Other": "1"}}"#,
            r#"{"Authorization": "Bearer abc", "headers": {"Authorization": "Bearer abc"}}"#,
            r#"{"Authorization": null, "headers": {"Authorization": "Bearer abc"}}"#,
        ] {
            assert_eq!(both(text), Ok(Some("Bearer abc".into())), "{text}");
        }
    }

    #[test]
    fn two_keys_differing_in_case_at_either_level_are_ambiguous() {
        for text in [
            r#"{"Authorization": "Bearer valid", "authorization": "Bearer garbage"}"#,
            r#"{"authorization": "Bearer garbage", "Authorization": "Bearer valid"}"#,
            r#"{"Authorization": "Bearer valid", "AUTHORIZATION": null}"#,
            r#"{"headers": {"Authorization": "Bearer valid", "authorization": "x"}}"#,
            r#"{"headers": {"Authorization": "a"}, "Headers": {"Authorization": "a"}}"#,
        ] {
            assert_eq!(both(text), Err(AuthError::AmbiguousCredentials), "{text}");
        }
    }

    #[test]
    fn the_same_key_twice_is_ambiguous_though_a_parsed_object_keeps_only_the_last() {
        for text in [
            r#"{"Authorization": "Bearer valid", "Authorization": "Bearer garbage"}"#,
            r#"{"headers": {"Authorization": "a", "Authorization": "b"}}"#,
        ] {
            assert_eq!(both(text), Err(AuthError::AmbiguousCredentials), "{text}");
        }
    }

    #[test]
    fn different_values_at_the_top_level_and_in_headers_are_ambiguous() {
        let text =
            r#"{"Authorization": "Bearer top", "headers": {"Authorization": "Bearer nested"}}"#;
        assert_eq!(both(text), Err(AuthError::AmbiguousCredentials));
    }

    #[test]
    fn payloads_without_an_authorization_value_are_anonymous() {
        for text in [
            "{}",
            "null",
            r#""Bearer abc""#,
            "[1, 2]",
            r#"{"token": "Bearer abc"}"#,
            r#"{"Authorization": null}"#,
            r#"{"headers": "Authorization"}"#,
            r#"{"headers": {"X-Other": "1"}}"#,
            r#"{"headers": {"headers": {"Authorization": "deeper"}}}"#,
        ] {
            assert_eq!(both(text), Ok(None), "{text}");
        }
        assert_eq!(
            token_from_init_message(r#"{"type":"connection_init"}"#),
            Ok(None)
        );
    }

    #[test]
    fn a_non_string_authorization_is_its_json_text() {
        assert_eq!(
            token_from_init_payload(&json!({"Authorization": {"token": "abc"}})),
            Ok(Some(r#"{"token":"abc"}"#.into()))
        );
    }
}
