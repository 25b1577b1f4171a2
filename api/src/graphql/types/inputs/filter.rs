//! `MatchFilter`: which matches a listing or `matchesUpdated` admits.

use async_graphql::{InputObject, ID};
use scoreline_core::store::MatchFilter;
use scoreline_core::{CompetitionId, TeamId, ValidationError};

use super::DateTimeInput;
use crate::graphql::types::enums::{self, MatchStatusGql, SportGql};

/// The most statuses one filter may list (there are six).
const MAX_FILTER_STATUSES: usize = 6;

/// Which matches `matches` lists or `matchesUpdated` follows. Every field is optional and the
/// given ones must all hold; an empty filter admits every match. Malformed values (an id, a
/// time, `from` not before `to`, more than six statuses) fail with BAD_USER_INPUT.
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
    /// Only matches starting before this instant; must be after `from`.
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
