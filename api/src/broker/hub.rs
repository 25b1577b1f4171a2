//! The local topic hub: the one place this process keeps its topics and their subscribers.
//! Brokers only carry messages to it (the memory broker straight from `publish`, the Redis
//! broker from its subscriber connection), as centrifuge keeps its Hub apart from its Broker.
//!
//! A match topic is one bounded broadcast channel that exists only while someone listens; the
//! `All` topic always exists. A subscriber that falls more than the capacity behind sees a
//! `Gap` ([`BrokerSubscription::recv`]). The hub tells its broker when the set of topics
//! changes ([`Hub::changed`]), so a distributed broker can follow it (SUBSCRIBE/UNSUBSCRIBE).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use scoreline_core::{Change, MatchId};
use tokio::sync::{broadcast, Notify};

use super::{BrokerSubscription, Delivery, Topic};

/// How far a subscriber may fall behind its topic before it must resynchronise from the store.
pub const DEFAULT_TOPIC_CAPACITY: usize = 256;

type Topics = HashMap<MatchId, broadcast::Sender<Delivery>>;

pub struct Hub {
    topics: Mutex<Topics>,
    all: broadcast::Sender<Delivery>,
    capacity: usize,
    /// Wakes the broker when a topic was opened or closed, or `All` lost a subscriber.
    changed: Notify,
}

impl Hub {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            topics: Mutex::new(HashMap::new()),
            all: broadcast::channel(capacity).0,
            capacity,
            changed: Notify::new(),
        })
    }

    fn topics(&self) -> MutexGuard<'_, Topics> {
        self.topics.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A subscription to `topic`; the topic opens with its first subscriber and closes with
    /// its last.
    pub fn subscribe(self: &Arc<Self>, topic: Topic) -> BrokerSubscription {
        match topic {
            Topic::All => {
                let receiver = self.all.subscribe();
                self.changed.notify_one();
                BrokerSubscription::new(
                    receiver,
                    Box::new(AllGuard {
                        hub: Arc::downgrade(self),
                    }),
                )
            }
            Topic::Match(id) => {
                let (receiver, opened) = {
                    let mut topics = self.topics();
                    match topics.get(&id) {
                        Some(tx) => (tx.subscribe(), false),
                        None => {
                            let (tx, rx) = broadcast::channel(self.capacity);
                            topics.insert(id.clone(), tx);
                            (rx, true)
                        }
                    }
                };
                if opened {
                    self.changed.notify_one();
                }
                BrokerSubscription::new(
                    receiver,
                    Box::new(TopicGuard {
                        hub: Arc::downgrade(self),
                        id,
                    }),
                )
            }
        }
    }

    /// Delivers changes published in this process: each to its match topic (if open) and to
    /// `All`, in order.
    pub fn publish(&self, changes: &[Arc<Change>]) {
        let topics = self.topics();
        for change in changes {
            if let Some(tx) = topics.get(change.match_id()) {
                let _ = tx.send(Delivery::Change(change.clone()));
            }
            let _ = self.all.send(Delivery::Change(change.clone()));
        }
    }

    /// Delivers to one topic only (a distributed broker routes each message itself).
    pub fn send(&self, topic: &Topic, delivery: Delivery) {
        match topic {
            Topic::All => {
                let _ = self.all.send(delivery);
            }
            Topic::Match(id) => {
                if let Some(tx) = self.topics().get(id) {
                    let _ = tx.send(delivery);
                }
            }
        }
    }

    /// The match topics open now, and whether `All` has subscribers.
    pub fn wanted(&self) -> (HashSet<MatchId>, bool) {
        let channels = self.topics().keys().cloned().collect();
        (channels, self.all.receiver_count() > 0)
    }

    /// Match topics open now.
    #[cfg(test)]
    fn open_topics(&self) -> usize {
        self.topics().len()
    }

    /// Resolves when the set of topics may have changed since the last call.
    pub async fn changed(&self) {
        self.changed.notified().await;
    }
}

/// Closes a match topic when its last subscriber leaves.
struct TopicGuard {
    hub: Weak<Hub>,
    id: MatchId,
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        let Some(hub) = self.hub.upgrade() else {
            return;
        };
        let closed = {
            let mut topics = hub.topics();
            // `BrokerSubscription` drops its receiver before its guard (field order), so a
            // topic nobody listens to has no receivers left here.
            if topics
                .get(&self.id)
                .is_some_and(|tx| tx.receiver_count() == 0)
            {
                topics.remove(&self.id);
                true
            } else {
                false
            }
        };
        if closed {
            hub.changed.notify_one();
        }
    }
}

/// Tells the broker when an `All` subscriber leaves (the last one lets it stop listening).
struct AllGuard {
    hub: Weak<Hub>,
}

impl Drop for AllGuard {
    fn drop(&mut self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.changed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::Received;

    fn event(match_id: &str, seq: u32) -> Arc<Change> {
        Arc::new(Change::Event(
            serde_json::from_value(serde_json::json!({
                "matchId": match_id, "seq": seq, "type": "GOAL", "side": "HOME", "player": null,
                "points": 1, "period": 1, "clockSeconds": 60, "description": null,
                "createdAt": "2026-11-22T15:01:00Z"
            }))
            .expect("a match event"),
        ))
    }

    fn id(s: &str) -> MatchId {
        MatchId::parse(s).unwrap()
    }

    #[tokio::test]
    async fn a_change_reaches_its_match_topic_and_all_but_no_other_match() {
        let hub = Hub::new(8);
        let mut a = hub.subscribe(Topic::Match(id("a")));
        let mut b = hub.subscribe(Topic::Match(id("b")));
        let mut all = hub.subscribe(Topic::All);
        hub.publish(&[event("a", 1)]);
        assert!(matches!(a.recv().await, Received::Change(c) if c.match_id() == &id("a")));
        assert!(matches!(all.recv().await, Received::Change(_)));
        hub.publish(&[event("b", 1)]);
        assert!(matches!(b.recv().await, Received::Change(c) if c.match_id() == &id("b")));
    }

    #[tokio::test]
    async fn a_topic_closes_with_its_last_subscriber_and_the_broker_is_told() {
        let hub = Hub::new(8);
        let first = hub.subscribe(Topic::Match(id("a")));
        let second = hub.subscribe(Topic::Match(id("a")));
        hub.changed().await;
        assert_eq!(hub.wanted(), ([id("a")].into_iter().collect(), false));
        drop(first);
        assert_eq!(hub.open_topics(), 1);
        drop(second);
        assert_eq!(hub.open_topics(), 0);
        hub.changed().await;
    }

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_the_capacity_sees_a_gap() {
        let hub = Hub::new(2);
        let mut sub = hub.subscribe(Topic::Match(id("a")));
        hub.publish(&[event("a", 1), event("a", 2), event("a", 3)]);
        assert!(matches!(sub.recv().await, Received::Gap));
    }

    #[tokio::test]
    async fn a_routed_delivery_goes_to_its_topic_only() {
        let hub = Hub::new(8);
        let mut a = hub.subscribe(Topic::Match(id("a")));
        let mut all = hub.subscribe(Topic::All);
        hub.send(&Topic::All, Delivery::Gap);
        assert!(matches!(all.recv().await, Received::Gap));
        hub.send(&Topic::Match(id("a")), Delivery::Change(event("a", 1)));
        assert!(matches!(a.recv().await, Received::Change(_)));
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(50), all.recv())
                .await
                .is_err(),
            "All got a delivery routed to a match topic"
        );
    }
}
