//! Our own scalars. `DateTime` replaces chrono's scalar of the same name so that the schema
//! carries a description written for app developers; its wire format is chrono's, unchanged.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::Utc;

/// An instant in UTC, the schema's `DateTime` scalar.
pub struct UtcDateTime(pub chrono::DateTime<Utc>);

// The scalar's description is this impl's doc comment: the derive reads it from here.
/// An instant, as an RFC 3339 date-time string. Responses are always in UTC with a `+00:00`
/// offset and carry fractional seconds only when the instant has them, e.g.
/// `"2026-11-22T15:00:00+00:00"` or `"2026-11-22T15:23:41.087+00:00"`. Inputs take any RFC 3339
/// date-time, with `Z` or an offset (`"2026-11-22T15:00:00Z"`, `"2026-11-22T16:00:00+01:00"`);
/// a malformed one is refused with `BAD_USER_INPUT`.
#[Scalar(
    name = "DateTime",
    specified_by_url = "https://datatracker.ietf.org/doc/html/rfc3339"
)]
impl ScalarType for UtcDateTime {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            // The same parser chrono's scalar uses, so inputs are accepted exactly as before.
            Value::String(s) => Ok(Self(s.parse::<chrono::DateTime<Utc>>()?)),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339())
    }
}

impl From<chrono::DateTime<Utc>> for UtcDateTime {
    fn from(t: chrono::DateTime<Utc>) -> Self {
        Self(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instant(raw: &str) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
    }

    #[test]
    fn outputs_are_byte_identical_to_chronos_scalar() {
        for raw in [
            "2026-11-22T15:00:00Z",
            "2026-11-22T15:23:41.087Z",
            "2026-11-22T15:23:41.000001Z",
            "2026-11-22T16:00:00+01:00",
        ] {
            let t = instant(raw);
            assert_eq!(
                UtcDateTime(t).to_value(),
                <chrono::DateTime<Utc> as ScalarType>::to_value(&t),
                "{raw}"
            );
        }
        assert_eq!(
            UtcDateTime(instant("2026-11-22T15:00:00Z")).to_value(),
            Value::String("2026-11-22T15:00:00+00:00".into())
        );
    }

    #[test]
    fn inputs_are_accepted_and_refused_exactly_as_chronos_scalar_does() {
        for raw in [
            "2026-11-22T15:00:00Z",
            "2026-11-22T15:00:00+00:00",
            "2026-11-22T16:00:00+01:00",
            "2026-11-22T15:00:00.5Z",
            "2026-11-22 15:00:00Z",
            "2026-11-22T15:00:00",
            "2026-11-22",
            "yesterday",
            "",
        ] {
            let ours = UtcDateTime::parse(Value::String(raw.into())).map(|t| t.0);
            let chronos = <chrono::DateTime<Utc> as ScalarType>::parse(Value::String(raw.into()));
            assert_eq!(ours.ok(), chronos.ok(), "{raw:?}");
        }
        assert!(UtcDateTime::parse(Value::Number(1.into())).is_err());
    }
}
