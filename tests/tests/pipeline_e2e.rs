//! The change pipeline across process boundaries, as deployed on AWS: stream records →
//! stream-handler (Lambda batch handler, or the DynamoDB Streams poller) → signed
//! `POST /internal/publish` → intake → WebSocket subscribers.
//!
//! - Failure injection on the Lambda handler with the real HTTP sink: an unreachable API, a
//!   partial failure and its redelivery.
//! - The whole road on DynamoDB Local: GraphQL mutations → table → stream → the poller in this
//!   process → the API's publish endpoint → subscribers, with per-match order and exactly-once
//!   delivery checked on every update, and the latency measured.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use chrono::Utc;
use scoreline_core::item::{event_item, match_item};
use scoreline_core::model::MatchEvent;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::stream::build_record;
use scoreline_core::{ChangeBatch, EventType, Match, Side};
use scoreline_pipeline::lambda::{handle_event, CHUNK};
use scoreline_pipeline::retry::{Backoff, RetryPolicy};
use scoreline_pipeline::sink::HttpPublisher;
use scoreline_tests::pipeline::{dynamodb_publishing_app, StreamHandler};
use scoreline_tests::{TestApp, WsClient, PUBLISH_SECRET, TRANSPORT_WS, WAIT};
use serde_json::json;

const MATCH_UPDATED: &str = "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version } }";

const MATCH_EVENTS: &str =
    "subscription($id: ID!, $after: Int) { matchEvents(matchId: $id, afterSeq: $after) { seq } }";

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

const TABLE: &str = "scoreline";

/// A server with publishing on.
async fn publishing_app() -> TestApp {
    TestApp::spawn_with(|config| config.publish_secret = Some(PUBLISH_SECRET.into())).await
}

/// A sink with small retries, as a Lambda with little time left would have.
fn quick_retries() -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: Duration::from_secs(2),
        backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
        max_attempts: 3,
    }
}

/// A loopback URL nothing listens on: a port the OS handed out, released again.
fn unreachable_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    let port = listener.local_addr().expect("a bound address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/internal/publish")
}

/// The stream records `count` scoring events on `from` produce, numbered from `sequence`: per
/// event, the event item's INSERT then the match item's MODIFY (one transaction's records, in
/// commit order). Returns the records and the match's last state.
fn scoring_records(from: &Match, count: u32, sequence: u64) -> (Vec<EventRecord>, Match) {
    let mut records = Vec::new();
    let mut current = from.clone();
    let mut sequence = sequence;
    for _ in 0..count {
        let at = Utc::now();
        let mut next = current.clone();
        next.version += 1;
        next.last_seq += 1;
        next.score.home += 1;
        next.updated_at = at;
        let event = MatchEvent {
            match_id: next.id.clone(),
            seq: next.last_seq,
            event_type: EventType::Goal,
            side: Some(Side::Home),
            player: None,
            points: 1,
            period: None,
            clock_seconds: None,
            description: None,
            created_at: at,
        };
        records.push(build_record(
            TABLE,
            sequence,
            at,
            None,
            Some(event_item(&event)),
        ));
        records.push(build_record(
            TABLE,
            sequence + 1,
            at,
            Some(match_item(&current)),
            Some(match_item(&next)),
        ));
        sequence += 2;
        current = next;
    }
    (records, current)
}

fn event_of(records: &[EventRecord]) -> Event {
    let mut event = Event::default();
    event.records = records.to_vec();
    event
}

fn sequence_number(record: &EventRecord) -> String {
    record
        .change
        .sequence_number
        .clone()
        .expect("built records have sequence numbers")
}

fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

/// Subscribers to one live soccer match past their readiness barriers: `matchUpdated` (stored
/// version 2 first) and `matchEvents` (stored seq 1 first), on two connections.
struct Watched {
    stored: Match,
    updates: WsClient,
    events: WsClient,
}

async fn watched_match(app: &TestApp) -> Watched {
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    assert_eq!((stored.version, stored.last_seq), (2, 1));
    let mut updates = WsClient::connected(app, TRANSPORT_WS, None).await;
    updates
        .subscribe("u", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    assert_eq!(updates.next_data("u").await["matchUpdated"]["version"], 2);
    let mut events = WsClient::connected(app, TRANSPORT_WS, None).await;
    events
        .subscribe("e", MATCH_EVENTS, json!({"id": seed.match_id, "after": 0}))
        .await;
    assert_eq!(events.next_data("e").await["matchEvents"]["seq"], 1);
    Watched {
        stored,
        updates,
        events,
    }
}

/// The next `count` versions on the `matchUpdated` subscription.
async fn versions(ws: &mut WsClient, count: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let data = ws.next_data("u").await;
        out.push(data["matchUpdated"]["version"].as_i64().expect("a version"));
    }
    out
}

/// The next `count` seqs on the `matchEvents` subscription.
async fn seqs(ws: &mut WsClient, count: usize) -> Vec<i64> {
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let data = ws.next_data("e").await;
        out.push(data["matchEvents"]["seq"].as_i64().expect("a seq"));
    }
    out
}

async fn assert_nothing_more(ws: &mut WsClient) {
    if let Ok(msg) = ws.recv_within(QUIET).await {
        panic!("expected nothing more, got {msg:?}");
    }
}

#[tokio::test]
async fn an_unreachable_api_makes_the_handler_name_the_first_record_and_deliver_nothing_until_it_is_back(
) {
    let app = publishing_app().await;
    let mut watched = watched_match(&app).await;
    let (records, _) = scoring_records(&watched.stored, 4, 1_000);
    let event = event_of(&records);

    let down = HttpPublisher::new(unreachable_url(), PUBLISH_SECRET, quick_retries()).unwrap();
    let (response, report) = handle_event(&event, &down, None).await;
    assert_eq!(failures(&response), vec![sequence_number(&records[0])]);
    assert_eq!(report.delivered, 0);
    assert_eq!(report.failed_at, Some(sequence_number(&records[0])));

    // Lambda retries from the reported record: here, the whole batch, now to the real API.
    let up = HttpPublisher::new(app.publish_url(), PUBLISH_SECRET, quick_retries()).unwrap();
    let (response, report) = handle_event(&event, &up, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(report.delivered, records.len());
    assert_eq!(versions(&mut watched.updates, 4).await, vec![3, 4, 5, 6]);
    assert_eq!(seqs(&mut watched.events, 4).await, vec![2, 3, 4, 5]);
    assert_nothing_more(&mut watched.updates).await;
}

/// Passes the first `succeed` batches to the real sink, then fails like a network error.
struct FailAfter {
    inner: HttpPublisher,
    succeed: usize,
    calls: AtomicUsize,
}

#[async_trait]
impl Publisher for FailAfter {
    async fn publish(
        &self,
        batch: ChangeBatch,
        deadline: Option<std::time::Instant>,
    ) -> Result<(), PublishError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) < self.succeed {
            self.inner.publish(batch, deadline).await
        } else {
            Err(PublishError::Unavailable(
                "injected: connection reset".into(),
            ))
        }
    }
}

#[tokio::test]
async fn a_batch_redelivered_after_a_partial_failure_reaches_each_subscriber_exactly_once_in_order()
{
    // 150 scoring events: 300 records with one change each, so two chunks (200 + 100).
    const EVENTS: u32 = 150;
    let app = TestApp::spawn_with(|config| {
        config.publish_secret = Some(PUBLISH_SECRET.into());
    })
    .await;
    let mut watched = watched_match(&app).await;
    let (records, last) = scoring_records(&watched.stored, EVENTS, 1_000);
    assert_eq!(records.len(), 2 * EVENTS as usize);
    assert!(records.len() > CHUNK && records.len() <= 2 * CHUNK);
    let event = event_of(&records);
    let sink = || HttpPublisher::new(app.publish_url(), PUBLISH_SECRET, quick_retries()).unwrap();

    // The first chunk is delivered, the second fails: the handler names the second chunk's
    // first record and attempts nothing after it.
    let flaky = FailAfter {
        inner: sink(),
        succeed: 1,
        calls: AtomicUsize::new(0),
    };
    let (response, report) = handle_event(&event, &flaky, None).await;
    assert_eq!(failures(&response), vec![sequence_number(&records[CHUNK])]);
    assert_eq!(report.delivered, CHUNK);
    assert_eq!(flaky.calls.load(Ordering::SeqCst), 2);
    // The first chunk: 100 events and 100 states (versions 3..=102).
    let first_half = (CHUNK / 2) as i64;
    assert_eq!(
        versions(&mut watched.updates, CHUNK / 2).await,
        (3..3 + first_half).collect::<Vec<_>>()
    );
    assert_eq!(
        seqs(&mut watched.events, CHUNK / 2).await,
        (2..2 + first_half).collect::<Vec<_>>()
    );

    // Lambda retries from the reported record; then the same whole batch arrives once more (an
    // at-least-once redelivery, e.g. a retried invocation whose response was lost).
    let (response, report) = handle_event(&event_of(&records[CHUNK..]), &sink(), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(report.delivered, records.len() - CHUNK);
    let (response, report) = handle_event(&event, &sink(), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(report.delivered, records.len());

    // One more change after the redelivery: it is the very next thing after the second half,
    // so any repeat of the redelivered batch would have shown up before it.
    let (sentinel, _) = scoring_records(&last, 1, 10_000);
    let (response, _) = handle_event(&event_of(&sentinel), &sink(), None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    let expected_versions: Vec<i64> = (3 + first_half..=3 + i64::from(EVENTS)).collect();
    assert_eq!(
        versions(&mut watched.updates, expected_versions.len()).await,
        expected_versions
    );
    let expected_seqs: Vec<i64> = (2 + first_half..=2 + i64::from(EVENTS)).collect();
    assert_eq!(
        seqs(&mut watched.events, expected_seqs.len()).await,
        expected_seqs
    );
    assert_nothing_more(&mut watched.updates).await;
    assert_nothing_more(&mut watched.events).await;
}

// ---------------------------------------------------------------------------------------------
// On DynamoDB Local: mutations → table → DynamoDB Streams → poller → /internal/publish → WebSocket
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_chunk_of_200_changes_from_the_handler_is_accepted_by_an_api_with_default_limits() {
    let app = publishing_app().await;
    let mut watched = watched_match(&app).await;
    let (records, _) = scoring_records(&watched.stored, (CHUNK / 2) as u32, 1_000);
    let sink = HttpPublisher::new(app.publish_url(), PUBLISH_SECRET, quick_retries()).unwrap();
    let (response, report) = handle_event(&event_of(&records), &sink, None).await;
    assert_eq!(
        failures(&response),
        Vec::<String>::new(),
        "the API accepts a full chunk"
    );
    assert_eq!(report.delivered, CHUNK);
    assert_eq!(
        versions(&mut watched.updates, CHUNK / 2).await,
        (3..3 + (CHUNK / 2) as i64).collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_poller_catches_up_on_a_backlog_bigger_than_one_publish_request() {
    const BACKLOG: i64 = 100;
    let (app, table) = dynamodb_publishing_app().await;
    let seed = app.live_match("BASKETBALL").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("u", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    assert_eq!(ws.next_data("u").await["matchUpdated"]["version"], 2);
    // 100 scoring events (one request; mutation fields run one after another) written while no
    // stream-handler runs: a backlog of about 200 changes, as after a stream-handler outage.
    let fields: String = (1..=BACKLOG)
        .map(|n| {
            format!(
                "e{n}: recordEvent(input: {{matchId: $m, type: FIELD_GOAL, side: HOME}}) {{ version }} "
            )
        })
        .collect();
    app.operator(
        &format!("mutation($m: ID!) {{ {fields} }}"),
        json!({"m": seed.match_id}),
    )
    .await;

    let poller = StreamHandler::start(&app, &table).await;
    for expected in 3..=2 + BACKLOG {
        let msg = ws
            .recv_within(WAIT)
            .await
            .unwrap_or_else(|()| {
                panic!("version {expected} did not arrive within {WAIT:?}: the backlog is stuck")
            })
            .expect("the connection stays open");
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(
            msg["payload"]["data"]["matchUpdated"]["version"], expected,
            "{msg}"
        );
    }
    poller.stop().await;
}
