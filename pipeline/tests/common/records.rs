//! DynamoDB Streams events for tests and benches: the committed JSON fixtures, and generated
//! events of the same shape (the `{"Records": [...]}` document Lambda delivers, with
//! NEW_AND_OLD_IMAGES), built from core's item layout.

use std::collections::HashMap;

use aws_lambda_events::event::dynamodb::Event;
use chrono::{DateTime, Duration, Utc};
use scoreline_core::command::{MatchCommand, NewEvent};
use scoreline_core::item::{event_item, idempotency_item, keys_of, match_item};
use scoreline_core::model::{Details, Score};
use scoreline_core::text::{PlayerName, Venue};
use scoreline_core::{
    ClientMutationId, CompetitionId, EventType, Match, MatchId, MatchStatus, Side, Sport, TeamId,
};
use serde_dynamo::Item;
use serde_json::{json, Value};

pub const STREAM_ARN: &str =
    "arn:aws:dynamodb:eu-west-1:123456789012:table/scoreline/stream/2026-11-01T09:30:00.000";

/// The raw text of a fixture in `pipeline/tests/fixtures` (found from either crate that
/// includes this file: both are workspace members side by side).
pub fn fixture_text(name: &str) -> String {
    let path = format!(
        "{}/../pipeline/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// A fixture as raw JSON.
pub fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture_text(name)).expect("fixtures are JSON")
}

/// A fixture parsed the way the Lambda runtime parses the invocation payload.
pub fn fixture_event(name: &str) -> Event {
    serde_json::from_str(&fixture_text(name)).expect("fixtures are DynamoDB stream events")
}

pub const FIXTURES: [&str; 5] = [
    "event_and_match_transaction.json",
    "ttl_expiry_remove.json",
    "interleaved_matches.json",
    "undecodable_records.json",
    "catalogue_team_insert.json",
];

/// Builds stream records as DynamoDB emits them for one shard: rising sequence numbers, one
/// record per item write.
pub struct StreamWriter {
    next_sequence: u128,
    pub records: Vec<Value>,
}

impl Default for StreamWriter {
    fn default() -> Self {
        Self {
            next_sequence: 6_117_000_000_000_000_031_000_000_000,
            records: Vec::new(),
        }
    }
}

fn image(item: &Item) -> Value {
    serde_json::to_value(item).expect("items serialize to DynamoDB JSON")
}

impl StreamWriter {
    /// Appends the record of one item write: INSERT (no old image), MODIFY, or REMOVE (no new
    /// image).
    pub fn write(&mut self, at: DateTime<Utc>, old: Option<&Item>, new: Option<&Item>) {
        self.next_sequence += 1_300;
        let sequence = self.next_sequence.to_string();
        let event_name = match (old, new) {
            (None, Some(_)) => "INSERT",
            (Some(_), Some(_)) => "MODIFY",
            (Some(_), None) => "REMOVE",
            (None, None) => panic!("a write has an old or a new image"),
        };
        let keys = image(&keys_of(new.or(old).expect("checked above")));
        let mut dynamodb = json!({
            "ApproximateCreationDateTime": at.timestamp(),
            "Keys": keys,
            "SequenceNumber": sequence,
            "SizeBytes": 0,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        });
        let mut size = keys.to_string().len();
        if let Some(new) = new {
            let new = image(new);
            size += new.to_string().len();
            dynamodb["NewImage"] = new;
        }
        if let Some(old) = old {
            let old = image(old);
            size += old.to_string().len();
            dynamodb["OldImage"] = old;
        }
        dynamodb["SizeBytes"] = json!(size / 2);
        self.records.push(json!({
            "eventID": format!("{:032x}", self.next_sequence.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            "eventName": event_name,
            "eventVersion": "1.1",
            "eventSource": "aws:dynamodb",
            "awsRegion": "eu-west-1",
            "dynamodb": dynamodb,
            "eventSourceARN": STREAM_ARN,
        }));
    }

    /// The records of one committed match-day write, in the order the memory store emits a
    /// transaction's records: the event INSERT, the match MODIFY, the idempotency INSERT.
    pub fn commit(
        &mut self,
        old: &Match,
        next: &Match,
        event: Option<&scoreline_core::MatchEvent>,
        key: Option<&str>,
    ) {
        let at = next.updated_at;
        if let Some(event) = event {
            self.write(at, None, Some(&event_item(event)));
        }
        self.write(at, Some(&match_item(old)), Some(&match_item(next)));
        if let Some(key) = key {
            let key = ClientMutationId::parse(key).expect("a valid key");
            let item = idempotency_item(&key, next, at + Duration::hours(24));
            self.write(at, None, Some(&item));
        }
    }

    pub fn event_json(&self) -> Value {
        json!({ "Records": self.records })
    }

    pub fn event_text(&self) -> String {
        serde_json::to_string(&self.event_json()).expect("JSON")
    }

    pub fn event(&self) -> Event {
        serde_json::from_str(&self.event_text()).expect("a DynamoDB stream event")
    }
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").to_utc()
}

/// A live soccer match, as `setMatchStatus(LIVE)` leaves it.
pub fn live_soccer_match(id: &str, home: &str, away: &str) -> Match {
    let start = at("2026-11-22T15:00:00Z");
    let scheduled = Match {
        id: MatchId::parse(id).expect("id"),
        sport: Sport::Soccer,
        competition_id: CompetitionId::parse("epl-2026").expect("id"),
        home_team_id: TeamId::parse(home).expect("id"),
        away_team_id: TeamId::parse(away).expect("id"),
        start_time: start,
        venue: Some(Venue::parse("Stadium").expect("venue")),
        status: MatchStatus::Scheduled,
        score: Score::default(),
        periods: vec![],
        clock: None,
        details: Details::initial(Sport::Soccer),
        last_seq: 0,
        version: 1,
        created_at: start - Duration::days(30),
        updated_at: start - Duration::days(30),
    };
    MatchCommand::SetStatus(MatchStatus::Live)
        .apply(&scheduled, start)
        .expect("a scheduled match goes live")
        .next
}

/// A busy afternoon: `writes` goals spread round-robin over `matches` live soccer matches,
/// each committed as an event INSERT plus a match MODIFY; every `key_every`-th write also
/// carries an idempotency record (an INSERT subscribers never see). Returns the stream.
pub fn goal_rush(matches: usize, writes: usize, key_every: usize) -> StreamWriter {
    let mut states: Vec<Match> = (0..matches)
        .map(|i| live_soccer_match(&format!("m-{i:03}"), &format!("h{i}"), &format!("a{i}")))
        .collect();
    let mut stream = StreamWriter::default();
    let mut clock = at("2026-11-22T15:01:00Z");
    for w in 0..writes {
        let m = &mut states[w % matches];
        let side = if w % 3 == 0 { Side::Away } else { Side::Home };
        let mut goal = NewEvent::new(EventType::Goal).side(side);
        goal.player = Some(PlayerName::parse(format!("Player {}", w % 11 + 1)).expect("name"));
        clock += Duration::seconds(7);
        let applied = MatchCommand::RecordEvent(goal)
            .apply(m, clock)
            .expect("a goal in a live match");
        let key = (key_every > 0 && w % key_every == key_every - 1).then(|| format!("k-{w}"));
        stream.commit(m, &applied.next, applied.event.as_ref(), key.as_deref());
        *m = applied.next;
    }
    stream
}

/// Whether a raw record carries a change subscribers see (an INSERT or MODIFY of a match or an
/// event item), judged from the raw JSON alone.
pub fn carries_change(record: &Value) -> bool {
    let name = record["eventName"].as_str().unwrap_or_default();
    let t = record["dynamodb"]["NewImage"]["t"]["S"]
        .as_str()
        .unwrap_or_default();
    matches!(name, "INSERT" | "MODIFY") && matches!(t, "MATCH" | "EVENT")
}

/// `(pk, sk)` of a raw record's keys.
pub fn raw_keys(record: &Value) -> (String, String) {
    let keys: HashMap<String, HashMap<String, String>> =
        serde_json::from_value(record["dynamodb"]["Keys"].clone()).expect("string keys");
    (keys["pk"]["S"].clone(), keys["sk"]["S"].clone())
}
