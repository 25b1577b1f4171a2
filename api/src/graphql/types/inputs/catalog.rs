//! The catalogue's inputs (admin): competitions, teams, matches.

use async_graphql::{InputObject, ID};
use chrono::{DateTime, SubsecRound, Utc};
use scoreline_core::text::{Name, Season, ShortName, Venue};
use scoreline_core::{CompetitionId, MatchId, TeamId, ValidationError};

use super::{rename, DateTimeInput};
use crate::graphql::types::enums::SportGql;

/// A new competition.
#[derive(InputObject)]
pub struct CreateCompetitionInput {
    /// The new competition's id: 1 to 64 letters, digits, `_`, `-`, `.` or `:`. Chosen by the server
    /// when absent; one already taken fails with BAD_USER_INPUT.
    pub id: Option<ID>,
    /// Its full name, 1 to 100 characters (trimmed).
    pub name: String,
    /// The sport its matches and teams play.
    pub sport: SportGql,
    /// The season label, 1 to 20 characters, e.g. "2026" or "2026-27".
    pub season: String,
}

/// A new team.
#[derive(InputObject)]
pub struct CreateTeamInput {
    /// The new team's id: 1 to 64 letters, digits, `_`, `-`, `.` or `:`. Chosen by the server
    /// when absent; one already taken fails with BAD_USER_INPUT.
    pub id: Option<ID>,
    /// Its full name, 1 to 100 characters (trimmed).
    pub name: String,
    /// 2 to 5 letters or digits, stored upper-case; derived from the name when absent
    /// ("Real Madrid Club" → "RMC", "Arsenal" → "ARS").
    pub short_name: Option<String>,
    /// The sport it plays; it can only play matches of competitions of this sport.
    pub sport: SportGql,
    /// Existing competitions of the same sport to register the team in, at most 20 (a team is
    /// also registered in a competition by its first match there).
    pub competition_ids: Option<Vec<ID>>,
}

pub struct NewTeam {
    pub id: Option<TeamId>,
    pub name: Name,
    pub short_name: ShortName,
    pub competitions: Vec<CompetitionId>,
}

/// The most competitions a team can be registered in at creation.
const MAX_TEAM_COMPETITIONS: usize = 20;

impl CreateTeamInput {
    pub fn parse(self) -> Result<NewTeam, ValidationError> {
        let name = Name::parse(&self.name)?;
        let short_name = match self.short_name {
            Some(s) => ShortName::parse(s)?,
            None => ShortName::derive_from(&name),
        };
        let ids = self.competition_ids.unwrap_or_default();
        if ids.len() > MAX_TEAM_COMPETITIONS {
            return Err(ValidationError::new(
                "competitionIds",
                format!("lists at most {MAX_TEAM_COMPETITIONS} competitions"),
            ));
        }
        Ok(NewTeam {
            id: self
                .id
                .map(|id| TeamId::parse(id.0))
                .transpose()
                .map_err(|e| rename(e, "id"))?,
            name,
            short_name,
            competitions: ids
                .into_iter()
                .map(|id| CompetitionId::parse(id.0))
                .collect::<Result<_, _>>()
                .map_err(|e| rename(e, "competitionIds"))?,
        })
    }
}

impl CreateCompetitionInput {
    pub fn parse(self) -> Result<(Option<CompetitionId>, Name, Season), ValidationError> {
        Ok((
            self.id
                .map(|id| CompetitionId::parse(id.0))
                .transpose()
                .map_err(|e| rename(e, "id"))?,
            Name::parse(&self.name)?,
            Season::parse(&self.season)?,
        ))
    }
}

/// A new match; it takes its competition's sport and starts SCHEDULED at version 1.
#[derive(InputObject)]
pub struct CreateMatchInput {
    /// The new match's id: 1 to 64 letters, digits, `_`, `-`, `.` or `:`. Chosen by the server
    /// when absent; one already taken fails with BAD_USER_INPUT.
    pub id: Option<ID>,
    /// An existing competition; the match plays its sport.
    pub competition_id: ID,
    /// An existing team of the competition's sport, playing at home.
    pub home_team_id: ID,
    /// An existing team of the competition's sport, other than the home team.
    pub away_team_id: ID,
    /// The scheduled start, RFC 3339, e.g. "2026-11-22T15:00:00Z"; kept to the second.
    pub start_time: DateTimeInput,
    /// Where it is played, up to 120 characters (trimmed).
    pub venue: Option<String>,
}

pub struct NewMatch {
    pub id: Option<MatchId>,
    pub competition_id: CompetitionId,
    pub home_team_id: TeamId,
    pub away_team_id: TeamId,
    pub start_time: DateTime<Utc>,
    pub venue: Option<Venue>,
}

impl CreateMatchInput {
    pub fn parse(self) -> Result<NewMatch, ValidationError> {
        Ok(NewMatch {
            id: self
                .id
                .map(|id| MatchId::parse(id.0))
                .transpose()
                .map_err(|e| rename(e, "id"))?,
            competition_id: CompetitionId::parse(self.competition_id.0)?,
            home_team_id: TeamId::parse(self.home_team_id.0)
                .map_err(|e| rename(e, "homeTeamId"))?,
            away_team_id: TeamId::parse(self.away_team_id.0)
                .map_err(|e| rename(e, "awayTeamId"))?,
            // Start times are kept to the second: they are sort keys.
            start_time: self.start_time.to_utc("startTime")?.trunc_subsecs(0),
            venue: self.venue.map(Venue::parse).transpose()?,
        })
    }
}
