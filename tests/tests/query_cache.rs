//! The opt-in micro-cache of anonymous query responses (`QUERY_CACHE_MS`): it serves a repeat
//! from memory, and never past a change this instance knows of.

use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS, WAIT};
use serde_json::json;

const MATCH: &str = "query($id: ID!) { match(id: $id) { id version score { home away } } }";
const MATCH_UPDATED: &str = "subscription($id: ID!) { matchUpdated(id: $id) { version } }";

async fn cached_app() -> TestApp {
    TestApp::spawn_with(|c| c.query_cache_ms = 60_000).await
}

async fn version(app: &TestApp, id: &str) -> i64 {
    app.ok(MATCH, json!({"id": id}), None).await["match"]["version"]
        .as_i64()
        .unwrap()
}

#[tokio::test]
async fn a_mutation_answered_here_is_read_back_at_once() {
    let app = cached_app().await;
    let seed = app.live_match("SOCCER").await;
    let before = version(&app, &seed.match_id).await;
    assert_eq!(version(&app, &seed.match_id).await, before, "a repeat");
    let after = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert!(after > before);
    assert_eq!(version(&app, &seed.match_id).await, after);
}

#[tokio::test]
async fn a_change_from_the_pipeline_ends_cached_answers() {
    let app = cached_app().await;
    let seed = app.live_match("SOCCER").await;
    let before = version(&app, &seed.match_id).await;

    // A change that does not come through this instance's HTTP mutations: a mutation over the
    // WebSocket reaches the store, and the cache learns of it from the pipeline.
    let operator = TestApp::token(api::Role::Operator);
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, Some(&operator)).await;
    ws.subscribe("u", MATCH_UPDATED, json!({"id": seed.match_id}))
        .await;
    app.wait_for_metric("scoreline_subscriptions", 1).await;
    ws.subscribe(
        "m",
        "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
        json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "AWAY"}}),
    )
    .await;
    // Once the subscriber has the change, the pipeline has published it.
    let published = loop {
        let msg = ws.recv().await.expect("the connection stays open");
        if msg["id"] == "u" {
            break msg["payload"]["data"]["matchUpdated"]["version"]
                .as_i64()
                .unwrap();
        }
    };
    assert!(published > before);
    assert_eq!(version(&app, &seed.match_id).await, published);
}

#[tokio::test]
async fn repeats_are_served_from_the_cache_but_not_errors_or_authenticated_requests() {
    let app = cached_app().await;
    let seed = app.live_match("SOCCER").await;
    let hits = || app.metric("scoreline_query_cache_hits_total");
    // The pipeline publishes the seeding changes a little later (on DynamoDB, from the
    // stream), and each of them ends the cached answers: wait until a repeat is a hit.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let before = hits().await;
        version(&app, &seed.match_id).await;
        version(&app, &seed.match_id).await;
        if hits().await > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "a repeated query is never answered from the cache"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let settled = hits().await;

    for _ in 0..2 {
        let (_, body) = app
            .post(MATCH, json!({"id": "not a valid id!"}), None)
            .await;
        assert!(body["errors"].is_array(), "{body}");
    }
    let admin = TestApp::token(api::Role::Admin);
    for _ in 0..2 {
        let (status, body) = app
            .post(MATCH, json!({"id": seed.match_id}), Some(&admin))
            .await;
        assert_eq!(status, 200, "{body}");
    }
    assert_eq!(
        hits().await,
        settled,
        "errors and authenticated requests always execute"
    );
}

#[tokio::test]
async fn the_cache_is_off_by_default() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    for _ in 0..3 {
        version(&app, &seed.match_id).await;
    }
    assert_eq!(app.metric("scoreline_query_cache_hits_total").await, 0);
}
