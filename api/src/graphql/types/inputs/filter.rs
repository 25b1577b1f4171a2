//! `MatchFilter`: which matches a listing or `matchesUpdated` admits.

use async_graphql::{InputObject, ID};
use chrono::TimeDelta;
use scoreline_core::store::{MatchFilter, MAX_WINDOW_DAYS};
use scoreline_core::{CompetitionId, TeamId, ValidationError};

use super::DateTimeInput;
use crate::graphql::types::enums::{self, MatchStatusGql, SportGql};

/// The most statuses one filter may list (there are six).
const MAX_FILTER_STATUSES: usize = 6;

/// Which matches `matches` lists or `matchesUpdated` follows. Every field is optional and the
/// given ones must all hold; an empty filter admits every match. Malformed values (an id, a
/// time outside years 0001 to 9999, `from` not before `to`, `from` and `to` more than 400 days
/// apart, more than six statuses) fail with BAD_USER_INPUT.
#[derive(InputObject, Default)]
#[graphql(name = "MatchFilter")]
pub struct MatchFilterInput {
    /// Only matches of this sport.
    pub sport: Option<SportGql>,
    /// Only matches of this competition (an unknown id simply matches nothing).
    pub competition_id: Option<ID>,
    /// Only matches this team plays in, at home or away.
    pub team_id: Option<ID>,
    /// Only matches in any of these statuses (at most six); empty or absent admits them all.
    pub status: Option<Vec<MatchStatusGql>>,
    /// Only matches starting at or after this instant.
    pub from: Option<DateTimeInput>,
    /// Only matches starting before this instant; must be after `from`, and at most 400 days
    /// after it.
    pub to: Option<DateTimeInput>,
}

impl MatchFilterInput {
    pub fn parse(self) -> Result<MatchFilter, ValidationError> {
        let statuses = self.status.unwrap_or_default();
        if statuses.len() > MAX_FILTER_STATUSES {
            return Err(ValidationError::new("status", "lists at most six statuses"));
        }
        let from = self.from.map(|t| t.to_utc("from")).transpose()?;
        let to = self.to.map(|t| t.to_utc("to")).transpose()?;
        if let (Some(from), Some(to)) = (from, to) {
            if from >= to {
                return Err(ValidationError::new("to", "must be after from"));
            }
            // Both are within years 1..=9999, so the difference cannot overflow.
            if to.signed_duration_since(from) > TimeDelta::days(MAX_WINDOW_DAYS) {
                return Err(ValidationError::new(
                    "to",
                    format!(
                        "must be at most {MAX_WINDOW_DAYS} days after from (MAX_WINDOW_DAYS); \
                         page through a longer period one window at a time"
                    ),
                ));
            }
        }
        Ok(MatchFilter {
            sport: self.sport.map(enums::sport),
            competition_id: self
                .competition_id
                .map(|id| CompetitionId::parse(id.0))
                .transpose()?,
            team_id: self.team_id.map(|id| TeamId::parse(id.0)).transpose()?,
            statuses: statuses.into_iter().map(enums::status).collect(),
            from,
            to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(from: &str, to: &str) -> Result<MatchFilter, ValidationError> {
        MatchFilterInput {
            from: Some(DateTimeInput(from.into())),
            to: Some(DateTimeInput(to.into())),
            ..Default::default()
        }
        .parse()
    }

    #[test]
    fn a_window_of_400_days_is_accepted_and_a_second_more_is_refused_naming_the_limit() {
        assert!(window("2026-01-01T00:00:00Z", "2027-02-05T00:00:00Z").is_ok());
        let refused = window("2026-01-01T00:00:00Z", "2027-02-05T00:00:01Z").unwrap_err();
        assert_eq!(refused.field(), "to");
        assert!(refused.message().contains("400 days"), "{refused}");
        assert!(refused.message().contains("MAX_WINDOW_DAYS"), "{refused}");
    }

    #[test]
    fn the_widest_window_of_all_is_refused_without_overflow() {
        let refused = window("0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z").unwrap_err();
        assert!(refused.message().contains("400 days"), "{refused}");
    }

    #[test]
    fn bounds_at_the_ends_of_the_supported_years_are_accepted() {
        assert!(window("0001-01-01T00:00:00Z", "0001-06-01T00:00:00Z").is_ok());
        assert!(window("9999-06-01T00:00:00Z", "9999-12-31T23:59:59.999Z").is_ok());
        let one_sided = MatchFilterInput {
            from: Some(DateTimeInput("9999-12-31T23:59:59Z".into())),
            ..Default::default()
        };
        assert!(one_sided.parse().is_ok());
    }

    #[test]
    fn instants_outside_years_1_to_9999_are_refused_offsets_included() {
        for (from, field) in [
            ("0000-12-31T23:59:59Z", "from"),
            ("0001-01-01T00:00:00+00:01", "from"),
            ("9999-12-31T23:59:59-00:01", "from"),
        ] {
            let refused = MatchFilterInput {
                from: Some(DateTimeInput(from.into())),
                ..Default::default()
            }
            .parse()
            .unwrap_err();
            assert_eq!(refused.field(), field, "{from}");
            assert!(
                refused.message().contains("0001-01-01"),
                "{from}: {refused}"
            );
        }
        let refused = MatchFilterInput {
            to: Some(DateTimeInput("+10000-01-01T00:00:00Z".into())),
            ..Default::default()
        }
        .parse()
        .unwrap_err();
        assert_eq!(refused.field(), "to");
    }
}
