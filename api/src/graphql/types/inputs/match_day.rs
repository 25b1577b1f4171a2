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
            retry_for: None,
        },
    ))
}

/// A parsed match-day mutation.
pub struct MatchDay {
    pub match_id: MatchId,
    pub command: MatchCommand,
    pub options: WriteOptions,
}

/// A move through the status machine: SCHEDULED → LIVE; LIVE ⇄ PAUSED; LIVE or PAUSED →
/// FINISHED; SCHEDULED → POSTPONED or CANCELLED; POSTPONED → SCHEDULED.
#[derive(InputObject)]
pub struct SetMatchStatusInput {
    /// The match to change. An unknown match fails with NOT_FOUND.
    pub match_id: ID,
    /// The status to move to; any other move, or the current status, is BAD_USER_INPUT.
    pub status: MatchStatusGql,
    /// The version the match must be at (1 or more), as last read. When the match has moved on,
    /// the mutation changes nothing and fails with VERSION_CONFLICT, giving
    /// `extensions.currentVersion`. Omit it to apply the change to the newest state.
    pub expected_version: Option<i64>,
    /// An idempotency key of your choosing (1 to 64 letters, digits, `_`, `-`, `.`, `:`), per
    /// match: a replay with the same key within 24 hours returns the first result and changes
    /// nothing, even when its `expectedVersion` is stale by then.
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

/// A timeline event to append. A scoring event adds its points to the side's score (and the
/// period's) in the same write; scoring events need the match LIVE, other events LIVE or PAUSED
/// (a NOTE any status but CANCELLED).
#[derive(InputObject)]
pub struct RecordEventInput {
    /// The match to change. An unknown match fails with NOT_FOUND.
    pub match_id: ID,
    /// What happened; it must be an event of the match's sport (see `EventType`). STATUS_CHANGE
    /// and SCORE_CORRECTION are refused: setMatchStatus and updateScore write them.
    #[graphql(name = "type")]
    pub event_type: EventTypeGql,
    /// The side whose score the event changes (for an OWN_GOAL, the team credited); for a card,
    /// the carded player's side. Required for scoring events and cards.
    pub side: Option<SideGql>,
    /// The player concerned, up to 80 characters (trimmed).
    pub player: Option<String>,
    /// Points to add, 0 to 10, overriding the sport's default for the type (e.g. a TOUCHDOWN
    /// scores 6). Only scoring events carry points; give 0 or nothing for the others.
    pub points: Option<i32>,
    /// The period it happened in, from 1 to the sport's last (overtimes included). Defaults to
    /// the clock's period.
    pub period: Option<i32>,
    /// The clock reading in seconds (0–21600). Defaults to the clock's `elapsedSeconds`.
    pub clock_seconds: Option<i32>,
    /// Free text, up to 500 characters (trimmed).
    pub description: Option<String>,
    /// The version the match must be at (1 or more), as last read. When the match has moved on,
    /// the mutation changes nothing and fails with VERSION_CONFLICT, giving
    /// `extensions.currentVersion`. Omit it to apply the change to the newest state.
    pub expected_version: Option<i64>,
    /// An idempotency key of your choosing (1 to 64 letters, digits, `_`, `-`, `.`, `:`), per
    /// match: a replay with the same key within 24 hours returns the first result and changes
    /// nothing, even when its `expectedVersion` is stale by then.
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

/// An absolute score correction, recorded on the timeline as SCORE_CORRECTION. Accepted while
/// the match is LIVE, PAUSED or FINISHED; the same score as now is refused.
#[derive(InputObject)]
pub struct UpdateScoreInput {
    /// The match to change. An unknown match fails with NOT_FOUND.
    pub match_id: ID,
    /// The home team's score, 0 to 999.
    pub home: i32,
    /// The away team's score, 0 to 999.
    pub away: i32,
    /// The version the match must be at (1 or more), as last read. When the match has moved on,
    /// the mutation changes nothing and fails with VERSION_CONFLICT, giving
    /// `extensions.currentVersion`. Omit it to apply the change to the newest state.
    pub expected_version: Option<i64>,
    /// An idempotency key of your choosing (1 to 64 letters, digits, `_`, `-`, `.`, `:`), per
    /// match: a replay with the same key within 24 hours returns the first result and changes
    /// nothing, even when its `expectedVersion` is stale by then.
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

/// A partial clock update: absent fields keep their value; give at least one. Accepted while
/// the match is LIVE or PAUSED.
#[derive(InputObject)]
pub struct UpdateClockInput {
    /// The match to change. An unknown match fails with NOT_FOUND.
    pub match_id: ID,
    /// The current period, from 1 to the sport's last (overtimes included).
    pub period: Option<i32>,
    /// The clock reading in seconds, 0 to 21600.
    pub elapsed_seconds: Option<i32>,
    /// Whether the clock is running.
    pub running: Option<bool>,
    /// The version the match must be at (1 or more), as last read. When the match has moved on,
    /// the mutation changes nothing and fails with VERSION_CONFLICT, giving
    /// `extensions.currentVersion`. Omit it to apply the change to the newest state.
    pub expected_version: Option<i64>,
    /// An idempotency key of your choosing (1 to 64 letters, digits, `_`, `-`, `.`, `:`), per
    /// match: a replay with the same key within 24 hours returns the first result and changes
    /// nothing, even when its `expectedVersion` is stale by then.
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
