//! The domain's records: competitions, teams, matches and their timeline events. All fields are
//! parsed types; these structs are what the store keeps and what changes carry on the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::ids::{CompetitionId, MatchId, TeamId};
use crate::sport::{EventType, Sport};
use crate::text::{Description, Name, PlayerName, Season, ShortName, Venue};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Competition {
    pub id: CompetitionId,
    pub name: Name,
    pub sport: Sport,
    pub season: Season,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: TeamId,
    pub name: Name,
    pub short_name: ShortName,
    pub sport: Sport,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum MatchStatus {
    Scheduled,
    Live,
    Paused,
    Finished,
    Postponed,
    Cancelled,
}

impl MatchStatus {
    pub const ALL: [MatchStatus; 6] = [
        MatchStatus::Scheduled,
        MatchStatus::Live,
        MatchStatus::Paused,
        MatchStatus::Finished,
        MatchStatus::Postponed,
        MatchStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MatchStatus::Scheduled => "SCHEDULED",
            MatchStatus::Live => "LIVE",
            MatchStatus::Paused => "PAUSED",
            MatchStatus::Finished => "FINISHED",
            MatchStatus::Postponed => "POSTPONED",
            MatchStatus::Cancelled => "CANCELLED",
        }
    }

    /// The status machine: SCHEDULED → LIVE; LIVE ⇄ PAUSED; LIVE or PAUSED → FINISHED;
    /// SCHEDULED → POSTPONED or CANCELLED; POSTPONED → SCHEDULED.
    pub fn can_move_to(self, next: MatchStatus) -> bool {
        use MatchStatus::*;
        matches!(
            (self, next),
            (Scheduled, Live)
                | (Live, Paused)
                | (Paused, Live)
                | (Live | Paused, Finished)
                | (Scheduled, Postponed | Cancelled)
                | (Postponed, Scheduled)
        )
    }

    /// Whether `liveMatches` lists a match in this status.
    pub fn is_in_play(self) -> bool {
        matches!(self, MatchStatus::Live | MatchStatus::Paused)
    }
}

/// Which team an event concerns: the side whose score it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Side {
    Home,
    Away,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Home => "HOME",
            Side::Away => "AWAY",
        }
    }
}

/// The highest score we accept for one side; well above any real result in the supported sports.
pub const MAX_SCORE: u32 = 999;

/// A score value, bounded to `0..=MAX_SCORE`.
pub fn check_score(field: &'static str, value: i64) -> Result<u32, ValidationError> {
    if value < 0 {
        return Err(ValidationError::new(field, "must not be negative"));
    }
    if value > i64::from(MAX_SCORE) {
        return Err(ValidationError::new(
            field,
            format!("must be at most {MAX_SCORE}"),
        ));
    }
    Ok(value as u32)
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Score {
    pub home: u32,
    pub away: u32,
}

impl Score {
    pub fn side_mut(&mut self, side: Side) -> &mut u32 {
        match side {
            Side::Home => &mut self.home,
            Side::Away => &mut self.away,
        }
    }
}

/// Points scored in one period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeriodScore {
    pub period: u32,
    pub label: String,
    pub home: u32,
    pub away: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Clock {
    pub period: u32,
    pub elapsed_seconds: u32,
    pub running: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InningHalf {
    Top,
    Bottom,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SoccerDetails {
    pub home_yellow_cards: u32,
    pub away_yellow_cards: u32,
    pub home_red_cards: u32,
    pub away_red_cards: u32,
    /// Minutes of added time announced for the current half.
    pub added_time_minutes: Option<u32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bases {
    pub first: bool,
    pub second: bool,
    pub third: bool,
}

impl Bases {
    pub fn occupied(self) -> u32 {
        u32::from(self.first) + u32::from(self.second) + u32::from(self.third)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BaseballDetails {
    pub inning: u32,
    pub half: InningHalf,
    pub outs: u32,
    pub balls: u32,
    pub strikes: u32,
    pub bases: Bases,
}

impl Default for BaseballDetails {
    fn default() -> Self {
        Self {
            inning: 1,
            half: InningHalf::Top,
            outs: 0,
            balls: 0,
            strikes: 0,
            bases: Bases::default(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BasketballDetails {
    pub home_team_fouls: u32,
    pub away_team_fouls: u32,
    pub home_timeouts_left: u32,
    pub away_timeouts_left: u32,
}

impl Default for BasketballDetails {
    fn default() -> Self {
        Self {
            home_team_fouls: 0,
            away_team_fouls: 0,
            home_timeouts_left: 7,
            away_timeouts_left: 7,
        }
    }
}

/// A man advantage in ice hockey: the side with more skaters on the ice and how long it lasts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PowerPlay {
    pub side: Side,
    pub seconds_left: u32,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceHockeyDetails {
    pub home_shots_on_goal: u32,
    pub away_shots_on_goal: u32,
    pub home_penalty_minutes: u32,
    pub away_penalty_minutes: u32,
    /// `None` at even strength.
    pub power_play: Option<PowerPlay>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AmericanFootballDetails {
    /// The side with the ball; `None` before kick-off and between possessions.
    pub possession: Option<Side>,
    /// 1 to 4; `None` when no down is being played (kick-offs, tries after a touchdown).
    pub down: Option<u32>,
    /// Yards to gain for a first down; set exactly when `down` is.
    pub yards_to_go: Option<u32>,
    /// Where the ball is spotted, in yards from the goal line the side in possession defends
    /// (1 to 99; 50 is midfield).
    pub ball_on: Option<u32>,
    pub home_timeouts_left: u32,
    pub away_timeouts_left: u32,
}

impl Default for AmericanFootballDetails {
    fn default() -> Self {
        Self {
            possession: None,
            down: None,
            yards_to_go: None,
            ball_on: None,
            home_timeouts_left: 3,
            away_timeouts_left: 3,
        }
    }
}

/// Sport-specific state of a match. Stored as a map tagged by `kind` (the sport's name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Details {
    Soccer(SoccerDetails),
    Baseball(BaseballDetails),
    Basketball(BasketballDetails),
    IceHockey(IceHockeyDetails),
    AmericanFootball(AmericanFootballDetails),
}

impl Details {
    /// The details a new match of `sport` starts with. Every sport has details; matches stored
    /// before ice hockey and American football had them keep `None` until their first
    /// `updateDetails`.
    pub fn initial(sport: Sport) -> Option<Details> {
        Some(match sport {
            Sport::Soccer => Details::Soccer(SoccerDetails::default()),
            Sport::Baseball => Details::Baseball(BaseballDetails::default()),
            Sport::Basketball => Details::Basketball(BasketballDetails::default()),
            Sport::IceHockey => Details::IceHockey(IceHockeyDetails::default()),
            Sport::AmericanFootball => {
                Details::AmericanFootball(AmericanFootballDetails::default())
            }
        })
    }

    pub fn sport(&self) -> Sport {
        match self {
            Details::Soccer(_) => Sport::Soccer,
            Details::Baseball(_) => Sport::Baseball,
            Details::Basketball(_) => Sport::Basketball,
            Details::IceHockey(_) => Sport::IceHockey,
            Details::AmericanFootball(_) => Sport::AmericanFootball,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Match {
    pub id: MatchId,
    pub sport: Sport,
    pub competition_id: CompetitionId,
    pub home_team_id: TeamId,
    pub away_team_id: TeamId,
    pub start_time: DateTime<Utc>,
    pub venue: Option<Venue>,
    pub status: MatchStatus,
    pub score: Score,
    pub periods: Vec<PeriodScore>,
    pub clock: Option<Clock>,
    pub details: Option<Details>,
    /// The `seq` of the newest timeline event (0 before the first).
    pub last_seq: u32,
    /// Rises by one on every change; 1 when created.
    pub version: u64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Match {
    pub fn involves(&self, team: &TeamId) -> bool {
        &self.home_team_id == team || &self.away_team_id == team
    }
}

/// One entry on a match's timeline. `seq` numbers a match's events 1, 2, 3, … with no gaps.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MatchEvent {
    pub match_id: MatchId,
    pub seq: u32,
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub side: Option<Side>,
    pub player: Option<PlayerName>,
    pub points: u32,
    pub period: Option<u32>,
    pub clock_seconds: Option<u32>,
    pub description: Option<Description>,
    pub created_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use MatchStatus::*;

    #[test]
    fn the_status_machine_allows_exactly_the_documented_moves() {
        let allowed = [
            (Scheduled, Live),
            (Live, Paused),
            (Paused, Live),
            (Live, Finished),
            (Paused, Finished),
            (Scheduled, Postponed),
            (Scheduled, Cancelled),
            (Postponed, Scheduled),
        ];
        for from in MatchStatus::ALL {
            for to in MatchStatus::ALL {
                assert_eq!(
                    from.can_move_to(to),
                    allowed.contains(&(from, to)),
                    "{from:?} -> {to:?}"
                );
            }
        }
    }

    #[test]
    fn finished_and_cancelled_are_final() {
        for to in MatchStatus::ALL {
            assert!(!Finished.can_move_to(to));
            assert!(!Cancelled.can_move_to(to));
        }
    }

    #[test]
    fn scores_are_bounded_and_non_negative() {
        assert_eq!(check_score("home", 0), Ok(0));
        assert_eq!(check_score("home", 999), Ok(999));
        assert_eq!(
            check_score("away", -1).unwrap_err().to_string(),
            "away: must not be negative"
        );
        assert!(check_score("away", 1000).is_err());
    }

    #[test]
    fn only_live_and_paused_matches_are_in_play() {
        let in_play: Vec<_> = MatchStatus::ALL
            .into_iter()
            .filter(|s| s.is_in_play())
            .collect();
        assert_eq!(in_play, vec![Live, Paused]);
    }

    #[test]
    fn new_matches_get_details_of_their_own_sport_for_every_sport() {
        for sport in Sport::ALL {
            let details = Details::initial(sport).expect("every sport has details");
            assert_eq!(details.sport(), sport);
        }
        assert!(matches!(
            Details::initial(Sport::Basketball),
            Some(Details::Basketball(b)) if b.home_timeouts_left == 7
        ));
    }

    #[test]
    fn an_ice_hockey_match_starts_at_even_strength_with_nothing_counted() {
        assert_eq!(
            Details::initial(Sport::IceHockey),
            Some(Details::IceHockey(IceHockeyDetails {
                home_shots_on_goal: 0,
                away_shots_on_goal: 0,
                home_penalty_minutes: 0,
                away_penalty_minutes: 0,
                power_play: None,
            }))
        );
    }

    #[test]
    fn an_american_football_match_starts_with_no_down_and_three_timeouts_a_side() {
        let Some(Details::AmericanFootball(d)) = Details::initial(Sport::AmericanFootball) else {
            panic!("american football details expected");
        };
        assert_eq!(
            (d.possession, d.down, d.yards_to_go, d.ball_on),
            (None, None, None, None)
        );
        assert_eq!((d.home_timeouts_left, d.away_timeouts_left), (3, 3));
    }
}
