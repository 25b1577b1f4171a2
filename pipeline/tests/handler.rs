//! The Lambda handler fed DynamoDB Streams events shaped exactly like the ones Lambda delivers
//! (`tests/fixtures/*.json`, and larger generated events of the same shape).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::Event;
use common::records::{
    carries_change, fixture_event, fixture_json, goal_rush, raw_keys, FIXTURES, STREAM_ARN,
};
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::{Change, ChangeBatch};
use scoreline_pipeline::lambda::{handle_event, InvocationReport, CHUNK};
use serde_json::{json, Value};

/// Keeps every batch it is given.
#[derive(Default)]
struct Collect(Mutex<Vec<ChangeBatch>>);

impl Collect {
    fn batches(&self) -> Vec<ChangeBatch> {
        self.0.lock().unwrap().clone()
    }

    fn changes(&self) -> Vec<Change> {
        self.batches().into_iter().flat_map(|b| b.changes).collect()
    }
}

#[async_trait]
impl Publisher for Collect {
    async fn publish(
        &self,
        batch: ChangeBatch,
        _deadline: Option<std::time::Instant>,
    ) -> Result<(), PublishError> {
        self.0.lock().unwrap().push(batch);
        Ok(())
    }
}

/// Accepts the first `succeed` publishes, then fails every one after; counts the calls.
struct FailAfter {
    succeed: usize,
    calls: AtomicUsize,
    accepted: Collect,
}

impl FailAfter {
    fn new(succeed: usize) -> Self {
        Self {
            succeed,
            calls: AtomicUsize::new(0),
            accepted: Collect::default(),
        }
    }
}

#[async_trait]
impl Publisher for FailAfter {
    async fn publish(
        &self,
        batch: ChangeBatch,
        _deadline: Option<std::time::Instant>,
    ) -> Result<(), PublishError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if call >= self.succeed {
            return Err(PublishError::Unavailable("the API answered 503".into()));
        }
        self.accepted.publish(batch, None).await
    }
}

/// The item identifiers of a response, as Lambda reads them.
fn failures(response: &aws_lambda_events::event::streams::DynamoDbEventResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone().unwrap_or_default())
        .collect()
}

/// `(match id, "match" version | "event" seq)` of each change, for order checks.
fn summary(changes: &[Change]) -> Vec<(String, &'static str, u64)> {
    changes
        .iter()
        .map(|c| match c {
            Change::Match(m) => (m.id.to_string(), "match", m.version),
            Change::Event(e) => (e.match_id.to_string(), "event", u64::from(e.seq)),
        })
        .collect()
}

fn sequence_number(record: &Value) -> String {
    record["dynamodb"]["SequenceNumber"]
        .as_str()
        .expect("a SequenceNumber")
        .to_string()
}

#[test]
fn every_fixture_is_shaped_like_a_dynamodb_streams_lambda_event() {
    for name in FIXTURES {
        let event = fixture_json(name);
        let records = event["Records"].as_array().expect("a Records array");
        assert!(!records.is_empty(), "{name}");
        let mut previous: Option<u128> = None;
        for record in records {
            let context = format!("{name}: {record}");
            assert_eq!(record["eventVersion"], "1.1", "{context}");
            assert_eq!(record["eventSource"], "aws:dynamodb", "{context}");
            assert_eq!(record["awsRegion"], "eu-west-1", "{context}");
            assert_eq!(record["eventSourceARN"], STREAM_ARN, "{context}");
            let id = record["eventID"].as_str().expect("an eventID");
            assert!(
                id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
                "{context}"
            );
            let d = &record["dynamodb"];
            assert_eq!(d["StreamViewType"], "NEW_AND_OLD_IMAGES", "{context}");
            assert!(d["ApproximateCreationDateTime"].is_number(), "{context}");
            assert!(d["SizeBytes"].as_u64().is_some_and(|s| s > 0), "{context}");
            let sequence: u128 = sequence_number(record).parse().expect("a decimal number");
            assert!(previous.is_none_or(|p| p < sequence), "rising: {context}");
            previous = Some(sequence);
            let (has_old, has_new) = (d.get("OldImage").is_some(), d.get("NewImage").is_some());
            match record["eventName"].as_str() {
                Some("INSERT") => assert!(!has_old && has_new, "{context}"),
                Some("MODIFY") => assert!(has_old && has_new, "{context}"),
                Some("REMOVE") => assert!(has_old && !has_new, "{context}"),
                other => panic!("unexpected eventName {other:?} in {context}"),
            }
            // Keys are exactly the item's pk and sk.
            let keys = d["Keys"].as_object().expect("Keys");
            assert_eq!(keys.len(), 2, "{context}");
            let image = if has_new {
                &d["NewImage"]
            } else {
                &d["OldImage"]
            };
            assert_eq!(keys["pk"], image["pk"], "{context}");
            assert_eq!(keys["sk"], image["sk"], "{context}");
        }
        // And the Lambda event type takes it as is.
        let parsed = fixture_event(name);
        assert_eq!(parsed.records.len(), records.len(), "{name}");
    }
}

#[tokio::test]
async fn an_event_and_its_match_written_in_one_transaction_are_published_in_record_order() {
    let event = fixture_event("event_and_match_transaction.json");
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        report,
        InvocationReport {
            delivered: 2,
            ignored: 1, // the idempotency record written in the same transaction
            undecodable: 0,
            failed_at: None,
        }
    );
    let batches = sink.batches();
    assert_eq!(batches.len(), 1);
    let wire = serde_json::to_value(&batches[0]).unwrap();
    let expected = json!({
        "v": 1,
        "changes": [
            {
                "kind": "event",
                "data": {
                    "matchId": "epl-2026-ars-che",
                    "seq": 2,
                    "type": "GOAL",
                    "side": "HOME",
                    "player": "B. Saka",
                    "points": 1,
                    "period": 1,
                    "clockSeconds": 1290,
                    "description": null,
                    "createdAt": "2026-11-22T15:21:41Z"
                }
            },
            {
                "kind": "match",
                "data": {
                    "id": "epl-2026-ars-che",
                    "sport": "SOCCER",
                    "competitionId": "epl-2026",
                    "homeTeamId": "ars",
                    "awayTeamId": "che",
                    "startTime": "2026-11-22T15:00:00Z",
                    "venue": "Emirates Stadium",
                    "status": "LIVE",
                    "score": {"home": 1, "away": 0},
                    "periods": [{"period": 1, "label": "1H", "home": 1, "away": 0}],
                    "clock": {"period": 1, "elapsedSeconds": 1290, "running": true},
                    "details": {
                        "kind": "SOCCER",
                        "homeYellowCards": 0,
                        "awayYellowCards": 0,
                        "homeRedCards": 0,
                        "awayRedCards": 0,
                        "addedTimeMinutes": null
                    },
                    "lastSeq": 2,
                    "version": 4,
                    "createdAt": "2026-10-23T15:00:00Z",
                    "updatedAt": "2026-11-22T15:21:41Z"
                }
            }
        ]
    });
    assert_eq!(wire, expected);
}

#[tokio::test]
async fn a_ttl_expiry_removal_publishes_nothing() {
    let event = fixture_event("ttl_expiry_remove.json");
    let identity = event.records[0]
        .user_identity
        .as_ref()
        .expect("userIdentity");
    assert_eq!(
        (identity.type_.as_str(), identity.principal_id.as_str()),
        ("Service", "dynamodb.amazonaws.com")
    );
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        report,
        InvocationReport {
            ignored: 1,
            ..Default::default()
        }
    );
    assert!(sink.batches().is_empty(), "nothing to publish");
}

#[tokio::test]
async fn a_team_added_to_the_catalogue_publishes_nothing() {
    let event = fixture_event("catalogue_team_insert.json");
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        report,
        InvocationReport {
            ignored: 1,
            ..Default::default()
        }
    );
    assert!(sink.batches().is_empty());
}

#[tokio::test]
async fn interleaved_matches_are_published_in_stream_order_and_each_match_keeps_its_own_order() {
    let event = fixture_event("interleaved_matches.json");
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(
        (report.delivered, report.ignored, report.undecodable),
        (13, 1, 0)
    );
    let changes = sink.changes();
    let bos = "nba-2026-bos-lal";
    let ars = "epl-2026-ars-che";
    let nyy = "mlb-2026-nyy-bsx";
    let expected: Vec<(String, &str, u64)> = [
        (bos, "event", 2),
        (bos, "match", 3),
        (ars, "event", 3),
        (ars, "match", 5),
        (nyy, "match", 3),
        (bos, "event", 3),
        (bos, "match", 4),
        (ars, "event", 4),
        (ars, "match", 6),
        (nyy, "event", 2),
        (nyy, "match", 4),
        (bos, "event", 4),
        (bos, "match", 5),
    ]
    .into_iter()
    .map(|(m, k, n)| (m.to_string(), k, n))
    .collect();
    assert_eq!(summary(&changes), expected);
    // Per match: versions rise by one, each event comes right before the state that counts it.
    for id in [bos, ars, nyy] {
        let mine: Vec<&Change> = changes
            .iter()
            .filter(|c| c.match_id().as_str() == id)
            .collect();
        let mut last_version = None;
        let mut pending_event: Option<u32> = None;
        for change in mine {
            match change {
                Change::Event(e) => pending_event = Some(e.seq),
                Change::Match(m) => {
                    if let Some(v) = last_version {
                        assert_eq!(m.version, v + 1, "{id}");
                    }
                    last_version = Some(m.version);
                    if let Some(seq) = pending_event.take() {
                        assert_eq!(m.last_seq, seq, "{id}");
                    }
                }
            }
        }
    }
    // The final scores, as the last states carry them.
    let last = |id: &str| {
        changes
            .iter()
            .rev()
            .find_map(|c| match c {
                Change::Match(m) if m.id.as_str() == id => Some((m.score.home, m.score.away)),
                _ => None,
            })
            .unwrap()
    };
    assert_eq!(last(bos), (3, 3));
    assert_eq!(last(ars), (1, 1));
    assert_eq!(last(nyy), (0, 1));
}

#[tokio::test]
async fn undecodable_records_are_skipped_and_counted_without_blocking_the_rest() {
    let event = fixture_event("undecodable_records.json");
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(
        failures(&response),
        Vec::<String>::new(),
        "a record that can never be decoded must not be retried"
    );
    assert_eq!(
        report,
        InvocationReport {
            delivered: 3,
            ignored: 0,
            undecodable: 2, // an item of unknown type `t`, and a match with an unknown status
            failed_at: None,
        }
    );
    let ars = "epl-2026-ars-che".to_string();
    assert_eq!(
        summary(&sink.changes()),
        vec![
            (ars.clone(), "match", 7),
            (ars.clone(), "event", 5),
            (ars, "match", 9)
        ]
    );
}

/// A generated event of `writes` goals (two records each) with an idempotency record every
/// seventh write, so record positions and change positions differ.
fn busy_event(writes: usize) -> (Value, Event) {
    let stream = goal_rush(6, writes, 7);
    (stream.event_json(), stream.event())
}

#[tokio::test]
async fn more_than_200_changes_are_published_in_chunks_of_200_in_order() {
    let (raw, event) = busy_event(225);
    let records = raw["Records"].as_array().unwrap();
    let carrying = records.iter().filter(|r| carries_change(r)).count();
    assert_eq!(carrying, 450);
    assert_eq!(records.len(), 450 + 225 / 7);
    let sink = Collect::default();
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!((report.delivered, report.ignored), (450, 225 / 7));
    let sizes: Vec<usize> = sink.batches().iter().map(|b| b.changes.len()).collect();
    assert_eq!(sizes, vec![CHUNK, CHUNK, 50]);
    // The chunks together are the records' changes, in record order.
    let expected: Vec<(String, String)> = records
        .iter()
        .filter(|r| carries_change(r))
        .map(raw_keys)
        .collect();
    let got: Vec<(String, String)> = sink
        .changes()
        .iter()
        .map(|c| match c {
            Change::Match(m) => (format!("M#{}", m.id), "M".to_string()),
            Change::Event(e) => (format!("M#{}", e.match_id), format!("E#{:010}", e.seq)),
        })
        .collect();
    assert_eq!(got, expected);
}

#[tokio::test]
async fn a_publisher_failing_on_the_second_chunk_names_the_first_record_of_that_chunk() {
    let (raw, event) = busy_event(225);
    let records = raw["Records"].as_array().unwrap();
    // The record the 201st change comes from, found from the raw JSON alone.
    let first_of_chunk_2 = records
        .iter()
        .filter(|r| carries_change(r))
        .nth(CHUNK)
        .map(sequence_number)
        .unwrap();
    let position = records
        .iter()
        .position(|r| sequence_number(r) == first_of_chunk_2)
        .unwrap();
    assert!(
        position > CHUNK,
        "ignored records come before it, so record and change positions differ"
    );
    let sink = FailAfter::new(1);
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), vec![first_of_chunk_2.clone()]);
    assert_eq!(report.delivered, CHUNK);
    assert_eq!(report.failed_at, Some(first_of_chunk_2));
    assert_eq!(
        sink.calls.load(Ordering::SeqCst),
        2,
        "nothing after the failed chunk is attempted"
    );
    assert_eq!(sink.accepted.changes().len(), CHUNK);
}

#[tokio::test]
async fn a_publisher_failing_at_once_names_the_first_record_that_carries_a_change() {
    // A batch that starts with two records that can never be decoded, then a transaction,
    // then a catalogue insert (records of one shard, sequence numbers rising).
    let mut records: Vec<Value> = fixture_json("undecodable_records.json")["Records"]
        .as_array()
        .unwrap()[1..]
        .to_vec();
    records.extend(
        fixture_json("catalogue_team_insert.json")["Records"]
            .as_array()
            .unwrap()
            .clone(),
    );
    assert_eq!(raw_keys(&records[0]).1, "W#scoreboard"); // unknown item type
    assert_eq!(
        records[1]["dynamodb"]["NewImage"]["status"]["S"],
        "HALF_TIME"
    ); // corrupt
    assert_eq!(raw_keys(&records[2]).1, "E#0000000005"); // the first change
    let expected = sequence_number(&records[2]);
    let event: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let sink = FailAfter::new(0);
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), vec![expected.clone()]);
    assert_eq!(
        report,
        InvocationReport {
            delivered: 0,
            ignored: 1,
            undecodable: 2,
            failed_at: Some(expected),
        }
    );
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_publisher_failing_at_once_on_a_big_batch_names_its_first_record() {
    let (raw, event) = busy_event(225);
    let first = sequence_number(&raw["Records"][0]);
    let sink = FailAfter::new(0);
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), vec![first]);
    assert_eq!(report.delivered, 0);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_batch_with_nothing_for_subscribers_succeeds_even_when_the_publisher_is_down() {
    let mut records: Vec<Value> = Vec::new();
    for name in ["catalogue_team_insert.json", "ttl_expiry_remove.json"] {
        records.extend(fixture_json(name)["Records"].as_array().unwrap().clone());
    }
    let event: Event = serde_json::from_value(json!({ "Records": records })).unwrap();
    let sink = FailAfter::new(0);
    let (response, report) = handle_event(&event, &sink, None).await;
    assert_eq!(failures(&response), Vec::<String>::new());
    assert_eq!(report.ignored, 2);
    assert_eq!(sink.calls.load(Ordering::SeqCst), 0);
}

#[test]
fn the_response_serializes_as_lambda_expects_batch_item_failures() {
    let mut failure = aws_lambda_events::event::streams::DynamoDbBatchItemFailure::default();
    failure.item_identifier = Some("4952310700000000021348713100".into());
    let mut response = aws_lambda_events::event::streams::DynamoDbEventResponse::default();
    response.batch_item_failures.push(failure);
    assert_eq!(
        serde_json::to_value(&response).unwrap(),
        json!({"batchItemFailures": [{"itemIdentifier": "4952310700000000021348713100"}]})
    );
    assert_eq!(
        serde_json::to_value(aws_lambda_events::event::streams::DynamoDbEventResponse::default())
            .unwrap(),
        json!({"batchItemFailures": []})
    );
}
