//! The Lambda side: a DynamoDB Streams event in, `batchItemFailures` out
//! (ReportBatchItemFailures).
//!
//! The changes of a batch are published in order, in chunks. When a chunk cannot be delivered,
//! the response names the first record of that chunk and nothing after it is attempted: Lambda
//! then checkpoints just before that record and retries from it, so records are redelivered in
//! order and none is skipped (see `docs/pipeline.md`).

use std::time::Instant;

use aws_lambda_events::event::dynamodb::Event;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use scoreline_core::publish::Publisher;
use scoreline_core::ChangeBatch;

use crate::decode_batch;
pub use crate::CHUNK;

/// What one invocation did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct InvocationReport {
    pub delivered: usize,
    pub ignored: usize,
    pub undecodable: usize,
    /// The sequence number of the first record not delivered.
    pub failed_at: Option<String>,
}

/// Publishes the event's changes, none past `deadline` (the invocation's end less a margin).
pub async fn handle_event(
    event: &Event,
    publisher: &dyn Publisher,
    deadline: Option<Instant>,
) -> (DynamoDbEventResponse, InvocationReport) {
    let decoded = decode_batch(&event.records);
    let mut report = InvocationReport {
        ignored: decoded.ignored,
        undecodable: decoded.undecodable,
        ..Default::default()
    };
    for chunk in decoded.changes.chunks(CHUNK) {
        let first_record = chunk[0].0;
        let batch = ChangeBatch::new(chunk.iter().map(|(_, c)| c.clone()).collect());
        if let Err(error) = publisher.publish(batch, deadline).await {
            let record = &event.records[first_record];
            let sequence = record.change.sequence_number.clone().unwrap_or_default();
            tracing::error!(%error, sequence_number = %sequence, "could not deliver; Lambda will retry from this record");
            report.failed_at = Some(sequence);
            break;
        }
        report.delivered += chunk.len();
    }
    let mut response = DynamoDbEventResponse::default();
    if let Some(seq) = &report.failed_at {
        let mut failure = DynamoDbBatchItemFailure::default();
        failure.item_identifier = Some(seq.clone());
        response.batch_item_failures.push(failure);
    }
    (response, report)
}
