//! The per-connection outbox: one ordered queue per WebSocket connection, drained by its writer
//! task, with a bound per subscription and one per connection, each in frames and in bytes (a
//! few large frames weigh as much as thousands of small ones). The bounds and what happens at
//! them (conflate a state, close on an event) live here so that every producer, shared or
//! per-subscriber, gets the same slow-consumer policy.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Close code for a connection whose event subscription overflowed its queue: 1013 "Try Again
/// Later", which clients (the graphql-ws reference client included) treat as retryable.
pub const SLOW_CONSUMER_CLOSE: (u16, &str) = (1013, "slow consumer: resubscribe with afterSeq");
/// Frames one subscription may have queued before its policy applies: a burst of changes (a
/// stream-handler batch after an outage) fits, a client that stopped reading does not.
pub const SUBSCRIPTION_QUEUE: u32 = 256;
/// Bytes one subscription may have queued before its policy applies.
pub const SUBSCRIPTION_QUEUE_BYTES: usize = 1024 * 1024;
/// Frames a connection may have queued in all; beyond it the client is not reading at all.
const CONNECTION_QUEUE: usize = 4096;
/// Bytes a connection may have queued in all (frames are shared between sockets, but a client
/// that stops reading keeps its own references alive).
pub const CONNECTION_QUEUE_BYTES: usize = 8 * 1024 * 1024;

/// What a subscription does when its client falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// State subscriptions: keep only the newest state.
    Conflate,
    /// Event subscriptions (and anything unknown): never drop; close the connection instead.
    CloseOnOverflow,
}

/// An entry of an outbox, in the order it goes on the wire.
pub enum Entry {
    /// A protocol frame (ack, pong, error, complete, keep-alive).
    Frame(Utf8Bytes),
    /// A subscription's `next`/`data` frame.
    Op {
        op: u64,
        frame: Utf8Bytes,
    },
    /// A WebSocket ping (liveness for clients that do not answer protocol pings).
    Ping,
    Close(u16, &'static str),
}

impl Entry {
    fn bytes(&self) -> usize {
        match self {
            Entry::Frame(frame) | Entry::Op { frame, .. } => frame.len(),
            Entry::Ping | Entry::Close(..) => 0,
        }
    }
}

#[derive(Default)]
struct OutboxInner {
    queue: VecDeque<Entry>,
    /// Bytes of the frames in `queue`.
    bytes: usize,
    /// Frames and bytes queued per operation (by generation); only operations with frames
    /// queued.
    per_op: Vec<(u64, u32, usize)>,
    /// A close is queued: nothing more is accepted.
    closing: bool,
    /// The close is for a slow consumer.
    slow: bool,
    /// Operations that ended on their own (`id`, generation), for the connection to forget.
    ended: Vec<(String, u64)>,
}

/// A connection's outgoing queue, shared by its operations and drained by its writer.
#[derive(Default)]
pub struct Outbox {
    inner: Mutex<OutboxInner>,
    /// Where the bytes queued on every connection are summed (`scoreline_ws_queued_bytes`).
    metrics: Arc<Metrics>,
    /// Wakes the writer.
    notify: Notify,
    /// Wakes operations waiting for room.
    drained: Notify,
    /// Wakes the connection loop when a close is queued.
    closing: Notify,
    /// Wakes the connection loop when an operation ended on its own.
    ended: Notify,
}

/// The result of queueing a subscription frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Replaced an older state of the same subscription.
    Conflated,
    /// The connection is closing (now or already).
    Closed,
}

impl OutboxInner {
    /// Frames and bytes of operation `op` queued now.
    fn queued(&self, op: u64) -> (u32, usize) {
        self.per_op
            .iter()
            .find(|(o, _, _)| *o == op)
            .map_or((0, 0), |(_, n, b)| (*n, *b))
    }

    /// Whether one more frame of `len` bytes would take the connection over its bounds (a
    /// first frame is always taken, however large).
    fn connection_full(&self, len: usize) -> bool {
        !self.queue.is_empty()
            && (self.queue.len() >= CONNECTION_QUEUE || self.bytes + len > CONNECTION_QUEUE_BYTES)
    }
}

impl Outbox {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self {
            metrics,
            ..Self::default()
        }
    }

    fn lock(&self) -> MutexGuard<'_, OutboxInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count_bytes(&self, delta: i64) {
        self.metrics
            .queued_bytes
            .fetch_add(delta, Ordering::Relaxed);
    }

    /// Queues a protocol frame. False when the connection is closing.
    pub fn push_frame(&self, frame: Utf8Bytes) -> bool {
        self.push_entry(Entry::Frame(frame))
    }

    /// Queues a WebSocket ping.
    pub fn push_ping(&self) -> bool {
        self.push_entry(Entry::Ping)
    }

    fn push_entry(&self, entry: Entry) -> bool {
        let mut inner = self.lock();
        if inner.closing {
            return false;
        }
        let len = entry.bytes();
        if inner.connection_full(len) {
            self.close_slow(&mut inner);
            drop(inner);
            self.wake_closed();
            return false;
        }
        inner.queue.push_back(entry);
        inner.bytes += len;
        drop(inner);
        self.count_bytes(len as i64);
        self.notify.notify_one();
        true
    }

    /// Queues a subscription frame under the subscription's policy.
    pub fn push_op(&self, op: u64, policy: Policy, frame: Utf8Bytes, metrics: &Metrics) -> Pushed {
        let mut inner = self.lock();
        if inner.closing {
            return Pushed::Closed;
        }
        let len = frame.len();
        let (frames, bytes) = inner.queued(op);
        if frames >= SUBSCRIPTION_QUEUE || (frames > 0 && bytes + len > SUBSCRIPTION_QUEUE_BYTES) {
            match policy {
                Policy::Conflate => {
                    // The newest queued frame of this subscription takes the newer state; the
                    // order of its states on the wire still rises.
                    let replaced = inner.queue.iter_mut().rev().find_map(|e| match e {
                        Entry::Op { op: o, frame } if *o == op => Some(frame),
                        _ => None,
                    });
                    if let Some(slot) = replaced {
                        let old = std::mem::replace(slot, frame).len();
                        inner.bytes = inner.bytes + len - old;
                        if let Some(entry) = inner.per_op.iter_mut().find(|(o, _, _)| *o == op) {
                            entry.2 = entry.2 + len - old;
                        }
                        drop(inner);
                        self.count_bytes(len as i64 - old as i64);
                    }
                    Metrics::inc(&metrics.frames_conflated);
                    return Pushed::Conflated;
                }
                Policy::CloseOnOverflow => {
                    self.close_slow(&mut inner);
                    drop(inner);
                    Metrics::inc(&metrics.slow_consumer_closes);
                    self.wake_closed();
                    return Pushed::Closed;
                }
            }
        }
        if inner.connection_full(len) {
            self.close_slow(&mut inner);
            drop(inner);
            Metrics::inc(&metrics.slow_consumer_closes);
            self.wake_closed();
            return Pushed::Closed;
        }
        match inner.per_op.iter_mut().find(|(o, _, _)| *o == op) {
            Some((_, n, b)) => {
                *n += 1;
                *b += len;
            }
            None => inner.per_op.push((op, 1, len)),
        }
        inner.queue.push_back(Entry::Op { op, frame });
        inner.bytes += len;
        drop(inner);
        self.count_bytes(len as i64);
        Metrics::inc(&metrics.frames_queued);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues a subscription frame, waiting while the subscription has a full queue: for
    /// replays and per-subscriber executions, which catch up from the store when they lag.
    pub async fn push_op_waiting(&self, op: u64, frame: Utf8Bytes, metrics: &Metrics) -> Pushed {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let inner = self.lock();
                if inner.closing {
                    return Pushed::Closed;
                }
                let (frames, bytes) = inner.queued(op);
                if frames == 0
                    || (frames < SUBSCRIPTION_QUEUE
                        && bytes + frame.len() <= SUBSCRIPTION_QUEUE_BYTES)
                {
                    drop(inner);
                    return self.push_op(op, Policy::CloseOnOverflow, frame, metrics);
                }
            }
            drained.await;
        }
    }

    /// A client that does not read: what is queued is dropped and the close goes first.
    fn close_slow(&self, inner: &mut OutboxInner) {
        inner.queue.clear();
        inner.per_op.clear();
        self.count_bytes(-(inner.bytes as i64));
        inner.bytes = 0;
        let (code, reason) = SLOW_CONSUMER_CLOSE;
        inner.queue.push_back(Entry::Close(code, reason));
        inner.closing = true;
        inner.slow = true;
    }

    /// Queues a close after what is already queued; later pushes are refused.
    pub fn close(&self, code: u16, reason: &'static str) {
        let mut inner = self.lock();
        if inner.closing {
            return;
        }
        inner.closing = true;
        inner.queue.push_back(Entry::Close(code, reason));
        drop(inner);
        self.wake_closed();
    }

    /// After a close is queued: the writer sends it, waiting operations give up.
    fn wake_closed(&self) {
        self.notify.notify_one();
        self.drained.notify_waiters();
        self.closing.notify_one();
    }

    /// Reports an operation that ended on its own, before its last frame is queued, so the
    /// client may reuse its id (or its slot) as soon as it sees that frame.
    pub fn op_ended(&self, id: String, op: u64) {
        self.lock().ended.push((id, op));
        self.ended.notify_one();
    }

    /// Operations that ended on their own since the last call.
    pub fn take_ended(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.lock().ended)
    }

    /// Completes when an operation may have ended on its own.
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// Completes once a close has been queued (by anyone).
    pub async fn closed(&self) {
        self.closing.notified().await;
    }

    /// Whether the connection is being closed for not reading fast enough.
    pub fn is_slow_close(&self) -> bool {
        self.lock().slow
    }

    /// Moves what is queued into `batch`, waiting until there is something.
    pub async fn next_batch(&self, batch: &mut Vec<Entry>) {
        loop {
            let took = {
                let mut guard = self.lock();
                let inner = &mut *guard;
                batch.extend(inner.queue.drain(..));
                inner.per_op.clear();
                let bytes = std::mem::take(&mut inner.bytes);
                drop(guard);
                self.count_bytes(-(bytes as i64));
                !batch.is_empty()
            };
            if took {
                self.drained.notify_waiters();
                return;
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_string())
    }

    fn drain(outbox: &Outbox) -> Vec<String> {
        let mut inner = outbox.lock();
        inner.per_op.clear();
        inner.bytes = 0;
        inner
            .queue
            .drain(..)
            .map(|e| match e {
                Entry::Frame(f) | Entry::Op { frame: f, .. } => f.to_string(),
                Entry::Ping => "ping".into(),
                Entry::Close(code, _) => format!("close {code}"),
            })
            .collect()
    }

    #[test]
    fn a_state_subscription_that_falls_behind_keeps_its_newest_state() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for v in 1..=1000 {
            outbox.push_op(7, Policy::Conflate, text(&format!("v{v}")), &metrics);
        }
        let frames = drain(&outbox);
        assert_eq!(frames.len(), SUBSCRIPTION_QUEUE as usize);
        assert_eq!(frames.last().unwrap(), "v1000");
        assert_eq!(frames[0], "v1");
        let numbers: Vec<u32> = frames.iter().map(|f| f[1..].parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    #[test]
    fn an_event_subscription_that_overflows_closes_the_connection_with_1013() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for s in 0..SUBSCRIPTION_QUEUE {
            assert_eq!(
                outbox.push_op(1, Policy::CloseOnOverflow, text(&s.to_string()), &metrics),
                Pushed::Queued
            );
        }
        assert_eq!(
            outbox.push_op(1, Policy::CloseOnOverflow, text("x"), &metrics),
            Pushed::Closed
        );
        assert_eq!(drain(&outbox), vec!["close 1013".to_string()]);
        assert!(!outbox.push_frame(text("late")));
    }

    #[test]
    fn subscriptions_on_one_connection_have_separate_bounds() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for s in 0..SUBSCRIPTION_QUEUE {
            outbox.push_op(1, Policy::CloseOnOverflow, text(&s.to_string()), &metrics);
        }
        assert_eq!(
            outbox.push_op(2, Policy::CloseOnOverflow, text("other"), &metrics),
            Pushed::Queued
        );
    }

    #[test]
    fn large_frames_hit_the_byte_bound_before_the_frame_bound() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        let big = "x".repeat(300 * 1024);
        // A state subscription keeps conflating within its bytes.
        for v in 0..10 {
            outbox.push_op(1, Policy::Conflate, text(&format!("{v}{big}")), &metrics);
        }
        let frames = drain(&outbox);
        assert!(
            frames.len() * big.len() <= SUBSCRIPTION_QUEUE_BYTES,
            "{}",
            frames.len()
        );
        assert!(frames.last().unwrap().starts_with('9'));
        // An event subscription over its bytes closes the connection.
        let outbox = Outbox::default();
        let mut pushed = Vec::new();
        for _ in 0..10 {
            pushed.push(outbox.push_op(2, Policy::CloseOnOverflow, text(&big), &metrics));
            if pushed.last() == Some(&Pushed::Closed) {
                break;
            }
        }
        assert_eq!(pushed.last(), Some(&Pushed::Closed));
        assert!(pushed.len() <= SUBSCRIPTION_QUEUE_BYTES / big.len() + 1);
    }

    #[test]
    fn a_connection_is_closed_when_its_queue_passes_its_bytes_and_the_gauge_returns_to_zero() {
        let metrics = Arc::new(Metrics::default());
        let outbox = Outbox::new(metrics.clone());
        let big = text(&"y".repeat(512 * 1024));
        let mut op = 0;
        let closed = loop {
            op += 1;
            // Many subscriptions, each within its own bytes.
            match outbox.push_op(op, Policy::Conflate, big.clone(), &metrics) {
                Pushed::Closed => break op,
                _ => assert!(op < 100, "never closed"),
            }
        };
        assert!(closed as usize <= CONNECTION_QUEUE_BYTES / big.len() + 1);
        assert_eq!(metrics.queued_bytes.load(Ordering::Relaxed), 0);
        assert!(outbox.is_slow_close());
    }

    #[test]
    fn one_frame_larger_than_the_bounds_is_still_delivered() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        let huge = "z".repeat(CONNECTION_QUEUE_BYTES + 1);
        assert_eq!(
            outbox.push_op(1, Policy::CloseOnOverflow, text(&huge), &metrics),
            Pushed::Queued
        );
    }
}
