//! Enums of the schema, mirrored from the core's enums so the core stays free of GraphQL.

use async_graphql::Enum;
use scoreline_core::model::InningHalf;
use scoreline_core::{MatchStatus, Side, Sport};

/// A sport. It sets a match's periods, its timeline event types with their default points, and
/// the member of `MatchDetails` it carries.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Sport", remote = "scoreline_core::Sport")]
pub enum SportGql {
    /// Association football: halves 1H and 2H, then extra time ET1, ET2 and a shoot-out PEN
    /// (periods 1–5).
    Soccer,
    /// Quarters Q1–Q4, then overtimes OT1, OT2, … (periods 1–14).
    Basketball,
    /// Innings 1–9, then extra innings (periods 1–30).
    Baseball,
    /// Periods P1–P3, then overtimes OT1, OT2, … (periods 1–13).
    IceHockey,
    /// Quarters Q1–Q4, then overtimes OT1, OT2, … (periods 1–14).
    AmericanFootball,
}

/// Where a match stands. Allowed moves: SCHEDULED → LIVE, POSTPONED or CANCELLED; LIVE ⇄
/// PAUSED; LIVE or PAUSED → FINISHED; POSTPONED → SCHEDULED.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MatchStatus", remote = "scoreline_core::MatchStatus")]
pub enum MatchStatusGql {
    /// Not started yet.
    Scheduled,
    /// In play: scoring events are accepted.
    Live,
    /// Interrupted (e.g. half-time or a weather delay); pausing stops the clock. Still listed by
    /// `liveMatches`.
    Paused,
    /// Over. Only score corrections (`updateScore`) and NOTE events are still accepted.
    Finished,
    /// Put off to a later date; it can be SCHEDULED again.
    Postponed,
    /// Will not be played; nothing changes any more.
    Cancelled,
}

/// One of the two teams of a match.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Side", remote = "scoreline_core::Side")]
pub enum SideGql {
    /// The home team (`Match.homeTeam`).
    Home,
    /// The away team (`Match.awayTeam`).
    Away,
}

/// The half of a baseball inning.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "InningHalf", remote = "scoreline_core::model::InningHalf")]
pub enum InningHalfGql {
    /// The away team bats.
    Top,
    /// The home team bats.
    Bottom,
}

/// What happened on a match's timeline. Each sport accepts its own types (others are refused
/// with BAD_USER_INPUT). Scoring types add their default points to the event's side unless
/// `points` is given, and need the match LIVE; the others need it LIVE or PAUSED, except NOTE.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "EventType", remote = "scoreline_core::EventType")]
pub enum EventTypeGql {
    /// Scoring, SOCCER and ICE_HOCKEY: 1 point.
    Goal,
    /// Scoring, SOCCER and ICE_HOCKEY: 1 point to the side credited (not the side that scored
    /// it).
    OwnGoal,
    /// Scoring, SOCCER and ICE_HOCKEY: a penalty kick or penalty shot converted, 1 point.
    PenaltyGoal,
    /// SOCCER, no points; `side` is the carded player's team, and it counts in
    /// `SoccerDetails`.
    YellowCard,
    /// SOCCER, no points; `side` is the sent-off player's team, and it counts in
    /// `SoccerDetails`.
    RedCard,
    /// Any sport, no points.
    Substitution,
    /// Scoring, BASEBALL: 1 point.
    Run,
    /// Scoring, BASEBALL: the batter plus every runner on base (from `BaseballDetails.bases`),
    /// which it clears.
    HomeRun,
    /// Scoring, BASKETBALL: 2 points; AMERICAN_FOOTBALL: 3 points.
    FieldGoal,
    /// Scoring, BASKETBALL: 3 points.
    ThreePointer,
    /// Scoring, BASKETBALL: 1 point.
    FreeThrow,
    /// Scoring, AMERICAN_FOOTBALL: 6 points.
    Touchdown,
    /// Scoring, AMERICAN_FOOTBALL: 1 point (the kick after a touchdown).
    ExtraPoint,
    /// Scoring, AMERICAN_FOOTBALL: 2 points.
    TwoPointConversion,
    /// Scoring, AMERICAN_FOOTBALL: 2 points.
    Safety,
    /// ICE_HOCKEY, AMERICAN_FOOTBALL and BASKETBALL, no points.
    Penalty,
    /// BASKETBALL, AMERICAN_FOOTBALL and ICE_HOCKEY, no points (timeouts left are kept in
    /// `details`, with `updateDetails`).
    Timeout,
    /// Any sport, no points: sets the clock running at the event's `period` and
    /// `clockSeconds`.
    PeriodStart,
    /// Any sport, no points: stops the clock.
    PeriodEnd,
    /// Written by `setMatchStatus`, with a description such as "SCHEDULED → LIVE";
    /// `recordEvent` refuses it.
    StatusChange,
    /// Written by `updateScore`, with a description such as "score corrected from 0-0 to
    /// 2-1"; `recordEvent` refuses it.
    ScoreCorrection,
    /// Any sport and any status but CANCELLED, no points: free text in `description`.
    Note,
}

// The remote derive converts both ways; these keep call sites short.
pub fn sport(s: SportGql) -> Sport {
    s.into()
}
pub fn status(s: MatchStatusGql) -> MatchStatus {
    s.into()
}
pub fn side(s: SideGql) -> Side {
    s.into()
}
pub fn half(h: InningHalfGql) -> InningHalf {
    h.into()
}
