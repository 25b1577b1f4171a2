//! The in-process broker: publishing hands changes straight to the local [`Hub`]. One process
//! (the embedded default, or a single instance) needs nothing more.

use std::sync::Arc;

use async_trait::async_trait;
use scoreline_core::Change;

use super::hub::{Hub, DEFAULT_TOPIC_CAPACITY};
use super::{Broker, BrokerError, BrokerSubscription, Topic};

pub struct MemoryBroker {
    hub: Arc<Hub>,
}

impl MemoryBroker {
    pub fn new(capacity: usize) -> Self {
        Self {
            hub: Hub::new(capacity),
        }
    }
}

impl Default for MemoryBroker {
    fn default() -> Self {
        Self::new(DEFAULT_TOPIC_CAPACITY)
    }
}

#[async_trait]
impl Broker for MemoryBroker {
    async fn publish(&self, changes: &[Arc<Change>]) -> Result<(), BrokerError> {
        self.hub.publish(changes);
        Ok(())
    }

    fn subscribe(&self, topic: Topic) -> BrokerSubscription {
        self.hub.subscribe(topic)
    }

    async fn check(&self) -> Result<(), BrokerError> {
        Ok(())
    }
}
