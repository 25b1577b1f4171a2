//! Scoreline's pipeline: turns batches of DynamoDB stream records into change batches and
//! delivers them through a [`Publisher`]. The stream-handler Lambda, its `poll` command and the
//! API's embedded pipeline all run this same code; only the transport differs. It is a library
//! with no Lambda runtime, so the API links what it shares with the Lambda and nothing else.
//!
//! # Layout
//! - [`decode_batch`]: records → changes, skipping (and counting) records it can never decode.
//! - [`handle_batch`]: decode, then publish through a sink, in chunks of [`CHUNK`].
//! - `lambda`: a DynamoDB Streams event in, `batchItemFailures` out.
//! - `retry`: the one backoff (exponential, full jitter, capped) and retry-until-deadline.
//! - `sink`: the publishers across the network: `sink::http`, signed to the API's
//!   `/internal/publish`, and `sink::redis`, straight to Redis pub/sub (cargo feature `redis`),
//!   which the API's Redis broker publishes through too; `sink::Sink`, either one.
//! - `poller`: reads DynamoDB Streams and feeds [`handle_batch`] (cargo feature `poller`; the
//!   Lambda artifact is built without it).

pub mod lambda;
#[cfg(feature = "poller")]
pub mod poller;
pub mod retry;
pub mod sink;

use std::time::Instant;

use aws_lambda_events::event::dynamodb::EventRecord;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::stream::{decode_record, record_keys};
use scoreline_core::{Change, ChangeBatch};

/// The changes decoded from a batch of records, each with the index of the record it came from.
#[derive(Debug, Default)]
pub struct DecodedBatch {
    pub changes: Vec<(usize, Change)>,
    /// Records that decoded to nothing subscribers see (catalogue items, removals).
    pub ignored: usize,
    /// Records that can never be decoded; logged with their keys and skipped so they never
    /// block the stream.
    pub undecodable: usize,
}

pub fn decode_batch(records: &[EventRecord]) -> DecodedBatch {
    let mut out = DecodedBatch::default();
    for (index, record) in records.iter().enumerate() {
        match decode_record(record) {
            Ok(Some(change)) => out.changes.push((index, change)),
            Ok(None) => out.ignored += 1,
            Err(error) => {
                out.undecodable += 1;
                tracing::warn!(
                    keys = %record_keys(record),
                    event_name = %record.event_name,
                    sequence_number = record.change.sequence_number.as_deref().unwrap_or(""),
                    %error,
                    "skipping a stream record that cannot be decoded"
                );
            }
        }
    }
    out
}

/// What handling a batch did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub delivered: usize,
    pub ignored: usize,
    pub undecodable: usize,
}

/// Most changes in one publish request (about 85 KB of JSON for typical changes).
pub const CHUNK: usize = 200;

/// Decodes `records` and publishes the changes in record order (stream order is per-item
/// order, so per-match order holds), in batches of at most [`CHUNK`] changes, none past
/// `deadline`.
pub async fn handle_batch(
    records: &[EventRecord],
    publisher: &dyn Publisher,
    deadline: Option<Instant>,
) -> Result<BatchReport, PublishError> {
    let decoded = decode_batch(records);
    let delivered = decoded.changes.len();
    for chunk in decoded.changes.chunks(CHUNK) {
        let changes = chunk.iter().map(|(_, c)| c.clone()).collect();
        publisher
            .publish(ChangeBatch::new(changes), deadline)
            .await?;
    }
    Ok(BatchReport {
        delivered,
        ignored: decoded.ignored,
        undecodable: decoded.undecodable,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use chrono::Utc;
    use scoreline_core::item::{competition_item, match_item};
    use scoreline_core::stream::build_record;
    use scoreline_core::{Change, Competition, CompetitionId, Sport};

    use super::*;

    #[derive(Default)]
    struct Collect(Mutex<Vec<ChangeBatch>>);

    #[async_trait]
    impl Publisher for Collect {
        async fn publish(
            &self,
            batch: ChangeBatch,
            _deadline: Option<Instant>,
        ) -> Result<(), PublishError> {
            self.0.lock().unwrap().push(batch);
            Ok(())
        }
    }

    fn a_match(version: u64) -> scoreline_core::Match {
        let json = serde_json::json!({
            "id": "m1", "sport": "SOCCER", "competitionId": "c1", "homeTeamId": "h", "awayTeamId": "a",
            "startTime": "2026-11-22T15:00:00Z", "venue": null, "status": "LIVE",
            "score": {"home": 1, "away": 0}, "periods": [], "clock": null, "details": null,
            "lastSeq": 1, "version": version,
            "createdAt": "2026-11-22T15:00:00Z", "updatedAt": "2026-11-22T15:00:00Z"
        });
        serde_json::from_value(json).unwrap()
    }

    #[tokio::test]
    async fn a_batch_publishes_its_changes_in_order_and_skips_what_it_cannot_decode() {
        let competition = Competition {
            id: CompetitionId::parse("c1").unwrap(),
            name: scoreline_core::text::Name::parse("Cup").unwrap(),
            sport: Sport::Soccer,
            season: scoreline_core::text::Season::parse("2026").unwrap(),
            created_at: Utc::now(),
        };
        let mut corrupt = build_record("t", 3, Utc::now(), None, Some(match_item(&a_match(3))));
        corrupt.change.new_image = competition_item(&competition);
        let as_map: &mut std::collections::HashMap<String, serde_dynamo::AttributeValue> =
            corrupt.change.new_image.as_mut();
        as_map.insert("t".into(), serde_dynamo::AttributeValue::S("MATCH".into()));
        let records = vec![
            build_record("t", 1, Utc::now(), None, Some(match_item(&a_match(1)))),
            build_record(
                "t",
                2,
                Utc::now(),
                None,
                Some(competition_item(&competition)),
            ),
            corrupt,
            build_record(
                "t",
                4,
                Utc::now(),
                Some(match_item(&a_match(1))),
                Some(match_item(&a_match(2))),
            ),
        ];
        let sink = Collect::default();
        let report = handle_batch(&records, &sink, None).await.unwrap();
        assert_eq!(
            report,
            BatchReport {
                delivered: 2,
                ignored: 1,
                undecodable: 1
            }
        );
        let batches = sink.0.lock().unwrap();
        assert_eq!(batches.len(), 1);
        let versions: Vec<u64> = batches[0]
            .changes
            .iter()
            .map(|c| match c {
                Change::Match(m) => m.version,
                Change::Event(_) => 0,
            })
            .collect();
        assert_eq!(versions, vec![1, 2]);
    }

    #[tokio::test]
    async fn a_batch_with_nothing_to_deliver_publishes_nothing() {
        let removed = build_record("t", 1, Utc::now(), Some(match_item(&a_match(1))), None);
        let sink = Collect::default();
        let report = handle_batch(&[removed], &sink, None).await.unwrap();
        assert_eq!(report.ignored, 1);
        assert!(sink.0.lock().unwrap().is_empty());
    }
}
