//! Builders for unit tests across the crate.

use chrono::{DateTime, TimeZone, Utc};
use scoreline_core::model::{Details, Score};
use scoreline_core::{CompetitionId, Match, MatchId, MatchStatus, Sport, TeamId};

/// An instant `seconds` after a fixed base, so tests order times without reading the clock.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 15, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

/// A scheduled soccer match of competition `c`, version `version`, changed at `at(changed)`.
pub fn a_match(id: &str, version: u64, changed: i64) -> Match {
    Match {
        id: MatchId::parse(id).unwrap(),
        sport: Sport::Soccer,
        competition_id: CompetitionId::parse("c").unwrap(),
        home_team_id: TeamId::parse("home").unwrap(),
        away_team_id: TeamId::parse("away").unwrap(),
        start_time: at(0),
        venue: None,
        status: MatchStatus::Scheduled,
        score: Score::default(),
        periods: vec![],
        clock: None,
        details: Details::initial(Sport::Soccer),
        last_seq: 0,
        version,
        created_at: at(0),
        updated_at: at(changed),
    }
}
