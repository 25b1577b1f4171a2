//! Subscriptions end to end: mutations over HTTP, updates over a real WebSocket.

use scoreline_tests::{TestApp, WsClient, LEGACY_WS, TRANSPORT_WS};
use serde_json::json;

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
            let token = TestApp::token(api::auth::Role::Operator);
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
