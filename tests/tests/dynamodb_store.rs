//! The DynamoDB store beyond the port's contract: `init_table` (what `api init-table` runs) and
//! how the store and the server behave when DynamoDB cannot be reached.

use std::time::{Duration as StdDuration, Instant};

use api::Role;
use api::{Application, Config};
use api::{DynamoConfig, DynamoStore};
use aws_sdk_dynamodb::types::TimeToLiveSpecification;
use chrono::{Duration, Utc};
use scoreline_core::command::{MatchCommand, NewEvent};
use scoreline_core::model::{Details, Score};
use scoreline_core::store::{CommitError, MatchFilter, MatchWrite, PageRequest, Store, StoreError};
use scoreline_core::text::{Name, Season};
use scoreline_core::{
    ClientMutationId, Competition, CompetitionId, EventType, Match, MatchId, MatchStatus, Side,
    Sport, TeamId,
};
use scoreline_tests::{dynamodb_local, TestApp};
use serde_json::json;

/// How long a call to an unreachable DynamoDB may take before it reports the store unavailable.
const UNAVAILABLE_WITHIN: StdDuration = StdDuration::from_secs(30);

async fn local_store(table: &str) -> DynamoStore {
    DynamoStore::connect(&DynamoConfig {
        table: table.to_string(),
        endpoint: Some(dynamodb_local::endpoint().into()),
        region: None,
        local_credentials: true,
    })
    .await
}

/// The endpoint of a loopback port where nothing answers: a listener that drops every
/// connection at once. (A port merely freed could be taken by another test's server meanwhile,
/// which would answer with something that is not DynamoDB.)
fn closed_endpoint() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for connection in listener.incoming() {
            drop(connection);
        }
    });
    format!("http://127.0.0.1:{port}")
}

#[tokio::test]
async fn init_table_creates_the_table_once_as_the_infrastructure_does() {
    let table = dynamodb_local::unique_table("init");
    let store = local_store(&table).await;
    assert!(
        store.init_table().await.unwrap(),
        "the first call creates it"
    );
    assert!(!store.init_table().await.unwrap(), "the second finds it");
    assert!(
        !local_store(&table).await.init_table().await.unwrap(),
        "another process finds it too"
    );

    let described = store
        .client()
        .describe_table()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let t = described.table().expect("a table description");
    assert_eq!(t.table_status().map(|s| s.as_str()), Some("ACTIVE"));
    let keys: Vec<(&str, &str)> = t
        .key_schema()
        .iter()
        .map(|k| (k.attribute_name(), k.key_type().as_str()))
        .collect();
    assert_eq!(keys, [("pk", "HASH"), ("sk", "RANGE")]);

    let stream = t.stream_specification().expect("a stream");
    assert!(stream.stream_enabled());
    assert_eq!(
        stream.stream_view_type().map(|v| v.as_str()),
        Some("NEW_AND_OLD_IMAGES")
    );
    assert!(t.latest_stream_arn().is_some());
    assert_eq!(
        store.stream_arn().await.unwrap().as_deref(),
        t.latest_stream_arn()
    );

    assert_eq!(
        t.billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|m| m.as_str()),
        Some("PAY_PER_REQUEST")
    );

    let mut indexes: Vec<_> = t
        .global_secondary_indexes()
        .iter()
        .map(|g| {
            let keys: Vec<(String, String)> = g
                .key_schema()
                .iter()
                .map(|k| {
                    (
                        k.attribute_name().to_string(),
                        k.key_type().as_str().to_string(),
                    )
                })
                .collect();
            (
                g.index_name().unwrap_or_default().to_string(),
                keys,
                g.projection()
                    .and_then(|p| p.projection_type())
                    .map(|p| p.as_str().to_string()),
            )
        })
        .collect();
    indexes.sort();
    let expected: Vec<_> = (1..=5)
        .map(|i| {
            (
                format!("gsi{i}"),
                vec![
                    (format!("gsi{i}pk"), "HASH".to_string()),
                    (format!("gsi{i}sk"), "RANGE".to_string()),
                ],
                Some("KEYS_ONLY".to_string()),
            )
        })
        .collect();
    assert_eq!(indexes, expected);
    let definitions: Vec<(&str, &str)> = t
        .attribute_definitions()
        .iter()
        .map(|d| (d.attribute_name(), d.attribute_type().as_str()))
        .collect();
    assert_eq!(definitions.len(), 12);
    assert!(definitions.iter().all(|(_, ty)| *ty == "S"));

    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(&table)
        .send()
        .await
        .unwrap();
    let ttl = ttl.time_to_live_description().expect("a TTL description");
    assert_eq!(
        ttl.time_to_live_status().map(|s| s.as_str()),
        Some("ENABLED")
    );
    assert_eq!(ttl.attribute_name(), Some("ttl"));

    store.check().await.expect("the new table is ready");
}

#[tokio::test]
async fn init_table_completes_a_table_left_without_ttl() {
    let table = dynamodb_local::unique_table("init-ttl");
    let store = local_store(&table).await;
    assert!(store.init_table().await.unwrap());
    // As if an earlier run had stopped between creating the table and enabling TTL.
    store
        .client()
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(false)
                .attribute_name("ttl")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let status = |store: &DynamoStore| {
        let client = store.client().clone();
        let table = table.clone();
        async move {
            client
                .describe_time_to_live()
                .table_name(table)
                .send()
                .await
                .unwrap()
                .time_to_live_description()
                .and_then(|d| d.time_to_live_status())
                .map(|s| s.as_str().to_string())
        }
    };
    assert_eq!(status(&store).await.as_deref(), Some("DISABLED"));
    assert!(!store.init_table().await.unwrap());
    assert_eq!(status(&store).await.as_deref(), Some("ENABLED"));
}

fn a_match() -> Match {
    let now = Utc::now();
    Match {
        id: MatchId::parse("m1").unwrap(),
        sport: Sport::Soccer,
        competition_id: CompetitionId::parse("epl").unwrap(),
        home_team_id: TeamId::parse("ars").unwrap(),
        away_team_id: TeamId::parse("che").unwrap(),
        start_time: now + Duration::hours(1),
        venue: None,
        status: MatchStatus::Live,
        score: Score::default(),
        periods: vec![],
        clock: None,
        details: Details::initial(Sport::Soccer),
        last_seq: 0,
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

#[tokio::test]
async fn a_store_on_an_unreachable_endpoint_reports_itself_unavailable_quickly() {
    let store = DynamoStore::connect(&DynamoConfig {
        table: "scoreline".into(),
        endpoint: Some(closed_endpoint()),
        region: None,
        local_credentials: true,
    })
    .await;
    let m = a_match();
    let unavailable = |what: &str, result: Result<(), StoreError>, started: Instant| {
        let took = started.elapsed();
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "{what}: {result:?}"
        );
        assert!(took < UNAVAILABLE_WITHIN, "{what} took {took:?}");
    };

    let started = Instant::now();
    let result = store.match_by_id(&m.id).await.map(|_| ());
    eprintln!(
        "match_by_id on a closed port failed after {:?}",
        started.elapsed()
    );
    unavailable("match_by_id", result, started);

    let started = Instant::now();
    unavailable("check", store.check().await, started);
    let started = Instant::now();
    unavailable(
        "matches",
        store
            .matches(
                &MatchFilter {
                    sport: Some(Sport::Soccer),
                    ..Default::default()
                },
                &PageRequest::new(10, None),
            )
            .await
            .map(|_| ()),
        started,
    );
    let started = Instant::now();
    unavailable(
        "live_matches",
        store.live_matches(None).await.map(|_| ()),
        started,
    );
    let started = Instant::now();
    unavailable(
        "events",
        store.events(&m.id, 0, 10).await.map(|_| ()),
        started,
    );
    let started = Instant::now();
    unavailable(
        "idempotent_result",
        store
            .idempotent_result(&m.id, &ClientMutationId::parse("k").unwrap())
            .await
            .map(|_| ()),
        started,
    );
    let started = Instant::now();
    unavailable(
        "create_competition",
        store
            .create_competition(&Competition {
                id: CompetitionId::parse("epl").unwrap(),
                name: Name::parse("EPL").unwrap(),
                sport: Sport::Soccer,
                season: Season::parse("2026").unwrap(),
                created_at: Utc::now(),
            })
            .await,
        started,
    );
    let started = Instant::now();
    unavailable("create_match", store.create_match(&m).await, started);
    let started = Instant::now();
    unavailable("init_table", store.init_table().await.map(|_| ()), started);

    let applied = MatchCommand::RecordEvent(NewEvent::new(EventType::Goal).side(Side::Home))
        .apply(&m, Utc::now())
        .unwrap();
    let started = Instant::now();
    let commit = store
        .commit(&MatchWrite {
            next: applied.next,
            event: applied.event,
            idempotency: None,
        })
        .await;
    assert!(
        matches!(commit, Err(CommitError::Store(StoreError::Unavailable(_)))),
        "commit: {commit:?}"
    );
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);
}

/// A server on DynamoDB at `endpoint`, with no table creation and no stream poller: nothing to
/// reach at start-up.
fn unreachable_dynamodb(config: &mut Config, endpoint: String) {
    config.store = api::StoreKind::Dynamodb;
    config.dynamodb_endpoint = Some(endpoint);
    config.dynamodb_table = "scoreline".into();
    config.dynamodb_local = true;
    config.dynamodb_create_table = false;
    config.stream_poll = false;
}

#[tokio::test]
async fn a_server_whose_dynamodb_is_unreachable_starts_and_says_so() {
    let endpoint = closed_endpoint();
    let started = Instant::now();
    let app = TestApp::spawn_with(|c| unreachable_dynamodb(c, endpoint)).await;
    assert!(
        started.elapsed() < UNAVAILABLE_WITHIN,
        "the store is reached lazily: start-up does not wait for it"
    );

    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200, "alive, just not ready");

    let started = Instant::now();
    let ready = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status().as_u16(), 503);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"store": "unavailable", "broker": "ok"}));
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);

    let started = Instant::now();
    let (status, body) = app
        .post(
            "query($id: ID!) { match(id: $id) { id } }",
            json!({"id": "m1"}),
            None,
        )
        .await;
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "SERVICE_UNAVAILABLE",
        "{body}"
    );
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(
        !message.contains("127.0.0.1") && !message.contains("Dispatch"),
        "internals stay inside: {message}"
    );

    let (code, body) = app
        .error(
            "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
            json!({"i": {"matchId": "m1", "type": "GOAL", "side": "HOME"}}),
            Some(&TestApp::token(Role::Operator)),
        )
        .await;
    assert_eq!(code, "SERVICE_UNAVAILABLE", "{body}");
    let (code, body) = app.error("{ liveMatches { id } }", json!({}), None).await;
    assert_eq!(code, "SERVICE_UNAVAILABLE", "{body}");
    app.stop().await;
}

#[tokio::test]
async fn a_server_that_must_create_its_table_fails_to_start_when_dynamodb_is_unreachable() {
    let mut config = Config::for_tests();
    unreachable_dynamodb(&mut config, closed_endpoint());
    config.dynamodb_create_table = true;
    let started = Instant::now();
    let error = match Application::build(config).await {
        Ok(_) => panic!("the server started without its table"),
        Err(e) => e,
    };
    assert!(started.elapsed() < UNAVAILABLE_WITHIN);
    assert!(
        format!("{error:#}").contains("creating the DynamoDB table"),
        "{error:#}"
    );
}
