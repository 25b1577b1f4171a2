//! The stream-handler: turns a batch of DynamoDB stream records into one change batch and
//! delivers it through a [`Publisher`]. The Lambda, the local stream poller and the API's
//! embedded pipeline all run this same code; only the transport differs.
//!
//! # Layout
//! - `decode_batch`: records → changes, skipping (and counting) records it can never decode.
//! - `handle_batch`: decode, then publish through the sink.

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

/// Decodes `records` and publishes the changes as one batch, in record order (stream order is
/// per-item order, so per-match order holds).
pub async fn handle_batch(
    records: &[EventRecord],
    publisher: &dyn Publisher,
) -> Result<BatchReport, PublishError> {
    let decoded = decode_batch(records);
    let delivered = decoded.changes.len();
    if delivered > 0 {
        let changes = decoded.changes.into_iter().map(|(_, c)| c).collect();
        publisher.publish(ChangeBatch::new(changes)).await?;
    }
    Ok(BatchReport {
        delivered,
        ignored: decoded.ignored,
        undecodable: decoded.undecodable,
    })
}
