//! Sport-specific details: the partial updates `updateDetails` applies ([`DetailsPatch`]) and
//! the rules every stored [`Details`] value keeps ([`check_details`]).

use crate::error::ValidationError;
use crate::model::{
    BaseballDetails, Bases, BasketballDetails, Details, InningHalf, Match, MatchStatus,
    SoccerDetails,
};
use crate::sport::Sport;

use super::refuse;

/// A partial update of sport-specific details: absent fields keep their value.
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
}

impl DetailsPatch {
    pub fn sport(&self) -> Sport {
        match self {
            DetailsPatch::Soccer { .. } => Sport::Soccer,
            DetailsPatch::Baseball { .. } => Sport::Baseball,
            DetailsPatch::Basketball { .. } => Sport::Basketball,
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
        }
    }
}

fn bounded(field: &'static str, value: u32, max: u32) -> Result<(), ValidationError> {
    if value > max {
        return refuse(field, format!("must be at most {max}"));
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
