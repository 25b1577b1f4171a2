//! Fan-out behaviour over real WebSocket connections: shared executions, resume arguments
//! served per subscriber, and server-driven liveness. (Slow consumers are in `subscriptions.rs`.)

use std::time::{Duration, Instant};

use futures::StreamExt;
use scoreline_tests::{Closed, TestApp, WsClient, LEGACY_WS, TRANSPORT_WS};
use serde_json::{json, Value};

const SUBSCRIBERS: usize = 1_000;
const MATCH_SCORES: &str =
    "subscription($id: ID!) { matchUpdated(id: $id) { id version score { home away } } }";
const MATCH_SINCE: &str =
    "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version } }";

async fn update_score(app: &TestApp, match_id: &str, home: i64) -> i64 {
    app.operator(
        "mutation($i: UpdateScoreInput!) { updateScore(input: $i) { version } }",
        json!({"i": {"matchId": match_id, "home": home, "away": 0}}),
    )
    .await["updateScore"]["version"]
        .as_i64()
        .unwrap()
}

fn version_of(text: &str) -> i64 {
    let v: Value = serde_json::from_str(text).unwrap();
    v["payload"]["data"]["matchUpdated"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("a matchUpdated frame: {text}"))
}

#[tokio::test]
async fn a_thousand_identical_subscribers_share_one_execution_and_get_byte_identical_frames() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.clone();

    let mut clients: Vec<WsClient> = futures::stream::iter(0..SUBSCRIBERS)
        .map(|_| {
            let app = &app;
            let id = id.clone();
            async move {
                let mut ws = WsClient::connected(app, TRANSPORT_WS, None).await;
                ws.subscribe("1", MATCH_SCORES, json!({"id": id})).await;
                ws
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    app.wait_for_metric("scoreline_subscriptions", SUBSCRIBERS as i64)
        .await;
    assert_eq!(app.metric("scoreline_shared_executions").await, 1);

    // Readiness: everyone receives a first update.
    let v = update_score(&app, &id, 1).await;
    let firsts = futures::future::join_all(clients.iter_mut().map(|c| c.recv_text())).await;
    for text in &firsts {
        assert_eq!(version_of(text.as_deref().expect("a frame")), v);
    }

    let executions = app.metric("scoreline_subscription_executions_total").await;
    const UPDATES: i64 = 5;
    let mut expected = Vec::new();
    for home in 2..2 + UPDATES {
        expected.push(update_score(&app, &id, home).await);
    }
    let received = futures::future::join_all(clients.iter_mut().map(|c| async move {
        let mut frames = Vec::new();
        for _ in 0..UPDATES {
            frames.push(c.recv_text().await.expect("the connection stays open"));
        }
        frames
    }))
    .await;
    let reference = &received[0];
    let versions: Vec<i64> = reference.iter().map(|t| version_of(t)).collect();
    assert_eq!(versions, expected, "every update, in order");
    for (i, frames) in received.iter().enumerate() {
        assert_eq!(
            frames, reference,
            "subscriber {i} got byte-identical frames"
        );
    }
    assert_eq!(
        app.metric("scoreline_subscription_executions_total").await - executions,
        UPDATES,
        "the operation ran once per update, not once per subscriber"
    );
}

#[tokio::test]
async fn subscribers_that_differ_only_in_resume_arguments_share_one_execution_without_repeats() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.clone();
    let current = update_score(&app, &id, 1).await;

    // Live only, resume from before, and already current: one shared execution for all.
    let mut live = WsClient::connected(&app, TRANSPORT_WS, None).await;
    live.subscribe("a", MATCH_SINCE, json!({"id": id})).await;
    let mut behind = WsClient::connected(&app, TRANSPORT_WS, None).await;
    behind
        .subscribe("b", MATCH_SINCE, json!({"id": id, "since": 0}))
        .await;
    let mut caught_up = WsClient::connected(&app, LEGACY_WS, None).await;
    caught_up
        .subscribe("c", MATCH_SINCE, json!({"id": id, "since": current}))
        .await;
    app.wait_for_metric("scoreline_subscriptions", 3).await;
    assert_eq!(app.metric("scoreline_shared_executions").await, 1);

    // The one behind gets the stored state first.
    let first = behind.next_data("b").await;
    assert_eq!(first["matchUpdated"]["version"], current);

    let next = update_score(&app, &id, 2).await;
    for (ws, op) in [(&mut live, "a"), (&mut behind, "b"), (&mut caught_up, "c")] {
        let data = ws.next_data(op).await;
        assert_eq!(data["matchUpdated"]["version"], next, "{op}");
        if let Ok(Some(extra)) = ws.recv_within(Duration::from_millis(300)).await {
            panic!("{op} got a repeat or an extra frame: {extra}");
        }
    }
}

#[tokio::test]
async fn different_variables_make_different_executions_and_the_last_subscriber_out_ends_it() {
    let app = TestApp::spawn().await;
    let one = app.live_match("SOCCER").await;
    let two = app.live_match("SOCCER").await;
    let mut a = WsClient::connected(&app, TRANSPORT_WS, None).await;
    a.subscribe("1", MATCH_SCORES, json!({"id": one.match_id}))
        .await;
    let mut b = WsClient::connected(&app, TRANSPORT_WS, None).await;
    b.subscribe("1", MATCH_SCORES, json!({"id": two.match_id}))
        .await;
    app.wait_for_metric("scoreline_shared_executions", 2).await;

    let v = update_score(&app, &two.match_id, 3).await;
    let data = b.next_data("1").await;
    assert_eq!(data["matchUpdated"]["id"], two.match_id.as_str());
    assert_eq!(data["matchUpdated"]["version"], v);

    a.complete("1").await;
    app.wait_for_metric("scoreline_shared_executions", 1).await;
    drop(b);
    app.wait_for_metric("scoreline_shared_executions", 0).await;
    app.wait_for_metric("scoreline_ws_connections", 1).await;
}

// ---------------------------------------------------------------------------------------------
// Liveness
// ---------------------------------------------------------------------------------------------

const KEEPALIVE_SECS: u64 = 1;
const IDLE_SECS: u64 = 3;

async fn lively_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.ws_keepalive_secs = KEEPALIVE_SECS;
        c.ws_idle_timeout_secs = IDLE_SECS;
    })
    .await
}

#[tokio::test]
async fn a_client_that_stops_answering_pings_is_closed_within_the_idle_timeout() {
    let app = lively_app().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("1", MATCH_SCORES, json!({"id": seed.match_id}))
        .await;
    let silent_since = Instant::now();
    app.wait_for_metric("scoreline_subscriptions", 1).await;

    // The client reads nothing from now on, so it answers no ping of either kind.
    app.wait_for_metric("scoreline_ws_idle_closes_total", 1)
        .await;
    let closed_after = silent_since.elapsed();
    assert!(
        closed_after <= Duration::from_secs(IDLE_SECS + 2),
        "closed after {closed_after:?}"
    );
    assert!(
        closed_after >= Duration::from_secs(IDLE_SECS) - Duration::from_millis(200),
        "not before the idle timeout: {closed_after:?}"
    );
    assert_eq!(app.metric("scoreline_subscriptions").await, 0);
    assert_eq!(app.metric("scoreline_ws_idle_closes_total").await, 1);

    // What the server sent meanwhile: keep-alive pings, then the documented close.
    ws.answer_pings = false;
    let mut pings = 0;
    let closed = loop {
        match ws.recv_or_closed().await {
            Ok(msg) if msg["type"] == "ping" => pings += 1,
            Ok(msg) => panic!("unexpected {msg}"),
            Err(closed) => break closed,
        }
    };
    assert!(pings >= 1, "the server pinged before giving up");
    assert_eq!(
        closed,
        Closed {
            code: 1001,
            reason: "no answer to pings".into()
        }
    );
    app.wait_for_metric("scoreline_ws_connections", 0).await;
    assert_eq!(app.metric("scoreline_subscriptions").await, 0);
}

#[tokio::test]
async fn clients_that_answer_pings_stay_connected_past_the_idle_timeout() {
    let app = lively_app().await;
    // graphql-transport-ws answers `ping` with `pong`; the legacy client never answers `ka`,
    // but its WebSocket stack answers WebSocket pings while it reads.
    let mut modern = WsClient::connected(&app, TRANSPORT_WS, None).await;
    let mut legacy = WsClient::connected(&app, LEGACY_WS, None).await;
    let wait = Duration::from_secs(2 * IDLE_SECS + 1);
    let (a, b) = tokio::join!(modern.recv_within(wait), legacy.recv_within(wait));
    assert_eq!(
        a,
        Err(()),
        "graphql-transport-ws: only keep-alives, no close"
    );
    assert_eq!(b, Err(()), "graphql-ws: only keep-alives, no close");
    assert_eq!(app.metric("scoreline_ws_connections").await, 2);
    assert_eq!(app.metric("scoreline_ws_idle_closes_total").await, 0);
}
