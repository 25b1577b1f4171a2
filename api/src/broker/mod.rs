//! The broker port: fan-out of changes to the subscriptions of this process. A topic per match
//! carries its state changes and timeline events; the `All` topic carries every change for
//! filtered "any match" subscriptions.
//!
//! Delivery is bounded per subscriber: a subscriber that falls more than the topic's capacity
//! behind gets `Lagged` and resynchronises from the store (newest state for state
//! subscriptions, the missing `seq` range for event subscriptions), so nothing is lost and no
//! backlog grows without bound.

pub mod memory;

use std::sync::Arc;

use async_trait::async_trait;
use scoreline_core::{Change, MatchId};
use tokio::sync::broadcast;

pub use memory::MemoryBroker;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Match(MatchId),
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(String),
}

/// A subscription to one topic. Dropping it releases the topic when no one else needs it.
pub struct BrokerSubscription {
    pub receiver: broadcast::Receiver<Arc<Change>>,
    /// Releases the topic on drop.
    pub _guard: Box<dyn Send + Sync>,
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Fans changes out to every subscriber of their topics, in order.
    async fn publish(&self, changes: &[Arc<Change>]) -> Result<(), BrokerError>;
    fn subscribe(&self, topic: Topic) -> BrokerSubscription;
    async fn check(&self) -> Result<(), BrokerError>;
}
