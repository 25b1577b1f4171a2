//! The Redis sink (`SINK=redis`): publishes change batches straight to the Redis pub/sub
//! channels the API instances subscribe to, for deployments where the stream-handler reaches
//! Redis directly (e.g. a Lambda in the same VPC). The API's Redis broker publishes through the
//! same [`RedisPublisher`]; the channels and payloads themselves are defined once, in
//! `scoreline_core::change` ([`channel_messages`]).

use std::time::{Duration, Instant};

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use scoreline_core::change::channel_messages;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::{Change, ChangeBatch};
use tokio::sync::Mutex;

use crate::retry::{retry, Failure, RetryPolicy};

/// Makes ring rustls's process-wide crypto provider unless one is set: with `rediss://` the
/// Redis client asks rustls for the default, and a binary that links two providers (the API has
/// aws-lc-rs too, through the AWS SDK) has none until one is chosen.
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Why a publish attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisPublishError {
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
}

/// Publishes to one Redis server over one multiplexed connection, opened on first use and
/// opened again after a failure. Built once per process.
pub struct RedisPublisher {
    client: redis::Client,
    connection: Mutex<Option<MultiplexedConnection>>,
    policy: RetryPolicy,
}

impl RedisPublisher {
    /// Parses the URL (`redis://[user:password@]host:port[/db]`); connects on first use. Errors
    /// never repeat the URL, which may hold a password.
    pub fn new(url: &str, policy: RetryPolicy) -> Result<Self, RedisPublishError> {
        install_tls_provider();
        Ok(Self {
            client: redis::Client::open(url)?,
            connection: Mutex::new(None),
            policy,
        })
    }

    /// The client, for opening other connections (the API's subscriber connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The open connection, or a new one within `timeout`.
    async fn connection(
        &self,
        timeout: Duration,
    ) -> Result<MultiplexedConnection, RedisPublishError> {
        let mut slot = self.connection.lock().await;
        if let Some(connection) = slot.as_ref() {
            return Ok(connection.clone());
        }
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let connection = tokio::time::timeout(
            timeout,
            self.client
                .get_multiplexed_async_connection_with_config(&config),
        )
        .await
        .map_err(|_| RedisPublishError::Timeout(timeout))??;
        *slot = Some(connection.clone());
        Ok(connection)
    }

    /// Runs `pipe` once within `timeout`; a failure drops the connection so the next attempt
    /// opens a fresh one.
    async fn run(
        &self,
        pipe: &redis::Pipeline,
        timeout: Duration,
    ) -> Result<(), RedisPublishError> {
        let result = async {
            let mut connection = self.connection(timeout).await?;
            tokio::time::timeout(timeout, pipe.query_async::<()>(&mut connection))
                .await
                .map_err(|_| RedisPublishError::Timeout(timeout))?
                .map_err(RedisPublishError::from)
        }
        .await;
        if result.is_err() {
            *self.connection.lock().await = None;
        }
        result
    }

    /// Publishes `changes` in one round trip, once, failing within `timeout`: the API's broker
    /// calls this and reports a failure upstream (503), so the stream-handler retries.
    pub async fn publish_once<'a>(
        &self,
        changes: impl IntoIterator<Item = &'a Change>,
        timeout: Duration,
    ) -> Result<(), RedisPublishError> {
        let messages = channel_messages(changes);
        if messages.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (channel, payload) in &messages {
            pipe.publish(channel, payload.as_slice()).ignore();
        }
        self.run(&pipe, timeout).await
    }

    /// Whether Redis answers a PING within `timeout`.
    pub async fn ping(&self, timeout: Duration) -> Result<(), RedisPublishError> {
        let mut pipe = redis::pipe();
        pipe.cmd("PING").ignore();
        self.run(&pipe, timeout).await
    }
}

#[async_trait]
impl Publisher for RedisPublisher {
    /// Publishes with retries within the deadline, like the HTTP sink.
    async fn publish(
        &self,
        batch: ChangeBatch,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        let changes = &batch.changes;
        retry(
            &self.policy,
            deadline,
            "publishing to Redis",
            |_, timeout| async move {
                self.publish_once(changes, timeout)
                    .await
                    .map_err(Failure::Transient)
            },
        )
        .await
        .map_err(|e| PublishError::Unavailable(Box::new(e)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let error = RedisPublisher::new("nope://user:hunter2@host", RetryPolicy::default())
            .err()
            .expect("an error");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
