//! The broker port: fan-out of changes to the subscriptions of this process. A topic per match
//! carries its state changes and timeline events; the `All` topic carries every change for
//! filtered "any match" subscriptions.
//!
//! Delivery is bounded per subscriber: a subscriber that falls more than the topic's capacity
//! behind gets [`Received::Gap`] and resynchronises from the store (newest state for state
//! subscriptions, the missing `seq` range for event subscriptions), so nothing is lost and no
//! backlog grows without bound. A distributed broker reports a `Gap` the same way when it may
//! have missed messages (e.g. after reconnecting to Redis).
//!
//! # Layout
//! - `hub`: the local topics and their subscribers, once for every broker.
//! - `memory`: publishing straight into the hub (one process).
//! - `redis`: publishing through Redis pub/sub, and feeding the hub from it (many instances).

pub mod hub;
pub mod memory;
pub mod redis;

use std::sync::Arc;

use async_trait::async_trait;
use scoreline_core::{BoxError, Change, MatchId};
use tokio::sync::broadcast;

pub use memory::MemoryBroker;
pub use redis::{RedisBroker, RedisBrokerConfig};

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    Match(MatchId),
    All,
}

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("the broker is unavailable: {0}")]
    Unavailable(#[source] BoxError),
}

/// What a topic carries.
#[derive(Clone, Debug)]
pub enum Delivery {
    Change(Arc<Change>),
    /// Messages may have been lost before this point (the broker reconnected): subscribers
    /// resynchronise from the store.
    Gap,
}

/// What a subscriber receives next.
#[derive(Debug)]
pub enum Received {
    Change(Arc<Change>),
    /// Something may be missing before the next change: read the store to catch up.
    Gap,
    /// The broker is gone (the server is stopping).
    Closed,
}

/// A subscription to one topic. Dropping it releases the topic when no one else needs it.
pub struct BrokerSubscription {
    receiver: broadcast::Receiver<Delivery>,
    /// Releases the topic on drop (declared after the receiver, so dropped after it).
    _guard: Box<dyn Send + Sync>,
}

impl BrokerSubscription {
    pub fn new(receiver: broadcast::Receiver<Delivery>, guard: Box<dyn Send + Sync>) -> Self {
        Self {
            receiver,
            _guard: guard,
        }
    }

    /// The next delivery; falling behind the topic's capacity is a `Gap`.
    pub async fn recv(&mut self) -> Received {
        match self.receiver.recv().await {
            Ok(Delivery::Change(change)) => Received::Change(change),
            Ok(Delivery::Gap) | Err(broadcast::error::RecvError::Lagged(_)) => Received::Gap,
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

#[async_trait]
pub trait Broker: Send + Sync + 'static {
    /// Fans changes out to every subscriber of their topics, in order.
    async fn publish(&self, changes: &[Arc<Change>]) -> Result<(), BrokerError>;
    fn subscribe(&self, topic: Topic) -> BrokerSubscription;
    async fn check(&self) -> Result<(), BrokerError>;
    /// Whether every change published anywhere reaches this process's hub now (false while a
    /// distributed broker's subscriber connection is down). What caches changing data relies
    /// on it.
    fn hears_changes(&self) -> bool {
        true
    }
}
