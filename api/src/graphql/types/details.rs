//! `Match.details`: the sport-specific state of a match, one union member per sport.

use async_graphql::{SimpleObject, Union};
use scoreline_core::model::{
    AmericanFootballDetails, BaseballDetails, BasketballDetails, Details, IceHockeyDetails,
    SoccerDetails,
};

use super::enums::{InningHalfGql, SideGql};

/// Soccer state beyond the score: cards shown and announced added time.
#[derive(SimpleObject)]
#[graphql(name = "SoccerDetails")]
pub struct SoccerDetailsNode {
    /// Yellow cards shown to the home team (0–30); each YELLOW_CARD event for HOME adds one.
    home_yellow_cards: i32,
    /// Yellow cards shown to the away team (0–30); each YELLOW_CARD event for AWAY adds one.
    away_yellow_cards: i32,
    /// Red cards shown to the home team (0–11); each RED_CARD event for HOME adds one.
    home_red_cards: i32,
    /// Red cards shown to the away team (0–11); each RED_CARD event for AWAY adds one.
    away_red_cards: i32,
    /// Minutes of added time announced for the current half (0–30); null until announced.
    added_time_minutes: Option<i32>,
}

/// Which bases have a runner on them.
#[derive(SimpleObject)]
#[graphql(name = "Bases")]
pub struct BasesNode {
    /// A runner is on first base.
    first: bool,
    /// A runner is on second base.
    second: bool,
    /// A runner is on third base.
    third: bool,
}

/// Baseball state beyond the score: inning, count and runners.
#[derive(SimpleObject)]
#[graphql(name = "BaseballDetails")]
pub struct BaseballDetailsNode {
    /// The current inning, from 1 (extra innings up to 30).
    inning: i32,
    /// Whether the away team (TOP) or the home team (BOTTOM) is batting.
    half: InningHalfGql,
    /// Outs in the current half-inning (0–2).
    outs: i32,
    /// Balls in the current count (0–3).
    balls: i32,
    /// Strikes in the current count (0–2).
    strikes: i32,
    /// Runners on base; a HOME_RUN event clears them.
    bases: BasesNode,
}

/// Basketball state beyond the score: team fouls and timeouts.
#[derive(SimpleObject)]
#[graphql(name = "BasketballDetails")]
pub struct BasketballDetailsNode {
    /// Team fouls of the home team (0–99), as last set with `updateDetails`.
    home_team_fouls: i32,
    /// Team fouls of the away team (0–99), as last set with `updateDetails`.
    away_team_fouls: i32,
    /// Timeouts the home team has left (0–10); starts at 7.
    home_timeouts_left: i32,
    /// Timeouts the away team has left (0–10); starts at 7.
    away_timeouts_left: i32,
}

/// A man advantage in ice hockey.
#[derive(SimpleObject)]
#[graphql(name = "PowerPlay")]
pub struct PowerPlayNode {
    /// The side with more skaters on the ice.
    side: SideGql,
    /// Seconds left on the power play (1–300), as of the match's last update.
    seconds_left: i32,
}

/// Ice hockey state beyond the score: shots, penalty minutes and any power play.
#[derive(SimpleObject)]
#[graphql(name = "IceHockeyDetails")]
pub struct IceHockeyDetailsNode {
    /// Shots on goal by the home team (0–150).
    home_shots_on_goal: i32,
    /// Shots on goal by the away team (0–150).
    away_shots_on_goal: i32,
    /// Penalty minutes charged to the home team (0–500).
    home_penalty_minutes: i32,
    /// Penalty minutes charged to the away team (0–500).
    away_penalty_minutes: i32,
    /// The power play in progress; null at even strength.
    power_play: Option<PowerPlayNode>,
}

/// American football state beyond the score: possession, down and distance, field position,
/// timeouts.
#[derive(SimpleObject)]
#[graphql(name = "AmericanFootballDetails")]
pub struct AmericanFootballDetailsNode {
    /// The side with the ball; null before kick-off and between possessions.
    possession: Option<SideGql>,
    /// The current down (1–4); null when no down is being played (kick-offs, tries after a
    /// touchdown).
    down: Option<i32>,
    /// Yards to gain for a first down (1–99, never past the goal line); null exactly when
    /// `down` is.
    yards_to_go: Option<i32>,
    /// Where the ball is spotted, in yards from the goal line of the side in possession
    /// (1–99: 50 is midfield, 80 is the opponent's 20-yard line); null when unknown.
    ball_on: Option<i32>,
    /// Timeouts the home team has left in the half (0–3).
    home_timeouts_left: i32,
    /// Timeouts the away team has left in the half (0–3).
    away_timeouts_left: i32,
}

/// The sport-specific state of a match: the member named after the match's sport (e.g.
/// `IceHockeyDetails` for ICE_HOCKEY). Select it with inline fragments, e.g.
/// `details { ... on SoccerDetails { homeRedCards } }`.
#[derive(Union)]
#[graphql(name = "MatchDetails")]
pub enum DetailsNode {
    Soccer(SoccerDetailsNode),
    Baseball(BaseballDetailsNode),
    Basketball(BasketballDetailsNode),
    IceHockey(IceHockeyDetailsNode),
    AmericanFootball(AmericanFootballDetailsNode),
}

fn count(n: u32) -> i32 {
    n as i32
}

impl From<&SoccerDetails> for SoccerDetailsNode {
    fn from(s: &SoccerDetails) -> Self {
        Self {
            home_yellow_cards: count(s.home_yellow_cards),
            away_yellow_cards: count(s.away_yellow_cards),
            home_red_cards: count(s.home_red_cards),
            away_red_cards: count(s.away_red_cards),
            added_time_minutes: s.added_time_minutes.map(count),
        }
    }
}

impl From<&BaseballDetails> for BaseballDetailsNode {
    fn from(b: &BaseballDetails) -> Self {
        Self {
            inning: count(b.inning),
            half: b.half.into(),
            outs: count(b.outs),
            balls: count(b.balls),
            strikes: count(b.strikes),
            bases: BasesNode {
                first: b.bases.first,
                second: b.bases.second,
                third: b.bases.third,
            },
        }
    }
}

impl From<&BasketballDetails> for BasketballDetailsNode {
    fn from(b: &BasketballDetails) -> Self {
        Self {
            home_team_fouls: count(b.home_team_fouls),
            away_team_fouls: count(b.away_team_fouls),
            home_timeouts_left: count(b.home_timeouts_left),
            away_timeouts_left: count(b.away_timeouts_left),
        }
    }
}

impl From<&IceHockeyDetails> for IceHockeyDetailsNode {
    fn from(h: &IceHockeyDetails) -> Self {
        Self {
            home_shots_on_goal: count(h.home_shots_on_goal),
            away_shots_on_goal: count(h.away_shots_on_goal),
            home_penalty_minutes: count(h.home_penalty_minutes),
            away_penalty_minutes: count(h.away_penalty_minutes),
            power_play: h.power_play.map(|pp| PowerPlayNode {
                side: pp.side.into(),
                seconds_left: count(pp.seconds_left),
            }),
        }
    }
}

impl From<&AmericanFootballDetails> for AmericanFootballDetailsNode {
    fn from(f: &AmericanFootballDetails) -> Self {
        Self {
            possession: f.possession.map(Into::into),
            down: f.down.map(count),
            yards_to_go: f.yards_to_go.map(count),
            ball_on: f.ball_on.map(count),
            home_timeouts_left: count(f.home_timeouts_left),
            away_timeouts_left: count(f.away_timeouts_left),
        }
    }
}

impl From<&Details> for DetailsNode {
    fn from(d: &Details) -> Self {
        match d {
            Details::Soccer(s) => DetailsNode::Soccer(s.into()),
            Details::Baseball(b) => DetailsNode::Baseball(b.into()),
            Details::Basketball(b) => DetailsNode::Basketball(b.into()),
            Details::IceHockey(h) => DetailsNode::IceHockey(h.into()),
            Details::AmericanFootball(f) => DetailsNode::AmericanFootball(f.into()),
        }
    }
}
