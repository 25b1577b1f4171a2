//! Enums of the schema, mirrored from the core's enums so the core stays free of GraphQL.

use async_graphql::Enum;
use scoreline_core::model::InningHalf;
use scoreline_core::{MatchStatus, Side, Sport};

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Sport", remote = "scoreline_core::Sport")]
pub enum SportGql {
    Soccer,
    Basketball,
    Baseball,
    IceHockey,
    AmericanFootball,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "MatchStatus", remote = "scoreline_core::MatchStatus")]
pub enum MatchStatusGql {
    Scheduled,
    Live,
    Paused,
    Finished,
    Postponed,
    Cancelled,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "Side", remote = "scoreline_core::Side")]
pub enum SideGql {
    Home,
    Away,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "InningHalf", remote = "scoreline_core::model::InningHalf")]
pub enum InningHalfGql {
    Top,
    Bottom,
}

#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "EventType", remote = "scoreline_core::EventType")]
pub enum EventTypeGql {
    Goal,
    OwnGoal,
    PenaltyGoal,
    YellowCard,
    RedCard,
    Substitution,
    Run,
    HomeRun,
    FieldGoal,
    ThreePointer,
    FreeThrow,
    Touchdown,
    ExtraPoint,
    TwoPointConversion,
    Safety,
    Penalty,
    Timeout,
    PeriodStart,
    PeriodEnd,
    StatusChange,
    ScoreCorrection,
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
