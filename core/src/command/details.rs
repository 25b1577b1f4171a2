//! Sport-specific details: the partial updates `updateDetails` applies ([`DetailsPatch`]) and
//! the rules every stored [`Details`] value keeps ([`check_details`]).

use crate::error::ValidationError;
use crate::model::{
    AmericanFootballDetails, BaseballDetails, Bases, BasketballDetails, Details, IceHockeyDetails,
    InningHalf, Match, MatchStatus, PowerPlay, Side, SoccerDetails,
};
use crate::sport::Sport;

use super::refuse;

/// Most shots on goal one side may have in an ice hockey match.
pub const MAX_SHOTS_ON_GOAL: u32 = 150;
/// Most penalty minutes one side may collect in an ice hockey match.
pub const MAX_PENALTY_MINUTES: u32 = 500;
/// The longest power play: a five-minute major.
pub const MAX_POWER_PLAY_SECONDS: u32 = 300;
/// Timeouts an American football side has per half.
pub const FOOTBALL_TIMEOUTS: u32 = 3;

/// A partial update of sport-specific details: absent fields (`None`) keep their value. For the
/// fields that may be empty, `Some(None)` clears them (e.g. a power play that ended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DetailsPatch {
    Soccer {
        home_yellow_cards: Option<u32>,
        away_yellow_cards: Option<u32>,
        home_red_cards: Option<u32>,
        away_red_cards: Option<u32>,
        added_time_minutes: Option<u32>,
    },
    Baseball {
        inning: Option<u32>,
        half: Option<InningHalf>,
        outs: Option<u32>,
        balls: Option<u32>,
        strikes: Option<u32>,
        bases: Option<Bases>,
    },
    Basketball {
        home_team_fouls: Option<u32>,
        away_team_fouls: Option<u32>,
        home_timeouts_left: Option<u32>,
        away_timeouts_left: Option<u32>,
    },
    IceHockey {
        home_shots_on_goal: Option<u32>,
        away_shots_on_goal: Option<u32>,
        home_penalty_minutes: Option<u32>,
        away_penalty_minutes: Option<u32>,
        power_play: Option<Option<PowerPlay>>,
    },
    AmericanFootball {
        possession: Option<Option<Side>>,
        down: Option<Option<u32>>,
        yards_to_go: Option<Option<u32>>,
        ball_on: Option<Option<u32>>,
        home_timeouts_left: Option<u32>,
        away_timeouts_left: Option<u32>,
    },
}

impl DetailsPatch {
    pub fn sport(&self) -> Sport {
        match self {
            DetailsPatch::Soccer { .. } => Sport::Soccer,
            DetailsPatch::Baseball { .. } => Sport::Baseball,
            DetailsPatch::Basketball { .. } => Sport::Basketball,
            DetailsPatch::IceHockey { .. } => Sport::IceHockey,
            DetailsPatch::AmericanFootball { .. } => Sport::AmericanFootball,
        }
    }

    /// The details after the patch, starting from `current` (or the sport's initial details).
    fn merge(&self, current: Option<Details>) -> Details {
        fn set<T: Copy>(field: &mut T, value: Option<T>) {
            if let Some(v) = value {
                *field = v;
            }
        }
        match (*self, current) {
            (
                DetailsPatch::Soccer {
                    home_yellow_cards,
                    away_yellow_cards,
                    home_red_cards,
                    away_red_cards,
                    added_time_minutes,
                },
                current,
            ) => {
                let mut d = match current {
                    Some(Details::Soccer(d)) => d,
                    _ => SoccerDetails::default(),
                };
                set(&mut d.home_yellow_cards, home_yellow_cards);
                set(&mut d.away_yellow_cards, away_yellow_cards);
                set(&mut d.home_red_cards, home_red_cards);
                set(&mut d.away_red_cards, away_red_cards);
                if added_time_minutes.is_some() {
                    d.added_time_minutes = added_time_minutes;
                }
                Details::Soccer(d)
            }
            (
                DetailsPatch::Baseball {
                    inning,
                    half,
                    outs,
                    balls,
                    strikes,
                    bases,
                },
                current,
            ) => {
                let mut d = match current {
                    Some(Details::Baseball(d)) => d,
                    _ => BaseballDetails::default(),
                };
                set(&mut d.inning, inning);
                set(&mut d.half, half);
                set(&mut d.outs, outs);
                set(&mut d.balls, balls);
                set(&mut d.strikes, strikes);
                set(&mut d.bases, bases);
                Details::Baseball(d)
            }
            (
                DetailsPatch::Basketball {
                    home_team_fouls,
                    away_team_fouls,
                    home_timeouts_left,
                    away_timeouts_left,
                },
                current,
            ) => {
                let mut d = match current {
                    Some(Details::Basketball(d)) => d,
                    _ => BasketballDetails::default(),
                };
                set(&mut d.home_team_fouls, home_team_fouls);
                set(&mut d.away_team_fouls, away_team_fouls);
                set(&mut d.home_timeouts_left, home_timeouts_left);
                set(&mut d.away_timeouts_left, away_timeouts_left);
                Details::Basketball(d)
            }
            (
                DetailsPatch::IceHockey {
                    home_shots_on_goal,
                    away_shots_on_goal,
                    home_penalty_minutes,
                    away_penalty_minutes,
                    power_play,
                },
                current,
            ) => {
                let mut d = match current {
                    Some(Details::IceHockey(d)) => d,
                    _ => IceHockeyDetails::default(),
                };
                set(&mut d.home_shots_on_goal, home_shots_on_goal);
                set(&mut d.away_shots_on_goal, away_shots_on_goal);
                set(&mut d.home_penalty_minutes, home_penalty_minutes);
                set(&mut d.away_penalty_minutes, away_penalty_minutes);
                set(&mut d.power_play, power_play);
                Details::IceHockey(d)
            }
            (
                DetailsPatch::AmericanFootball {
                    possession,
                    down,
                    yards_to_go,
                    ball_on,
                    home_timeouts_left,
                    away_timeouts_left,
                },
                current,
            ) => {
                let mut d = match current {
                    Some(Details::AmericanFootball(d)) => d,
                    _ => AmericanFootballDetails::default(),
                };
                set(&mut d.possession, possession);
                set(&mut d.down, down);
                set(&mut d.yards_to_go, yards_to_go);
                set(&mut d.ball_on, ball_on);
                set(&mut d.home_timeouts_left, home_timeouts_left);
                set(&mut d.away_timeouts_left, away_timeouts_left);
                Details::AmericanFootball(d)
            }
        }
    }
}

fn bounded(field: &'static str, value: u32, max: u32) -> Result<(), ValidationError> {
    if value > max {
        return refuse(field, format!("must be at most {max}"));
    }
    Ok(())
}

fn between(field: &'static str, value: u32, min: u32, max: u32) -> Result<(), ValidationError> {
    if !(min..=max).contains(&value) {
        return refuse(field, format!("must be between {min} and {max}"));
    }
    Ok(())
}

fn check_ice_hockey(d: &IceHockeyDetails) -> Result<(), ValidationError> {
    bounded("homeShotsOnGoal", d.home_shots_on_goal, MAX_SHOTS_ON_GOAL)?;
    bounded("awayShotsOnGoal", d.away_shots_on_goal, MAX_SHOTS_ON_GOAL)?;
    bounded(
        "homePenaltyMinutes",
        d.home_penalty_minutes,
        MAX_PENALTY_MINUTES,
    )?;
    bounded(
        "awayPenaltyMinutes",
        d.away_penalty_minutes,
        MAX_PENALTY_MINUTES,
    )?;
    if let Some(pp) = d.power_play {
        if !(1..=MAX_POWER_PLAY_SECONDS).contains(&pp.seconds_left) {
            return refuse(
                "powerPlay",
                format!(
                    "secondsLeft must be between 1 and {MAX_POWER_PLAY_SECONDS}; \
                     end a power play with powerPlay: null"
                ),
            );
        }
    }
    Ok(())
}

fn check_american_football(d: &AmericanFootballDetails) -> Result<(), ValidationError> {
    if let Some(down) = d.down {
        between("down", down, 1, 4)?;
    }
    if let Some(yards) = d.yards_to_go {
        between("yardsToGo", yards, 1, 99)?;
    }
    if let Some(spot) = d.ball_on {
        between("ballOn", spot, 1, 99)?;
    }
    bounded("homeTimeoutsLeft", d.home_timeouts_left, FOOTBALL_TIMEOUTS)?;
    bounded("awayTimeoutsLeft", d.away_timeouts_left, FOOTBALL_TIMEOUTS)?;
    match (d.down, d.yards_to_go) {
        (Some(_), None) => return refuse("yardsToGo", "a down needs the yards to go"),
        (None, Some(_)) => return refuse("down", "yards to go need a down"),
        _ => {}
    }
    if d.possession.is_none() {
        if d.down.is_some() {
            return refuse("possession", "a down needs the side in possession");
        }
        if d.ball_on.is_some() {
            return refuse(
                "possession",
                "the ball's spot is counted from the goal line of the side in possession",
            );
        }
    }
    if let (Some(yards), Some(spot)) = (d.yards_to_go, d.ball_on) {
        let to_goal = 100 - spot;
        if yards > to_goal {
            return refuse(
                "yardsToGo",
                format!("must be at most {to_goal}, the distance to the goal line"),
            );
        }
    }
    Ok(())
}

/// Checks sport-specific details against the rules of the game.
pub fn check_details(details: &Details) -> Result<(), ValidationError> {
    match details {
        Details::Soccer(d) => {
            bounded("homeYellowCards", d.home_yellow_cards, 30)?;
            bounded("awayYellowCards", d.away_yellow_cards, 30)?;
            bounded("homeRedCards", d.home_red_cards, 11)?;
            bounded("awayRedCards", d.away_red_cards, 11)?;
            if let Some(t) = d.added_time_minutes {
                bounded("addedTimeMinutes", t, 30)?;
            }
        }
        Details::Baseball(b) => {
            if b.inning == 0 {
                return refuse("inning", "must be at least 1");
            }
            bounded("inning", b.inning, 30)?;
            bounded("outs", b.outs, 2)?;
            bounded("balls", b.balls, 3)?;
            bounded("strikes", b.strikes, 2)?;
        }
        Details::Basketball(b) => {
            bounded("homeTeamFouls", b.home_team_fouls, 99)?;
            bounded("awayTeamFouls", b.away_team_fouls, 99)?;
            bounded("homeTimeoutsLeft", b.home_timeouts_left, 10)?;
            bounded("awayTimeoutsLeft", b.away_timeouts_left, 10)?;
        }
        Details::IceHockey(d) => check_ice_hockey(d)?,
        Details::AmericanFootball(d) => check_american_football(d)?,
    }
    Ok(())
}

pub(super) fn update_details(m: &mut Match, patch: &DetailsPatch) -> Result<(), ValidationError> {
    if patch.sport() != m.sport {
        return refuse(
            "details",
            format!(
                "{} details do not fit a {} match",
                patch.sport().as_str(),
                m.sport.as_str()
            ),
        );
    }
    let details = patch.merge(m.details);
    if matches!(m.status, MatchStatus::Finished | MatchStatus::Cancelled) {
        return refuse(
            "matchId",
            format!("the details of a {} match cannot change", m.status.as_str()),
        );
    }
    check_details(&details)?;
    if m.details == Some(details) {
        return refuse("details", "the details are unchanged");
    }
    m.details = Some(details);
    Ok(())
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;
    use crate::command::MatchCommand;
    use crate::ids::{CompetitionId, MatchId, TeamId};
    use crate::model::Score;

    fn live(sport: Sport) -> Match {
        let t = DateTime::parse_from_rfc3339("2026-11-22T15:00:00Z")
            .unwrap()
            .to_utc();
        Match {
            id: MatchId::parse("m1").unwrap(),
            sport,
            competition_id: CompetitionId::parse("c1").unwrap(),
            home_team_id: TeamId::parse("h").unwrap(),
            away_team_id: TeamId::parse("a").unwrap(),
            start_time: t,
            venue: None,
            status: MatchStatus::Live,
            score: Score::default(),
            periods: vec![],
            clock: None,
            details: Details::initial(sport),
            last_seq: 1,
            version: 2,
            created_at: t,
            updated_at: t,
        }
    }

    fn hockey(power_play: Option<Option<PowerPlay>>) -> DetailsPatch {
        DetailsPatch::IceHockey {
            home_shots_on_goal: None,
            away_shots_on_goal: None,
            home_penalty_minutes: None,
            away_penalty_minutes: None,
            power_play,
        }
    }

    /// The fields of an American football patch, for struct-update syntax in tests.
    #[derive(Clone, Copy, Debug, Default)]
    struct Football {
        possession: Option<Option<Side>>,
        down: Option<Option<u32>>,
        yards_to_go: Option<Option<u32>>,
        ball_on: Option<Option<u32>>,
        home_timeouts_left: Option<u32>,
        away_timeouts_left: Option<u32>,
    }

    impl Football {
        fn patch(self) -> DetailsPatch {
            DetailsPatch::AmericanFootball {
                possession: self.possession,
                down: self.down,
                yards_to_go: self.yards_to_go,
                ball_on: self.ball_on,
                home_timeouts_left: self.home_timeouts_left,
                away_timeouts_left: self.away_timeouts_left,
            }
        }
    }

    fn apply(m: &Match, patch: DetailsPatch) -> Result<Match, ValidationError> {
        MatchCommand::UpdateDetails(patch)
            .apply(m, Utc::now())
            .map(|a| a.next)
    }

    fn hockey_details(m: &Match) -> IceHockeyDetails {
        match m.details {
            Some(Details::IceHockey(d)) => d,
            ref other => panic!("ice hockey details expected, got {other:?}"),
        }
    }

    fn football_details(m: &Match) -> AmericanFootballDetails {
        match m.details {
            Some(Details::AmericanFootball(d)) => d,
            ref other => panic!("american football details expected, got {other:?}"),
        }
    }

    const HOME_PP: PowerPlay = PowerPlay {
        side: Side::Home,
        seconds_left: 120,
    };

    #[test]
    fn a_power_play_starts_and_ends_through_partial_updates() {
        let m = apply(&live(Sport::IceHockey), hockey(Some(Some(HOME_PP)))).unwrap();
        assert_eq!(hockey_details(&m).power_play, Some(HOME_PP));
        let shots = DetailsPatch::IceHockey {
            home_shots_on_goal: None,
            away_shots_on_goal: Some(9),
            home_penalty_minutes: Some(2),
            away_penalty_minutes: None,
            power_play: None,
        };
        let m = apply(&m, shots).unwrap();
        let d = hockey_details(&m);
        assert_eq!(
            d.power_play,
            Some(HOME_PP),
            "absent fields keep their value"
        );
        assert_eq!((d.away_shots_on_goal, d.home_penalty_minutes), (9, 2));
        let m = apply(&m, hockey(Some(None))).unwrap();
        assert_eq!(hockey_details(&m).power_play, None);
    }

    #[test]
    fn a_power_play_lasts_one_to_three_hundred_seconds() {
        for seconds_left in [0, MAX_POWER_PLAY_SECONDS + 1] {
            let err = apply(
                &live(Sport::IceHockey),
                hockey(Some(Some(PowerPlay {
                    side: Side::Away,
                    seconds_left,
                }))),
            )
            .unwrap_err();
            assert_eq!(err.field(), "powerPlay");
            assert!(err.message().contains("between 1 and 300"), "{err}");
        }
    }

    #[test]
    fn ice_hockey_counts_are_bounded() {
        let bad = Details::IceHockey(IceHockeyDetails {
            home_penalty_minutes: MAX_PENALTY_MINUTES + 1,
            ..Default::default()
        });
        assert_eq!(
            check_details(&bad).unwrap_err().to_string(),
            "homePenaltyMinutes: must be at most 500"
        );
        let bad = Details::IceHockey(IceHockeyDetails {
            away_shots_on_goal: MAX_SHOTS_ON_GOAL + 1,
            ..Default::default()
        });
        assert_eq!(check_details(&bad).unwrap_err().field(), "awayShotsOnGoal");
    }

    #[test]
    fn hockey_details_on_a_hockey_match_stored_without_details_start_from_the_initial_ones() {
        let mut m = live(Sport::IceHockey);
        m.details = None;
        let next = apply(&m, hockey(Some(Some(HOME_PP)))).unwrap();
        assert_eq!(
            hockey_details(&next),
            IceHockeyDetails {
                power_play: Some(HOME_PP),
                ..Default::default()
            }
        );
    }

    fn first_and_ten(side: Side, ball_on: u32) -> DetailsPatch {
        DetailsPatch::AmericanFootball {
            possession: Some(Some(side)),
            down: Some(Some(1)),
            yards_to_go: Some(Some(10)),
            ball_on: Some(Some(ball_on)),
            home_timeouts_left: None,
            away_timeouts_left: None,
        }
    }

    #[test]
    fn a_drive_moves_down_distance_and_spot_and_a_kick_off_clears_them() {
        let m = apply(
            &live(Sport::AmericanFootball),
            first_and_ten(Side::Away, 25),
        )
        .unwrap();
        let d = football_details(&m);
        assert_eq!(
            (d.possession, d.down, d.yards_to_go, d.ball_on),
            (Some(Side::Away), Some(1), Some(10), Some(25))
        );
        let second_and_four = Football {
            down: Some(Some(2)),
            yards_to_go: Some(Some(4)),
            ball_on: Some(Some(31)),
            away_timeouts_left: Some(2),
            ..Default::default()
        }
        .patch();
        let m = apply(&m, second_and_four).unwrap();
        let d = football_details(&m);
        assert_eq!(
            (d.possession, d.down, d.yards_to_go, d.ball_on),
            (Some(Side::Away), Some(2), Some(4), Some(31))
        );
        assert_eq!((d.home_timeouts_left, d.away_timeouts_left), (3, 2));
        let kick_off = Football {
            possession: Some(None),
            down: Some(None),
            yards_to_go: Some(None),
            ball_on: Some(None),
            ..Default::default()
        }
        .patch();
        let d = football_details(&apply(&m, kick_off).unwrap());
        assert_eq!(
            (d.possession, d.down, d.yards_to_go, d.ball_on),
            (None, None, None, None)
        );
        assert_eq!(d.away_timeouts_left, 2, "absent fields keep their value");
    }

    #[test]
    fn american_football_values_stay_within_the_rules() {
        let m = apply(
            &live(Sport::AmericanFootball),
            first_and_ten(Side::Home, 40),
        )
        .unwrap();
        type Change = fn(&mut Football);
        let cases: [(Change, &str); 8] = [
            (|f| f.down = Some(Some(5)), "down"),
            (|f| f.down = Some(Some(0)), "down"),
            (|f| f.yards_to_go = Some(Some(0)), "yardsToGo"),
            (|f| f.ball_on = Some(Some(100)), "ballOn"),
            (|f| f.home_timeouts_left = Some(4), "homeTimeoutsLeft"),
            // Down and distance come and go together, and need a side in possession.
            (|f| f.yards_to_go = Some(None), "yardsToGo"),
            (|f| f.down = Some(None), "down"),
            (|f| f.possession = Some(None), "possession"),
        ];
        for (change, field) in cases {
            let mut football = Football::default();
            change(&mut football);
            let err = apply(&m, football.patch()).unwrap_err();
            assert_eq!(err.field(), field, "{football:?}: {err}");
        }
    }

    #[test]
    fn the_yards_to_go_never_pass_the_goal_line() {
        let m = apply(
            &live(Sport::AmericanFootball),
            first_and_ten(Side::Home, 40),
        )
        .unwrap();
        let goal_to_go = Football {
            yards_to_go: Some(Some(8)),
            ball_on: Some(Some(92)),
            ..Default::default()
        }
        .patch();
        assert!(apply(&m, goal_to_go).is_ok());
        let too_far = Football {
            ball_on: Some(Some(95)),
            ..Default::default()
        }
        .patch();
        assert_eq!(
            apply(&m, too_far).unwrap_err().to_string(),
            "yardsToGo: must be at most 5, the distance to the goal line"
        );
    }

    #[test]
    fn a_ball_spot_needs_a_side_in_possession() {
        let spot_only = Football {
            ball_on: Some(Some(35)),
            ..Default::default()
        }
        .patch();
        let err = apply(&live(Sport::AmericanFootball), spot_only).unwrap_err();
        assert_eq!(err.field(), "possession");
    }

    #[test]
    fn new_sports_details_do_not_fit_another_sport() {
        let err = apply(&live(Sport::Soccer), hockey(Some(None))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "details: ICE_HOCKEY details do not fit a SOCCER match"
        );
        let err = apply(&live(Sport::Baseball), Football::default().patch()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "details: AMERICAN_FOOTBALL details do not fit a BASEBALL match"
        );
    }
}
