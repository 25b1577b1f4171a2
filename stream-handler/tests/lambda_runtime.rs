//! The real `stream-handler` binary under a Lambda Runtime API emulator, publishing to a fake
//! of the API: what Lambda sees (`batchItemFailures`) and what the API receives.

mod common;

use std::time::Duration;

use common::fake_api::{Answer, FakeApi};
use common::records::{fixture_json, fixture_text};
use common::runtime_api::{FunctionProcess, Outcome, RuntimeApi};
use scoreline_core::Change;
use serde_json::json;

const SECRET: &str = "lambda-publish-secret";
const WAIT: Duration = Duration::from_secs(30);

fn spawn(runtime: &RuntimeApi, api: &FakeApi, max_attempts: u32) -> FunctionProcess {
    FunctionProcess::spawn(
        env!("CARGO_BIN_EXE_stream-handler"),
        &runtime.host(),
        &[
            ("PUBLISH_URL", api.url()),
            ("PUBLISH_SECRET", SECRET.to_string()),
            ("PUBLISH_MAX_ATTEMPTS", max_attempts.to_string()),
            ("PUBLISH_TIMEOUT_MS", "2000".to_string()),
        ],
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")),
    )
}

/// The body of the response to `request_id`; any other outcome fails the test, with the
/// function's log.
async fn response_to(
    runtime: &RuntimeApi,
    function: &FunctionProcess,
    request_id: &str,
) -> serde_json::Value {
    match runtime.next_outcome(WAIT).await {
        Some(Outcome::Response {
            request_id: id,
            body,
        }) if id == request_id => body,
        other => panic!(
            "expected the response to {request_id}, got {other:?}\n--- function log ---\n{}",
            function.log_text()
        ),
    }
}

#[tokio::test]
async fn the_lambda_binary_answers_no_failures_once_delivered_and_names_the_first_record_when_the_api_is_down(
) {
    let runtime = RuntimeApi::start().await;
    let api = FakeApi::start(SECRET).await;
    let mut function = spawn(&runtime, &api, 2);

    // 1. Delivered: no batch item failures, and the API got the signed batch.
    let id = runtime.invoke(fixture_text("interleaved_matches.json"));
    let body = response_to(&runtime, &function, &id).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
    let batch = api.next_accepted(WAIT).await;
    assert_eq!(batch.v, 1);
    assert_eq!(batch.changes.len(), 13);
    assert_eq!(api.refused_signatures(), 0, "the signature verified");
    let first_change = &batch.changes[0];
    assert!(
        matches!(first_change, Change::Event(e) if e.match_id.as_str() == "nba-2026-bos-lal" && e.seq == 2),
        "{first_change:?}"
    );

    // 2. The API is down: the response names the first record, so Lambda retries from it.
    api.set_default(Answer::Status(503));
    let requests_before = api.requests();
    let event = fixture_json("event_and_match_transaction.json");
    let first_sequence = event["Records"][0]["dynamodb"]["SequenceNumber"].clone();
    let id = runtime.invoke(event.to_string());
    let body = response_to(&runtime, &function, &id).await;
    assert_eq!(
        body,
        json!({"batchItemFailures": [{"itemIdentifier": first_sequence}]})
    );
    assert_eq!(
        api.requests() - requests_before,
        2,
        "PUBLISH_MAX_ATTEMPTS attempts"
    );

    // 3. Lambda redelivers the batch once the API is back: delivered.
    api.set_default(Answer::Status(204));
    let id = runtime.invoke(event.to_string());
    let body = response_to(&runtime, &function, &id).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
    let batch = api.next_accepted(WAIT).await;
    assert_eq!(batch.changes.len(), 2);

    assert!(function.is_running(), "the function keeps serving");
}

#[tokio::test]
async fn a_payload_that_is_not_a_dynamodb_stream_event_is_reported_as_an_invocation_error() {
    let runtime = RuntimeApi::start().await;
    let api = FakeApi::start(SECRET).await;
    let mut function = spawn(&runtime, &api, 2);

    let id = runtime.invoke(r#"{"Records": "not a list"}"#);
    match runtime.next_outcome(WAIT).await {
        Some(Outcome::Error {
            request_id,
            error_type,
            body,
        }) => {
            assert_eq!(request_id, id);
            assert_eq!(error_type.as_deref(), Some("unhandled"));
            assert!(body["errorType"].is_string(), "{body}");
            assert!(
                body["errorMessage"]
                    .as_str()
                    .is_some_and(|m| m.contains("deserialize")),
                "{body}"
            );
        }
        other => panic!(
            "expected an invocation error, got {other:?}\n{}",
            function.log_text()
        ),
    }
    assert_eq!(api.requests(), 0);

    // The next invocation is served as usual.
    let id = runtime.invoke(fixture_text("catalogue_team_insert.json"));
    let body = response_to(&runtime, &function, &id).await;
    assert_eq!(body, json!({"batchItemFailures": []}));
    assert_eq!(api.requests(), 0, "a catalogue insert publishes nothing");
    assert!(function.is_running());
}
