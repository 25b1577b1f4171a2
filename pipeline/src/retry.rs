//! The one retry mechanism of the workspace: [`Backoff`] (exponential, full jitter, capped) and
//! [`retry`], which repeats an attempt until it succeeds, fails for good, runs out of attempts
//! or would overrun the caller's deadline. The deadline comes with each call (a Lambda
//! invocation has its own), never from shared state.
//!
//! Full jitter (a uniform wait between zero and the exponential ceiling) keeps many clients
//! that failed together from retrying together.

use std::future::Future;
use std::time::{Duration, Instant};

use rand::Rng;

/// Exponential backoff with full jitter: attempt `n` (from 0) waits a uniform time between
/// zero and `min(base * 2^n, max)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The first ceiling; it doubles per attempt.
    pub base: Duration,
    /// The highest ceiling.
    pub max: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, max: Duration) -> Self {
        Self { base, max }
    }

    /// The exponential ceiling of attempt `attempt` (0 is the first retry).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        self.base
            .saturating_mul(1u32 << attempt.min(16))
            .min(self.max)
    }

    /// A wait drawn uniformly from zero to [`Self::ceiling`].
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling))
    }

    /// Sleeps for [`Self::delay`].
    pub async fn wait(&self, attempt: u32) {
        tokio::time::sleep(self.delay(attempt)).await;
    }
}

/// How often and how long to try.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most time one attempt may take.
    pub attempt_timeout: Duration,
    pub backoff: Backoff,
    /// Most attempts in all (at least one is made).
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    /// The publish sinks' defaults: 2 s per attempt, waits from 50 ms doubling to 2 s, 8
    /// attempts.
    fn default() -> Self {
        Self {
            attempt_timeout: Duration::from_secs(2),
            backoff: Backoff::new(Duration::from_millis(50), Duration::from_secs(2)),
            max_attempts: 8,
        }
    }
}

impl RetryPolicy {
    /// Tries until it works: for loops that must not move past what they could not deliver
    /// (a stream shard, the embedded change feed).
    pub fn forever(backoff: Backoff, attempt_timeout: Duration) -> Self {
        Self {
            attempt_timeout,
            backoff,
            max_attempts: u32::MAX,
        }
    }
}

/// What one attempt's failure means for the next.
#[derive(Debug)]
pub enum Failure<E> {
    /// Passing (a timeout, a 503): try again.
    Transient(E),
    /// Will not get better by retrying (a 401, a refused batch): stop now.
    Permanent(E),
}

/// Why [`retry`] gave up.
#[derive(Debug, thiserror::Error)]
pub enum RetryError<E: std::error::Error + 'static> {
    /// An attempt failed for good.
    #[error(transparent)]
    Permanent(E),
    /// Attempts or time ran out; `last` is the last attempt's error, if any ran.
    #[error("gave up after {attempts} attempt(s){}", match .last { Some(e) => format!(": {e}"), None => String::new() })]
    Exhausted {
        attempts: u32,
        #[source]
        last: Option<E>,
    },
}

/// Runs `attempt(number, timeout)` until it succeeds or gives up. `timeout` is the policy's
/// attempt timeout, shortened so that no attempt runs past `deadline`; a retry whose wait and
/// attempt could not finish before the deadline is not started. Each transient failure is
/// logged once at `warn` with `what`.
pub async fn retry<T, E, F, Fut>(
    policy: &RetryPolicy,
    deadline: Option<Instant>,
    what: &str,
    mut attempt: F,
) -> Result<T, RetryError<E>>
where
    E: std::error::Error + 'static,
    F: FnMut(u32, Duration) -> Fut,
    Fut: Future<Output = Result<T, Failure<E>>>,
{
    let mut last = None;
    let mut made = 0u32;
    while made < policy.max_attempts.max(1) {
        if made > 0 {
            let wait = policy.backoff.delay(made - 1);
            if deadline.is_some_and(|d| Instant::now() + wait + policy.attempt_timeout > d) {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        // The first attempt too must end by the deadline: it gets at most the time left.
        let timeout = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break;
                }
                left.min(policy.attempt_timeout)
            }
            None => policy.attempt_timeout,
        };
        made += 1;
        match attempt(made, timeout).await {
            Ok(value) => return Ok(value),
            Err(Failure::Permanent(error)) => return Err(RetryError::Permanent(error)),
            Err(Failure::Transient(error)) => {
                tracing::warn!(attempt = made, error = %error, "{what} failed");
                last = Some(error);
            }
        }
    }
    Err(RetryError::Exhausted {
        attempts: made,
        last,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    struct Oops(&'static str);

    fn quick(max_attempts: u32) -> RetryPolicy {
        RetryPolicy {
            attempt_timeout: Duration::from_secs(1),
            backoff: Backoff::new(Duration::from_millis(1), Duration::from_millis(4)),
            max_attempts,
        }
    }

    #[test]
    fn waits_are_jittered_under_an_exponential_ceiling_that_stops_at_the_maximum() {
        let backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(5));
        assert_eq!(backoff.ceiling(0), Duration::from_millis(100));
        assert_eq!(backoff.ceiling(3), Duration::from_millis(800));
        assert_eq!(backoff.ceiling(40), Duration::from_secs(5));
        for attempt in 0..40 {
            assert!(backoff.delay(attempt) <= backoff.ceiling(attempt));
        }
        // Full jitter: waits spread over the range instead of all clients retrying together.
        let waits: HashSet<Duration> = (0..50).map(|_| backoff.delay(10)).collect();
        assert!(waits.len() > 10, "{waits:?}");
    }

    #[tokio::test]
    async fn transient_failures_are_retried_until_one_attempt_succeeds() {
        let calls = AtomicU32::new(0);
        let result = retry(&quick(8), None, "test", |n, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            async move {
                if n < 3 {
                    Err(Failure::Transient(Oops("busy")))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(result.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_permanent_failure_stops_at_once() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(&quick(8), None, "test", |_, _| {
            calls.fetch_add(1, Ordering::SeqCst);
            async { Err(Failure::Permanent(Oops("refused"))) }
        })
        .await;
        assert!(matches!(
            result,
            Err(RetryError::Permanent(Oops("refused")))
        ));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn attempts_run_out_with_the_last_error_as_the_source() {
        let result: Result<(), _> = retry(&quick(4), None, "test", |_, _| async {
            Err(Failure::Transient(Oops("down")))
        })
        .await;
        let error = result.unwrap_err();
        assert!(matches!(
            &error,
            RetryError::Exhausted {
                attempts: 4,
                last: Some(_)
            }
        ));
        assert!(std::error::Error::source(&error).is_some());
        assert_eq!(error.to_string(), "gave up after 4 attempt(s): down");
    }

    #[tokio::test]
    async fn a_passed_deadline_starts_no_attempt() {
        let result: Result<(), RetryError<Oops>> =
            retry(&quick(4), Some(Instant::now()), "test", |_, _| async {
                unreachable!("no attempt may start after the deadline")
            })
            .await;
        assert!(matches!(
            result,
            Err(RetryError::Exhausted {
                attempts: 0,
                last: None
            })
        ));
    }

    #[tokio::test]
    async fn an_attempt_gets_no_more_than_the_time_left_before_the_deadline() {
        let policy = RetryPolicy {
            attempt_timeout: Duration::from_secs(30),
            ..quick(1)
        };
        let deadline = Instant::now() + Duration::from_millis(200);
        retry(&policy, Some(deadline), "test", |_, timeout| async move {
            assert!(timeout <= Duration::from_millis(200), "{timeout:?}");
            Ok::<_, Failure<Oops>>(())
        })
        .await
        .unwrap();
    }
}
