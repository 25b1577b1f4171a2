//! The pipeline at scale, end to end on DynamoDB Local: 20 matches, 500 updates through GraphQL,
//! DynamoDB Streams, the stream-handler's poller and the signed publish endpoint, to WebSocket
//! subscribers. It runs in a test process of its own: the AWS SDK's connection pool outlives
//! the runtime of the test that created it, and sharing a process with other tests' runtimes
//! has stalled this scenario.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures::StreamExt;
use scoreline_tests::pipeline::{dynamodb_publishing_app, StreamHandler, POLL_INTERVAL};
use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS};
use serde_json::json;
use tokio::time::Instant;

const MATCH_UPDATED: &str = "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version } }";

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

const MATCHES: usize = 20;
const UPDATES: usize = 500;
/// Mutations in flight at once.
const IN_FLIGHT: usize = 8;
const CONNECTIONS: usize = 4;
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

const RECORD_EVENT: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }";

/// One competition, two teams, `count` matches between them, each set LIVE (version 2).
async fn live_matches(app: &TestApp, count: usize) -> Vec<String> {
    let competition = app
        .admin(
            "mutation($i: CreateCompetitionInput!) { createCompetition(input: $i) { id } }",
            json!({"i": {"name": "Pipeline league", "sport": "BASKETBALL", "season": "2026"}}),
        )
        .await["createCompetition"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut teams = Vec::new();
    for name in ["Streamers", "Pollers"] {
        teams.push(
            app.admin(
                "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id } }",
                json!({"i": {"name": name, "sport": "BASKETBALL", "competitionIds": [competition]}}),
            )
            .await["createTeam"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let mut ids = Vec::new();
    for _ in 0..count {
        let id = app
            .admin(
                "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id } }",
                json!({"i": {"competitionId": competition, "homeTeamId": teams[0],
                             "awayTeamId": teams[1], "startTime": "2026-11-22T19:00:00Z"}}),
            )
            .await["createMatch"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let version = app
            .operator(
                "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { version } }",
                json!({"i": {"matchId": id, "status": "LIVE"}}),
            )
            .await["setMatchStatus"]["version"]
            .clone();
        assert_eq!(version, 2);
        ids.push(id);
    }
    ids
}

/// What one connection's subscribers received: per match index, `(version, arrival)` in order.
type Received = HashMap<usize, Vec<(i64, Instant)>>;

/// Reads a connection's `matchUpdated` frames (operation id = match index) until each of its
/// matches reached `last_version`, then checks nothing more arrives.
async fn receive_until(
    mut ws: WsClient,
    matches: Vec<usize>,
    last_version: i64,
) -> Result<Received, String> {
    let mut received: Received = matches.iter().map(|&m| (m, Vec::new())).collect();
    let done = |r: &Received| {
        r.values().all(|v| {
            v.last()
                .is_some_and(|(version, _)| *version >= last_version)
        })
    };
    while !done(&received) {
        let msg = match ws.recv_within(SCENARIO_TIMEOUT).await {
            Ok(Some(msg)) => msg,
            Ok(None) => return Err("the connection closed".into()),
            Err(()) => return Err("timed out".into()),
        };
        let arrived = Instant::now();
        if msg["type"] != "next" || msg["payload"].get("errors").is_some() {
            return Err(format!("unexpected message {msg}"));
        }
        let index: usize = msg["id"]
            .as_str()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| format!("an operation id in {msg}"))?;
        let version = msg["payload"]["data"]["matchUpdated"]["version"]
            .as_i64()
            .ok_or_else(|| format!("a version in {msg}"))?;
        received
            .get_mut(&index)
            .ok_or_else(|| format!("a frame for a match not subscribed here: {msg}"))?
            .push((version, arrived));
    }
    if let Ok(msg) = ws.recv_within(QUIET).await {
        return Err(format!("expected nothing more, got {msg:?}"));
    }
    Ok(received)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_updates_over_twenty_matches_reach_every_subscriber_through_dynamodb_streams_and_the_publish_endpoint(
) {
    let (app, table) = dynamodb_publishing_app().await;
    let started = Instant::now();
    let poller = StreamHandler::start(&app, &table).await;

    let scenario = async {
        let ids = live_matches(&app, MATCHES).await;
        let setup = started.elapsed();

        // Subscribers: every match on one of a few connections, each past its barrier.
        let mut readers = Vec::new();
        for c in 0..CONNECTIONS {
            let mine: Vec<usize> = (0..MATCHES).filter(|m| m % CONNECTIONS == c).collect();
            let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
            for &m in &mine {
                ws.subscribe(
                    &m.to_string(),
                    MATCH_UPDATED,
                    json!({"id": ids[m], "since": 0}),
                )
                .await;
            }
            let mut ready = Vec::new();
            for _ in &mine {
                let msg = ws.recv().await.expect("the connection stays open");
                assert_eq!(msg["type"], "next", "{msg}");
                assert_eq!(
                    msg["payload"]["data"]["matchUpdated"]["version"], 2,
                    "{msg}"
                );
                ready.push(msg["id"].as_str().unwrap().parse::<usize>().unwrap());
            }
            ready.sort_unstable();
            assert_eq!(ready, mine, "one stored state per subscription");
            let last_version = 2 + (UPDATES / MATCHES) as i64;
            readers.push(tokio::spawn(receive_until(ws, mine, last_version)));
        }

        // 500 scoring events, round robin over the matches, a few in flight at once. Each
        // mutation's send time is kept with the version it committed.
        let token = TestApp::token(api::Role::Operator);
        let updates_started = Instant::now();
        let sent: Vec<(usize, i64, Instant, Instant)> = futures::stream::iter(0..UPDATES)
            .map(|n| {
                let (app, token, ids) = (&app, &token, &ids);
                async move {
                    let m = n % MATCHES;
                    let side = if n % 2 == 0 { "HOME" } else { "AWAY" };
                    let sent_at = Instant::now();
                    let (status, body) = app
                        .post(
                            RECORD_EVENT,
                            json!({"i": {"matchId": ids[m], "type": "FIELD_GOAL", "side": side}}),
                            Some(token),
                        )
                        .await;
                    let answered_at = Instant::now();
                    assert_eq!(status, 200, "{body}");
                    assert!(body.get("errors").is_none(), "recordEvent failed: {body}");
                    let version = body["data"]["recordEvent"]["version"].as_i64().unwrap();
                    (m, version, sent_at, answered_at)
                }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        let mutations_took = updates_started.elapsed();

        let mut received: Received = HashMap::new();
        for reader in readers {
            received.extend(reader.await.expect("a reader task").unwrap_or_else(|e| {
                panic!("a subscriber connection failed: {e}");
            }));
        }
        let delivered_took = updates_started.elapsed();

        // Every subscriber got every update of its match, in version order, none missing, none
        // repeated.
        let per_match = (UPDATES / MATCHES) as i64;
        let expected: Vec<i64> = (3..3 + per_match).collect();
        for (m, id) in ids.iter().enumerate() {
            let got: Vec<i64> = received[&m].iter().map(|(v, _)| *v).collect();
            assert_eq!(got, expected, "versions received for match {m} ({id})");
        }
        let mut committed: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
        for (m, v, _, _) in &sent {
            committed.entry(*m).or_default().push(*v);
        }
        for (m, mut versions) in committed {
            versions.sort_unstable();
            assert_eq!(versions, expected, "versions committed on match {m}");
        }

        // Latency: mutation sent → frame carrying the version it committed received. Also,
        // to tell the write from the pipeline, the mutation's own round trip.
        let arrivals: HashMap<(usize, i64), Instant> = received
            .iter()
            .flat_map(|(m, frames)| frames.iter().map(move |(v, at)| ((*m, *v), *at)))
            .collect();
        let mut latencies: Vec<Duration> = sent
            .iter()
            .map(|(m, v, sent_at, _)| arrivals[&(*m, *v)].saturating_duration_since(*sent_at))
            .collect();
        latencies.sort_unstable();
        let mut round_trips: Vec<Duration> = sent
            .iter()
            .map(|(_, _, sent_at, answered_at)| answered_at.saturating_duration_since(*sent_at))
            .collect();
        round_trips.sort_unstable();
        eprintln!(
            "pipeline e2e on DynamoDB Local: {MATCHES} matches, {UPDATES} updates, {IN_FLIGHT} \
             mutations in flight, {CONNECTIONS} WebSocket connections, poll interval {POLL_INTERVAL:?}"
        );
        eprintln!(
            "  setup (table, {MATCHES} live matches) {setup:?}; mutations {mutations_took:?}; \
             all delivered {delivered_took:?} after the first mutation"
        );
        eprintln!(
            "  latency mutation sent → subscriber frame: p50 {:?}, p99 {:?}, max {:?}, min {:?}",
            percentile(&latencies, 50.0),
            percentile(&latencies, 99.0),
            latencies[latencies.len() - 1],
            latencies[0],
        );
        eprintln!(
            "  of which the mutation round trip (sent → answered): p50 {:?}, p99 {:?}",
            percentile(&round_trips, 50.0),
            percentile(&round_trips, 99.0),
        );
        ids
    };
    let ids = tokio::time::timeout(SCENARIO_TIMEOUT, scenario)
        .await
        .unwrap_or_else(|_| panic!("the scenario finished within {SCENARIO_TIMEOUT:?}"));

    // The store agrees with what subscribers saw.
    for id in &ids {
        let m = app
            .ok(
                "query($id: ID!) { match(id: $id) { version lastSeq } }",
                json!({"id": id}),
                None,
            )
            .await;
        let per_match = (UPDATES / MATCHES) as i64;
        assert_eq!(
            m["match"],
            json!({"version": 2 + per_match, "lastSeq": 1 + per_match}),
            "{id}"
        );
    }

    poller.stop().await;
    eprintln!("  whole test {:?}", started.elapsed());
}

// ---------------------------------------------------------------------------------------------
// Batches bigger than the API's request body limit
// ---------------------------------------------------------------------------------------------
