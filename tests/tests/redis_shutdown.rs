//! Graceful shutdown, issue test (c): SIGTERM to one of two API processes during a stream.
//! The request it was reading completes, its WebSocket clients get the documented close (1001
//! "server shutting down"), it exits within its deadline, and a client resuming on the other
//! instance with `sinceVersion` / `afterSeq` misses nothing.
//!
//! In a test process of its own, like `redis_scale_out`.

use std::time::Duration;

use scoreline_tests::cluster::{
    assert_complete_timeline, assert_strictly_rising, Cluster, InFlight, Watch,
};

const SERVER: &str = env!("CARGO_BIN_EXE_scoreline-test-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_sigterm_in_flight_mutations_complete_clients_see_1001_and_resume_elsewhere_missing_nothing(
) {
    let mut cluster = Cluster::start(SERVER).await;
    let id = cluster.b.live_match("ICE_HOCKEY").await.match_id;
    let mut on_a = Watch::start(&cluster.a, &id, 0, 0, false).await;
    let mut last = 0;
    for _ in 0..5 {
        last = cluster.b.record(&id, "GOAL", "AWAY").await;
    }
    on_a.until(last, last - 1).await;

    let in_flight = InFlight::start(&cluster.a, &id).await;
    // Let the server read the request head before it is told to stop.
    tokio::time::sleep(Duration::from_millis(300)).await;
    cluster.a.sigterm();
    let closed = on_a.until_closed().await;
    assert_eq!(closed.code, 1001, "the documented close: {closed:?}");
    assert_eq!(closed.reason, "server shutting down");
    // The server no longer accepts connections, but completes the request it was reading.
    let (status, body) = in_flight.finish().await;
    assert!(status.contains(" 200 "), "{status} {body}");
    let in_flight_version = body["data"]["recordEvent"]["version"]
        .as_i64()
        .unwrap_or_else(|| panic!("the in-flight mutation completed: {body}"));
    assert_eq!(in_flight_version, last + 1);
    let exited = cluster
        .a
        .exited_within(Duration::from_secs(
            cluster.config.shutdown_timeout_secs + 10,
        ))
        .await;
    assert!(exited.success(), "the instance exits cleanly: {exited:?}");
    assert!(
        tokio::net::TcpStream::connect(cluster.a.addr)
            .await
            .is_err(),
        "the stopped instance accepts nothing"
    );

    // Meanwhile the match goes on, written through the other instance.
    last = in_flight_version;
    for _ in 0..3 {
        last = cluster.b.record(&id, "GOAL", "HOME").await;
    }
    // The client reconnects to the other instance and resumes where it was.
    let seen_version = *on_a.state.last().unwrap();
    let seen_seq = *on_a.events.last().unwrap();
    let mut resumed = Watch::start(&cluster.b, &id, seen_version, seen_seq, false).await;
    for _ in 0..3 {
        last = cluster.b.record(&id, "GOAL", "AWAY").await;
    }
    resumed.until(last, last - 1).await;

    let states: Vec<i64> = on_a.state.iter().chain(&resumed.state).copied().collect();
    let events: Vec<i64> = on_a.events.iter().chain(&resumed.events).copied().collect();
    assert_strictly_rising(&states, "matchUpdated versions across the two instances");
    assert_eq!(states.last(), Some(&last), "the final state");
    assert_complete_timeline(&events, last - 1, "across the two instances");
}
