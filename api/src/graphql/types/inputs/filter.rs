//! `MatchFilter`: which matches a listing or `matchesUpdated` admits.

use async_graphql::{InputObject, ID};
use scoreline_core::store::MatchFilter;
use scoreline_core::{CompetitionId, TeamId, ValidationError};

use super::DateTimeInput;
use crate::graphql::types::enums::{self, MatchStatusGql, SportGql};

/// The most statuses one filter may list (there are six).
const MAX_FILTER_STATUSES: usize = 6;

/// Which matches a listing or `matchesUpdated` admits; all fields optional.
#[derive(InputObject, Default)]
#[graphql(name = "MatchFilter")]
pub struct MatchFilterInput {
    pub sport: Option<SportGql>,
    pub competition_id: Option<ID>,
    pub team_id: Option<ID>,
    /// Any of these statuses.
    pub status: Option<Vec<MatchStatusGql>>,
    /// Matches starting at or after this instant.
    pub from: Option<DateTimeInput>,
    /// Matches starting before this instant.
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
