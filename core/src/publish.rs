//! The publisher port: where decoded change batches go. The API's intake (dedupe, then fan out
//! through the broker) implements it in process; the stream-handler's HTTP and Redis sinks
//! implement it across the network.

use async_trait::async_trait;

use crate::change::ChangeBatch;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the publish target is unavailable: {0}")]
    Unavailable(String),
    #[error("the publish target refused the batch: {0}")]
    Refused(String),
}

#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Delivers a batch; returns only once the target has accepted it.
    async fn publish(&self, batch: ChangeBatch) -> Result<(), PublishError>;
}
