//! The publishers that carry change batches across the network, and [`Sink`], the one a
//! process is configured with. Both retry through [`crate::retry`] within the deadline each
//! publish is given.
//!
//! # Layout
//! - `http`: signed `POST /internal/publish` to the API (`SINK=http`).
//! - `redis`: Redis pub/sub, read by every API instance with `BROKER=redis` (`SINK=redis`,
//!   cargo feature `redis`).

pub mod http;
#[cfg(feature = "redis")]
pub mod redis;

use std::time::Instant;

use async_trait::async_trait;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::ChangeBatch;

pub use http::{HttpPublishError, HttpPublisher};
#[cfg(feature = "redis")]
pub use redis::{RedisPublishError, RedisPublisher};

/// The configured sink: built once per process and reused by every invocation.
pub enum Sink {
    Http(HttpPublisher),
    // Boxed: the Redis client is large.
    #[cfg(feature = "redis")]
    Redis(Box<RedisPublisher>),
}

#[async_trait]
impl Publisher for Sink {
    async fn publish(
        &self,
        batch: ChangeBatch,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        match self {
            Sink::Http(p) => p.publish(batch, deadline).await,
            #[cfg(feature = "redis")]
            Sink::Redis(p) => p.publish(batch, deadline).await,
        }
    }
}
