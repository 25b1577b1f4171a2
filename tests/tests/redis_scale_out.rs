//! Scale-out on Redis (`BROKER=redis`), issue test (a): two API processes on one
//! `redis-server` and one DynamoDB Local table; every change is published through one of them
//! and subscribers on both receive every update, in order, none missing.
//!
//! In a test process of its own (with its own DynamoDB Local): polling tables' streams from
//! several tests at once in one DynamoDB Local has made its GetRecords fail with
//! TrimmedDataAccessException.

use scoreline_tests::cluster::{assert_complete_timeline, assert_strictly_rising, Cluster, Watch};

const SERVER: &str = env!("CARGO_BIN_EXE_scoreline-test-server");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_on_one_instance_receive_every_update_published_through_another_in_order() {
    let cluster = Cluster::start(SERVER).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let id = a.live_match("SOCCER").await.match_id;
    let mut on_a = Watch::start(a, &id, 0, 0, true).await;
    let mut on_b = Watch::start(b, &id, 0, 0, true).await;
    // A first change through the pipeline shows both instances are subscribed.
    let first = a.record(&id, "GOAL", "HOME").await;
    on_a.until(first, first - 1).await;
    on_b.until(first, first - 1).await;
    let marks = [on_a.mark(), on_b.mark()];

    let mut last = first;
    for i in 0..30 {
        // Writes land on either instance, as behind a load balancer.
        let (app, side) = if i % 2 == 0 { (a, "HOME") } else { (b, "AWAY") };
        last = app.record(&id, "GOAL", side).await;
    }
    assert_eq!(last, first + 30);
    let expected: Vec<i64> = (first + 1..=last).collect();
    for (who, watch, (state, all, _)) in [("A", &mut on_a, marks[0]), ("B", &mut on_b, marks[1])] {
        watch.until(last, last - 1).await;
        assert_eq!(watch.state[state..], expected[..], "{who}: matchUpdated");
        assert_eq!(watch.all[all..], expected[..], "{who}: matchesUpdated");
        assert_strictly_rising(&watch.state, "matchUpdated versions");
        assert_strictly_rising(&watch.all, "matchesUpdated versions");
        assert_complete_timeline(&watch.events, last - 1, who);
    }
}

/// Response cache across instances: an answer cached on A ends when B's change reaches A
/// through Redis (no TTL: without it A would answer the old version for ever), and A reads its
/// own writes at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_cached_on_one_instance_ends_with_a_change_made_through_another() {
    let cluster = Cluster::start(SERVER).await;
    let (a, b) = (&cluster.a, &cluster.b);
    let id = b.live_match("SOCCER").await.match_id;
    let query = "query($id: ID!) { match(id: $id) { version } }";
    let read = |app: &'static str| {
        let app = if app == "a" { a } else { b };
        let id = id.clone();
        async move {
            app.ok(query, serde_json::json!({"id": id}), None).await["match"]["version"]
                .as_i64()
                .expect("the match exists")
        }
    };
    a.until_cached(query, serde_json::json!({"id": id})).await;

    let written = b.record(&id, "GOAL", "HOME").await;
    let deadline = tokio::time::Instant::now() + scoreline_tests::WAIT;
    while read("a").await < written {
        assert!(
            tokio::time::Instant::now() < deadline,
            "A kept answering a version older than {written} from its cache"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let own = a.record(&id, "GOAL", "AWAY").await;
    assert_eq!(read("a").await, own, "A reads its own write at once");
}
