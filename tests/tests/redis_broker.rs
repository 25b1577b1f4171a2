//! The Redis broker (`BROKER=redis`) against a real `redis-server`: fan-out across brokers,
//! channels released when unused, unknown format versions, and Redis going away and coming
//! back. The API processes on Redis are tested in `redis_scale_out`, `redis_faults` and
//! `redis_shutdown`.
//!
//! Every test starts its own `redis-server` (it must be installed; `scripts/test` installs it),
//! so the tests run the same whatever `SCORELINE_TEST_STORE` says.

use std::sync::Arc;
use std::time::Duration;

use api::{Broker, Received, RedisBroker, RedisBrokerConfig, Topic};
use scoreline_core::change::encode_changes;
use scoreline_core::{Change, MatchId};
use scoreline_pipeline::retry::Backoff;
use scoreline_tests::redis_server::RedisServer;
use scoreline_tests::WAIT;
use serde_json::json;

fn event(match_id: &str, seq: u32) -> Change {
    Change::Event(
        serde_json::from_value(json!({
            "matchId": match_id, "seq": seq, "type": "GOAL", "side": "HOME", "player": null,
            "points": 1, "period": 1, "clockSeconds": 60, "description": null,
            "createdAt": "2026-11-22T15:01:00Z"
        }))
        .expect("a match event"),
    )
}

fn seq_of(received: Received) -> u32 {
    match received {
        Received::Change(change) => match &*change {
            Change::Event(e) => e.seq,
            other => panic!("expected an event, got {other:?}"),
        },
        other => panic!("expected a change, got {other:?}"),
    }
}

async fn recv(sub: &mut api::BrokerSubscription) -> Received {
    tokio::time::timeout(WAIT, sub.recv())
        .await
        .expect("a delivery arrives in time")
}

/// Nothing more arrives for a while.
async fn quiet(sub: &mut api::BrokerSubscription) {
    if let Ok(r) = tokio::time::timeout(Duration::from_millis(300), sub.recv()).await {
        panic!("expected nothing more, got {r:?}");
    }
}

fn quick() -> RedisBrokerConfig {
    RedisBrokerConfig {
        ping_interval: Duration::from_millis(200),
        reconnect: Backoff::new(Duration::from_millis(20), Duration::from_millis(500)),
        ..RedisBrokerConfig::default()
    }
}

async fn redis_connection(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("a connection to the test redis-server")
}

async fn numsub(redis: &RedisServer, channel: &str) -> i64 {
    let (_, count): (String, i64) = redis::cmd("PUBSUB")
        .arg("NUMSUB")
        .arg(channel)
        .query_async(&mut redis_connection(redis).await)
        .await
        .expect("PUBSUB NUMSUB");
    count
}

#[tokio::test]
async fn changes_published_through_one_broker_reach_every_brokers_subscribers_once_and_in_order() {
    let redis = RedisServer::start().await;
    let one = RedisBroker::start(&redis.url(), quick()).unwrap();
    let two = RedisBroker::start(&redis.url(), quick()).unwrap();
    let id = MatchId::parse("m1").unwrap();
    let mut subs = vec![
        one.subscribe(Topic::Match(id.clone())),
        one.subscribe(Topic::All),
        two.subscribe(Topic::Match(id.clone())),
        two.subscribe(Topic::All),
    ];
    // Redis confirms each new subscription with a Gap (subscribers catch up from the store).
    for sub in &mut subs {
        assert!(matches!(recv(sub).await, Received::Gap));
    }
    let changes: Vec<Arc<Change>> = (1..=20)
        .map(|seq| Arc::new(event("m1", seq)))
        .chain([Arc::new(event("other", 1))])
        .collect();
    two.publish(&changes[..10]).await.expect("published");
    one.publish(&changes[10..]).await.expect("published");
    for (i, sub) in subs.iter_mut().enumerate() {
        let mut seqs = Vec::new();
        for _ in 0..20 {
            seqs.push(seq_of(recv(sub).await));
        }
        assert_eq!(seqs, (1..=20).collect::<Vec<_>>(), "subscriber {i}");
        if i % 2 == 1 {
            // `All` also carries the other match, once.
            assert_eq!(seq_of(recv(sub).await), 1, "subscriber {i}");
        }
        quiet(sub).await;
    }
    one.check().await.expect("ready");
}

#[tokio::test]
async fn a_match_channel_is_released_in_redis_when_its_last_local_subscriber_leaves() {
    let redis = RedisServer::start().await;
    let broker = RedisBroker::start(&redis.url(), quick()).unwrap();
    let id = MatchId::parse("m1").unwrap();
    let mut first = broker.subscribe(Topic::Match(id.clone()));
    let second = broker.subscribe(Topic::Match(id.clone()));
    assert!(matches!(recv(&mut first).await, Received::Gap));
    assert_eq!(numsub(&redis, "scoreline:m:m1").await, 1, "one connection");
    drop(first);
    drop(second);
    let deadline = tokio::time::Instant::now() + WAIT;
    while numsub(&redis, "scoreline:m:m1").await != 0 {
        assert!(tokio::time::Instant::now() < deadline, "still subscribed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_message_of_an_unknown_format_version_is_counted_and_is_a_gap_for_its_topic() {
    let redis = RedisServer::start().await;
    let broker = RedisBroker::start(&redis.url(), quick()).unwrap();
    let mut sub = broker.subscribe(Topic::Match(MatchId::parse("m1").unwrap()));
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    let mut connection = redis_connection(&redis).await;
    let newer = br#"{"v":2,"changes":[{"kind":"somethingNew","data":{}}]}"#.to_vec();
    let current = encode_changes([&event("m1", 1)]);
    for payload in [newer, current] {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("scoreline:m:m1")
            .arg(payload)
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    assert_eq!(
        seq_of(recv(&mut sub).await),
        1,
        "the next message goes through"
    );
    assert_eq!(broker.unknown_format_messages(), 1);
}

#[tokio::test]
async fn while_redis_is_down_the_broker_is_unready_and_publishes_fail_fast_then_it_resubscribes() {
    let mut redis = RedisServer::start().await;
    let broker = RedisBroker::start(&redis.url(), quick()).unwrap();
    let id = MatchId::parse("m1").unwrap();
    let mut sub = broker.subscribe(Topic::Match(id.clone()));
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    broker.check().await.expect("ready");

    redis.kill().await;
    let started = tokio::time::Instant::now();
    let failed = broker.publish(&[Arc::new(event("m1", 1))]).await;
    assert!(failed.is_err(), "a publish fails while Redis is down");
    assert!(started.elapsed() < Duration::from_secs(3), "and fails fast");
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.check().await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still ready");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    redis.restart().await;
    // Back: the subscription is renewed and its subscribers told to catch up.
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    broker.check().await.expect("ready again");
    broker
        .publish(&[Arc::new(event("m1", 2))])
        .await
        .expect("published");
    assert_eq!(seq_of(recv(&mut sub).await), 2);
}

#[tokio::test]
async fn the_stream_handlers_redis_sink_delivers_decoded_records_to_the_brokers_subscribers() {
    use scoreline_core::item::event_item;
    use scoreline_core::stream::build_record;
    use scoreline_pipeline::retry::RetryPolicy;
    use scoreline_pipeline::sink::RedisPublisher;

    let redis = RedisServer::start().await;
    let broker = RedisBroker::start(&redis.url(), quick()).unwrap();
    let mut sub = broker.subscribe(Topic::Match(MatchId::parse("m1").unwrap()));
    let mut all = broker.subscribe(Topic::All);
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    assert!(matches!(recv(&mut all).await, Received::Gap));

    // SINK=redis: stream records in, straight to Redis, in the API's wire format.
    let records: Vec<_> = (1..=5)
        .map(|seq| match event("m1", seq) {
            Change::Event(e) => build_record(
                "t",
                u64::from(seq),
                chrono::Utc::now(),
                None,
                Some(event_item(&e)),
            ),
            Change::Match(_) => unreachable!(),
        })
        .collect();
    let sink = RedisPublisher::new(&redis.url(), RetryPolicy::default()).unwrap();
    let report = scoreline_pipeline::handle_batch(&records, &sink, None)
        .await
        .expect("delivered");
    assert_eq!(report.delivered, 5);
    for sub in [&mut sub, &mut all] {
        let mut seqs = Vec::new();
        for _ in 0..5 {
            seqs.push(seq_of(recv(sub).await));
        }
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        quiet(sub).await;
    }
}

#[tokio::test]
async fn a_redis_that_stops_answering_is_detected_by_ping_and_the_broker_resubscribes_when_it_answers_again(
) {
    let redis = RedisServer::start().await;
    let config = RedisBrokerConfig {
        timeout: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(500),
        ..quick()
    };
    let broker = RedisBroker::start(&redis.url(), config).unwrap();
    let mut sub = broker.subscribe(Topic::Match(MatchId::parse("m1").unwrap()));
    assert!(matches!(recv(&mut sub).await, Received::Gap));

    // A network cut: the connection stays open, nothing answers, no FIN arrives.
    redis.freeze();
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.check().await.is_ok() {
        assert!(tokio::time::Instant::now() < deadline, "still ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        broker.publish(&[Arc::new(event("m1", 1))]).await.is_err(),
        "a publish fails while Redis does not answer"
    );
    // Long enough for the subscriber connection's PING to time out.
    tokio::time::sleep(Duration::from_secs(1)).await;

    redis.thaw();
    // The broker gave the silent connection up and subscribes anew: its subscribers catch up.
    assert!(matches!(recv(&mut sub).await, Received::Gap));
    let deadline = tokio::time::Instant::now() + WAIT;
    while broker.check().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    broker
        .publish(&[Arc::new(event("m1", 2))])
        .await
        .expect("published");
    assert_eq!(seq_of(recv(&mut sub).await), 2);
    quiet(&mut sub).await;
}
