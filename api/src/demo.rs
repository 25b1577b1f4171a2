//! Demo data for the embedded server: every sport, a competition each, teams, and fourteen
//! matches around now (some live, with a few events and sport details). Everything goes through
//! the same use cases as the mutations, so the rules hold and the change feed carries it all.

use chrono::{DateTime, Duration, DurationRound, Utc};
use scoreline_core::command::{DetailsPatch, MatchCommand, NewEvent};
use scoreline_core::model::{Details, MatchStatus, PowerPlay, Score};
use scoreline_core::service::{self, ServiceError, WriteOptions};
use scoreline_core::store::Store;
use scoreline_core::text::{Name, Season, ShortName, Venue};
use scoreline_core::{
    Competition, CompetitionId, EventType, Match, MatchId, Side, Sport, Team, TeamId,
};

struct DemoCompetition {
    id: &'static str,
    name: &'static str,
    sport: Sport,
    season: &'static str,
    teams: &'static [(&'static str, &'static str, &'static str)],
}

const COMPETITIONS: [DemoCompetition; 5] = [
    DemoCompetition {
        id: "premier-division",
        name: "Premier Division",
        sport: Sport::Soccer,
        season: "2026-27",
        teams: &[
            ("northbridge", "Northbridge FC", "NBR"),
            ("riverside", "Riverside United", "RIV"),
            ("eastport", "Eastport Athletic", "EAS"),
            ("kingsford", "Kingsford City", "KGC"),
            ("westfield", "Westfield Rovers", "WFR"),
            ("harbor-town", "Harbor Town", "HBT"),
        ],
    },
    DemoCompetition {
        id: "metro-league",
        name: "Metro Basketball League",
        sport: Sport::Basketball,
        season: "2026-27",
        teams: &[
            ("metro-lightning", "Metro Lightning", "MLT"),
            ("bay-city-hawks", "Bay City Hawks", "BCH"),
            ("summit-peaks", "Summit Peaks", "SUM"),
            ("lakeside-blaze", "Lakeside Blaze", "LKB"),
        ],
    },
    DemoCompetition {
        id: "coastal-league",
        name: "Coastal Baseball League",
        sport: Sport::Baseball,
        season: "2026",
        teams: &[
            ("port-mariners", "Port Mariners", "PMR"),
            ("canyon-rattlers", "Canyon Rattlers", "CYR"),
            ("valley-suns", "Valley Suns", "VSN"),
            ("granite-miners", "Granite Miners", "GRM"),
        ],
    },
    DemoCompetition {
        id: "northern-hockey",
        name: "Northern Hockey League",
        sport: Sport::IceHockey,
        season: "2026-27",
        teams: &[
            ("frostburg-wolves", "Frostburg Wolves", "FRW"),
            ("glacier-bay-kings", "Glacier Bay Kings", "GBK"),
        ],
    },
    DemoCompetition {
        id: "continental-football",
        name: "Continental Football Conference",
        sport: Sport::AmericanFootball,
        season: "2026",
        teams: &[
            ("harbor-city-anchors", "Harbor City Anchors", "HCA"),
            ("prairie-stallions", "Prairie Stallions", "PRS"),
            ("ironwood-forge", "Ironwood Forge", "IWF"),
            ("redrock-rams", "Redrock Rams", "RRR"),
        ],
    },
];

/// A demo match: id, competition, home, away, start offset from now in minutes, venue,
/// the status to bring it to, and scoring events as (type, side).
type DemoMatch = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    i64,
    &'static str,
    MatchStatus,
    &'static [(EventType, Side)],
);

const MATCHES: [DemoMatch; 14] = [
    (
        "soccer-live-1",
        "premier-division",
        "northbridge",
        "riverside",
        -35,
        "Northbridge Park",
        MatchStatus::Live,
        &[
            (EventType::Goal, Side::Home),
            (EventType::YellowCard, Side::Away),
            (EventType::Goal, Side::Away),
            (EventType::Goal, Side::Home),
        ],
    ),
    (
        "soccer-live-2",
        "premier-division",
        "eastport",
        "kingsford",
        -50,
        "Eastport Stadium",
        MatchStatus::Paused,
        &[
            (EventType::Goal, Side::Away),
            (EventType::PenaltyGoal, Side::Home),
        ],
    ),
    (
        "soccer-next-1",
        "premier-division",
        "westfield",
        "harbor-town",
        24 * 60,
        "Westfield Ground",
        MatchStatus::Scheduled,
        &[],
    ),
    (
        "soccer-final-1",
        "premier-division",
        "riverside",
        "eastport",
        -26 * 60,
        "Riverside Arena",
        MatchStatus::Finished,
        &[
            (EventType::Goal, Side::Home),
            (EventType::Goal, Side::Home),
            (EventType::OwnGoal, Side::Home),
        ],
    ),
    (
        "basketball-live-1",
        "metro-league",
        "metro-lightning",
        "bay-city-hawks",
        -40,
        "Metro Center",
        MatchStatus::Live,
        &[
            (EventType::ThreePointer, Side::Home),
            (EventType::FieldGoal, Side::Away),
            (EventType::FreeThrow, Side::Away),
            (EventType::FieldGoal, Side::Home),
        ],
    ),
    (
        "basketball-next-1",
        "metro-league",
        "summit-peaks",
        "lakeside-blaze",
        3 * 60,
        "Summit Dome",
        MatchStatus::Scheduled,
        &[],
    ),
    (
        "basketball-final-1",
        "metro-league",
        "bay-city-hawks",
        "summit-peaks",
        -22 * 60,
        "Bay City Arena",
        MatchStatus::Finished,
        &[
            (EventType::ThreePointer, Side::Away),
            (EventType::FieldGoal, Side::Home),
        ],
    ),
    (
        "baseball-live-1",
        "coastal-league",
        "port-mariners",
        "canyon-rattlers",
        -90,
        "Harborview Field",
        MatchStatus::Live,
        &[
            (EventType::Run, Side::Away),
            (EventType::HomeRun, Side::Home),
        ],
    ),
    (
        "baseball-next-1",
        "coastal-league",
        "valley-suns",
        "granite-miners",
        5 * 60,
        "Sunset Park",
        MatchStatus::Scheduled,
        &[],
    ),
    (
        "baseball-postponed-1",
        "coastal-league",
        "granite-miners",
        "port-mariners",
        -2 * 60,
        "Quarry Field",
        MatchStatus::Postponed,
        &[],
    ),
    (
        "hockey-live-1",
        "northern-hockey",
        "frostburg-wolves",
        "glacier-bay-kings",
        -30,
        "Frostburg Ice Arena",
        MatchStatus::Live,
        &[(EventType::Goal, Side::Away)],
    ),
    (
        "hockey-next-1",
        "northern-hockey",
        "glacier-bay-kings",
        "frostburg-wolves",
        2 * 24 * 60,
        "Glacier Bay Center",
        MatchStatus::Scheduled,
        &[],
    ),
    (
        "football-live-1",
        "continental-football",
        "harbor-city-anchors",
        "prairie-stallions",
        -70,
        "Anchor Field",
        MatchStatus::Live,
        &[
            (EventType::Touchdown, Side::Home),
            (EventType::ExtraPoint, Side::Home),
            (EventType::FieldGoal, Side::Away),
        ],
    ),
    (
        "football-next-1",
        "continental-football",
        "ironwood-forge",
        "redrock-rams",
        3 * 24 * 60,
        "Forge Stadium",
        MatchStatus::Scheduled,
        &[],
    ),
];

/// Sport details the live demo matches are brought to after their events.
const DETAILS: [(&str, DetailsPatch); 2] = [
    (
        "hockey-live-1",
        DetailsPatch::IceHockey {
            home_shots_on_goal: Some(11),
            away_shots_on_goal: Some(14),
            home_penalty_minutes: Some(2),
            away_penalty_minutes: Some(4),
            power_play: Some(Some(PowerPlay {
                side: Side::Home,
                seconds_left: 74,
            })),
        },
    ),
    (
        "football-live-1",
        DetailsPatch::AmericanFootball {
            possession: Some(Some(Side::Away)),
            down: Some(Some(2)),
            yards_to_go: Some(Some(6)),
            ball_on: Some(Some(43)),
            home_timeouts_left: Some(3),
            away_timeouts_left: Some(2),
        },
    ),
];

fn id<T>(parse: fn(String) -> Result<T, scoreline_core::ValidationError>, raw: &str) -> T {
    parse(raw.to_string()).expect("demo ids are valid")
}

/// Loads the demo data; does nothing if it is already there.
pub async fn load(store: &dyn Store) -> Result<(), ServiceError> {
    if store
        .competition(&id(CompetitionId::parse, COMPETITIONS[0].id))
        .await?
        .is_some()
    {
        return Ok(());
    }
    let now: DateTime<Utc> = Utc::now()
        .duration_trunc(Duration::minutes(1))
        .unwrap_or_else(|_| Utc::now());
    for c in &COMPETITIONS {
        let competition_id = id(CompetitionId::parse, c.id);
        service::create_competition(
            store,
            Competition {
                id: competition_id.clone(),
                name: Name::parse(c.name)?,
                sport: c.sport,
                season: Season::parse(c.season)?,
                created_at: now,
            },
        )
        .await?;
        for (team_id, name, short) in c.teams {
            service::create_team(
                store,
                Team {
                    id: id(TeamId::parse, team_id),
                    name: Name::parse(name)?,
                    short_name: ShortName::parse(short)?,
                    sport: c.sport,
                    created_at: now,
                },
                std::slice::from_ref(&competition_id),
            )
            .await?;
        }
    }
    for (match_id, competition, home, away, offset, venue, status, events) in MATCHES {
        let sport = COMPETITIONS
            .iter()
            .find(|c| c.id == competition)
            .map(|c| c.sport)
            .expect("demo matches name demo competitions");
        let m = service::create_match(
            store,
            Match {
                id: id(MatchId::parse, match_id),
                sport,
                competition_id: id(CompetitionId::parse, competition),
                home_team_id: id(TeamId::parse, home),
                away_team_id: id(TeamId::parse, away),
                start_time: now + Duration::minutes(offset),
                venue: Some(Venue::parse(venue)?),
                status: MatchStatus::Scheduled,
                score: Score::default(),
                periods: Vec::new(),
                clock: None,
                details: Details::initial(sport),
                last_seq: 0,
                version: 1,
                created_at: now,
                updated_at: now,
            },
        )
        .await?;
        play(store, &m.id, status, events).await?;
        if let Some((_, patch)) = DETAILS.iter().find(|(id, _)| *id == match_id) {
            apply(store, &m.id, MatchCommand::UpdateDetails(*patch)).await?;
        }
    }
    Ok(())
}

async fn apply(store: &dyn Store, id: &MatchId, command: MatchCommand) -> Result<(), ServiceError> {
    service::apply_command(store, id, &command, &WriteOptions::default(), Utc::now).await?;
    Ok(())
}

async fn play(
    store: &dyn Store,
    id: &MatchId,
    status: MatchStatus,
    events: &[(EventType, Side)],
) -> Result<(), ServiceError> {
    match status {
        MatchStatus::Scheduled => return Ok(()),
        MatchStatus::Postponed | MatchStatus::Cancelled => {
            return apply(store, id, MatchCommand::SetStatus(status)).await;
        }
        _ => {}
    }
    apply(store, id, MatchCommand::SetStatus(MatchStatus::Live)).await?;
    for (event_type, side) in events {
        apply(
            store,
            id,
            MatchCommand::RecordEvent(NewEvent::new(*event_type).side(*side)),
        )
        .await?;
    }
    if status != MatchStatus::Live {
        if status == MatchStatus::Finished {
            apply(store, id, MatchCommand::SetStatus(MatchStatus::Paused)).await?;
        }
        apply(store, id, MatchCommand::SetStatus(status)).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[tokio::test]
    async fn the_demo_loads_a_dozen_matches_over_three_sports_with_some_live() {
        let (store, _feed) = MemoryStore::new();
        load(&store).await.unwrap();
        let page = store
            .matches(
                &Default::default(),
                &scoreline_core::store::PageRequest::new(100, None),
            )
            .await
            .unwrap();
        assert!(page.items.len() >= 12);
        let sports: std::collections::HashSet<_> =
            page.items.iter().map(|(_, m)| m.sport).collect();
        assert!(sports.len() >= 3);
        let live = store.live_matches(None).await.unwrap();
        assert!(
            live.iter()
                .filter(|m| m.status == MatchStatus::Live)
                .count()
                >= 3
        );
        let soccer = store
            .match_by_id(&id(MatchId::parse, "soccer-live-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((soccer.score.home, soccer.score.away), (2, 1));
        // Loading again changes nothing.
        load(&store).await.unwrap();
    }

    #[tokio::test]
    async fn every_sport_has_a_live_demo_match_with_its_own_details() {
        let (store, _feed) = MemoryStore::new();
        load(&store).await.unwrap();
        let live = store.live_matches(None).await.unwrap();
        for sport in Sport::ALL {
            let m = live
                .iter()
                .find(|m| m.sport == sport && m.status == MatchStatus::Live)
                .unwrap_or_else(|| panic!("no live {sport:?} demo match"));
            assert_eq!(m.details.map(|d| d.sport()), Some(sport), "{}", m.id);
        }
        let hockey = store
            .match_by_id(&id(MatchId::parse, "hockey-live-1"))
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(
            hockey.details,
            Some(Details::IceHockey(d)) if d.power_play.is_some_and(|pp| pp.side == Side::Home)
        ));
        let football = store
            .match_by_id(&id(MatchId::parse, "football-live-1"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!((football.score.home, football.score.away), (7, 3));
        assert!(matches!(
            football.details,
            Some(Details::AmericanFootball(d)) if d.down == Some(2) && d.ball_on == Some(43)
        ));
    }
}
