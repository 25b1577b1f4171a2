//! Subscriptions end to end: mutations over HTTP, updates over a real WebSocket.

use std::time::Duration;

use api::Role;
use scoreline_tests::{TestApp, WsClient, LEGACY_WS, TEST_SECRET, TRANSPORT_WS, WAIT};
use serde_json::{json, Value};

const MATCH_UPDATED: &str =
    "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version score { home away } } }";

#[tokio::test]
async fn match_updated_receives_a_burst_of_100_updates_in_order_with_none_missing() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    // graphql-transport-ws never acknowledges a subscribe: `sinceVersion: 0` makes the server
    // send the stored state first, which tells the test the subscription is in place.
    ws.subscribe("1", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    let data = ws.next_data("1").await;
    assert_eq!(data["matchUpdated"]["version"], 2);
    let mut expected = 2;
    let writer = {
        let id = seed.match_id.clone();
        let app_url = app.url("/graphql");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let token = TestApp::token(api::Role::Operator);
            for _ in 0..100 {
                let resp = client
                    .post(&app_url)
                    .bearer_auth(&token)
                    .json(&json!({"query": "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
                                  "variables": {"i": {"matchId": id, "type": "FIELD_GOAL", "side": "AWAY"}}}))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
        })
    };
    for _ in 0..100 {
        let data = ws.next_data("1").await;
        expected += 1;
        assert_eq!(data["matchUpdated"]["version"], expected);
    }
    writer.await.unwrap();
    let m = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { away } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(m["match"]["version"], expected);
    assert_eq!(m["match"]["score"]["away"], 200);
}

#[tokio::test]
async fn the_legacy_protocol_delivers_updates_too() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, LEGACY_WS, None).await;
    ws.subscribe("a", MATCH_UPDATED, json!({"id": seed.match_id, "since": 1}))
        .await;
    // sinceVersion 1 < stored 2: the stored state comes first.
    let first = ws.next_data("a").await;
    assert_eq!(first["matchUpdated"]["version"], 2);
    let v = app.record(&seed.match_id, "GOAL", "HOME").await;
    let next = ws.next_data("a").await;
    assert_eq!(next["matchUpdated"]["version"], v);
    assert_eq!(next["matchUpdated"]["score"]["home"], 1);
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const MATCH_EVENTS: &str = "subscription($id: ID!, $after: Int) { matchEvents(matchId: $id, afterSeq: $after) { matchId seq type side } }";

const MATCHES_UPDATED: &str =
    "subscription($f: MatchFilter) { matchesUpdated(filter: $f) { id sport version } }";

const RECORD_EVENT: &str =
    "mutation($i: RecordEventInput!) { recordEvent(input: $i) { id version score { home away } } }";

/// Mutations per request in the batched helpers (each costs 2 of the 500 complexity budget).
const BATCH: usize = 100;

/// The `seq` of a `matchEvents` payload.
fn seq(data: &Value) -> i64 {
    data["matchEvents"]["seq"]
        .as_i64()
        .unwrap_or_else(|| panic!("a seq in {data}"))
}

/// The `version` of a `matchUpdated` payload.
fn version(data: &Value) -> i64 {
    data["matchUpdated"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("a version in {data}"))
}

/// Asserts that nothing (but keep-alives) arrives for a moment.
async fn assert_silent(ws: &mut WsClient) {
    if let Ok(msg) = ws.recv_within(Duration::from_millis(300)).await {
        panic!("expected nothing, got {msg:?}");
    }
}

/// Sets the clock of a live match to `1..=count` seconds, one change each, in a few requests.
async fn tick_clock(app: &TestApp, match_id: &str, count: usize) {
    let seconds: Vec<usize> = (1..=count).collect();
    for chunk in seconds.chunks(BATCH) {
        let fields: String = chunk
            .iter()
            .map(|s| {
                format!(
                    "c{s}: updateClock(input: {{matchId: $m, elapsedSeconds: {s}}}) {{ version }} "
                )
            })
            .collect();
        app.operator(
            &format!("mutation($m: ID!) {{ {fields} }}"),
            json!({"m": match_id}),
        )
        .await;
    }
}

/// Records `count` NOTE events with `description`, in a few requests.
async fn record_notes(app: &TestApp, match_id: &str, count: usize, description: &str) {
    let numbers: Vec<usize> = (1..=count).collect();
    for chunk in numbers.chunks(BATCH) {
        let fields: String = chunk
            .iter()
            .map(|n| format!("n{n}: recordEvent(input: {{matchId: $m, type: NOTE, description: $d}}) {{ version }} "))
            .collect();
        app.operator(
            &format!("mutation($m: ID!, $d: String!) {{ {fields} }}"),
            json!({"m": match_id, "d": description}),
        )
        .await;
    }
}

async fn set_status(app: &TestApp, match_id: &str, status: &str) -> i64 {
    app.operator(
        "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { version } }",
        json!({"i": {"matchId": match_id, "status": status}}),
    )
    .await["setMatchStatus"]["version"]
        .as_i64()
        .unwrap()
}

async fn update_clock(app: &TestApp, match_id: &str, seconds: u32) -> i64 {
    app.operator(
        "mutation($i: UpdateClockInput!) { updateClock(input: $i) { version } }",
        json!({"i": {"matchId": match_id, "elapsedSeconds": seconds}}),
    )
    .await["updateClock"]["version"]
        .as_i64()
        .unwrap()
}

/// The error code of the first error in an `error` message's payload.
// ---------------------------------------------------------------------------------------------
// matchUpdated: resume with sinceVersion
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn match_updated_resumes_after_a_disconnect_with_the_newest_stored_state_then_live_ones() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.as_str();

    let mut seen = Vec::new();
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("1", MATCH_UPDATED, json!({"id": id, "since": 0}))
        .await;
    seen.push(version(&ws.next_data("1").await));
    for side in ["HOME", "AWAY"] {
        let v = app.record(id, "GOAL", side).await;
        let data = ws.next_data("1").await;
        assert_eq!(version(&data), v);
        seen.push(v);
    }
    assert_eq!(seen, [2, 3, 4]);
    let last_seen = *seen.last().unwrap();
    drop(ws);

    // Changes while the client is away.
    app.record(id, "GOAL", "HOME").await;
    app.record(id, "GOAL", "HOME").await;
    assert_eq!(set_status(&app, id, "PAUSED").await, 7);

    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("1", MATCH_UPDATED, json!({"id": id, "since": last_seen}))
        .await;
    let first = ws.next_data("1").await;
    assert_eq!(first["matchUpdated"]["id"], id);
    assert_eq!(version(&first), 7, "the newest stored state comes first");
    assert_eq!(
        first["matchUpdated"]["score"],
        json!({"home": 3, "away": 1})
    );
    seen.push(7);
    // Then live changes.
    assert_eq!(set_status(&app, id, "LIVE").await, 8);
    let live = ws.next_data("1").await;
    assert_eq!(version(&live), 8);
    seen.push(8);
    assert_eq!(
        seen,
        [2, 3, 4, 7, 8],
        "versions strictly rise across both connections"
    );
    assert_silent(&mut ws).await;
}

#[tokio::test]
async fn match_updated_with_since_version_equal_to_the_current_one_sends_nothing_until_the_next_change(
) {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    let id = seed.match_id.as_str();
    assert_eq!(app.record(id, "THREE_POINTER", "HOME").await, 3);

    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("current", MATCH_UPDATED, json!({"id": id, "since": 3}))
        .await;
    assert_silent(&mut ws).await;
    // Whether the subscription was in place before this write or not, the next message is this
    // version: live if it was, as the stored state newer than `sinceVersion` if it was not.
    let v = app.record(id, "FREE_THROW", "AWAY").await;
    assert_eq!(v, 4);
    let data = ws.next_data("current").await;
    assert_eq!(version(&data), 4);
    assert_eq!(data["matchUpdated"]["score"], json!({"home": 3, "away": 1}));
    assert_silent(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// matchEvents: resume with afterSeq
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn match_events_resumes_after_a_disconnect_with_no_gap_and_no_repeat() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.clone();

    let mut seqs = Vec::new();
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    // afterSeq 0 replays the STATUS_CHANGE of the kick-off: proof the subscription is live.
    ws.subscribe("ev", MATCH_EVENTS, json!({"id": id, "after": 0}))
        .await;
    let first = ws.next_data("ev").await;
    assert_eq!(
        first["matchEvents"],
        json!({"matchId": id, "seq": 1, "type": "STATUS_CHANGE", "side": null})
    );
    seqs.push(1);
    for side in ["HOME", "AWAY", "HOME"] {
        app.record(&id, "GOAL", side).await;
        let data = ws.next_data("ev").await;
        assert_eq!(data["matchEvents"]["type"], "GOAL");
        assert_eq!(data["matchEvents"]["side"], side);
        seqs.push(seq(&data));
    }
    assert_eq!(seqs, [1, 2, 3, 4]);
    let last_seen = *seqs.last().unwrap();
    drop(ws);

    // Recorded while the client is away: seqs 5..=8.
    app.record(&id, "YELLOW_CARD", "AWAY").await;
    set_status(&app, &id, "PAUSED").await;
    app.operator(
        "mutation($i: UpdateScoreInput!) { updateScore(input: $i) { version } }",
        json!({"i": {"matchId": id, "home": 1, "away": 1}}),
    )
    .await;
    set_status(&app, &id, "LIVE").await;

    // More events are written while the client resubscribes, so the replay races live ones.
    let writer = {
        let url = app.url("/graphql");
        let id = id.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let token = TestApp::token(Role::Operator);
            for _ in 0..20 {
                let resp = client
                    .post(&url)
                    .bearer_auth(&token)
                    .json(&json!({"query": RECORD_EVENT,
                                  "variables": {"i": {"matchId": id, "type": "NOTE", "description": "live"}}}))
                    .send()
                    .await
                    .unwrap();
                assert!(resp.status().is_success());
            }
        })
    };
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("ev", MATCH_EVENTS, json!({"id": id, "after": last_seen}))
        .await;
    let mut types = Vec::new();
    while seqs.len() < 28 {
        let data = ws.next_data("ev").await;
        assert_eq!(data["matchEvents"]["matchId"], id.as_str());
        seqs.push(seq(&data));
        types.push(data["matchEvents"]["type"].as_str().unwrap().to_string());
    }
    writer.await.unwrap();
    assert_eq!(seqs, (1..=28).collect::<Vec<i64>>());
    assert_eq!(
        types[..4],
        [
            "YELLOW_CARD",
            "STATUS_CHANGE",
            "SCORE_CORRECTION",
            "STATUS_CHANGE"
        ]
    );
    assert!(types[4..].iter().all(|t| t == "NOTE"), "{types:?}");
    assert_silent(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// matchesUpdated
// ---------------------------------------------------------------------------------------------

/// `matchesUpdated` sends nothing until a change, so there is no first message to wait for:
/// change `match_id` until the subscription reports it, then take every report up to the last
/// change made. Returns the newest version seen.
async fn prime_matches_updated(app: &TestApp, ws: &mut WsClient, op: &str, match_id: &str) -> i64 {
    let mut seconds = 0;
    let mut newest_written;
    loop {
        seconds += 1;
        assert!(
            seconds <= 50,
            "matchesUpdated never reported a change to {match_id}"
        );
        newest_written = update_clock(app, match_id, seconds).await;
        if let Ok(msg) = ws.recv_within(Duration::from_millis(200)).await {
            let msg = msg.expect("the connection stays open");
            assert_eq!(msg["type"], "next", "{msg}");
            assert_eq!(msg["id"], op, "{msg}");
            assert_eq!(msg["payload"]["data"]["matchesUpdated"]["id"], match_id);
            let mut seen = msg["payload"]["data"]["matchesUpdated"]["version"]
                .as_i64()
                .unwrap();
            // The subscription is in place: every later change is reported too.
            while seen < newest_written {
                let data = ws.next_data(op).await;
                assert_eq!(data["matchesUpdated"]["id"], match_id);
                let v = data["matchesUpdated"]["version"].as_i64().unwrap();
                assert!(v > seen, "versions strictly rise: {v} after {seen}");
                seen = v;
            }
            return seen;
        }
    }
}

#[tokio::test]
async fn matches_updated_with_a_sport_filter_receives_changes_of_matching_matches_only() {
    let app = TestApp::spawn().await;
    let soccer = app.live_match("SOCCER").await;
    let basketball = app.live_match("BASKETBALL").await;

    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("bb", MATCHES_UPDATED, json!({"f": {"sport": "BASKETBALL"}}))
        .await;
    let mut newest = prime_matches_updated(&app, &mut ws, "bb", &basketball.match_id).await;

    for round in 0..3 {
        // A change of the other sport first: had it been delivered, it would come first.
        app.record(&soccer.match_id, "GOAL", "HOME").await;
        let v = app.record(&basketball.match_id, "FIELD_GOAL", "AWAY").await;
        assert_eq!(v, newest + 1);
        let data = ws.next_data("bb").await;
        assert_eq!(
            data["matchesUpdated"],
            json!({"id": basketball.match_id, "sport": "BASKETBALL", "version": v}),
            "round {round}"
        );
        newest = v;
    }

    // Any basketball match is admitted, including one created after the subscription: its
    // creation (version 1) and its kick-off arrive; the soccer goal in between does not.
    let other = app.seed("BASKETBALL").await;
    app.record(&soccer.match_id, "GOAL", "AWAY").await;
    assert_eq!(set_status(&app, &other.match_id, "LIVE").await, 2);
    for v in [1, 2] {
        assert_eq!(
            ws.next_data("bb").await["matchesUpdated"],
            json!({"id": other.match_id, "sport": "BASKETBALL", "version": v})
        );
    }
    assert_silent(&mut ws).await;
}

#[tokio::test]
async fn matches_updated_sends_the_change_that_takes_a_match_out_of_its_filter_once() {
    let app = TestApp::spawn().await;
    let m = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("live", MATCHES_UPDATED, json!({"f": {"status": ["LIVE"]}}))
        .await;
    let newest = prime_matches_updated(&app, &mut ws, "live", &m.match_id).await;

    // LIVE → PAUSED leaves the filter: sent once, so a list of live matches can drop it.
    let paused = set_status(&app, &m.match_id, "PAUSED").await;
    assert_eq!(paused, newest + 1);
    assert_eq!(
        ws.next_data("live").await["matchesUpdated"]["version"],
        paused
    );
    // Changes while outside the filter are not sent.
    update_clock(&app, &m.match_id, 600).await;
    // Back to LIVE: admitted again.
    let live = set_status(&app, &m.match_id, "LIVE").await;
    assert_eq!(
        ws.next_data("live").await["matchesUpdated"]["version"],
        live
    );
    assert_silent(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// Unknown matches
// ---------------------------------------------------------------------------------------------

async fn assert_not_found(protocol: &'static str) {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connected(&app, protocol, None).await;
    ws.subscribe(
        "u",
        MATCH_UPDATED,
        json!({"id": "no-such-match", "since": 0}),
    )
    .await;
    assert_eq!(ws.refused_code("u").await, "NOT_FOUND");

    ws.subscribe(
        "e",
        MATCH_EVENTS,
        json!({"id": "no-such-match", "after": 0}),
    )
    .await;
    assert_eq!(ws.refused_code("e").await, "NOT_FOUND");

    // The connection stays usable.
    let seed = app.live_match("SOCCER").await;
    ws.subscribe(
        "ok",
        MATCH_UPDATED,
        json!({"id": seed.match_id, "since": 0}),
    )
    .await;
    assert_eq!(version(&ws.next_data("ok").await), 2);
}

#[tokio::test]
async fn subscriptions_with_invalid_arguments_are_bad_user_input_errors() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    for (op, query, variables) in [
        (
            "id",
            MATCH_UPDATED,
            json!({"id": "not a valid id!", "since": 0}),
        ),
        (
            "after",
            MATCH_EVENTS,
            json!({"id": seed.match_id, "after": -1}),
        ),
    ] {
        ws.subscribe(op, query, variables).await;
        assert_eq!(ws.refused_code(op).await, "BAD_USER_INPUT");
    }
}

#[tokio::test]
async fn subscribing_to_an_unknown_match_is_a_not_found_error() {
    assert_not_found(TRANSPORT_WS).await;
}

#[tokio::test]
async fn subscribing_to_an_unknown_match_over_the_legacy_protocol_is_a_not_found_error() {
    assert_not_found(LEGACY_WS).await;
}

// ---------------------------------------------------------------------------------------------
// Legacy graphql-ws
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_legacy_protocol_acks_starts_streams_and_stops_operations() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.as_str();

    let mut ws = WsClient::connect(&app, LEGACY_WS).await;
    ws.send(json!({"type": "connection_init", "payload": {}}))
        .await;
    let ack = ws.recv_frame_within(WAIT).await.unwrap().unwrap();
    assert_eq!(ack, json!({"type": "connection_ack"}));
    let ka = ws.recv_frame_within(WAIT).await.unwrap().unwrap();
    assert_eq!(ka, json!({"type": "ka"}));

    // A query is one `data` then `complete`.
    ws.subscribe(
        "q",
        "query($id: ID!) { match(id: $id) { version } }",
        json!({"id": id}),
    )
    .await;
    assert_eq!(ws.next_data("q").await["match"]["version"], 2);
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"type": "complete", "id": "q"})
    );

    ws.subscribe("a", MATCH_UPDATED, json!({"id": id, "since": 0}))
        .await;
    assert_eq!(version(&ws.next_data("a").await), 2);
    let v = app.record(id, "GOAL", "HOME").await;
    assert_eq!(version(&ws.next_data("a").await), v);

    ws.complete("a").await;
    // Messages are handled in order: once "b" answers, "a" is stopped.
    ws.subscribe("b", MATCH_UPDATED, json!({"id": id, "since": 0}))
        .await;
    assert_eq!(version(&ws.next_data("b").await), 3);
    let v = app.record(id, "GOAL", "AWAY").await;
    let data = ws.next_data("b").await;
    assert_eq!(version(&data), v);
    assert_eq!(data["matchUpdated"]["score"], json!({"home": 1, "away": 1}));
    // Nothing for "a" (or anyone else).
    assert_silent(&mut ws).await;
}

// ---------------------------------------------------------------------------------------------
// Slow consumers
// ---------------------------------------------------------------------------------------------

/// A 120-character venue: `matchUpdated` frames asking for it many times are large, so a
/// client that does not read fills the socket buffers and the server's queues quickly.
fn long_venue() -> String {
    "Stadium-".repeat(15)
}

#[tokio::test]
async fn a_slow_match_updated_subscriber_is_conflated_to_the_final_state_and_stays_connected() {
    const UPDATES: usize = 2_000;
    // The client stops reading for longer than the default idle timeout on a slow store; it
    // is slow, not dead, so liveness must not be what closes it here.
    let app = TestApp::spawn_with(|c| c.ws_idle_timeout_secs = 600).await;
    let seed = app.seed("SOCCER").await;
    let venue = long_venue();
    assert_eq!(venue.len(), 120);
    let id = app
        .admin(
            "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id } }",
            json!({"i": {"competitionId": seed.competition, "homeTeamId": seed.home,
                          "awayTeamId": seed.away, "startTime": "2026-11-29T15:00:00Z",
                          "venue": venue}}),
        )
        .await["createMatch"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(set_status(&app, &id, "LIVE").await, 2);

    // ~25 KB a frame: 2,000 of them (50 MB) are far more than the broker's 256 per topic, the
    // connection's outbox of 256 frames and the socket buffers together can hold.
    let venues: String = (0..200).map(|i| format!("v{i}: venue ")).collect();
    let query = format!(
        "subscription($id: ID!, $since: Int) {{ matchUpdated(id: $id, sinceVersion: $since) {{ version clock {{ elapsedSeconds }} {venues} }} }}"
    );
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("slow", &query, json!({"id": id, "since": 0}))
        .await;
    let first = ws.next_data("slow").await;
    assert_eq!(version(&first), 2);

    // The client reads nothing while every update happens.
    tick_clock(&app, &id, UPDATES).await;
    let final_version = 2 + UPDATES as i64;

    let (frames, last) = tokio::time::timeout(Duration::from_secs(120), async {
        let mut frames = 0;
        let mut last = 2;
        loop {
            let data = ws.next_data("slow").await;
            let v = version(&data);
            assert!(v > last, "versions strictly rise: {v} after {last}");
            assert_eq!(data["matchUpdated"]["v199"], venue.as_str());
            frames += 1;
            last = v;
            if v == final_version {
                assert_eq!(
                    data["matchUpdated"]["clock"]["elapsedSeconds"],
                    UPDATES as i64
                );
                return (frames, last);
            }
        }
    })
    .await
    .expect("the slow subscriber catches up in bounded time");
    assert_eq!(last, final_version);
    assert!(
        frames < UPDATES,
        "the subscriber fell behind, so some intermediate states were conflated ({frames} frames)"
    );
    assert_silent(&mut ws).await;

    // The connection stayed open and live.
    let v = update_clock(&app, &id, 1).await;
    assert_eq!(v, final_version + 1);
    assert_eq!(version(&ws.next_data("slow").await), v);
}

#[tokio::test]
async fn a_slow_match_events_subscriber_is_closed_with_1013_and_resumes_with_after_seq() {
    const EVENTS: usize = 1_500;
    // The client stops reading for longer than the default idle timeout on a slow store; it
    // is slow, not dead, so liveness must not be what closes it here.
    let app = TestApp::spawn_with(|c| c.ws_idle_timeout_secs = 600).await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.as_str();
    let description = "x".repeat(500);

    // ~20 KB a frame: 1,500 of them are far more than the socket buffers hold, so a client
    // that does not read overflows its subscription's queue.
    let aliases: String = (0..40).map(|i| format!("d{i}: description ")).collect();
    let query = format!(
        "subscription($id: ID!, $after: Int) {{ matchEvents(matchId: $id, afterSeq: $after) {{ seq type {aliases} }} }}"
    );
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("slow", &query, json!({"id": id, "after": 0}))
        .await;
    let first = ws.next_data("slow").await;
    assert_eq!(first["matchEvents"]["seq"], 1);

    // The client reads nothing while every event is recorded.
    record_notes(&app, id, EVENTS, &description).await;
    let last_seq = 1 + EVENTS as i64;

    // What was written before the overflow arrives in order, then the documented close.
    let mut seen = 1;
    let closed = loop {
        match ws.recv_or_closed().await {
            Ok(msg) => {
                assert_eq!(msg["type"], "next", "{msg}");
                let data = &msg["payload"]["data"];
                assert_eq!(seq(data), seen + 1, "no gap, no repeat before the close");
                assert_eq!(data["matchEvents"]["d39"], description.as_str());
                seen += 1;
            }
            Err(closed) => break closed,
        }
    };
    assert_eq!(closed.code, 1013, "{closed:?}");
    assert!(closed.reason.contains("afterSeq"), "{closed:?}");
    assert!(
        seen < last_seq,
        "the client fell behind before the end ({seen})"
    );

    // Resuming with afterSeq on a new connection delivers the rest without a gap, then live.
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("again", &query, json!({"id": id, "after": seen}))
        .await;
    tokio::time::timeout(Duration::from_secs(120), async {
        for expected in seen + 1..=last_seq {
            let data = ws.next_data("again").await;
            assert_eq!(seq(&data), expected, "no gap, no repeat");
            assert_eq!(data["matchEvents"]["type"], "NOTE");
        }
    })
    .await
    .expect("the resumed subscriber catches up in bounded time");
    assert_silent(&mut ws).await;
    app.record(id, "GOAL", "HOME").await;
    let data = ws.next_data("again").await;
    assert_eq!(seq(&data), last_seq + 1);
    assert_eq!(data["matchEvents"]["type"], "GOAL");
}

// ---------------------------------------------------------------------------------------------
// Mutations over WebSocket
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_operator_token_in_connection_init_allows_mutations_over_the_websocket() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let token = TestApp::token(Role::Operator);

    for (protocol, op, side, expected) in [
        (TRANSPORT_WS, "m1", "HOME", json!({"home": 1, "away": 0})),
        (LEGACY_WS, "m2", "AWAY", json!({"home": 1, "away": 1})),
    ] {
        let mut ws = WsClient::connected(&app, protocol, Some(&token)).await;
        ws.subscribe(
            op,
            RECORD_EVENT,
            json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": side}}),
        )
        .await;
        let data = ws.next_data(op).await;
        assert_eq!(data["recordEvent"]["score"], expected, "{protocol}");
        assert_eq!(
            ws.recv().await.unwrap(),
            json!({"type": "complete", "id": op}),
            "{protocol}"
        );
    }
    let m = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { home away } events(afterSeq: 1) { type side } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(m["match"]["version"], 4);
    assert_eq!(
        m["match"]["events"],
        json!([{"type": "GOAL", "side": "HOME"}, {"type": "GOAL", "side": "AWAY"}])
    );
}

#[tokio::test]
async fn an_anonymous_mutation_over_the_websocket_is_unauthenticated() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;

    for (protocol, op) in [(TRANSPORT_WS, "m1"), (LEGACY_WS, "m2")] {
        let mut ws = WsClient::connected(&app, protocol, None).await;
        ws.subscribe(
            op,
            RECORD_EVENT,
            json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME"}}),
        )
        .await;
        assert_eq!(ws.refused_code(op).await, "UNAUTHENTICATED", "{protocol}");
    }
    let m = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { home } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(m["match"], json!({"version": 2, "score": {"home": 0}}));
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_websocket_connection_stops_authorizing_mutations_once_its_token_expired() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    // Expired 28 s ago: still inside the server's 30 s leeway for another 2 s at least.
    let issued = unix_now();
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "op", "cognito:groups": ["operator"], "iat": issued - 60, "exp": issued - 28}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap();
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, Some(&token)).await;
    let goal = json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME"}});
    ws.subscribe("before", RECORD_EVENT, goal.clone()).await;
    assert_eq!(ws.next_data("before").await["recordEvent"]["version"], 3);
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"type": "complete", "id": "before"})
    );

    // From `issued + 3` on, the token is past its leeway; nothing arrives meanwhile.
    while unix_now() < issued + 3 {
        assert!(
            ws.recv_within(Duration::from_millis(250)).await.is_err(),
            "nothing is sent while idle"
        );
    }
    ws.subscribe("after", RECORD_EVENT, goal).await;
    assert_eq!(ws.refused_code("after").await, "UNAUTHENTICATED");
    let m = app
        .ok(
            "query($id: ID!) { match(id: $id) { version score { home } } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(m["match"], json!({"version": 3, "score": {"home": 1}}));
}
