//! The Redis sink (`SINK=redis`): publishes change batches straight to the Redis pub/sub
//! channels the API instances subscribe to, for deployments where the stream-handler reaches
//! Redis directly (e.g. a Lambda in the same VPC). The API's Redis broker publishes through the
//! same [`RedisPublisher`], so there is one implementation of the channels and the payloads.
//!
//! Channels: one per match, [`match_channel`] (`scoreline:m:{matchId}`). A message carries the
//! changes of one match from one batch, in order, as a [`ChangeBatch`] JSON with its format
//! version `v` ([`scoreline_core::change::encode_changes`]). Subscribers to every match use the
//! pattern [`ALL_PATTERN`], so each change is published once.

use std::time::Duration;

use async_trait::async_trait;
use redis::aio::MultiplexedConnection;
use scoreline_core::change::encode_changes;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::{Change, ChangeBatch, MatchId};
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::sink::RetryPolicy;

/// Prefix of every Scoreline channel.
pub const CHANNEL_PREFIX: &str = "scoreline:m:";
/// The pattern matching every match channel.
pub const ALL_PATTERN: &str = "scoreline:m:*";

/// The channel of one match.
pub fn match_channel(id: &MatchId) -> String {
    format!("{CHANNEL_PREFIX}{}", id.as_str())
}

/// The match a channel name belongs to, if it is a Scoreline match channel.
pub fn channel_match(channel: &str) -> Option<MatchId> {
    MatchId::parse(channel.strip_prefix(CHANNEL_PREFIX)?).ok()
}

/// One message per match, in the order each match first appears; each match's changes keep
/// their order.
pub fn messages<'a>(changes: impl IntoIterator<Item = &'a Change>) -> Vec<(String, Vec<u8>)> {
    let mut groups: Vec<(&MatchId, Vec<&Change>)> = Vec::new();
    for change in changes {
        let id = change.match_id();
        match groups.iter_mut().find(|(g, _)| *g == id) {
            Some((_, list)) => list.push(change),
            None => groups.push((id, vec![change])),
        }
    }
    groups
        .into_iter()
        .map(|(id, list)| (match_channel(id), encode_changes(list)))
        .collect()
}

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
    /// Set per Lambda invocation: no attempt starts that could not finish before it.
    deadline: std::sync::Mutex<Option<Instant>>,
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
            deadline: std::sync::Mutex::new(None),
        })
    }

    /// The client, for opening other connections (the API's subscriber connection).
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
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
        let messages = messages(changes);
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
    /// Publishes with retries (exponential backoff, full jitter) within the deadline, like the
    /// HTTP sink.
    async fn publish(&self, batch: ChangeBatch) -> Result<(), PublishError> {
        let mut last_error = String::from("no attempt could start before the deadline");
        for attempt in 0..self.policy.max_attempts.max(1) {
            if attempt > 0 {
                let wait = self.policy.backoff(attempt - 1);
                if let Some(deadline) = self.deadline() {
                    if Instant::now() + wait + self.policy.request_timeout > deadline {
                        break;
                    }
                }
                tokio::time::sleep(wait).await;
            }
            let timeout = match self.deadline() {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    left.min(self.policy.request_timeout)
                }
                None => self.policy.request_timeout,
            };
            match self.publish_once(&batch.changes, timeout).await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(attempt, error = %e, "publishing to Redis failed");
                    last_error = e.to_string();
                }
            }
        }
        Err(PublishError::Unavailable(last_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use scoreline_core::change::decode_changes;

    fn event(match_id: &str, seq: u32) -> Change {
        Change::Event(
            serde_json::from_value(serde_json::json!({
                "matchId": match_id, "seq": seq, "type": "GOAL", "side": "HOME", "player": null,
                "points": 1, "period": 1, "clockSeconds": 60, "description": null,
                "createdAt": "2026-11-22T15:01:00Z"
            }))
            .expect("a match event"),
        )
    }

    #[test]
    fn a_batch_becomes_one_message_per_match_keeping_each_matchs_order() {
        let changes = [event("a", 1), event("b", 1), event("a", 2), event("b", 2)];
        let out = messages(&changes);
        let channels: Vec<&str> = out.iter().map(|(c, _)| c.as_str()).collect();
        assert_eq!(channels, ["scoreline:m:a", "scoreline:m:b"]);
        let a = decode_changes(&out[0].1).unwrap();
        assert_eq!(a.changes, vec![event("a", 1), event("a", 2)]);
    }

    #[test]
    fn a_match_channel_names_its_match() {
        let id = MatchId::parse("m-42").unwrap();
        assert_eq!(channel_match(&match_channel(&id)), Some(id));
        assert_eq!(channel_match("other:m-42"), None);
    }

    #[test]
    fn a_bad_url_is_refused_without_repeating_it() {
        let error = RedisPublisher::new("nope://user:hunter2@host", RetryPolicy::default())
            .err()
            .expect("an error");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
