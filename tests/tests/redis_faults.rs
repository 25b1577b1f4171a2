//! Redis faults, issue test (b): Redis killed (SIGKILL) and restarted on the same port in the
//! middle of a stream. Readiness flips to 503 and back, queries and mutations go on meanwhile,
//! a publish that cannot reach Redis answers 503 (so the stream-handler retries), and every
//! subscriber ends with the final state and a complete event timeline.
//!
//! In a test process of its own, like `redis_scale_out`.

use scoreline_core::Change;
use scoreline_tests::cluster::{
    assert_complete_timeline, assert_strictly_rising, publish_directly, Cluster, Watch,
};
use serde_json::json;

const SERVER: &str = env!("CARGO_BIN_EXE_scoreline-test-server");

/// A change of a match nobody watches.
fn unwatched_event() -> Change {
    Change::Event(
        serde_json::from_value(json!({
            "matchId": "unwatched", "seq": 1, "type": "NOTE", "side": null, "player": null,
            "points": 0, "period": null, "clockSeconds": null, "description": null,
            "createdAt": "2026-11-22T15:01:00Z"
        }))
        .expect("a match event"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_redis_restarts_mid_stream_readiness_flips_and_every_subscriber_ends_complete() {
    let mut cluster = Cluster::start(SERVER).await;
    let id = cluster.a.live_match("BASKETBALL").await.match_id;
    let mut watches = vec![
        Watch::start(&cluster.a, &id, 0, 0, true).await,
        Watch::start(&cluster.b, &id, 0, 0, true).await,
    ];
    let mut last = cluster.b.record(&id, "FIELD_GOAL", "HOME").await;
    for watch in &mut watches {
        watch.until(last, last - 1).await;
    }
    for i in 0..10 {
        let app = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        last = app.record(&id, "FREE_THROW", "AWAY").await;
    }

    cluster.redis.kill().await;
    cluster.a.wait_for_readiness(503).await;
    cluster.b.wait_for_readiness(503).await;
    // A publish that cannot reach Redis is a 503, so the stream-handler retries it.
    let unwatched = unwatched_event();
    assert_eq!(publish_directly(&cluster.a, unwatched.clone()).await, 503);
    // Queries and mutations go on without the broker.
    for i in 0..10 {
        let app = if i % 2 == 0 { &cluster.a } else { &cluster.b };
        last = app.record(&id, "THREE_POINTER", "HOME").await;
    }
    let data = cluster
        .a
        .ok(
            "query($id: ID!) { match(id: $id) { version } }",
            json!({"id": id}),
            None,
        )
        .await;
    assert_eq!(data["match"]["version"], last);

    cluster.redis.restart().await;
    cluster.a.wait_for_readiness(200).await;
    cluster.b.wait_for_readiness(200).await;
    assert_eq!(publish_directly(&cluster.a, unwatched).await, 204);
    for i in 0..10 {
        let app = if i % 2 == 0 { &cluster.b } else { &cluster.a };
        last = app.record(&id, "FIELD_GOAL", "AWAY").await;
    }

    for (who, watch) in ["A", "B"].into_iter().zip(&mut watches) {
        watch.until(last, last - 1).await;
        assert_eq!(watch.state.last(), Some(&last), "{who}: the final state");
        assert_eq!(watch.all.last(), Some(&last), "{who}: the final state");
        assert_strictly_rising(&watch.state, "matchUpdated versions");
        assert_strictly_rising(&watch.all, "matchesUpdated versions");
        assert_complete_timeline(&watch.events, last - 1, who);
    }
}
