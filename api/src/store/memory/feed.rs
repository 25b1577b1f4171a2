//! The memory store's change feed: a bounded queue of stream records between the store and the
//! embedded pipeline, with backpressure. A write first reserves room for every record it may
//! emit, waiting up to `wait` when the feed is full, and only then takes the store's lock; it
//! sends its records through the reservation while still holding the lock, so the feed's order
//! is the commit order and a record, once committed, always has its place. A write that finds no
//! room in time changes nothing and fails as unavailable (SERVICE_UNAVAILABLE): the caller may
//! retry, and an idempotency key makes the retry safe. Nothing is dropped or reordered.
//!
//! Why not wait under the lock: the store's lock also serves reads, which must not stall
//! behind a stuck pipeline. Why not drop: a dropped record is a change no subscriber ever sees.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::dynamodb::EventRecord;
use scoreline_core::store::StoreError;
use tokio::sync::mpsc::{self, error::TrySendError, PermitIterator};

use crate::metrics::Metrics;

/// Records the feed holds by default: a few seconds of a very busy match day.
pub const DEFAULT_FEED_CAPACITY: usize = 10_000;
/// How long a write waits by default for room in a full feed before it fails.
pub const DEFAULT_FEED_WAIT: Duration = Duration::from_secs(5);
/// The smallest capacity: every single write must fit (a team created in 20 competitions emits
/// 21 records).
pub const MIN_FEED_CAPACITY: usize = 64;

pub struct Feed {
    tx: mpsc::Sender<EventRecord>,
    wait: Duration,
    metrics: Arc<Metrics>,
}

/// Room reserved in the feed for one write's records.
pub struct Room<'a> {
    feed: &'a Feed,
    /// `None` when the pipeline is gone (the server is stopping): records have no reader.
    permits: Option<PermitIterator<'a, EventRecord>>,
}

impl Feed {
    /// A feed of at least [`MIN_FEED_CAPACITY`] records, and its receiving end.
    pub fn new(
        capacity: usize,
        wait: Duration,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<EventRecord>) {
        let (tx, rx) = mpsc::channel(capacity.max(MIN_FEED_CAPACITY));
        (Self { tx, wait, metrics }, rx)
    }

    pub fn is_closed(&self) -> bool {
        self.tx.is_closed()
    }

    /// Records that fit now.
    #[cfg(test)]
    pub fn free(&self) -> usize {
        self.tx.capacity()
    }

    /// Reserves room for `records` records, waiting up to the feed's wait. Waiting writers are
    /// served in arrival order (tokio's channel semaphore is fair).
    pub async fn room(&self, records: usize) -> Result<Room<'_>, StoreError> {
        if records > self.tx.max_capacity() {
            return Err(StoreError::Internal(
                format!(
                    "a write of {records} records cannot fit the change feed ({})",
                    self.tx.max_capacity()
                )
                .into(),
            ));
        }
        let permits = match self.tx.try_reserve_many(records) {
            Ok(permits) => Some(permits),
            Err(TrySendError::Closed(())) => None,
            Err(TrySendError::Full(())) => {
                Metrics::inc(&self.metrics.change_feed_waits);
                match tokio::time::timeout(self.wait, self.tx.reserve_many(records)).await {
                    Ok(Ok(permits)) => Some(permits),
                    Ok(Err(_closed)) => None,
                    Err(_elapsed) => {
                        Metrics::inc(&self.metrics.change_feed_full);
                        return Err(StoreError::Unavailable(
                            "the change feed stayed full: the pipeline is behind".into(),
                        ));
                    }
                }
            }
        };
        Ok(Room {
            feed: self,
            permits,
        })
    }
}

impl Room<'_> {
    /// Queues one record; called under the store's lock, in commit order.
    pub fn send(&mut self, record: EventRecord) {
        let Some(permits) = &mut self.permits else {
            return;
        };
        match permits.next() {
            Some(permit) => permit.send(record),
            // Every write reserves for the most records it can emit: this is a bug, and the
            // record still goes out if there is room rather than being lost silently.
            None => {
                tracing::error!("a store write emitted more records than it reserved");
                let _ = self.feed.tx.try_send(record);
            }
        }
    }
}

impl Drop for Room<'_> {
    /// Unused room goes back to the feed with the permits; the gauge follows the queue.
    fn drop(&mut self) {
        self.permits = None;
        let queued = self.feed.tx.max_capacity() - self.feed.tx.capacity();
        Metrics::set(&self.feed.metrics.change_feed_records, queued as i64);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;
    use scoreline_core::stream::build_record;

    fn record(n: u64) -> EventRecord {
        build_record("t", n, chrono::Utc::now(), None, None)
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_to_a_full_feed_waits_for_room_and_then_goes_out_in_order() {
        let metrics = Arc::new(Metrics::default());
        let (feed, mut rx) = Feed::new(MIN_FEED_CAPACITY, Duration::from_secs(5), metrics.clone());
        let feed = Arc::new(feed);
        {
            let mut room = feed.room(MIN_FEED_CAPACITY).await.unwrap();
            for n in 0..MIN_FEED_CAPACITY as u64 {
                room.send(record(n));
            }
        }
        assert_eq!(
            metrics.change_feed_records.load(Ordering::Relaxed),
            MIN_FEED_CAPACITY as i64
        );
        let writer = tokio::spawn({
            let feed = feed.clone();
            async move {
                let mut room = feed.room(2).await.unwrap();
                room.send(record(1000));
                room.send(record(1001));
            }
        });
        tokio::task::yield_now().await;
        assert!(
            !writer.is_finished(),
            "the write waits while the feed is full"
        );
        assert_eq!(metrics.change_feed_waits.load(Ordering::Relaxed), 1);
        let mut first = Vec::new();
        rx.recv_many(&mut first, 2).await;
        writer.await.unwrap();
        let mut rest = Vec::new();
        while let Ok(r) = rx.try_recv() {
            rest.push(r);
        }
        let sequence = |r: &EventRecord| r.change.sequence_number.clone().unwrap();
        let all: Vec<String> = first.iter().chain(&rest).map(sequence).collect();
        let expected: Vec<String> = (0..MIN_FEED_CAPACITY as u64)
            .chain([1000, 1001])
            .map(|n| sequence(&record(n)))
            .collect();
        assert_eq!(all, expected, "nothing lost, nothing reordered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_that_finds_no_room_in_time_is_refused_as_unavailable() {
        let metrics = Arc::new(Metrics::default());
        let (feed, _rx) = Feed::new(MIN_FEED_CAPACITY, Duration::from_secs(5), metrics.clone());
        {
            let mut room = feed.room(MIN_FEED_CAPACITY).await.unwrap();
            for n in 0..MIN_FEED_CAPACITY as u64 {
                room.send(record(n));
            }
        }
        let refused = feed.room(1).await;
        assert!(matches!(refused, Err(StoreError::Unavailable(_))));
        assert_eq!(metrics.change_feed_full.load(Ordering::Relaxed), 1);
    }

    #[tokio::test]
    async fn a_closed_feed_takes_writes_without_records() {
        let (feed, rx) = Feed::new(0, Duration::from_secs(5), Arc::default());
        drop(rx);
        let mut room = feed.room(3).await.unwrap();
        room.send(record(1));
        assert!(feed.is_closed());
    }
}
