//! The HTTP sink: posts change batches to the API's `POST /internal/publish`, signed with the
//! shared publish secret, with a timeout per request and retries ([`crate::retry`]) within the
//! caller's deadline, so a Lambda invocation ends in time.
//!
//! The API refuses an exact replay of a signed request (409), so no two requests of this
//! publisher carry the same signature: every attempt is signed anew, and an attempt that would
//! sign the same body with the same timestamp (a retry within the second, or the same batch
//! offered again by the caller) takes the next second instead.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use scoreline_core::publish::{sign, PublishError, Publisher, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use scoreline_core::{ChangeBatch, Secret};

use crate::retry::{retry, Failure, RetryError, RetryPolicy};

/// Why one request did not deliver the batch.
#[derive(Debug, thiserror::Error)]
pub enum HttpPublishError {
    #[error("request failed: {0}")]
    Request(#[source] reqwest::Error),
    #[error("the API answered {0}")]
    Status(reqwest::StatusCode),
}

/// Publishes to one API endpoint. Built once per process: the HTTP client keeps its connections.
pub struct HttpPublisher {
    client: reqwest::Client,
    url: String,
    secret: Secret,
    policy: RetryPolicy,
    /// The timestamp each body was last signed with (by a hash of the body), for the bodies
    /// signed this second or later: the only ones a new signature could repeat.
    signed: Mutex<HashMap<u64, i64>>,
}

impl HttpPublisher {
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<Secret>,
        policy: RetryPolicy,
    ) -> Result<Self, HttpPublishError> {
        let client = reqwest::Client::builder()
            .timeout(policy.attempt_timeout)
            .connect_timeout(policy.attempt_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .map_err(HttpPublishError::Request)?;
        Ok(Self {
            client,
            url: url.into(),
            secret: secret.into(),
            policy,
            signed: Mutex::new(HashMap::new()),
        })
    }

    /// The timestamp to sign `body` with now: the current second, or one past the last
    /// timestamp this body was signed with if that is not in the past. A timestamp can run a
    /// few seconds ahead only while the same body is retried faster than once a second,
    /// which the backoff soon stops; the API accepts 300 s either way.
    fn timestamp_for(&self, body: &[u8]) -> i64 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or_default();
        let mut hasher = DefaultHasher::new();
        body.hash(&mut hasher);
        let key = hasher.finish();
        let mut signed = self.signed.lock().unwrap_or_else(PoisonError::into_inner);
        signed.retain(|_, last| *last >= now);
        let timestamp = match signed.get(&key) {
            Some(last) => last.saturating_add(1),
            None => now,
        };
        signed.insert(key, timestamp);
        timestamp
    }

    async fn attempt(
        &self,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), Failure<HttpPublishError>> {
        let now = self.timestamp_for(body);
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sign(self.secret.expose(), now, body))
            .body(body.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Failure::Transient(HttpPublishError::Request(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // 5xx and 429 are passing; so is 409, a signature the API saw before (the same batch
        // offered again, by another process with this secret too), which the next attempt
        // signs anew. Other 4xx (a wrong secret, a refused batch) will not get better by
        // retrying now.
        let error = HttpPublishError::Status(status);
        if status.is_server_error()
            || status == reqwest::StatusCode::TOO_MANY_REQUESTS
            || status == reqwest::StatusCode::CONFLICT
        {
            Err(Failure::Transient(error))
        } else {
            Err(Failure::Permanent(error))
        }
    }
}

#[async_trait]
impl Publisher for HttpPublisher {
    async fn publish(
        &self,
        batch: ChangeBatch,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError> {
        let body = serde_json::to_vec(&batch).map_err(|e| PublishError::Refused(Box::new(e)))?;
        retry(&self.policy, deadline, "publish attempt", |_, timeout| {
            self.attempt(&body, timeout)
        })
        .await
        .map_err(|error| match error {
            RetryError::Permanent(e) => PublishError::Refused(Box::new(e)),
            exhausted => PublishError::Unavailable(Box::new(exhausted)),
        })
    }
}
