//! The HTTP sink: posts change batches to the API's `POST /internal/publish`, signed with the
//! shared publish secret, with a timeout per request and retries with exponential backoff and
//! full jitter, all within a deadline so a Lambda invocation ends in time.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use rand::Rng;
use scoreline_core::publish::{sign, PublishError, Publisher, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use scoreline_core::ChangeBatch;
use tokio::time::Instant;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// First backoff ceiling; doubles per attempt up to `max_backoff`.
    pub base_backoff: Duration,
    pub max_backoff: Duration,
    /// Most attempts per batch.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(2),
            base_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Full jitter: a uniform wait between zero and the exponential ceiling.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base_backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max_backoff);
        let millis = ceiling.as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=millis))
    }
}

/// Publishes to one API endpoint. Built once per process: the HTTP client keeps its connections.
pub struct HttpPublisher {
    client: reqwest::Client,
    url: String,
    secret: String,
    policy: RetryPolicy,
    /// Set per invocation: no attempt starts that could not finish before it.
    deadline: std::sync::Mutex<Option<Instant>>,
}

impl HttpPublisher {
    pub fn new(
        url: impl Into<String>,
        secret: impl Into<String>,
        policy: RetryPolicy,
    ) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(policy.request_timeout)
            .connect_timeout(policy.request_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()?;
        Ok(Self {
            client,
            url: url.into(),
            secret: secret.into(),
            policy,
            deadline: std::sync::Mutex::new(None),
        })
    }

    /// Bounds the retries of the following publishes (the invocation's deadline less a margin).
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner()) = deadline;
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn attempt(&self, body: &[u8], timeout: Duration) -> Result<(), Attempt> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default();
        let response = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, now.to_string())
            .header(SIGNATURE_HEADER, sign(&self.secret, now, body))
            .body(body.to_vec())
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| Attempt::Retry(format!("request failed: {e}")))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        // 5xx and 429 are passing; other 4xx (a wrong secret, a refused batch) will not get
        // better by retrying now.
        if status.is_server_error() || status.as_u16() == 429 {
            Err(Attempt::Retry(format!("the API answered {status}")))
        } else {
            Err(Attempt::Final(format!("the API answered {status}")))
        }
    }
}

enum Attempt {
    Retry(String),
    Final(String),
}

#[async_trait]
impl Publisher for HttpPublisher {
    async fn publish(&self, batch: ChangeBatch) -> Result<(), PublishError> {
        let body = serde_json::to_vec(&batch).map_err(|e| PublishError::Refused(e.to_string()))?;
        let mut last_error = String::new();
        for attempt in 0..self.policy.max_attempts {
            if attempt > 0 {
                let wait = self.policy.backoff(attempt - 1);
                if let Some(deadline) = self.deadline() {
                    if Instant::now() + wait + self.policy.request_timeout > deadline {
                        break;
                    }
                }
                tokio::time::sleep(wait).await;
            }
            // The first attempt too must end by the deadline (a later chunk's first attempt
            // may start close to it): it gets at most the time left.
            let timeout = match self.deadline() {
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        if last_error.is_empty() {
                            last_error = "no time left before the deadline".into();
                        }
                        break;
                    }
                    left.min(self.policy.request_timeout)
                }
                None => self.policy.request_timeout,
            };
            match self.attempt(&body, timeout).await {
                Ok(()) => return Ok(()),
                Err(Attempt::Final(e)) => return Err(PublishError::Refused(e)),
                Err(Attempt::Retry(e)) => {
                    tracing::warn!(attempt, error = %e, "publish attempt failed");
                    last_error = e;
                }
            }
        }
        Err(PublishError::Unavailable(last_error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_stays_under_an_exponential_ceiling() {
        let policy = RetryPolicy::default();
        for attempt in 0..20 {
            let ceiling = policy
                .base_backoff
                .saturating_mul(1u32 << attempt.min(16))
                .min(policy.max_backoff);
            assert!(policy.backoff(attempt) <= ceiling);
        }
    }
}
