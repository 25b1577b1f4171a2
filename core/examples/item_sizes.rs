//! Prints the DynamoDB size of a typical LIVE soccer match item and a typical GOAL event item,
//! as the DynamoDB store writes them (`scoreline_core::item`), counted by AWS's rules.
//!
//! `cargo run -q -p scoreline-core --example item_sizes`

use chrono::{DateTime, Utc};
use scoreline_core::item::{event_item, idempotency_item, item_size, match_item};
use scoreline_core::model::{Clock, Details, PeriodScore, Score, SoccerDetails};
use scoreline_core::text::{Description, PlayerName, Venue};
use scoreline_core::{
    ClientMutationId, CompetitionId, EventType, Match, MatchEvent, MatchId, MatchStatus, Side,
    Sport, TeamId,
};

fn at(raw: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(raw).unwrap().to_utc()
}

fn main() {
    // Ids as the server makes them (`<prefix>-<time base 36><8 random>`), times with the
    // sub-second precision `updatedAt` carries.
    let id = MatchId::parse("m-mbq2x7k1a9f3kq8zp").unwrap();
    let live = Match {
        id: id.clone(),
        sport: Sport::Soccer,
        competition_id: CompetitionId::parse("c-mbq2w1x0b1x9w2va").unwrap(),
        home_team_id: TeamId::parse("t-mbq2w3c4d8k2m1qe").unwrap(),
        away_team_id: TeamId::parse("t-mbq2w3f7h2p9r4tx").unwrap(),
        start_time: at("2026-11-22T15:00:00Z"),
        venue: Some(Venue::parse("Emirates Stadium").unwrap()),
        status: MatchStatus::Live,
        score: Score { home: 2, away: 1 },
        periods: vec![
            PeriodScore {
                period: 1,
                label: "1H".into(),
                home: 1,
                away: 0,
            },
            PeriodScore {
                period: 2,
                label: "2H".into(),
                home: 1,
                away: 1,
            },
        ],
        clock: Some(Clock {
            period: 2,
            elapsed_seconds: 4_212,
            running: true,
        }),
        details: Some(Details::Soccer(SoccerDetails {
            home_yellow_cards: 2,
            away_yellow_cards: 3,
            home_red_cards: 0,
            away_red_cards: 1,
            added_time_minutes: Some(4),
        })),
        last_seq: 14,
        version: 23,
        created_at: at("2026-11-20T09:12:44.318205Z"),
        updated_at: at("2026-11-22T16:24:57.902114Z"),
    };
    let goal = MatchEvent {
        match_id: id,
        seq: 14,
        event_type: EventType::Goal,
        side: Some(Side::Home),
        player: Some(PlayerName::parse("Bukayo Saka").unwrap()),
        points: 1,
        period: Some(2),
        clock_seconds: Some(4_212),
        description: Some(
            Description::parse("Left-footed finish from the edge of the box").unwrap(),
        ),
        created_at: at("2026-11-22T16:24:57.902114Z"),
    };
    let key = ClientMutationId::parse("9b2f6c1e-4d3a-4f8e-a1b7-2c5d8e0f3a6b").unwrap();
    let expires = at("2026-11-23T16:24:57Z");

    let rows = [
        ("LIVE soccer match item", item_size(&match_item(&live))),
        ("GOAL event item", item_size(&event_item(&goal))),
        (
            "idempotency record (holds the match)",
            item_size(&idempotency_item(&key, &live, expires)),
        ),
    ];
    for (what, size) in rows {
        println!(
            "{what:<38} {size:>5} bytes  ({} write unit(s) of 1 KB, {} read unit(s) of 4 KB)",
            size.div_ceil(1024),
            size.div_ceil(4096)
        );
    }
    // Each item of a transaction is rounded up to 1 KB and counted twice.
    let units = |sizes: &[usize]| -> usize { sizes.iter().map(|s| 2 * s.div_ceil(1024)).sum() };
    let (m, e, i) = (rows[0].1, rows[1].1, rows[2].1);
    println!(
        "recordEvent commit (match + event)     {:>5} bytes, {} WCU as a transaction",
        m + e,
        units(&[m, e])
    );
    println!(
        "  with a clientMutationId              {:>5} bytes, {} WCU as a transaction",
        m + e + i,
        units(&[m, e, i])
    );
}
