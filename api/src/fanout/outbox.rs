//! The per-connection outbox: one ordered queue per WebSocket connection, drained by its writer
//! task, with a bound per subscription and one per connection. The bounds and what happens at
//! them (conflate a state, close on an event) live here so that every producer, shared or
//! per-subscriber, gets the same slow-consumer policy.

use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::Notify;

use crate::metrics::Metrics;

/// Close code for a connection whose event subscription overflowed its queue: 1013 "Try Again
/// Later", which clients (the graphql-ws reference client included) treat as retryable.
pub const SLOW_CONSUMER_CLOSE: (u16, &str) = (1013, "slow consumer: resubscribe with afterSeq");
/// Frames one subscription may have queued before its policy applies: a burst of changes (a
/// stream-handler batch after an outage) fits, a client that stopped reading does not.
pub const SUBSCRIPTION_QUEUE: u32 = 256;
/// Frames a connection may have queued in all; beyond it the client is not reading at all.
const CONNECTION_QUEUE: usize = 4096;

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

#[derive(Default)]
struct OutboxInner {
    queue: VecDeque<Entry>,
    /// Frames queued per operation (by generation); only operations with frames queued.
    per_op: Vec<(u64, u32)>,
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
    /// Frames of operation `op` queued now.
    fn queued(&self, op: u64) -> u32 {
        self.per_op
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, n)| *n)
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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
        if inner.queue.len() >= CONNECTION_QUEUE {
            Self::close_slow(&mut inner);
            drop(inner);
            self.wake_closed();
            return false;
        }
        inner.queue.push_back(entry);
        drop(inner);
        self.notify.notify_one();
        true
    }

    /// Queues a subscription frame under the subscription's policy.
    pub fn push_op(&self, op: u64, policy: Policy, frame: Utf8Bytes, metrics: &Metrics) -> Pushed {
        let mut inner = self.lock();
        if inner.closing {
            return Pushed::Closed;
        }
        if inner.queued(op) >= SUBSCRIPTION_QUEUE {
            match policy {
                Policy::Conflate => {
                    // The newest queued frame of this subscription takes the newer state; the
                    // order of its states on the wire still rises.
                    if let Some(slot) = inner.queue.iter_mut().rev().find_map(|e| match e {
                        Entry::Op { op: o, frame } if *o == op => Some(frame),
                        _ => None,
                    }) {
                        *slot = frame;
                    }
                    Metrics::inc(&metrics.frames_conflated);
                    return Pushed::Conflated;
                }
                Policy::CloseOnOverflow => {
                    Self::close_slow(&mut inner);
                    drop(inner);
                    Metrics::inc(&metrics.slow_consumer_closes);
                    self.wake_closed();
                    return Pushed::Closed;
                }
            }
        }
        if inner.queue.len() >= CONNECTION_QUEUE {
            Self::close_slow(&mut inner);
            drop(inner);
            Metrics::inc(&metrics.slow_consumer_closes);
            self.wake_closed();
            return Pushed::Closed;
        }
        match inner.per_op.iter_mut().find(|(o, _)| *o == op) {
            Some((_, n)) => *n += 1,
            None => inner.per_op.push((op, 1)),
        }
        inner.queue.push_back(Entry::Op { op, frame });
        drop(inner);
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
                if inner.queued(op) < SUBSCRIPTION_QUEUE {
                    drop(inner);
                    return self.push_op(op, Policy::CloseOnOverflow, frame, metrics);
                }
            }
            drained.await;
        }
    }

    /// A client that does not read: what is queued is dropped and the close goes first.
    fn close_slow(inner: &mut OutboxInner) {
        inner.queue.clear();
        inner.per_op.clear();
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
}
