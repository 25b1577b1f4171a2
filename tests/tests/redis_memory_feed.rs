//! The memory store's change feed is bounded: when the embedded pipeline cannot deliver (here,
//! its Redis broker is down), writes wait for room, then fail with SERVICE_UNAVAILABLE having
//! changed nothing; once the pipeline delivers again the backlog drains, in order, and writes
//! succeed. Redis is only the broker that can be made to fail; the store is the memory store.

use std::time::Duration;

use api::Role;
use scoreline_tests::redis_server::RedisServer;
use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS, WAIT};
use serde_json::json;

const RECORD_EVENT: &str = "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_pipeline_makes_writes_wait_then_fail_and_its_backlog_drains_in_order_later() {
    let mut redis = RedisServer::start().await;
    let url = redis.url();
    let app = TestApp::spawn_with(|config| {
        config.store = api::StoreKind::Memory;
        config.broker = api::BrokerKind::Redis;
        config.redis_url = Some(url.as_str().into());
        config.change_feed_capacity = 64;
        config.change_feed_wait_ms = 300;
    })
    .await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe(
        "events",
        "subscription($id: ID!) { matchEvents(matchId: $id, afterSeq: 0) { seq } }",
        json!({"id": seed.match_id}),
    )
    .await;
    assert_eq!(ws.next_data("events").await["matchEvents"]["seq"], 1);

    redis.kill().await;
    // Each goal is two records (its event and the match): the feed of 64 fills within about
    // thirty goals, and the next one waits 300 ms and is refused.
    let operator = TestApp::token(Role::Operator);
    let mut recorded = 0;
    let refused = loop {
        assert!(recorded < 100, "the change feed never filled");
        let (_, body) = app
            .post(
                RECORD_EVENT,
                json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME"}}),
                Some(&operator),
            )
            .await;
        match body["errors"][0]["extensions"]["code"].as_str() {
            None => recorded += 1,
            Some(code) => break (code.to_string(), body),
        }
    };
    assert_eq!(refused.0, "SERVICE_UNAVAILABLE", "{}", refused.1);
    assert!(app.metric("scoreline_change_feed_full_total").await >= 1);
    assert!(app.metric("scoreline_change_feed_waits_total").await >= 1);
    assert!(app.metric("scoreline_change_feed_records").await > 0);
    // The refused write changed nothing: the score counts the recorded goals only.
    let stored = app
        .ok(
            "query($id: ID!) { match(id: $id) { score { home } lastSeq } }",
            json!({"id": seed.match_id}),
            None,
        )
        .await;
    assert_eq!(stored["match"]["score"]["home"], recorded);
    let last_seq = stored["match"]["lastSeq"].as_i64().unwrap();
    assert_eq!(last_seq, 1 + recorded);

    redis.restart().await;
    // The backlog drains once the pipeline can deliver, and the subscriber gets every event,
    // in order, once.
    app.wait_for_metric("scoreline_change_feed_records", 0)
        .await;
    for seq in 2..=last_seq {
        assert_eq!(ws.next_data("events").await["matchEvents"]["seq"], seq);
    }
    // Writes go through again.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let (_, body) = app
            .post(
                RECORD_EVENT,
                json!({"i": {"matchId": seed.match_id, "type": "GOAL", "side": "HOME"}}),
                Some(&operator),
            )
            .await;
        if body.get("errors").is_none() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "writes stayed refused: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        ws.next_data("events").await["matchEvents"]["seq"],
        last_seq + 1
    );
}
