//! `updateDetails`: one partial input per sport, parsed into a [`DetailsPatch`].

use async_graphql::{InputObject, MaybeUndefined, ID};
use scoreline_core::command::{DetailsPatch, MatchCommand};
use scoreline_core::model::{Bases, PowerPlay};
use scoreline_core::ValidationError;

use super::match_day::{match_day, MatchDay};
use super::{non_negative, opt_non_negative};
use crate::graphql::types::enums::{self, InningHalfGql, SideGql};

/// Soccer details to change; absent fields keep their value.
#[derive(InputObject)]
pub struct SoccerDetailsInput {
    /// Yellow cards of the home team (0–30).
    pub home_yellow_cards: Option<i32>,
    /// Yellow cards of the away team (0–30).
    pub away_yellow_cards: Option<i32>,
    /// Red cards of the home team (0–11).
    pub home_red_cards: Option<i32>,
    /// Red cards of the away team (0–11).
    pub away_red_cards: Option<i32>,
    /// Minutes of added time announced for the current half (0–30).
    pub added_time_minutes: Option<i32>,
}

/// Which bases have a runner on them; all three are given together.
#[derive(InputObject)]
pub struct BasesInput {
    /// A runner is on first base.
    pub first: bool,
    /// A runner is on second base.
    pub second: bool,
    /// A runner is on third base.
    pub third: bool,
}

/// Baseball details to change; absent fields keep their value.
#[derive(InputObject)]
pub struct BaseballDetailsInput {
    /// The current inning (1–30).
    pub inning: Option<i32>,
    /// TOP (away team batting) or BOTTOM (home team batting).
    pub half: Option<InningHalfGql>,
    /// Outs in the current half-inning (0–2).
    pub outs: Option<i32>,
    /// Balls in the current count (0–3).
    pub balls: Option<i32>,
    /// Strikes in the current count (0–2).
    pub strikes: Option<i32>,
    /// Runners on base, all three bases at once.
    pub bases: Option<BasesInput>,
}

/// Basketball details to change; absent fields keep their value.
#[derive(InputObject)]
pub struct BasketballDetailsInput {
    /// Team fouls of the home team (0–99).
    pub home_team_fouls: Option<i32>,
    /// Team fouls of the away team (0–99).
    pub away_team_fouls: Option<i32>,
    /// Timeouts the home team has left (0–10).
    pub home_timeouts_left: Option<i32>,
    /// Timeouts the away team has left (0–10).
    pub away_timeouts_left: Option<i32>,
}

/// A power play to record: the side with the man advantage and how long it has left.
#[derive(InputObject)]
pub struct PowerPlayInput {
    /// The side with more skaters on the ice.
    pub side: SideGql,
    /// Seconds left on the power play (1–300).
    pub seconds_left: i32,
}

/// Ice hockey details to change; absent fields keep their value.
#[derive(InputObject)]
pub struct IceHockeyDetailsInput {
    /// Shots on goal by the home team (0–150).
    pub home_shots_on_goal: Option<i32>,
    /// Shots on goal by the away team (0–150).
    pub away_shots_on_goal: Option<i32>,
    /// Penalty minutes of the home team (0–500).
    pub home_penalty_minutes: Option<i32>,
    /// Penalty minutes of the away team (0–500).
    pub away_penalty_minutes: Option<i32>,
    /// Starts or updates a power play; an explicit null ends it (back to even strength).
    pub power_play: MaybeUndefined<PowerPlayInput>,
}

/// American football details to change; absent fields keep their value and an explicit null
/// clears a nullable one. `down` and `yardsToGo` are set or cleared together, need
/// `possession`, and `yardsToGo` may not reach past the goal line (at most 100 − `ballOn`).
#[derive(InputObject)]
pub struct AmericanFootballDetailsInput {
    /// The side with the ball; null when neither has it (before kick-off, between possessions).
    pub possession: MaybeUndefined<SideGql>,
    /// The current down (1–4); null when no down is being played.
    pub down: MaybeUndefined<i32>,
    /// Yards to gain for a first down (1–99).
    pub yards_to_go: MaybeUndefined<i32>,
    /// Where the ball is spotted, in yards from the goal line of the side in possession (1–99;
    /// 50 is midfield).
    pub ball_on: MaybeUndefined<i32>,
    /// Timeouts the home team has left in the half (0–3).
    pub home_timeouts_left: Option<i32>,
    /// Timeouts the away team has left in the half (0–3).
    pub away_timeouts_left: Option<i32>,
}

/// A partial update of the sport-specific details: give exactly one of `soccer`, `baseball`,
/// `basketball`, `iceHockey`, `americanFootball`, matching the match's sport (otherwise
/// BAD_USER_INPUT with `extensions.field` `details`); absent fields keep their value. Refused
/// once the match is FINISHED or CANCELLED, and when it would change nothing.
#[derive(InputObject)]
pub struct UpdateDetailsInput {
    /// The match to change. An unknown match fails with NOT_FOUND.
    pub match_id: ID,
    /// Changes for a SOCCER match.
    pub soccer: Option<SoccerDetailsInput>,
    /// Changes for a BASEBALL match.
    pub baseball: Option<BaseballDetailsInput>,
    /// Changes for a BASKETBALL match.
    pub basketball: Option<BasketballDetailsInput>,
    /// Changes for an ICE_HOCKEY match.
    pub ice_hockey: Option<IceHockeyDetailsInput>,
    /// Changes for an AMERICAN_FOOTBALL match.
    pub american_football: Option<AmericanFootballDetailsInput>,
    /// The version the match must be at (1 or more), as last read. When the match has moved on,
    /// the mutation changes nothing and fails with VERSION_CONFLICT, giving
    /// `extensions.currentVersion`. Omit it to apply the change to the newest state.
    pub expected_version: Option<i64>,
    /// An idempotency key of your choosing (1 to 64 letters, digits, `_`, `-`, `.`, `:`), per
    /// match: a replay with the same key within 24 hours returns the first result and changes
    /// nothing, even when its `expectedVersion` is stale by then.
    pub client_mutation_id: Option<String>,
}

/// A nullable patch field: absent keeps (`None`), null clears (`Some(None)`), a value sets.
fn clearable<T, U>(
    value: MaybeUndefined<T>,
    parse: impl FnOnce(T) -> Result<U, ValidationError>,
) -> Result<Option<Option<U>>, ValidationError> {
    Ok(value.map_value(parse).transpose()?.into())
}

impl SoccerDetailsInput {
    fn patch(self) -> Result<DetailsPatch, ValidationError> {
        Ok(DetailsPatch::Soccer {
            home_yellow_cards: opt_non_negative("homeYellowCards", self.home_yellow_cards)?,
            away_yellow_cards: opt_non_negative("awayYellowCards", self.away_yellow_cards)?,
            home_red_cards: opt_non_negative("homeRedCards", self.home_red_cards)?,
            away_red_cards: opt_non_negative("awayRedCards", self.away_red_cards)?,
            added_time_minutes: opt_non_negative("addedTimeMinutes", self.added_time_minutes)?,
        })
    }
}

impl BaseballDetailsInput {
    fn patch(self) -> Result<DetailsPatch, ValidationError> {
        Ok(DetailsPatch::Baseball {
            inning: opt_non_negative("inning", self.inning)?,
            half: self.half.map(enums::half),
            outs: opt_non_negative("outs", self.outs)?,
            balls: opt_non_negative("balls", self.balls)?,
            strikes: opt_non_negative("strikes", self.strikes)?,
            bases: self.bases.map(|b| Bases {
                first: b.first,
                second: b.second,
                third: b.third,
            }),
        })
    }
}

impl BasketballDetailsInput {
    fn patch(self) -> Result<DetailsPatch, ValidationError> {
        Ok(DetailsPatch::Basketball {
            home_team_fouls: opt_non_negative("homeTeamFouls", self.home_team_fouls)?,
            away_team_fouls: opt_non_negative("awayTeamFouls", self.away_team_fouls)?,
            home_timeouts_left: opt_non_negative("homeTimeoutsLeft", self.home_timeouts_left)?,
            away_timeouts_left: opt_non_negative("awayTimeoutsLeft", self.away_timeouts_left)?,
        })
    }
}

impl IceHockeyDetailsInput {
    fn patch(self) -> Result<DetailsPatch, ValidationError> {
        Ok(DetailsPatch::IceHockey {
            home_shots_on_goal: opt_non_negative("homeShotsOnGoal", self.home_shots_on_goal)?,
            away_shots_on_goal: opt_non_negative("awayShotsOnGoal", self.away_shots_on_goal)?,
            home_penalty_minutes: opt_non_negative(
                "homePenaltyMinutes",
                self.home_penalty_minutes,
            )?,
            away_penalty_minutes: opt_non_negative(
                "awayPenaltyMinutes",
                self.away_penalty_minutes,
            )?,
            power_play: clearable(self.power_play, |pp| {
                Ok(PowerPlay {
                    side: enums::side(pp.side),
                    seconds_left: non_negative("powerPlay", pp.seconds_left)?,
                })
            })?,
        })
    }
}

impl AmericanFootballDetailsInput {
    fn patch(self) -> Result<DetailsPatch, ValidationError> {
        Ok(DetailsPatch::AmericanFootball {
            possession: clearable(self.possession, |s| Ok(enums::side(s)))?,
            down: clearable(self.down, |v| non_negative("down", v))?,
            yards_to_go: clearable(self.yards_to_go, |v| non_negative("yardsToGo", v))?,
            ball_on: clearable(self.ball_on, |v| non_negative("ballOn", v))?,
            home_timeouts_left: opt_non_negative("homeTimeoutsLeft", self.home_timeouts_left)?,
            away_timeouts_left: opt_non_negative("awayTimeoutsLeft", self.away_timeouts_left)?,
        })
    }
}

impl UpdateDetailsInput {
    pub fn parse(self) -> Result<MatchDay, ValidationError> {
        let (match_id, options) = match_day(
            self.match_id,
            self.expected_version,
            self.client_mutation_id,
        )?;
        let patch = match (
            self.soccer,
            self.baseball,
            self.basketball,
            self.ice_hockey,
            self.american_football,
        ) {
            (Some(s), None, None, None, None) => s.patch()?,
            (None, Some(b), None, None, None) => b.patch()?,
            (None, None, Some(b), None, None) => b.patch()?,
            (None, None, None, Some(h), None) => h.patch()?,
            (None, None, None, None, Some(f)) => f.patch()?,
            _ => {
                return Err(ValidationError::new(
                    "details",
                    "give exactly one of soccer, baseball, basketball, iceHockey, \
                     americanFootball",
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
