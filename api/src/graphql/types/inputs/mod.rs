//! Input objects and their conversion into parsed core values. A conversion either yields a
//! value made only of parsed types or a `ValidationError` naming the field.
//!
//! # Layout
//!
//! - `filter`: `MatchFilter`, for listings and `matchesUpdated`.
//! - `catalog`: `createCompetition`, `createTeam`, `createMatch` (admin).
//! - `match_day`: status, events, score and clock (operator), with the shared version and
//!   idempotency fields.
//! - `details`: `updateDetails`, one partial input per sport.

use std::borrow::Cow;

use async_graphql::registry::Registry;
use async_graphql::{InputType, InputValueError, InputValueResult, Value};
use chrono::{DateTime, Utc};
use scoreline_core::store::{earliest_instant, latest_instant};
use scoreline_core::ValidationError;

use super::scalars::UtcDateTime;

pub(super) fn non_negative(field: &'static str, v: i32) -> Result<u32, ValidationError> {
    u32::try_from(v).map_err(|_| ValidationError::new(field, "must not be negative"))
}

pub(super) fn opt_non_negative(
    field: &'static str,
    v: Option<i32>,
) -> Result<Option<u32>, ValidationError> {
    v.map(|v| non_negative(field, v)).transpose()
}

/// A `DateTime` input as the client sent it. In the schema it is the very `DateTime` scalar
/// outputs use; only its parsing is left to the input's `parse`, so that a malformed time is a
/// `ValidationError` naming its field (async-graphql's own coercion error names only the type).
pub struct DateTimeInput(String);

impl DateTimeInput {
    /// The instant, or a refusal naming `field`. Accepts what the `DateTime` scalar accepts,
    /// within years 0001 to 9999 in UTC (start times and window bounds become sort keys with a
    /// four-digit year; an offset can carry `9999-12-31T23:00:00-02:00` past it).
    fn to_utc(&self, field: &'static str) -> Result<DateTime<Utc>, ValidationError> {
        let t = self.0.parse::<DateTime<Utc>>().map_err(|_| {
            ValidationError::new(
                field,
                "must be an RFC 3339 date-time, e.g. \"2026-11-22T15:00:00Z\"",
            )
        })?;
        if t < earliest_instant() || t > latest_instant() {
            return Err(ValidationError::new(
                field,
                "must be between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z",
            ));
        }
        Ok(t)
    }
}

impl InputType for DateTimeInput {
    type RawValueType = str;

    fn type_name() -> Cow<'static, str> {
        <UtcDateTime as InputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        // Registers our `DateTime` scalar itself: one scalar, whichever side uses it.
        <UtcDateTime as InputType>::create_type_info(registry)
    }

    fn parse(value: Option<Value>) -> InputValueResult<Self> {
        match value.unwrap_or_default() {
            Value::String(s) => Ok(Self(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }

    fn as_raw_value(&self) -> Option<&Self::RawValueType> {
        Some(&self.0)
    }
}

pub(super) fn rename(e: ValidationError, field: &'static str) -> ValidationError {
    ValidationError::new(field, e.message().to_string())
}

mod catalog;
mod details;
mod filter;
mod match_day;

pub use catalog::{CreateCompetitionInput, CreateMatchInput, CreateTeamInput};
pub use details::UpdateDetailsInput;
pub use filter::MatchFilterInput;
pub use match_day::{
    MatchDay, RecordEventInput, SetMatchStatusInput, UpdateClockInput, UpdateScoreInput,
};
