//! The HTTP publisher against a fake of the API's `POST /internal/publish` that verifies the
//! signature with `scoreline_core::publish::verify`, as the API does.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::fake_api::{Answer, FakeApi};
use common::records::fixture_event;
use scoreline_core::publish::{PublishError, Publisher};
use scoreline_core::ChangeBatch;
use scoreline_pipeline::decode_batch;
use scoreline_pipeline::retry::{Backoff, RetryPolicy};
use scoreline_pipeline::sink::HttpPublisher;
use std::time::Instant;
use tracing_subscriber::layer::SubscriberExt;

const SECRET: &str = "publish-secret-for-tests";
const WAIT: Duration = Duration::from_secs(10);

/// Quick retries, so tests do not wait on production backoffs.
fn quick(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        attempt_timeout: Duration::from_secs(5),
        backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(20)),
        max_attempts,
    }
}

/// The changes of the transaction fixture: an event and its match.
fn a_batch() -> ChangeBatch {
    let event = fixture_event("event_and_match_transaction.json");
    let changes = decode_batch(&event.records)
        .changes
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    ChangeBatch::new(changes)
}

/// Counts the retry helper's "publish attempt failed" warnings: one per failed attempt.
struct CountFailedAttempts(Arc<AtomicUsize>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for CountFailedAttempts {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target() == "scoreline_pipeline::retry" {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
}

#[tokio::test]
async fn a_publish_retries_through_503s_and_the_api_gets_the_signed_batch_once() {
    let api = FakeApi::start(SECRET).await;
    api.script([Answer::Status(503); 3]);
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    let batch = a_batch();
    publisher
        .publish(batch.clone(), None)
        .await
        .expect("delivered");
    assert_eq!(api.requests(), 4, "three 503s, then 204");
    assert_eq!(api.refused_signatures(), 0, "every attempt verifies");
    assert_eq!(api.next_accepted(WAIT).await, batch);
    assert_eq!(api.try_accepted().await, None, "accepted once");
}

#[tokio::test]
async fn every_attempt_and_every_offer_of_the_same_batch_carries_a_new_signature() {
    let api = FakeApi::start(SECRET).await;
    // Quick retries: all four attempts fall within a second or two.
    api.script([Answer::Status(503); 3]);
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    publisher.publish(a_batch(), None).await.expect("delivered");
    // The caller offers the same batch again (at-least-once), at once.
    publisher.publish(a_batch(), None).await.expect("delivered");
    let signatures = api.signatures();
    assert_eq!(signatures.len(), 5);
    let distinct: std::collections::HashSet<&String> = signatures.iter().collect();
    assert_eq!(
        distinct.len(),
        5,
        "the API refuses a signature it saw: {signatures:?}"
    );
    assert_eq!(api.refused_signatures(), 0, "every attempt verifies");
}

#[tokio::test]
async fn a_409_for_a_signature_seen_before_is_retried_signed_anew() {
    let api = FakeApi::start(SECRET).await;
    api.script([Answer::Status(409)]);
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    publisher.publish(a_batch(), None).await.expect("delivered");
    assert_eq!(api.requests(), 2);
    let signatures = api.signatures();
    assert_ne!(signatures[0], signatures[1]);
}

#[tokio::test]
async fn a_429_is_retried_like_a_503() {
    let api = FakeApi::start(SECRET).await;
    api.script([Answer::Status(429), Answer::Status(502)]);
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    publisher.publish(a_batch(), None).await.expect("delivered");
    assert_eq!(api.requests(), 3);
}

#[tokio::test]
async fn a_401_for_a_wrong_secret_is_refused_without_a_retry() {
    let api = FakeApi::start(SECRET).await;
    let publisher = HttpPublisher::new(api.url(), "not-the-secret", quick(8)).unwrap();
    let result = publisher.publish(a_batch(), None).await;
    assert!(
        matches!(&result, Err(PublishError::Refused(e)) if e.to_string().contains("401")),
        "{result:?}"
    );
    assert_eq!(api.requests(), 1);
    assert_eq!(api.refused_signatures(), 1);
}

#[tokio::test]
async fn another_4xx_is_refused_without_a_retry() {
    let api = FakeApi::start(SECRET).await;
    api.script([Answer::Status(413)]);
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    let result = publisher.publish(a_batch(), None).await;
    assert!(
        matches!(&result, Err(PublishError::Refused(e)) if e.to_string().contains("413")),
        "{result:?}"
    );
    assert_eq!(api.requests(), 1);
}

#[tokio::test]
async fn without_a_deadline_a_failing_api_gets_exactly_the_configured_attempts() {
    let api = FakeApi::start(SECRET).await;
    api.set_default(Answer::Status(503));
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(3)).unwrap();
    let result = publisher.publish(a_batch(), None).await;
    assert!(
        matches!(&result, Err(PublishError::Unavailable(e)) if e.to_string().contains("503")),
        "{result:?}"
    );
    assert_eq!(api.requests(), 3);
}

#[tokio::test]
async fn retries_stop_with_unavailable_when_the_next_one_could_not_finish_before_the_deadline() {
    let api = FakeApi::start(SECRET).await;
    api.set_default(Answer::Status(503));
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_millis(300),
        backoff: Backoff::new(Duration::from_millis(20), Duration::from_millis(100)),
        max_attempts: 1_000,
    };
    let publisher = HttpPublisher::new(api.url(), SECRET, policy.clone()).unwrap();
    let budget = Duration::from_millis(1_500);
    let start = Instant::now();
    let result = publisher.publish(a_batch(), Some(start + budget)).await;
    let elapsed = start.elapsed();
    assert!(
        matches!(&result, Err(PublishError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        elapsed < budget + Duration::from_secs(2),
        "gave up after {elapsed:?}"
    );
    // It only stops when one more attempt could not fit, so it used the time it had.
    assert!(
        elapsed + policy.attempt_timeout + policy.backoff.max >= budget,
        "gave up early, after {elapsed:?}"
    );
    assert!(api.requests() >= 2, "retried before giving up");
    assert!(
        api.requests() < 1_000,
        "stopped by the deadline, not the attempts"
    );
}

#[tokio::test]
async fn an_api_that_never_answers_cannot_hold_a_publish_past_its_deadline() {
    let api = FakeApi::start(SECRET).await;
    api.set_default(Answer::Hang);
    let policy = RetryPolicy {
        attempt_timeout: Duration::from_secs(10),
        ..quick(8)
    };
    let publisher = HttpPublisher::new(api.url(), SECRET, policy).unwrap();
    let budget = Duration::from_millis(500);
    let start = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(20),
        publisher.publish(a_batch(), Some(start + budget)),
    )
    .await
    .expect("the publish ends on its own");
    let elapsed = start.elapsed();
    assert!(
        matches!(&result, Err(PublishError::Unavailable(_))),
        "{result:?}"
    );
    assert!(
        elapsed < budget + Duration::from_secs(2),
        "a 10 s request timeout outlived a 0.5 s deadline: gave up after {elapsed:?}"
    );
}

#[tokio::test]
async fn a_publish_whose_deadline_has_passed_is_not_attempted() {
    let api = FakeApi::start(SECRET).await;
    let publisher = HttpPublisher::new(api.url(), SECRET, quick(8)).unwrap();
    let result = publisher.publish(a_batch(), Some(Instant::now())).await;
    assert!(
        matches!(&result, Err(PublishError::Unavailable(_))),
        "{result:?}"
    );
    assert_eq!(api.requests(), 0);
    // Without a deadline, the next publish goes through.
    publisher.publish(a_batch(), None).await.expect("delivered");
    assert_eq!(api.requests(), 1);
}

#[tokio::test]
async fn an_unreachable_api_ends_unavailable_after_the_configured_attempts() {
    let failed_attempts = Arc::new(AtomicUsize::new(0));
    let subscriber =
        tracing_subscriber::registry().with(CountFailedAttempts(failed_attempts.clone()));
    let _guard = tracing::subscriber::set_default(subscriber);
    // A port nobody listens on any more.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/internal/publish");
    let publisher = HttpPublisher::new(url, SECRET, quick(4)).unwrap();
    let result = publisher.publish(a_batch(), None).await;
    assert!(
        matches!(&result, Err(PublishError::Unavailable(e)) if e.to_string().contains("request failed")),
        "{result:?}"
    );
    assert_eq!(failed_attempts.load(Ordering::SeqCst), 4);
}
