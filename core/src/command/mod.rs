//! Match-day commands and the rules that apply them. A command is made of parsed values; `apply`
//! turns the current match into the next one (version + 1) and the timeline event it appends, or
//! refuses with a clear message. The store only has to write the result atomically.

use chrono::{DateTime, Utc};

use crate::error::ValidationError;
use crate::model::{
    check_score, Clock, Details, Match, MatchEvent, MatchStatus, PeriodScore, Side, MAX_SCORE,
};
use crate::sport::{EventRule, EventType};
use crate::text::{Description, PlayerName};

mod details;

use details::update_details;
pub use details::{check_details, DetailsPatch};

/// Longest clock reading we accept, in seconds (six hours: extra innings and overtimes included).
pub const MAX_CLOCK_SECONDS: u32 = 6 * 3600;
/// Most points one event may carry when given explicitly.
pub const MAX_EVENT_POINTS: u32 = 10;

/// An event to append with `recordEvent`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    pub event_type: EventType,
    pub side: Option<Side>,
    pub player: Option<PlayerName>,
    /// Explicit points; `None` takes the sport's default for the type.
    pub points: Option<u32>,
    pub period: Option<u32>,
    pub clock_seconds: Option<u32>,
    pub description: Option<Description>,
}

impl NewEvent {
    pub fn new(event_type: EventType) -> Self {
        Self {
            event_type,
            side: None,
            player: None,
            points: None,
            period: None,
            clock_seconds: None,
            description: None,
        }
    }

    pub fn side(mut self, side: Side) -> Self {
        self.side = Some(side);
        self
    }
}

/// A partial clock update; absent fields keep their value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClockUpdate {
    pub period: Option<u32>,
    pub elapsed_seconds: Option<u32>,
    pub running: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatchCommand {
    SetStatus(MatchStatus),
    RecordEvent(NewEvent),
    UpdateScore { home: u32, away: u32 },
    UpdateClock(ClockUpdate),
    UpdateDetails(DetailsPatch),
}

/// The outcome of a command: the next state and the event it appended, if any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Applied {
    pub next: Match,
    pub event: Option<MatchEvent>,
}

fn refuse<T>(field: &'static str, message: impl Into<String>) -> Result<T, ValidationError> {
    Err(ValidationError::new(field, message.into()))
}

impl MatchCommand {
    /// The mutation this command comes from, for logs and messages.
    pub fn name(&self) -> &'static str {
        match self {
            MatchCommand::SetStatus(_) => "setMatchStatus",
            MatchCommand::RecordEvent(_) => "recordEvent",
            MatchCommand::UpdateScore { .. } => "updateScore",
            MatchCommand::UpdateClock(_) => "updateClock",
            MatchCommand::UpdateDetails(_) => "updateDetails",
        }
    }

    /// Applies the command to `current` at time `now`.
    pub fn apply(&self, current: &Match, now: DateTime<Utc>) -> Result<Applied, ValidationError> {
        let mut next = current.clone();
        next.version = current.version + 1;
        next.updated_at = now;
        let event = match self {
            MatchCommand::SetStatus(status) => set_status(&mut next, *status, now)?,
            MatchCommand::RecordEvent(new) => Some(record_event(&mut next, new, now)?),
            MatchCommand::UpdateScore { home, away } => {
                Some(update_score(&mut next, *home, *away, now)?)
            }
            MatchCommand::UpdateClock(update) => {
                update_clock(&mut next, *update)?;
                None
            }
            MatchCommand::UpdateDetails(patch) => {
                update_details(&mut next, patch)?;
                None
            }
        };
        Ok(Applied { next, event })
    }
}

fn append_event(m: &mut Match, event: MatchEvent) -> MatchEvent {
    m.last_seq = event.seq;
    event
}

fn system_event(
    m: &Match,
    event_type: EventType,
    description: String,
    now: DateTime<Utc>,
) -> MatchEvent {
    MatchEvent {
        match_id: m.id.clone(),
        seq: m.last_seq + 1,
        event_type,
        side: None,
        player: None,
        points: 0,
        period: m.clock.map(|c| c.period),
        clock_seconds: m.clock.map(|c| c.elapsed_seconds),
        description: Description::parse(description).ok(),
        created_at: now,
    }
}

fn ensure_period(m: &mut Match, period: u32) -> &mut PeriodScore {
    let idx = match m.periods.iter().position(|p| p.period == period) {
        Some(idx) => idx,
        None => {
            let label = m.sport.period_label(period);
            m.periods.push(PeriodScore {
                period,
                label,
                home: 0,
                away: 0,
            });
            m.periods.sort_by_key(|p| p.period);
            m.periods
                .iter()
                .position(|p| p.period == period)
                .expect("just inserted")
        }
    };
    &mut m.periods[idx]
}

fn check_period(m: &Match, period: u32) -> Result<u32, ValidationError> {
    let max = m.sport.max_period();
    if period == 0 || period > max {
        return refuse(
            "period",
            format!("must be between 1 and {max} for {}", m.sport.as_str()),
        );
    }
    Ok(period)
}

fn check_clock_seconds(field: &'static str, seconds: u32) -> Result<u32, ValidationError> {
    if seconds > MAX_CLOCK_SECONDS {
        return refuse(field, format!("must be at most {MAX_CLOCK_SECONDS}"));
    }
    Ok(seconds)
}

fn set_status(
    m: &mut Match,
    status: MatchStatus,
    now: DateTime<Utc>,
) -> Result<Option<MatchEvent>, ValidationError> {
    let from = m.status;
    if from == status {
        return refuse(
            "status",
            format!("the match is already {}", status.as_str()),
        );
    }
    if !from.can_move_to(status) {
        return refuse(
            "status",
            format!(
                "a {} match cannot become {}",
                from.as_str(),
                status.as_str()
            ),
        );
    }
    m.status = status;
    match (from, status) {
        (MatchStatus::Scheduled, MatchStatus::Live) => {
            let clock = m.clock.get_or_insert(Clock {
                period: 1,
                elapsed_seconds: 0,
                running: true,
            });
            clock.running = true;
            let period = clock.period;
            ensure_period(m, period);
        }
        (_, MatchStatus::Live) => {
            if let Some(clock) = m.clock.as_mut() {
                clock.running = true;
            }
        }
        (_, MatchStatus::Paused | MatchStatus::Finished) => {
            if let Some(clock) = m.clock.as_mut() {
                clock.running = false;
            }
        }
        _ => {}
    }
    let description = format!("{} → {}", from.as_str(), status.as_str());
    let event = system_event(m, EventType::StatusChange, description, now);
    Ok(Some(append_event(m, event)))
}

fn record_event(
    m: &mut Match,
    new: &NewEvent,
    now: DateTime<Utc>,
) -> Result<MatchEvent, ValidationError> {
    let t = new.event_type;
    if t == EventType::StatusChange {
        return refuse("type", "STATUS_CHANGE events are written by setMatchStatus");
    }
    if t == EventType::ScoreCorrection {
        return refuse("type", "SCORE_CORRECTION events are written by updateScore");
    }
    let rule = t.rule_for(m.sport)?;
    let period = match new.period {
        Some(p) => Some(check_period(m, p)?),
        None => m.clock.map(|c| c.period),
    };
    let clock_seconds = match new.clock_seconds {
        Some(s) => Some(check_clock_seconds("clockSeconds", s)?),
        None => m.clock.map(|c| c.elapsed_seconds),
    };
    let points = match rule {
        EventRule::Scoring { points: default } => {
            if m.status != MatchStatus::Live {
                return refuse(
                    "type",
                    format!(
                        "scoring events are only accepted while the match is LIVE (it is {})",
                        m.status.as_str()
                    ),
                );
            }
            let Some(side) = new.side else {
                return refuse(
                    "side",
                    format!("a {} needs the side it scores for", t.as_str()),
                );
            };
            let points = match new.points {
                Some(p) if p > MAX_EVENT_POINTS => {
                    return refuse("points", format!("must be at most {MAX_EVENT_POINTS}"));
                }
                Some(p) => p,
                None => default_points(m, t, default),
            };
            let total = m.score.side_mut(side);
            if *total + points > MAX_SCORE {
                return refuse("points", format!("the score would exceed {MAX_SCORE}"));
            }
            *total += points;
            if let Some(p) = period {
                let row = ensure_period(m, p);
                match side {
                    Side::Home => row.home += points,
                    Side::Away => row.away += points,
                }
            }
            points
        }
        EventRule::Plain => {
            if new.points.is_some_and(|p| p != 0) {
                return refuse("points", format!("{} events carry no points", t.as_str()));
            }
            let allowed = match t {
                EventType::Note => m.status != MatchStatus::Cancelled,
                _ => m.status.is_in_play(),
            };
            if !allowed {
                return refuse(
                    "type",
                    format!(
                        "a {} match takes no {} events",
                        m.status.as_str(),
                        t.as_str()
                    ),
                );
            }
            if matches!(t, EventType::YellowCard | EventType::RedCard) && new.side.is_none() {
                return refuse("side", "a card needs the side of the carded player");
            }
            0
        }
    };
    apply_side_effects(m, new, period, clock_seconds);
    let event = MatchEvent {
        match_id: m.id.clone(),
        seq: m.last_seq + 1,
        event_type: t,
        side: new.side,
        player: new.player.clone(),
        points,
        period,
        clock_seconds,
        description: new.description.clone(),
        created_at: now,
    };
    Ok(append_event(m, event))
}

/// Default points, with the one rule that depends on the state: a home run scores the batter
/// plus every runner on base.
fn default_points(m: &Match, t: EventType, default: u32) -> u32 {
    match (t, m.details) {
        (EventType::HomeRun, Some(Details::Baseball(b))) => 1 + b.bases.occupied(),
        _ => default,
    }
}

fn apply_side_effects(
    m: &mut Match,
    new: &NewEvent,
    period: Option<u32>,
    clock_seconds: Option<u32>,
) {
    match (new.event_type, m.details.as_mut(), new.side) {
        (EventType::YellowCard, Some(Details::Soccer(d)), Some(Side::Home)) => {
            d.home_yellow_cards += 1
        }
        (EventType::YellowCard, Some(Details::Soccer(d)), Some(Side::Away)) => {
            d.away_yellow_cards += 1
        }
        (EventType::RedCard, Some(Details::Soccer(d)), Some(Side::Home)) => d.home_red_cards += 1,
        (EventType::RedCard, Some(Details::Soccer(d)), Some(Side::Away)) => d.away_red_cards += 1,
        (EventType::HomeRun, Some(Details::Baseball(b)), _) => b.bases = Default::default(),
        _ => {}
    }
    match new.event_type {
        EventType::PeriodStart => {
            let period = period.unwrap_or(1);
            m.clock = Some(Clock {
                period,
                elapsed_seconds: clock_seconds.unwrap_or(0),
                running: true,
            });
            ensure_period(m, period);
        }
        EventType::PeriodEnd => {
            if let Some(clock) = m.clock.as_mut() {
                clock.running = false;
            }
        }
        _ => {}
    }
}

fn update_score(
    m: &mut Match,
    home: u32,
    away: u32,
    now: DateTime<Utc>,
) -> Result<MatchEvent, ValidationError> {
    check_score("home", i64::from(home))?;
    check_score("away", i64::from(away))?;
    if !matches!(
        m.status,
        MatchStatus::Live | MatchStatus::Paused | MatchStatus::Finished
    ) {
        return refuse(
            "matchId",
            format!("a {} match has no score to correct", m.status.as_str()),
        );
    }
    let old = m.score;
    if old.home == home && old.away == away {
        return refuse("home", format!("the score is already {home}-{away}"));
    }
    m.score.home = home;
    m.score.away = away;
    let description = format!(
        "score corrected from {}-{} to {home}-{away}",
        old.home, old.away
    );
    let event = system_event(m, EventType::ScoreCorrection, description, now);
    Ok(append_event(m, event))
}

fn update_clock(m: &mut Match, update: ClockUpdate) -> Result<(), ValidationError> {
    if !m.status.is_in_play() {
        return refuse(
            "matchId",
            format!("the clock of a {} match cannot change", m.status.as_str()),
        );
    }
    if update == ClockUpdate::default() {
        return refuse(
            "period",
            "give at least one of period, elapsedSeconds, running",
        );
    }
    let mut clock = m.clock.unwrap_or(Clock {
        period: 1,
        elapsed_seconds: 0,
        running: false,
    });
    if let Some(p) = update.period {
        clock.period = check_period(m, p)?;
    }
    if let Some(s) = update.elapsed_seconds {
        clock.elapsed_seconds = check_clock_seconds("elapsedSeconds", s)?;
    }
    if let Some(r) = update.running {
        clock.running = r;
    }
    m.clock = Some(clock);
    ensure_period(m, clock.period);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{CompetitionId, MatchId, TeamId};
    use crate::model::Score;
    use crate::model::{BaseballDetails, Bases, InningHalf};
    use crate::sport::Sport;

    fn a_match(sport: Sport, status: MatchStatus) -> Match {
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
            status,
            score: Score::default(),
            periods: vec![],
            clock: None,
            details: Details::initial(sport),
            last_seq: 0,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    fn live(sport: Sport) -> Match {
        MatchCommand::SetStatus(MatchStatus::Live)
            .apply(&a_match(sport, MatchStatus::Scheduled), now())
            .unwrap()
            .next
    }

    #[test]
    fn going_live_starts_the_clock_and_appends_a_status_change() {
        let applied = MatchCommand::SetStatus(MatchStatus::Live)
            .apply(&a_match(Sport::Soccer, MatchStatus::Scheduled), now())
            .unwrap();
        assert_eq!(applied.next.status, MatchStatus::Live);
        assert_eq!(applied.next.version, 2);
        assert_eq!(applied.next.clock.unwrap().period, 1);
        assert!(applied.next.clock.unwrap().running);
        let event = applied.event.unwrap();
        assert_eq!(event.event_type, EventType::StatusChange);
        assert_eq!(event.seq, 1);
        assert_eq!(applied.next.last_seq, 1);
        assert_eq!(event.description.unwrap().as_str(), "SCHEDULED → LIVE");
    }

    #[test]
    fn a_forbidden_status_move_is_refused_with_both_statuses_named() {
        let err = MatchCommand::SetStatus(MatchStatus::Finished)
            .apply(&a_match(Sport::Soccer, MatchStatus::Scheduled), now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "status: a SCHEDULED match cannot become FINISHED"
        );
    }

    #[test]
    fn a_goal_adds_the_default_point_to_the_side_and_the_period() {
        let m = live(Sport::Soccer);
        let applied = MatchCommand::RecordEvent(NewEvent::new(EventType::Goal).side(Side::Away))
            .apply(&m, now())
            .unwrap();
        assert_eq!(applied.next.score, Score { home: 0, away: 1 });
        assert_eq!(applied.next.periods[0].away, 1);
        assert_eq!(applied.next.periods[0].label, "1H");
        let e = applied.event.unwrap();
        assert_eq!((e.seq, e.points), (2, 1));
    }

    #[test]
    fn basketball_baskets_score_their_default_points() {
        let mut m = live(Sport::Basketball);
        for t in [
            EventType::FieldGoal,
            EventType::ThreePointer,
            EventType::FreeThrow,
        ] {
            m = MatchCommand::RecordEvent(NewEvent::new(t).side(Side::Home))
                .apply(&m, now())
                .unwrap()
                .next;
        }
        assert_eq!(m.score.home, 6);
        assert_eq!(m.version, 5);
    }

    #[test]
    fn a_home_run_scores_the_runners_on_base_and_clears_them() {
        let mut m = live(Sport::Baseball);
        m.details = Some(Details::Baseball(BaseballDetails {
            bases: Bases {
                first: true,
                second: false,
                third: true,
            },
            ..Default::default()
        }));
        let next = MatchCommand::RecordEvent(NewEvent::new(EventType::HomeRun).side(Side::Home))
            .apply(&m, now())
            .unwrap()
            .next;
        assert_eq!(next.score.home, 3);
        assert!(matches!(next.details, Some(Details::Baseball(b)) if b.bases.occupied() == 0));
    }

    #[test]
    fn explicit_points_override_the_default() {
        let m = live(Sport::AmericanFootball);
        let mut e = NewEvent::new(EventType::Touchdown).side(Side::Home);
        e.points = Some(7);
        let next = MatchCommand::RecordEvent(e).apply(&m, now()).unwrap().next;
        assert_eq!(next.score.home, 7);
    }

    #[test]
    fn scoring_is_refused_unless_the_match_is_live() {
        let m = a_match(Sport::Soccer, MatchStatus::Scheduled);
        let err = MatchCommand::RecordEvent(NewEvent::new(EventType::Goal).side(Side::Home))
            .apply(&m, now())
            .unwrap_err();
        assert!(err
            .to_string()
            .contains("only accepted while the match is LIVE"));
    }

    #[test]
    fn a_scoring_event_without_a_side_is_refused() {
        let err = MatchCommand::RecordEvent(NewEvent::new(EventType::Goal))
            .apply(&live(Sport::Soccer), now())
            .unwrap_err();
        assert_eq!(err.field(), "side");
    }

    #[test]
    fn plain_events_carry_no_points() {
        let mut e = NewEvent::new(EventType::YellowCard).side(Side::Home);
        e.points = Some(1);
        let err = MatchCommand::RecordEvent(e)
            .apply(&live(Sport::Soccer), now())
            .unwrap_err();
        assert_eq!(err.field(), "points");
    }

    #[test]
    fn a_card_counts_in_the_soccer_details() {
        let next = MatchCommand::RecordEvent(NewEvent::new(EventType::RedCard).side(Side::Home))
            .apply(&live(Sport::Soccer), now())
            .unwrap()
            .next;
        assert!(matches!(next.details, Some(Details::Soccer(d)) if d.home_red_cards == 1));
        assert_eq!(next.score, Score::default());
    }

    #[test]
    fn system_event_types_cannot_be_recorded_directly() {
        for t in [EventType::StatusChange, EventType::ScoreCorrection] {
            let err = MatchCommand::RecordEvent(NewEvent::new(t))
                .apply(&live(Sport::Soccer), now())
                .unwrap_err();
            assert_eq!(err.field(), "type");
        }
    }

    #[test]
    fn a_score_correction_sets_the_score_and_is_recorded() {
        let applied = MatchCommand::UpdateScore { home: 2, away: 1 }
            .apply(&live(Sport::Soccer), now())
            .unwrap();
        assert_eq!(applied.next.score, Score { home: 2, away: 1 });
        let e = applied.event.unwrap();
        assert_eq!(e.event_type, EventType::ScoreCorrection);
        assert_eq!(
            e.description.unwrap().as_str(),
            "score corrected from 0-0 to 2-1"
        );
    }

    #[test]
    fn a_scheduled_match_has_no_score_to_correct() {
        assert!(MatchCommand::UpdateScore { home: 1, away: 0 }
            .apply(&a_match(Sport::Soccer, MatchStatus::Scheduled), now())
            .is_err());
    }

    #[test]
    fn a_finished_match_can_still_be_corrected() {
        let mut m = live(Sport::Soccer);
        m.status = MatchStatus::Finished;
        assert!(MatchCommand::UpdateScore { home: 1, away: 0 }
            .apply(&m, now())
            .is_ok());
    }

    #[test]
    fn clock_and_details_updates_raise_the_version_without_an_event() {
        let m = live(Sport::Basketball);
        let applied = MatchCommand::UpdateClock(ClockUpdate {
            period: Some(2),
            ..Default::default()
        })
        .apply(&m, now())
        .unwrap();
        assert!(applied.event.is_none());
        assert_eq!(applied.next.version, m.version + 1);
        assert_eq!(applied.next.last_seq, m.last_seq);
        assert_eq!(applied.next.periods.last().unwrap().label, "Q2");
    }

    #[test]
    fn details_of_another_sport_are_refused() {
        let patch = DetailsPatch::Baseball {
            inning: Some(2),
            half: None,
            outs: None,
            balls: None,
            strikes: None,
            bases: None,
        };
        let err = MatchCommand::UpdateDetails(patch)
            .apply(&live(Sport::Soccer), now())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "details: BASEBALL details do not fit a SOCCER match"
        );
    }

    #[test]
    fn a_details_patch_keeps_the_fields_it_does_not_name() {
        let patch = DetailsPatch::Baseball {
            inning: None,
            half: None,
            outs: Some(2),
            balls: None,
            strikes: Some(1),
            bases: None,
        };
        let mut m = live(Sport::Baseball);
        m.details = Some(Details::Baseball(BaseballDetails {
            inning: 7,
            half: InningHalf::Bottom,
            ..Default::default()
        }));
        let next = MatchCommand::UpdateDetails(patch)
            .apply(&m, now())
            .unwrap()
            .next;
        let Some(Details::Baseball(b)) = next.details else {
            panic!("baseball details expected");
        };
        assert_eq!(
            (b.inning, b.half, b.outs, b.strikes),
            (7, InningHalf::Bottom, 2, 1)
        );
    }

    #[test]
    fn a_details_patch_out_of_bounds_is_refused() {
        let patch = DetailsPatch::Basketball {
            home_team_fouls: None,
            away_team_fouls: None,
            home_timeouts_left: Some(11),
            away_timeouts_left: None,
        };
        let err = MatchCommand::UpdateDetails(patch)
            .apply(&live(Sport::Basketball), now())
            .unwrap_err();
        assert_eq!(err.field(), "homeTimeoutsLeft");
    }

    #[test]
    fn baseball_counts_are_bounded() {
        let bad = Details::Baseball(BaseballDetails {
            outs: 3,
            ..Default::default()
        });
        assert_eq!(check_details(&bad).unwrap_err().field(), "outs");
    }

    #[test]
    fn a_period_beyond_the_sport_is_refused() {
        let err = MatchCommand::UpdateClock(ClockUpdate {
            period: Some(6),
            ..Default::default()
        })
        .apply(&live(Sport::Soccer), now())
        .unwrap_err();
        assert_eq!(err.field(), "period");
    }

    #[test]
    fn the_score_cannot_pass_its_bound() {
        let mut m = live(Sport::Basketball);
        m.score.home = MAX_SCORE - 1;
        let err =
            MatchCommand::RecordEvent(NewEvent::new(EventType::ThreePointer).side(Side::Home))
                .apply(&m, now())
                .unwrap_err();
        assert_eq!(err.field(), "points");
    }
}
