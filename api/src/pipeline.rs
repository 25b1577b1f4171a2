//! The publish side of the data flow. [`Intake`] receives change batches (from the embedded
//! pipeline in process, or from the stream-handler through `POST /internal/publish`), drops
//! changes subscribers already have, and fans the rest out through the broker.
//! [`spawn_embedded`] runs the pipeline library's batch code on the memory store's change feed,
//! so the embedded server has the same pipeline as a deployment on DynamoDB Streams. The feed is
//! bounded: while a batch cannot be delivered (the broker is down), the store's writes wait for
//! room and then fail as unavailable, rather than the backlog growing without bound.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use scoreline_core::change::WIRE_VERSION;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::{Change, ChangeBatch, MatchId};
use scoreline_pipeline::retry::{retry, Backoff, Failure, RetryPolicy};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinHandle;

use crate::broker::Broker;
use crate::metrics::Metrics;
use crate::recent::{RecentMatches, Seen};

/// Matches whose newest published version and seq the intake remembers. Beyond it the least
/// recently changed are forgotten, behind a floor that keeps their old copies out (see
/// `crate::recent`): a day with tens of thousands of matches fits, at about 150 bytes each.
pub const INTAKE_MATCHES: usize = 100_000;

/// Newest state and event already published for a match.
#[derive(Clone, Copy, Default)]
struct Published {
    version: u64,
    seq: u32,
}

pub struct Intake {
    broker: Arc<dyn Broker>,
    /// Held across a whole publish, so batches fan out one at a time and in order.
    published: Mutex<RecentMatches<Published>>,
    metrics: Arc<Metrics>,
}

/// When a change was committed: what orders changes across matches (see `crate::recent`).
fn committed_at(change: &Change) -> DateTime<Utc> {
    match change {
        Change::Match(m) => m.updated_at,
        Change::Event(e) => e.created_at,
    }
}

impl Intake {
    pub fn new(broker: Arc<dyn Broker>, metrics: Arc<Metrics>) -> Self {
        Self::with_capacity(broker, metrics, INTAKE_MATCHES)
    }

    /// An intake that remembers at most `matches` matches.
    pub fn with_capacity(broker: Arc<dyn Broker>, metrics: Arc<Metrics>, matches: usize) -> Self {
        Self {
            broker,
            published: Mutex::new(RecentMatches::new(matches)),
            metrics,
        }
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
        let mut next: HashMap<MatchId, (DateTime<Utc>, Published)> = HashMap::new();
        let mut fresh = Vec::with_capacity(batch.changes.len());
        let mut stale = 0;
        for change in batch.changes {
            let id = change.match_id();
            let at = committed_at(&change);
            let seen = match next.get(id) {
                Some((_, p)) => *p,
                None => match published.lookup(id, at) {
                    Seen::Known(p) => *p,
                    Seen::New => Published::default(),
                    Seen::Stale => {
                        stale += 1;
                        continue;
                    }
                },
            };
            let updated = match &change {
                Change::Match(m) if m.version > seen.version => Published {
                    version: m.version,
                    ..seen
                },
                Change::Event(e) if e.seq > seen.seq => Published { seq: e.seq, ..seen },
                _ => continue,
            };
            let latest = next.get(id).map_or(at, |(t, _)| at.max(*t));
            next.insert(id.clone(), (latest, updated));
            fresh.push(Arc::new(change));
        }
        if stale > 0 {
            self.metrics
                .intake_stale_drops
                .fetch_add(stale, Ordering::Relaxed);
        }
        if tracing::enabled!(tracing::Level::DEBUG) {
            let changes: Vec<String> = fresh
                .iter()
                .map(|c| match &**c {
                    Change::Match(m) => format!("{} v{}", m.id, m.version),
                    Change::Event(e) => format!("{} seq {}", e.match_id, e.seq),
                })
                .collect();
            tracing::debug!(?changes, stale, "publishing to the broker");
        }
        if fresh.is_empty() {
            return Ok(());
        }
        self.broker
            .publish(&fresh)
            .await
            .map_err(|e| PublishError::Unavailable(Box::new(e)))?;
        let mut forgotten = 0;
        for (id, (at, p)) in next {
            forgotten += published.remember(id, at, p);
        }
        if forgotten > 0 {
            self.metrics
                .intake_evictions
                .fetch_add(forgotten as u64, Ordering::Relaxed);
        }
        Metrics::set(&self.metrics.intake_tracked_matches, published.len() as i64);
        Ok(())
    }
}

/// Most records handed to the batch handler at once, as a Lambda event source mapping would.
const MAX_BATCH: usize = 500;

/// Waits between attempts to deliver a batch of the change feed: 50 ms doubling to 1 s.
const RETRY_BACKOFF: Backoff = Backoff::new(Duration::from_millis(50), Duration::from_secs(1));

/// Reads the memory store's change feed and runs each batch through the pipeline.
pub fn spawn_embedded(
    mut feed: mpsc::Receiver<EventRecord>,
    publisher: Arc<dyn Publisher>,
    metrics: Arc<Metrics>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        // Like the Lambda: retry the same batch in order until it is delivered.
        let until_delivered = RetryPolicy::forever(RETRY_BACKOFF, Duration::MAX);
        let mut records = Vec::with_capacity(MAX_BATCH);
        while feed.recv_many(&mut records, MAX_BATCH).await > 0 {
            // Room in the feed is freed as records are taken; writers waiting for it proceed
            // while this batch is delivered.
            Metrics::set(&metrics.change_feed_records, feed.len() as i64);
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

#[cfg(test)]
mod tests {
    use scoreline_core::EventType;

    use super::*;
    use crate::broker::{MemoryBroker, Received, Topic};
    use crate::test_support::{a_match, at};

    fn state(id: &str, version: u64, changed: i64) -> Change {
        Change::Match(Box::new(a_match(id, version, changed)))
    }

    fn event(id: &str, seq: u32, changed: i64) -> Change {
        Change::Event(scoreline_core::MatchEvent {
            match_id: MatchId::parse(id).unwrap(),
            seq,
            event_type: EventType::Note,
            side: None,
            player: None,
            points: 0,
            period: None,
            clock_seconds: None,
            description: None,
            created_at: at(changed),
        })
    }

    /// An intake remembering `capacity` matches, and what it fans out.
    fn intake(capacity: usize) -> (Intake, crate::broker::BrokerSubscription, Arc<Metrics>) {
        let broker = Arc::new(MemoryBroker::new(10_000));
        let all = broker.subscribe(Topic::All);
        let metrics = Arc::new(Metrics::default());
        (
            Intake::with_capacity(broker, metrics.clone(), capacity),
            all,
            metrics,
        )
    }

    async fn publish(intake: &Intake, changes: Vec<Change>) {
        intake
            .publish(ChangeBatch::new(changes), None)
            .await
            .unwrap();
    }

    /// Everything fanned out so far, as `id@version` and `id#seq`.
    fn delivered(all: &mut crate::broker::BrokerSubscription) -> Vec<String> {
        let mut out = Vec::new();
        // Unconstrained: tokio's cooperative budget would otherwise end the loop early.
        while let Some(Received::Change(change)) =
            tokio::task::unconstrained(all.recv()).now_or_never()
        {
            out.push(match &*change {
                Change::Match(m) => format!("{}@{}", m.id, m.version),
                Change::Event(e) => format!("{}#{}", e.match_id, e.seq),
            });
        }
        out
    }

    use futures::FutureExt as _;

    #[tokio::test]
    async fn redelivered_changes_are_fanned_out_once() {
        let (intake, mut all, _) = intake(100);
        let batch = vec![state("m1", 2, 1), event("m1", 1, 1), state("m2", 1, 1)];
        publish(&intake, batch.clone()).await;
        publish(&intake, batch).await;
        publish(&intake, vec![state("m1", 1, 0), state("m1", 3, 2)]).await;
        assert_eq!(delivered(&mut all), ["m1@2", "m1#1", "m2@1", "m1@3"]);
    }

    #[tokio::test]
    async fn the_dedupe_memory_stays_bounded_and_is_reported() {
        let (intake, _all, metrics) = intake(40);
        for i in 0..1_000 {
            publish(&intake, vec![state(&format!("m{i}"), 1, i)]).await;
        }
        let tracked = metrics.intake_tracked_matches.load(Ordering::Relaxed);
        assert!((1..=40).contains(&tracked), "{tracked}");
        assert!(metrics.intake_evictions.load(Ordering::Relaxed) >= 960);
    }

    #[tokio::test]
    async fn an_old_copy_of_a_forgotten_matchs_change_is_not_fanned_out_again() {
        let (intake, mut all, metrics) = intake(4);
        publish(&intake, vec![state("old", 5, 0), event("old", 3, 0)]).await;
        // Four busier matches push `old` out of the memory.
        for i in 1..=4 {
            publish(&intake, vec![state(&format!("m{i}"), 1, i)]).await;
        }
        delivered(&mut all);
        // A late redelivery of `old`'s changes (or older ones) is dropped...
        publish(&intake, vec![state("old", 5, 0), event("old", 3, 0)]).await;
        publish(&intake, vec![state("old", 4, -1)]).await;
        assert_eq!(delivered(&mut all), Vec::<String>::new());
        assert_eq!(metrics.intake_stale_drops.load(Ordering::Relaxed), 3);
        // ...and its next real change goes out.
        publish(&intake, vec![state("old", 6, 10), event("old", 4, 10)]).await;
        assert_eq!(delivered(&mut all), ["old@6", "old#4"]);
    }

    #[tokio::test]
    async fn a_match_still_changing_is_never_forgotten_so_its_order_holds() {
        let (intake, mut all, _) = intake(8);
        // `live` changes between every pair of new matches: it is never the least recent.
        for i in 0..100 {
            publish(&intake, vec![state("live", i + 1, 2 * i as i64)]).await;
            publish(&intake, vec![state(&format!("m{i}"), 1, 2 * i as i64 + 1)]).await;
            // A redelivery of its previous version is always recognised.
            publish(&intake, vec![state("live", i.max(1), 2 * i as i64)]).await;
        }
        let live: Vec<String> = delivered(&mut all)
            .into_iter()
            .filter(|d| d.starts_with("live@"))
            .collect();
        let expected: Vec<String> = (1..=100).map(|v| format!("live@{v}")).collect();
        assert_eq!(live, expected);
    }
}
