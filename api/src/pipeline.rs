//! The publish side of the data flow. [`Intake`] receives change batches (from the embedded
//! pipeline in process, or from the stream-handler through `POST /internal/publish`), drops
//! changes subscribers already have, and fans the rest out through the broker.
//! [`spawn_embedded`] runs the pipeline library's batch code on the memory store's change feed,
//! so the embedded server has the same pipeline as a deployment on DynamoDB Streams.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use scoreline_core::change::WIRE_VERSION;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::{Change, ChangeBatch, MatchId};
use scoreline_pipeline::retry::{retry, Backoff, Failure, RetryPolicy};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use crate::broker::Broker;

/// Newest state and event already published for a match.
#[derive(Clone, Copy, Default)]
struct Published {
    version: u64,
    seq: u32,
}

pub struct Intake {
    broker: Arc<dyn Broker>,
    /// Held across a whole publish, so batches fan out one at a time and in order.
    published: Mutex<HashMap<MatchId, Published>>,
    /// Rises with every batch of fresh changes fanned out (the query cache's invalidation).
    changes: Arc<AtomicU64>,
}

impl Intake {
    pub fn new(broker: Arc<dyn Broker>) -> Self {
        Self {
            broker,
            published: Mutex::new(HashMap::new()),
            changes: Arc::new(AtomicU64::new(0)),
        }
    }

    /// A counter that rises whenever fresh changes are fanned out.
    pub fn changes(&self) -> Arc<AtomicU64> {
        self.changes.clone()
    }
}

#[async_trait]
impl Publisher for Intake {
    /// In process, the broker answers at once or fails: there is nothing to wait for, so the
    /// deadline plays no part.
    async fn publish(
        &self,
        batch: ChangeBatch,
        _deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        if batch.v != WIRE_VERSION {
            return Err(PublishError::Refused(
                format!(
                    "unknown wire format version {} (this server speaks {WIRE_VERSION})",
                    batch.v
                )
                .into(),
            ));
        }
        let mut published = self.published.lock().await;
        // Streams are at-least-once: keep only what is newer than what went out before, and
        // remember it only once the broker has taken it, so a failed publish can be retried.
        let mut next: HashMap<MatchId, Published> = HashMap::new();
        let mut fresh = Vec::with_capacity(batch.changes.len());
        for change in batch.changes {
            let id = change.match_id();
            let seen = next
                .get(id)
                .or_else(|| published.get(id))
                .copied()
                .unwrap_or_default();
            let updated = match &change {
                Change::Match(m) if m.version > seen.version => Published {
                    version: m.version,
                    ..seen
                },
                Change::Event(e) if e.seq > seen.seq => Published { seq: e.seq, ..seen },
                _ => continue,
            };
            next.insert(id.clone(), updated);
            fresh.push(Arc::new(change));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        self.broker
            .publish(&fresh)
            .await
            .map_err(|e| PublishError::Unavailable(Box::new(e)))?;
        self.changes.fetch_add(1, Ordering::AcqRel);
        published.extend(next);
        Ok(())
    }
}

/// Most records handed to the batch handler at once, as a Lambda event source mapping would.
const MAX_BATCH: usize = 500;

/// Waits between attempts to deliver a batch of the change feed: 50 ms doubling to 1 s.
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));

/// Reads the memory store's change feed and runs each batch through the pipeline.
pub fn spawn_embedded(
    mut feed: mpsc::UnboundedReceiver<EventRecord>,
    publisher: Arc<dyn Publisher>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Like the Lambda: retry the same batch in order until it is delivered.
        let until_delivered = RetryPolicy::forever(RETRY_BACKOFF, Duration::MAX);
        let mut records = Vec::with_capacity(MAX_BATCH);
        while feed.recv_many(&mut records, MAX_BATCH).await > 0 {
            let delivered = retry(
                &until_delivered,
                None,
                "the embedded pipeline's publish",
                |_, _| async {
                    scoreline_pipeline::handle_batch(&records, publisher.as_ref(), None)
                        .await
                        .map_err(Failure::Transient)
                },
            )
            .await;
            if let Err(error) = delivered {
                tracing::error!(%error, "the embedded pipeline dropped a batch it could not deliver");
            }
            records.clear();
        }
        tracing::info!("embedded pipeline stopped: the change feed closed");
    })
}
