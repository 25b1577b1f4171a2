//! Match-day inputs (operator or admin) other than details: status, events, score, clock. Each
//! carries `expectedVersion` and `clientMutationId` and parses into a [`MatchDay`].

use async_graphql::{InputObject, ID};
use scoreline_core::command::{ClockUpdate, MatchCommand, NewEvent};
use scoreline_core::service::WriteOptions;
use scoreline_core::text::{Description, PlayerName};
use scoreline_core::{ClientMutationId, MatchId, ValidationError};

use super::opt_non_negative;
use crate::graphql::types::enums::{self, EventTypeGql, MatchStatusGql, SideGql};

/// What every match-day input carries besides its own fields.
pub(super) fn match_day(
    match_id: ID,
    expected_version: Option<i64>,
    client_mutation_id: Option<String>,
) -> Result<(MatchId, WriteOptions), ValidationError> {
    let expected_version = match expected_version {
        Some(v) if v < 1 => {
            return Err(ValidationError::new(
                "expectedVersion",
                "must be at least 1",
            ))
        }
        Some(v) => Some(v as u64),
        None => None,
    };
    Ok((
        MatchId::parse(match_id.0)?,
        WriteOptions {
            expected_version,
            client_mutation_id: client_mutation_id
                .map(ClientMutationId::parse)
                .transpose()?,
        },
    ))
}

/// A parsed match-day mutation.
pub struct MatchDay {
    pub match_id: MatchId,
    pub command: MatchCommand,
    pub options: WriteOptions,
}

#[derive(InputObject)]
pub struct SetMatchStatusInput {
    pub match_id: ID,
    pub status: MatchStatusGql,
    /// Refuse with VERSION_CONFLICT unless the match is at this version.
    pub expected_version: Option<i64>,
    /// Idempotency key: a replay returns the first result and changes nothing.
    pub client_mutation_id: Option<String>,
}

impl SetMatchStatusInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        Ok(MatchDay {
            match_id,
            command: MatchCommand::SetStatus(self.status.into()),
            options,
        })
    }
}

#[derive(InputObject)]
pub struct RecordEventInput {
    pub match_id: ID,
    #[graphql(name = "type")]
    pub event_type: EventTypeGql,
    /// The side whose score the event changes (for an OWN_GOAL, the team credited).
    pub side: Option<SideGql>,
    pub player: Option<String>,
    /// Defaults to the sport's points for the type.
    pub points: Option<i32>,
    /// Defaults to the clock's period.
    pub period: Option<i32>,
    /// Defaults to the clock's elapsed seconds.
    pub clock_seconds: Option<i32>,
    pub description: Option<String>,
    pub expected_version: Option<i64>,
    pub client_mutation_id: Option<String>,
}

impl RecordEventInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        let event = NewEvent {
            event_type: self.event_type.into(),
            side: self.side.map(enums::side),
            player: self.player.map(PlayerName::parse).transpose()?,
            points: opt_non_negative("points", self.points)?,
            period: opt_non_negative("period", self.period)?,
            clock_seconds: opt_non_negative("clockSeconds", self.clock_seconds)?,
            description: self.description.map(Description::parse).transpose()?,
        };
        Ok(MatchDay {
            match_id,
            command: MatchCommand::RecordEvent(event),
            options,
        })
    }
}

/// An absolute score correction, recorded on the timeline as SCORE_CORRECTION.
#[derive(InputObject)]
pub struct UpdateScoreInput {
    pub match_id: ID,
    pub home: i32,
    pub away: i32,
    pub expected_version: Option<i64>,
    pub client_mutation_id: Option<String>,
}

impl UpdateScoreInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        let home = scoreline_core::model::check_score("home", i64::from(self.home))?;
        let away = scoreline_core::model::check_score("away", i64::from(self.away))?;
        Ok(MatchDay {
            match_id,
            command: MatchCommand::UpdateScore { home, away },
            options,
        })
    }
}

/// A partial clock update: absent fields keep their value.
#[derive(InputObject)]
pub struct UpdateClockInput {
    pub match_id: ID,
    pub period: Option<i32>,
    pub elapsed_seconds: Option<i32>,
    pub running: Option<bool>,
    pub expected_version: Option<i64>,
    pub client_mutation_id: Option<String>,
}

impl UpdateClockInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        Ok(MatchDay {
            match_id,
            command: MatchCommand::UpdateClock(ClockUpdate {
                period: opt_non_negative("period", self.period)?,
                elapsed_seconds: opt_non_negative("elapsedSeconds", self.elapsed_seconds)?,
                running: self.running,
            }),
            options,
        })
    }
}
