//! Many scorers at once on one match, on DynamoDB Local: every `recordEvent` counts exactly
//! once, versions rise by one per change, and the timeline's seqs stay contiguous. Through the
//! GraphQL API (optimistic retries in the service, conditional transactions in the store), and
//! at the store level through `apply_command`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use api::Role;
use api::{DynamoConfig, DynamoStore};
use chrono::{Duration, Utc};
use futures::future::join_all;
use scoreline_core::command::{MatchCommand, NewEvent};
use scoreline_core::model::{Details, Score};
use scoreline_core::service::{self, WriteOptions};
use scoreline_core::store::Store;
use scoreline_core::text::{Name, Season, ShortName, Venue};
use scoreline_core::{
    Competition, CompetitionId, EventType, Match, MatchId, MatchStatus, Side, Sport, Team, TeamId,
};
use scoreline_tests::{dynamodb_local, TestApp};
use serde_json::json;

const WRITERS: i64 = 200;

/// DynamoDB Local's latency grows with the requests in flight: two crowds of 200 writers at once
/// make requests wait past the SDK's timeouts on a small machine. The tests here take turns: with
/// this mutex in one test process, and in the test group `dynamodb-crowds`
/// (`.config/nextest.toml`) when cargo-nextest runs each test in its own process.
static ONE_CROWD_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// No retry time limit short of the test's own: the crowd takes as long as it takes.
fn patient_options() -> WriteOptions {
    WriteOptions {
        retry_for: Some(Duration::minutes(10)),
        ..WriteOptions::default()
    }
}

const RECORD: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_field_goals_all_count_through_graphql() {
    let _turn = ONE_CROWD_AT_A_TIME.lock().await;
    // 200 writers on one match is far beyond a real match day: on a loaded machine DynamoDB
    // Local makes the crowd take longer than the limits a client is held to. The test
    // configuration lifts the request and write-retry time limits (`Config::for_tests`).
    let app = TestApp::spawn_dynamodb().await;
    let seed = app.live_match("BASKETBALL").await;
    let before = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { home away } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    let initial = before["match"]["version"].as_i64().unwrap();
    assert_eq!(initial, 2, "seeded LIVE: created, then one status change");

    let token = TestApp::token(Role::Operator);
    let started = Instant::now();
    let requests = (0..WRITERS).map(|_| {
        app.post(
            RECORD,
            json!({"i": {"matchId": seed.match_id, "type": "FIELD_GOAL", "side": "HOME"}}),
            Some(&token),
        )
    });
    let results = join_all(requests).await;
    let elapsed = started.elapsed();
    eprintln!("{WRITERS} concurrent recordEvent calls on DynamoDB Local took {elapsed:?}");

    let mut versions = BTreeSet::new();
    for (status, body) in results {
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "a recordEvent failed: {body}");
        versions.insert(body["data"]["recordEvent"]["version"].as_i64().unwrap());
    }
    assert_eq!(
        versions,
        (initial + 1..=initial + WRITERS).collect(),
        "each call committed its own version"
    );

    let after = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { home away } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(
        after["match"]["score"],
        json!({"home": 2 * WRITERS, "away": 0})
    );
    assert_eq!(after["match"]["version"], json!(initial + WRITERS));

    // The timeline: the status change, then one FIELD_GOAL of 2 points per call.
    let mut events = Vec::new();
    loop {
        let page = app
            .ok(
                "query($id: ID!, $after: Int!) { match(id: $id) {
                    events(afterSeq: $after, first: 50) { seq type points side } } }",
                json!({"id": seed.match_id, "after": events.len()}),
                None,
            )
            .await["match"]["events"]
            .as_array()
            .unwrap()
            .clone();
        if page.is_empty() {
            break;
        }
        events.extend(page);
    }
    let seqs: Vec<i64> = events.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=WRITERS + 1).collect::<Vec<_>>(),
        "seqs 1..=N, none lost or repeated"
    );
    assert_eq!(events[0]["type"], "STATUS_CHANGE");
    assert!(events[1..]
        .iter()
        .all(|e| e["type"] == "FIELD_GOAL" && e["points"] == 2 && e["side"] == "HOME"));
    app.stop().await;
}

async fn live_basketball_match(store: &dyn Store) -> MatchId {
    let now = Utc::now();
    let competition = Competition {
        id: CompetitionId::parse("nba").unwrap(),
        name: Name::parse("NBA").unwrap(),
        sport: Sport::Basketball,
        season: Season::parse("2026").unwrap(),
        created_at: now,
    };
    store.create_competition(&competition).await.unwrap();
    for id in ["lal", "bos"] {
        let team = Team {
            id: TeamId::parse(id).unwrap(),
            name: Name::parse(id).unwrap(),
            short_name: ShortName::parse(id.to_uppercase()).unwrap(),
            sport: Sport::Basketball,
            created_at: now,
        };
        store
            .create_team(&team, std::slice::from_ref(&competition.id))
            .await
            .unwrap();
    }
    let m = Match {
        id: MatchId::parse("g1").unwrap(),
        sport: Sport::Basketball,
        competition_id: competition.id.clone(),
        home_team_id: TeamId::parse("lal").unwrap(),
        away_team_id: TeamId::parse("bos").unwrap(),
        start_time: now + Duration::hours(1),
        venue: Some(Venue::parse("Arena").unwrap()),
        status: MatchStatus::Scheduled,
        score: Score::default(),
        periods: vec![],
        clock: None,
        details: Details::initial(Sport::Basketball),
        last_seq: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    };
    service::create_match(store, m.clone()).await.unwrap();
    service::apply_command(
        store,
        &m.id,
        &MatchCommand::SetStatus(MatchStatus::Live),
        &WriteOptions::default(),
        Utc::now,
    )
    .await
    .unwrap();
    m.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_field_goals_all_count_at_the_store() {
    let _turn = ONE_CROWD_AT_A_TIME.lock().await;
    let store = DynamoStore::connect(&DynamoConfig {
        table: dynamodb_local::unique_table("concurrency"),
        endpoint: Some(dynamodb_local::endpoint().into()),
        region: None,
        local_credentials: true,
    })
    .await;
    store.init_table().await.unwrap();
    let store: Arc<dyn Store> = Arc::new(store);
    let id = live_basketball_match(store.as_ref()).await;

    let started = Instant::now();
    let tasks = (0..WRITERS).map(|i| {
        let store = store.clone();
        let id = id.clone();
        let side = if i % 2 == 0 { Side::Home } else { Side::Away };
        tokio::spawn(async move {
            service::apply_command(
                store.as_ref(),
                &id,
                &MatchCommand::RecordEvent(NewEvent::new(EventType::FieldGoal).side(side)),
                &patient_options(),
                Utc::now,
            )
            .await
            .map(|m| m.version)
        })
    });
    let mut versions = BTreeSet::new();
    for result in join_all(tasks).await {
        versions.insert(result.unwrap().expect("every command commits"));
    }
    eprintln!(
        "{WRITERS} concurrent apply_command calls on DynamoDB Local took {:?}",
        started.elapsed()
    );
    let writers = WRITERS as u64;
    assert_eq!(versions, (3..=2 + writers).collect());

    let stored = store.match_by_id(&id).await.unwrap().unwrap();
    assert_eq!(stored.version, 2 + writers);
    assert_eq!(
        stored.score,
        Score {
            home: WRITERS as u32,
            away: WRITERS as u32
        }
    );
    assert_eq!(stored.last_seq, 1 + WRITERS as u32);
    let events = store.events(&id, 0, 1000).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=1 + WRITERS as u32).collect::<Vec<_>>()
    );
    let home_points: u32 = events
        .iter()
        .filter(|e| e.side == Some(Side::Home))
        .map(|e| e.points)
        .sum();
    assert_eq!(home_points, 2 * WRITERS as u32 / 2);
}
