//! The in-process broker: one bounded broadcast channel per match topic that has subscribers,
//! plus one for `All`. Topics exist only while someone listens.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use async_trait::async_trait;
use scoreline_core::{Change, MatchId};
use tokio::sync::broadcast;

use super::{Broker, BrokerError, BrokerSubscription, Delivery, Topic};

/// How far a subscriber may fall behind its topic before it must resynchronise from the store.
pub const DEFAULT_TOPIC_CAPACITY: usize = 256;

type Topics = Mutex<HashMap<MatchId, broadcast::Sender<Delivery>>>;

pub struct MemoryBroker {
    topics: Arc<Topics>,
    all: broadcast::Sender<Delivery>,
    capacity: usize,
}

impl MemoryBroker {
    pub fn new(capacity: usize) -> Self {
        let (all, _) = broadcast::channel(capacity);
        Self {
            topics: Arc::new(Mutex::new(HashMap::new())),
            all,
            capacity,
        }
    }

    /// Topics currently held open by subscribers (for metrics and tests).
    pub fn open_topics(&self) -> usize {
        lock(&self.topics).len()
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new(DEFAULT_TOPIC_CAPACITY)
    }
}

fn lock(
    topics: &Topics,
) -> std::sync::MutexGuard<'_, HashMap<MatchId, broadcast::Sender<Delivery>>> {
    topics.lock().unwrap_or_else(|p| p.into_inner())
}

/// Removes a match topic when its last subscriber leaves.
struct TopicGuard {
    topics: Weak<Topics>,
    id: MatchId,
}

impl Drop for TopicGuard {
    fn drop(&mut self) {
        let Some(topics) = self.topics.upgrade() else {
            return;
        };
        let mut topics = lock(&topics);
        // `BrokerSubscription` drops its receiver before its guard (field order), so a topic
        // nobody listens to has no receivers left here.
        if topics
            .get(&self.id)
            .is_some_and(|tx| tx.receiver_count() == 0)
        {
            topics.remove(&self.id);
        }
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, changes: &[Arc<Change>]) -> Result<(), BrokerError> {
        let topics = lock(&self.topics);
        for change in changes {
            if let Some(tx) = topics.get(change.match_id()) {
                let _ = tx.send(Delivery::Change(change.clone()));
            }
            let _ = self.all.send(Delivery::Change(change.clone()));
        }
        Ok(())
    }

    fn subscribe(&self, topic: Topic) -> BrokerSubscription {
        match topic {
            Topic::All => BrokerSubscription::new(self.all.subscribe(), Box::new(())),
            Topic::Match(id) => {
                let mut topics = lock(&self.topics);
                let receiver = topics
                    .entry(id.clone())
                    .or_insert_with(|| broadcast::channel(self.capacity).0)
                    .subscribe();
                BrokerSubscription::new(
                    receiver,
                    Box::new(TopicGuard {
                        topics: Arc::downgrade(&self.topics),
                        id,
                    }),
                )
            }
        }
    }

    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}
