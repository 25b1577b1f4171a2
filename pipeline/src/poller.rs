//! A DynamoDB Streams poller: reads a table's stream (shards, iterators, shard ends, new
//! shards) and runs every batch of records through [`crate::handle_batch`], like the Lambda's
//! event source mapping does. Used locally with DynamoDB Local, and by an API that reads its
//! own table's stream.
//!
//! Order and delivery: records of one shard are handled in order, a batch is retried until the
//! publisher accepts it (the iterator only advances after), and a child shard is read only once
//! its parent is finished, so per-item (per-match) order holds; delivery is at-least-once.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::{EventRecord, StreamRecord, StreamViewType};
use aws_sdk_dynamodbstreams::types::{OperationType, ShardIteratorType};
use aws_sdk_dynamodbstreams::Client;
use chrono::{TimeZone, Utc};
use scoreline_core::publish::Publisher;
use serde_dynamo::Item;

use crate::retry::{retry, Backoff, Failure, RetryPolicy};

/// Waits between attempts to deliver a batch the publisher refused: 50 ms doubling to 2 s.
pub const DELIVERY_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(50), Duration::from_secs(2));

/// Where to start reading shards that exist when the poller starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartPosition {
    /// Only changes made from now on.
    Latest,
    /// Everything the stream still holds (up to 24 hours).
    TrimHorizon,
}

#[derive(Clone, Debug)]
pub struct PollerConfig {
    pub stream_arn: String,
    /// Pause between rounds that found no records.
    pub interval: Duration,
    pub start: StartPosition,
    /// Most records per GetRecords call.
    pub batch_size: i32,
}

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The SDK's `Display` says little ("service error"): its `Debug` names the cause.
    #[error("DynamoDB Streams request failed: {0:?}")]
    Streams(#[source] scoreline_core::BoxError),
}

struct Shard {
    parent: Option<String>,
    iterator: Option<String>,
    last_sequence: Option<String>,
    finished: bool,
    initial: bool,
}

/// Where a shard's next iterator starts.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Position {
    After(String),
    Latest,
    TrimHorizon,
}

impl Shard {
    fn position(&self, start: StartPosition) -> Position {
        match (&self.last_sequence, self.initial, start) {
            (Some(seq), _, _) => Position::After(seq.clone()),
            (None, true, StartPosition::Latest) => Position::Latest,
            // Shards found later are new: read them whole.
            (None, _, _) => Position::TrimHorizon,
        }
    }

    /// The records after the last one handled are gone (the stream keeps 24 hours): read on
    /// from the oldest record the shard still holds, instead of asking for the lost ones
    /// forever. The caller reports the gap.
    fn trimmed(&mut self) {
        self.iterator = None;
        self.last_sequence = None;
        self.initial = false;
    }
}

/// What opening a shard iterator found.
enum Opening {
    Iterator(String),
    /// The shard no longer exists, or has no more records.
    Gone,
    /// The position asked for was trimmed from the stream.
    Trimmed,
}

/// Logs a gap in a shard: changes that were written but will never be read. Only a shard read
/// past some record (`after`) can have one: an iterator at the trim horizon or at the latest
/// record that is refused as trimmed (DynamoDB Local does so for a shard just created) skipped
/// nothing, and reopening at the trim horizon reads every record the shard holds.
fn report_gap(id: &str, after: Option<&str>) {
    match after {
        Some(after) => tracing::error!(
            shard = %id,
            after_sequence = after,
            "stream records were trimmed before they were read: the changes between are \
             missing (subscribers that resume get the current state from the store); reading \
             on from the oldest record the shard holds"
        ),
        None => tracing::debug!(
            shard = %id,
            "a shard iterator was refused as trimmed before any record was read; reading the \
             shard from its oldest record"
        ),
    }
}

/// Converts a DynamoDB Streams SDK record into the Lambda event shape the handler decodes.
pub fn to_event_record(
    record: &aws_sdk_dynamodbstreams::types::Record,
    stream_arn: &str,
) -> EventRecord {
    let mut out = EventRecord::default();
    out.event_id = record.event_id().unwrap_or_default().to_string();
    out.event_name = match record.event_name() {
        Some(OperationType::Insert) => "INSERT".into(),
        Some(OperationType::Modify) => "MODIFY".into(),
        Some(OperationType::Remove) => "REMOVE".into(),
        Some(other) => other.as_str().to_string(),
        None => String::new(),
    };
    out.event_version = record.event_version().map(str::to_string);
    out.event_source = record.event_source().map(str::to_string);
    out.aws_region = record.aws_region().unwrap_or_default().to_string();
    out.event_source_arn = Some(stream_arn.to_string());
    if let Some(d) = record.dynamodb() {
        let mut change = StreamRecord::default();
        if let Some(t) = d.approximate_creation_date_time() {
            change.approximate_creation_date_time = Utc
                .timestamp_opt(t.secs(), t.subsec_nanos())
                .single()
                .unwrap_or_else(Utc::now);
        }
        let image = |m: Option<
            &HashMap<String, aws_sdk_dynamodbstreams::types::AttributeValue>,
        >| { m.map(|m| Item::from(m.clone())).unwrap_or_default() };
        change.keys = image(d.keys());
        change.new_image = image(d.new_image());
        change.old_image = image(d.old_image());
        change.sequence_number = d.sequence_number().map(str::to_string);
        change.size_bytes = d.size_bytes().unwrap_or_default();
        change.stream_view_type = Some(StreamViewType::NewAndOldImages);
        out.change = change;
    }
    out
}

/// A DynamoDB Streams client sharing an SDK configuration (region, endpoint, credentials).
pub fn client(sdk: &aws_config::SdkConfig) -> Client {
    Client::new(sdk)
}

fn err(e: impl std::error::Error + Send + Sync + 'static) -> PollError {
    PollError::Streams(Box::new(e))
}

/// Polls until `stop` resolves. Returns an error only when the stream cannot be described.
pub async fn run(
    client: Client,
    config: PollerConfig,
    publisher: Arc<dyn Publisher>,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), PollError> {
    tokio::pin!(stop);
    let mut shards: HashMap<String, Shard> = HashMap::new();
    let mut first_describe = true;
    let mut last_describe = tokio::time::Instant::now() - Duration::from_secs(60);
    loop {
        if last_describe.elapsed() >= Duration::from_secs(1) {
            match discover(&client, &config, &mut shards, first_describe).await {
                Ok(()) => first_describe = false,
                // A stream that cannot be described at start is a configuration error.
                Err(e) if first_describe => return Err(e),
                // Later, a failure is passing: keep reading the shards already known.
                Err(e) => tracing::warn!(error = %e, "describing the stream failed; will retry"),
            }
            last_describe = tokio::time::Instant::now();
        }
        let mut got_records = false;
        let ids: Vec<String> = shards.keys().cloned().collect();
        for id in ids {
            let ready = {
                let shard = &shards[&id];
                !shard.finished
                    && shard
                        .parent
                        .as_ref()
                        .is_none_or(|p| shards.get(p).is_none_or(|p| p.finished))
            };
            if !ready {
                continue;
            }
            if shards[&id].iterator.is_none() {
                let opening = match open_iterator(&client, &config, &id, &shards[&id]).await {
                    Ok(it) => it,
                    Err(e) => {
                        tracing::warn!(shard = %id, error = %e, "opening a shard iterator failed; will retry");
                        continue;
                    }
                };
                let shard = shards.get_mut(&id).expect("known shard");
                match opening {
                    Opening::Iterator(it) => shard.iterator = Some(it),
                    Opening::Gone => {
                        shard.finished = true;
                        continue;
                    }
                    Opening::Trimmed => {
                        report_gap(&id, shard.last_sequence.as_deref());
                        shard.trimmed();
                        continue;
                    }
                }
            }
            let iterator = shards[&id].iterator.clone().expect("opened above");
            let result = client
                .get_records()
                .shard_iterator(iterator)
                .limit(config.batch_size)
                .send()
                .await;
            let output = match result {
                Ok(o) => o,
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_expired_iterator_exception()) =>
                {
                    // Reopen after the last record handled.
                    shards.get_mut(&id).expect("known shard").iterator = None;
                    continue;
                }
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_trimmed_data_access_exception()) =>
                {
                    let shard = shards.get_mut(&id).expect("known shard");
                    report_gap(&id, shard.last_sequence.as_deref());
                    shard.trimmed();
                    continue;
                }
                Err(e) => {
                    tracing::warn!(shard = %id, error = ?e, "GetRecords failed; will retry");
                    continue;
                }
            };
            let records: Vec<EventRecord> = output
                .records()
                .iter()
                .map(|r| to_event_record(r, &config.stream_arn))
                .collect();
            if !records.is_empty() {
                got_records = true;
                tracing::debug!(shard = %id, records = records.len(), "delivering stream records");
                tokio::select! {
                    () = deliver(&records, publisher.as_ref()) => {}
                    // Stopping mid-retry is safe: the shard did not advance past this batch.
                    () = &mut stop => return Ok(()),
                }
            }
            let shard = shards.get_mut(&id).expect("known shard");
            if let Some(last) = records
                .last()
                .and_then(|r| r.change.sequence_number.clone())
            {
                shard.last_sequence = Some(last);
            }
            match output.next_shard_iterator() {
                Some(next) => shard.iterator = Some(next.to_string()),
                None => {
                    shard.finished = true;
                    shard.iterator = None;
                }
            }
        }
        if !got_records {
            tokio::select! {
                () = tokio::time::sleep(config.interval) => {}
                () = &mut stop => return Ok(()),
            }
        }
    }
}

/// Hands records to the batch handler until the publisher accepts them: a shard never moves
/// past a batch that was not delivered.
async fn deliver(records: &[EventRecord], publisher: &dyn Publisher) {
    let until_delivered = RetryPolicy::forever(DELIVERY_BACKOFF, Duration::MAX);
    let delivered = retry(
        &until_delivered,
        None,
        "publishing a stream batch",
        |_, _| async {
            crate::handle_batch(records, publisher, None)
                .await
                .map_err(Failure::Transient)
        },
    )
    .await;
    if let Err(error) = delivered {
        // Only after u32::MAX attempts: the shard stays where it is and the next round
        // offers the batch again.
        tracing::error!(%error, "a stream batch was not delivered");
    }
}

async fn discover(
    client: &Client,
    config: &PollerConfig,
    shards: &mut HashMap<String, Shard>,
    initial: bool,
) -> Result<(), PollError> {
    let mut start: Option<String> = None;
    loop {
        let out = client
            .describe_stream()
            .stream_arn(&config.stream_arn)
            .set_exclusive_start_shard_id(start.take())
            .send()
            .await
            .map_err(err)?;
        let Some(description) = out.stream_description() else {
            return Ok(());
        };
        for shard in description.shards() {
            let Some(id) = shard.shard_id() else { continue };
            shards.entry(id.to_string()).or_insert_with(|| Shard {
                parent: shard.parent_shard_id().map(str::to_string),
                iterator: None,
                last_sequence: None,
                finished: false,
                initial,
            });
        }
        match description.last_evaluated_shard_id() {
            Some(last) => start = Some(last.to_string()),
            None => return Ok(()),
        }
    }
}

async fn open_iterator(
    client: &Client,
    config: &PollerConfig,
    id: &str,
    shard: &Shard,
) -> Result<Opening, PollError> {
    let request = client
        .get_shard_iterator()
        .stream_arn(&config.stream_arn)
        .shard_id(id);
    let position = shard.position(config.start);
    let request = match &position {
        Position::After(seq) => request
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .sequence_number(seq),
        Position::Latest => request.shard_iterator_type(ShardIteratorType::Latest),
        Position::TrimHorizon => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    match request.send().await {
        Ok(out) => Ok(match out.shard_iterator() {
            Some(it) => Opening::Iterator(it.to_string()),
            None => Opening::Gone,
        }),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_trimmed_data_access_exception())
                && position != Position::TrimHorizon =>
        {
            Ok(Opening::Trimmed)
        }
        Err(e)
            if e.as_service_error().is_some_and(|s| {
                s.is_resource_not_found_exception() || s.is_trimmed_data_access_exception()
            }) =>
        {
            tracing::warn!(shard = %id, error = ?e, "shard is gone; skipping it");
            Ok(Opening::Gone)
        }
        Err(e) => Err(err(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(last_sequence: Option<&str>, initial: bool) -> Shard {
        Shard {
            parent: None,
            iterator: Some("it".into()),
            last_sequence: last_sequence.map(str::to_string),
            finished: false,
            initial,
        }
    }

    #[test]
    fn a_shard_resumes_after_its_last_record_and_new_shards_are_read_whole() {
        let resumed = shard(Some("42"), true);
        assert_eq!(
            resumed.position(StartPosition::Latest),
            Position::After("42".into())
        );
        assert_eq!(
            shard(None, true).position(StartPosition::Latest),
            Position::Latest
        );
        assert_eq!(
            shard(None, false).position(StartPosition::Latest),
            Position::TrimHorizon
        );
    }

    #[test]
    fn a_trimmed_shard_reads_on_from_its_trim_horizon_not_the_lost_position() {
        // A poller started at the newest records, whose position was trimmed away: asking
        // for it again would fail forever, and asking for the newest would skip more.
        let mut s = shard(Some("42"), true);
        s.trimmed();
        assert_eq!(s.position(StartPosition::Latest), Position::TrimHorizon);
        assert!(s.iterator.is_none(), "the trimmed iterator is dropped");
        assert!(!s.finished, "the shard is still read");
    }
}
