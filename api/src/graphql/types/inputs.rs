//! Input objects and their conversion into parsed core values. A conversion either yields a
//! value made only of parsed types or a `ValidationError` naming the field.

use std::borrow::Cow;

use async_graphql::registry::Registry;
use async_graphql::{InputObject, InputType, InputValueError, InputValueResult, Value, ID};
use chrono::{DateTime, SubsecRound, Utc};
use scoreline_core::command::{ClockUpdate, DetailsPatch, MatchCommand, NewEvent};
use scoreline_core::model::Bases;
use scoreline_core::service::WriteOptions;
use scoreline_core::store::MatchFilter;
use scoreline_core::text::{Description, Name, PlayerName, Season, ShortName, Venue};
use scoreline_core::{ClientMutationId, CompetitionId, MatchId, TeamId, ValidationError};

use super::enums::{self, EventTypeGql, InningHalfGql, MatchStatusGql, SideGql, SportGql};

fn non_negative(field: &'static str, v: i32) -> Result<u32, ValidationError> {
    u32::try_from(v).map_err(|_| ValidationError::new(field, "must not be negative"))
}

fn opt_non_negative(field: &'static str, v: Option<i32>) -> Result<Option<u32>, ValidationError> {
    v.map(|v| non_negative(field, v)).transpose()
}

/// A `DateTime` input as the client sent it. In the schema it is the very `DateTime` scalar
/// outputs use; only its parsing is left to the input's `parse`, so that a malformed time is a
/// `ValidationError` naming its field (async-graphql's own coercion error names only the type).
pub struct DateTimeInput(String);

impl DateTimeInput {
    /// The instant, or a refusal naming `field`. Accepts what the `DateTime` scalar accepts.
    fn to_utc(&self, field: &'static str) -> Result<DateTime<Utc>, ValidationError> {
        self.0.parse::<DateTime<Utc>>().map_err(|_| {
            ValidationError::new(
                field,
                "must be an RFC 3339 date-time, e.g. \"2026-11-22T15:00:00Z\"",
            )
        })
    }
}

impl InputType for DateTimeInput {
    type RawValueType = str;

    fn type_name() -> Cow<'static, str> {
        <DateTime<Utc> as InputType>::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        // Registers chrono's `DateTime` scalar itself: one scalar, whichever side uses it.
        <DateTime<Utc> as InputType>::create_type_info(registry)
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

#[derive(InputObject)]
pub struct CreateCompetitionInput {
    /// Chosen by the server when absent.
    pub id: Option<ID>,
    pub name: String,
    pub sport: SportGql,
    /// e.g. "2026" or "2026-27".
    pub season: String,
}

#[derive(InputObject)]
pub struct CreateTeamInput {
    /// Chosen by the server when absent.
    pub id: Option<ID>,
    pub name: String,
    /// 2 to 5 letters or digits; derived from the name when absent.
    pub short_name: Option<String>,
    pub sport: SportGql,
    /// Competitions the team is registered in (teams are also registered by their matches).
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

/// A new match; it takes its competition's sport.
#[derive(InputObject)]
pub struct CreateMatchInput {
    /// Chosen by the server when absent.
    pub id: Option<ID>,
    pub competition_id: ID,
    pub home_team_id: ID,
    pub away_team_id: ID,
    /// RFC 3339, e.g. "2026-11-22T15:00:00Z".
    pub start_time: DateTimeInput,
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

fn rename(e: ValidationError, field: &'static str) -> ValidationError {
    ValidationError::new(field, e.message().to_string())
}

/// What every match-day input carries besides its own fields.
fn match_day(
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

#[derive(InputObject)]
pub struct SoccerDetailsInput {
    pub home_yellow_cards: Option<i32>,
    pub away_yellow_cards: Option<i32>,
    pub home_red_cards: Option<i32>,
    pub away_red_cards: Option<i32>,
    pub added_time_minutes: Option<i32>,
}

#[derive(InputObject)]
pub struct BasesInput {
    pub first: bool,
    pub second: bool,
    pub third: bool,
}

#[derive(InputObject)]
pub struct BaseballDetailsInput {
    pub inning: Option<i32>,
    pub half: Option<InningHalfGql>,
    pub outs: Option<i32>,
    pub balls: Option<i32>,
    pub strikes: Option<i32>,
    pub bases: Option<BasesInput>,
}

#[derive(InputObject)]
pub struct BasketballDetailsInput {
    pub home_team_fouls: Option<i32>,
    pub away_team_fouls: Option<i32>,
    pub home_timeouts_left: Option<i32>,
    pub away_timeouts_left: Option<i32>,
}

/// A partial update of the sport-specific details: give exactly one of `soccer`, `baseball`,
/// `basketball`, matching the match's sport; absent fields keep their value.
#[derive(InputObject)]
pub struct UpdateDetailsInput {
    pub match_id: ID,
    pub soccer: Option<SoccerDetailsInput>,
    pub baseball: Option<BaseballDetailsInput>,
    pub basketball: Option<BasketballDetailsInput>,
    pub expected_version: Option<i64>,
    pub client_mutation_id: Option<String>,
}

impl UpdateDetailsInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        let patch = match (self.soccer, self.baseball, self.basketball) {
            (Some(s), None, None) => DetailsPatch::Soccer {
                home_yellow_cards: opt_non_negative("homeYellowCards", s.home_yellow_cards)?,
                away_yellow_cards: opt_non_negative("awayYellowCards", s.away_yellow_cards)?,
                home_red_cards: opt_non_negative("homeRedCards", s.home_red_cards)?,
                away_red_cards: opt_non_negative("awayRedCards", s.away_red_cards)?,
                added_time_minutes: opt_non_negative("addedTimeMinutes", s.added_time_minutes)?,
            },
            (None, Some(b), None) => DetailsPatch::Baseball {
                inning: opt_non_negative("inning", b.inning)?,
                half: b.half.map(enums::half),
                outs: opt_non_negative("outs", b.outs)?,
                balls: opt_non_negative("balls", b.balls)?,
                strikes: opt_non_negative("strikes", b.strikes)?,
                bases: b.bases.map(|b| Bases {
                    first: b.first,
                    second: b.second,
                    third: b.third,
                }),
            },
            (None, None, Some(b)) => DetailsPatch::Basketball {
                home_team_fouls: opt_non_negative("homeTeamFouls", b.home_team_fouls)?,
                away_team_fouls: opt_non_negative("awayTeamFouls", b.away_team_fouls)?,
                home_timeouts_left: opt_non_negative("homeTimeoutsLeft", b.home_timeouts_left)?,
                away_timeouts_left: opt_non_negative("awayTimeoutsLeft", b.away_timeouts_left)?,
            },
            _ => {
                return Err(ValidationError::new(
                    "details",
                    "give exactly one of soccer, baseball, basketball",
                ))
            }
        };
        Ok(MatchDay {
            match_id,
            command: MatchCommand::UpdateDetails(patch),
            options,
        })
    }
}
