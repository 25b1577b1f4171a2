//! `POST /internal/publish` end to end: a correctly signed change batch reaches the WebSocket
//! subscribers of its match; requests without a valid, fresh signature, of an unknown wire
//! version or with a body that is not a change batch are refused and deliver nothing; a replay
//! inside the signature window is refused with 409; during a rotation the previous secret is
//! accepted too; a server without `PUBLISH_SECRET` has no such endpoint.
//!
//! The signatures here are computed from the contract (DESIGN §3: `v1=<hex HMAC-SHA256(secret,
//! timestamp + "." + body)>`), not with core's `sign`, so a change to both sides that breaks the
//! contract still fails.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use scoreline_core::model::MatchEvent;
use scoreline_core::{Change, ChangeBatch, EventType, Match, Side};
use scoreline_tests::{Seed, TestApp, WsClient, PUBLISH_SECRET, TRANSPORT_WS};
use serde_json::{json, Value};
use sha2::Sha256;

const MATCH_UPDATED: &str = "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version score { home away } } }";

const MATCH_EVENTS: &str = "subscription($id: ID!, $after: Int) { matchEvents(matchId: $id, afterSeq: $after) { matchId seq type side points } }";

/// How long "nothing more arrives" is watched for.
const QUIET: Duration = Duration::from_millis(300);

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs() as i64
}

/// The signature header value the contract defines.
fn contract_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// One request to the publish endpoint, headers as given (none, some, wrong ones).
#[derive(Clone)]
struct PublishRequest {
    timestamp: Option<String>,
    signature: Option<String>,
    body: Vec<u8>,
}

impl PublishRequest {
    /// Signed with the server's secret, now.
    fn signed(body: Vec<u8>) -> Self {
        Self::signed_at(body, now())
    }

    /// Signed with the server's secret at `timestamp`.
    fn signed_at(body: Vec<u8>, timestamp: i64) -> Self {
        Self::signed_with(PUBLISH_SECRET, body, timestamp)
    }

    fn signed_with(secret: &str, body: Vec<u8>, timestamp: i64) -> Self {
        let timestamp = timestamp.to_string();
        Self {
            signature: Some(contract_signature(secret, &timestamp, &body)),
            timestamp: Some(timestamp),
            body,
        }
    }

    /// Sends it; returns the status code.
    async fn send(&self, app: &TestApp) -> u16 {
        self.response(app).await.status().as_u16()
    }

    /// Sends it; returns the whole response.
    async fn response(&self, app: &TestApp) -> reqwest::Response {
        let mut request = app
            .http
            .post(app.publish_url())
            .header("content-type", "application/json")
            .body(self.body.clone());
        if let Some(ts) = &self.timestamp {
            request = request.header("X-Scoreline-Timestamp", ts);
        }
        if let Some(sig) = &self.signature {
            request = request.header("X-Scoreline-Signature", sig);
        }
        request.send().await.expect("the server answers")
    }
}

/// A server with publishing on.
async fn publishing_app() -> TestApp {
    TestApp::spawn_with(|config| config.publish_secret = Some(PUBLISH_SECRET.into())).await
}

/// `base` at `version` with a score of `home`–`away`: a state the stream-handler would publish.
fn state(base: &Match, version: u64, home: u32, away: u32) -> Match {
    let mut m = base.clone();
    m.version = version;
    m.score.home = home;
    m.score.away = away;
    m.updated_at = chrono::Utc::now();
    m
}

fn body_of(changes: Vec<Change>) -> Vec<u8> {
    serde_json::to_vec(&ChangeBatch::new(changes)).expect("a batch serializes")
}

/// A signed batch carrying one state of the match.
fn signed_state(m: Match) -> PublishRequest {
    PublishRequest::signed(body_of(vec![Change::Match(Box::new(m))]))
}

/// A live soccer match (stored at version 2) and a subscriber to it past its readiness barrier
/// (`sinceVersion: 0` makes the server send the stored state first).
async fn subscribed(app: &TestApp) -> (Seed, Match, WsClient) {
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    assert_eq!(
        stored.version, 2,
        "seeded LIVE: created, then one status change"
    );
    let mut ws = WsClient::connected(app, TRANSPORT_WS, None).await;
    ws.subscribe("1", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    let first = ws.next_data("1").await;
    assert_eq!(first["matchUpdated"]["version"], 2, "{first}");
    (seed, stored, ws)
}

/// `(version, score)` of a `matchUpdated` payload.
fn version_and_score(data: &Value) -> (i64, Value) {
    let m = &data["matchUpdated"];
    (
        m["version"]
            .as_i64()
            .unwrap_or_else(|| panic!("a version in {data}")),
        m["score"].clone(),
    )
}

async fn assert_nothing_more(ws: &mut WsClient) {
    if let Ok(msg) = ws.recv_within(QUIET).await {
        panic!("expected nothing more, got {msg:?}");
    }
}

#[tokio::test]
async fn a_correctly_signed_batch_is_accepted_with_204_and_reaches_the_subscribers_of_its_match() {
    let app = publishing_app().await;
    let (seed, stored, mut ws) = subscribed(&app).await;
    let mut events = WsClient::connected(&app, TRANSPORT_WS, None).await;
    events
        .subscribe("e", MATCH_EVENTS, json!({"id": seed.match_id, "after": 0}))
        .await;
    let replayed = events.next_data("e").await;
    assert_eq!(
        replayed["matchEvents"]["seq"], 1,
        "the stored STATUS_CHANGE is replayed first: {replayed}"
    );

    let mut next = state(&stored, 3, 1, 0);
    next.last_seq = 2;
    let goal = MatchEvent {
        match_id: stored.id.clone(),
        seq: 2,
        event_type: EventType::Goal,
        side: Some(Side::Home),
        player: None,
        points: 1,
        period: None,
        clock_seconds: None,
        description: None,
        created_at: next.updated_at,
    };
    let request = PublishRequest::signed(body_of(vec![
        Change::Event(goal),
        Change::Match(Box::new(next)),
    ]));
    assert_eq!(request.send(&app).await, 204);

    let data = ws.next_data("1").await;
    assert_eq!(data["matchUpdated"]["id"], seed.match_id.as_str());
    assert_eq!(version_and_score(&data), (3, json!({"home": 1, "away": 0})));
    let event = events.next_data("e").await;
    assert_eq!(
        event["matchEvents"],
        json!({"matchId": seed.match_id, "seq": 2, "type": "GOAL", "side": "HOME", "points": 1})
    );
}

#[tokio::test]
async fn a_request_missing_either_signature_header_is_refused_with_401() {
    let app = publishing_app().await;
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    let good = signed_state(state(&stored, 3, 1, 0));
    let cases = [
        ("no headers", None, None),
        ("no signature", good.timestamp.clone(), None),
        ("no timestamp", None, good.signature.clone()),
    ];
    for (case, timestamp, signature) in cases {
        let request = PublishRequest {
            timestamp,
            signature,
            body: good.body.clone(),
        };
        assert_eq!(request.send(&app).await, 401, "{case}");
    }
}

#[tokio::test]
async fn a_wrong_or_malformed_signature_is_refused_with_401() {
    let app = publishing_app().await;
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    let body = body_of(vec![Change::Match(Box::new(state(&stored, 3, 1, 0)))]);
    let ts = now();
    let good = PublishRequest::signed_at(body.clone(), ts);
    let hex_tag = good
        .signature
        .as_deref()
        .unwrap()
        .strip_prefix("v1=")
        .unwrap()
        .to_string();

    let other_secret = PublishRequest::signed_with("another-secret", body.clone(), ts);
    let mut tampered_body = good.clone();
    tampered_body.body = body_of(vec![Change::Match(Box::new(state(&stored, 3, 9, 9)))]);
    let mut other_timestamp = good.clone();
    other_timestamp.timestamp = Some((ts - 1).to_string());
    let with_signature = |signature: String| PublishRequest {
        signature: Some(signature),
        ..good.clone()
    };
    let cases = [
        ("signed with another secret", other_secret),
        ("body changed after signing", tampered_body),
        ("timestamp changed after signing", other_timestamp),
        ("unknown scheme", with_signature(format!("v2={hex_tag}"))),
        ("no scheme", with_signature(hex_tag.clone())),
        ("not hex", with_signature("v1=not-hex-at-all".into())),
        (
            "truncated",
            with_signature(format!("v1={}", &hex_tag[..32])),
        ),
        ("empty", with_signature(String::new())),
    ];
    for (case, request) in cases {
        assert_eq!(request.send(&app).await, 401, "{case}");
    }
    // The same body with its correct signature is accepted: the refusals above are about the
    // signature, not the batch.
    assert_eq!(good.send(&app).await, 204);
}

#[tokio::test]
async fn a_timestamp_more_than_300_seconds_away_is_refused_with_401_even_when_correctly_signed() {
    let app = publishing_app().await;
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    let body = body_of(vec![Change::Match(Box::new(state(&stored, 3, 1, 0)))]);
    // Offsets from the test's clock, applied right before sending. The server reads its clock
    // later, so a past timestamp only gets older; one ahead gets less ahead as seconds tick,
    // hence a margin on that side.
    for (case, offset) in [
        ("301 s old", -301),
        ("an hour old", -3600),
        ("330 s ahead", 330),
    ] {
        let request = PublishRequest::signed_at(body.clone(), now() + offset);
        assert_eq!(request.send(&app).await, 401, "{case}");
    }
    let mut not_a_number = PublishRequest::signed(body.clone());
    not_a_number.timestamp = Some("yesterday".into());
    not_a_number.signature = Some(contract_signature(PUBLISH_SECRET, "yesterday", &body));
    assert_eq!(not_a_number.send(&app).await, 401, "not a number");
    // Well inside the window (a margin for a slow machine) it is accepted.
    let recent = PublishRequest::signed_at(body, now() - 240);
    assert_eq!(recent.send(&app).await, 204);
}

#[tokio::test]
async fn refused_requests_deliver_nothing_to_subscribers() {
    let app = publishing_app().await;
    let (_seed, stored, mut ws) = subscribed(&app).await;
    // Every refused request carries version 3 with a 9–9 score. Had any of them been fanned
    // out, the subscriber would see 9–9 first, and the accepted 1–0 below would be dropped as
    // not newer.
    let poisoned = Change::Match(Box::new(state(&stored, 3, 9, 9)));
    let body = body_of(vec![poisoned.clone()]);
    let mut unsigned = PublishRequest::signed(body.clone());
    unsigned.signature = None;
    let wrong = PublishRequest::signed_with("another-secret", body.clone(), now());
    let stale = PublishRequest::signed_at(body.clone(), now() - 301);
    let unknown_version = PublishRequest::signed(
        serde_json::to_vec(&ChangeBatch {
            v: 2,
            changes: vec![poisoned],
        })
        .unwrap(),
    );
    let cases = [
        ("unsigned", unsigned, 401),
        ("wrongly signed", wrong, 401),
        ("stale", stale, 401),
        ("unknown wire version", unknown_version, 400),
    ];
    for (case, request, status) in cases {
        assert_eq!(request.send(&app).await, status, "{case}");
    }

    assert_eq!(signed_state(state(&stored, 3, 1, 0)).send(&app).await, 204);
    let data = ws.next_data("1").await;
    assert_eq!(
        version_and_score(&data),
        (3, json!({"home": 1, "away": 0})),
        "the first state the subscriber gets is the accepted one"
    );
    assert_nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_replay_of_the_same_signed_request_inside_the_window_is_refused_with_409() {
    let app = publishing_app().await;
    let (_seed, stored, mut ws) = subscribed(&app).await;
    let request = signed_state(state(&stored, 3, 1, 0));
    assert_eq!(request.send(&app).await, 204);
    assert_eq!(version_and_score(&ws.next_data("1").await).0, 3);

    // The exact same bytes and headers again, still within 300 s.
    assert_eq!(request.send(&app).await, 409);
    assert_eq!(request.send(&app).await, 409);
    assert_eq!(
        app.metric("scoreline_publish_replays_refused_total").await,
        2
    );
    assert_eq!(app.metric("scoreline_publish_replay_entries").await, 1);
    // The same batch signed anew (another timestamp), as the sink retries, is accepted, and
    // dropped as not newer than what went out.
    let resigned = PublishRequest::signed_at(request.body.clone(), now() - 5);
    assert_eq!(resigned.send(&app).await, 204);
    // A newer state afterwards is the very next thing the subscriber gets.
    assert_eq!(signed_state(state(&stored, 4, 2, 0)).send(&app).await, 204);
    assert_eq!(
        version_and_score(&ws.next_data("1").await),
        (4, json!({"home": 2, "away": 0}))
    );
    assert_nothing_more(&mut ws).await;
}

#[tokio::test]
async fn a_full_replay_guard_refuses_new_requests_with_503_and_still_refuses_replays() {
    let app = TestApp::spawn_with(|config| {
        config.publish_secret = Some(PUBLISH_SECRET.into());
        config.publish_replay_capacity = 2;
    })
    .await;
    let empty = |n: u32| format!(r#"{{"v": 1, "changes": []{}}}"#, " ".repeat(n as usize));
    let first = PublishRequest::signed(empty(0).into_bytes());
    assert_eq!(first.send(&app).await, 204);
    assert_eq!(
        PublishRequest::signed(empty(1).into_bytes())
            .send(&app)
            .await,
        204
    );
    let third = PublishRequest::signed(empty(2).into_bytes())
        .response(&app)
        .await;
    assert_eq!(third.status(), 503);
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=601).contains(&retry_after), "{retry_after}");
    assert_eq!(app.metric("scoreline_publish_replay_full_total").await, 1);
    assert_eq!(first.send(&app).await, 409, "a replay is still a replay");
    assert_eq!(app.metric("scoreline_publish_replay_entries").await, 2);
}

#[tokio::test]
async fn timestamps_at_the_extremes_of_i64_are_refused_with_401_even_when_correctly_signed() {
    let app = publishing_app().await;
    let body = br#"{"v": 1, "changes": []}"#.to_vec();
    let mut timestamps = vec![i64::MIN, i64::MIN + 1, i64::MAX, i64::MAX - 1];
    // `now + i64::MIN` is where `(now - ts).abs()` wrapped round to i64::MIN and passed; the
    // server's clock may be a second or two on.
    let now = now();
    timestamps.extend((-2..=3).map(|d| (now + d).wrapping_add(i64::MIN)));
    for ts in timestamps {
        let request = PublishRequest::signed_at(body.clone(), ts);
        assert_eq!(request.send(&app).await, 401, "signed at {ts}");
    }
    assert_eq!(
        PublishRequest::signed(body).send(&app).await,
        204,
        "the same body signed now"
    );
}

#[tokio::test]
async fn during_a_rotation_the_previous_secret_is_accepted_too() {
    const NEW: &str = "the-new-publish-secret-0123456789abcdef";
    let app = TestApp::spawn_with(|config| {
        config.publish_secret = Some(NEW.into());
        config.publish_secret_previous = Some(PUBLISH_SECRET.into());
    })
    .await;
    let body = |n: usize| format!(r#"{{"v": 1, "changes": []{}}}"#, " ".repeat(n)).into_bytes();
    let by_new = PublishRequest::signed_with(NEW, body(0), now());
    let by_previous = PublishRequest::signed_with(PUBLISH_SECRET, body(1), now());
    let by_neither = PublishRequest::signed_with("another-secret", body(2), now());
    assert_eq!(by_new.send(&app).await, 204);
    assert_eq!(by_previous.send(&app).await, 204);
    assert_eq!(by_neither.send(&app).await, 401);
    assert_eq!(
        app.metric("scoreline_publish_previous_secret_total").await,
        1
    );
    // Replays are refused whichever secret signed them.
    assert_eq!(by_previous.send(&app).await, 409);

    // Once the rotation is over, the previous secret is refused.
    let after = TestApp::spawn_with(|config| config.publish_secret = Some(NEW.into())).await;
    let by_previous = PublishRequest::signed_with(PUBLISH_SECRET, body(3), now());
    assert_eq!(by_previous.send(&after).await, 401);
}

#[tokio::test]
async fn a_previous_secret_without_a_current_one_is_a_configuration_error() {
    let mut config = api::Config::for_tests();
    config.publish_secret = None;
    config.publish_secret_previous = Some(PUBLISH_SECRET.into());
    let error = api::Application::build(config)
        .await
        .err()
        .expect("the server refuses to start");
    assert!(
        format!("{error:#}").contains("PUBLISH_SECRET_PREVIOUS"),
        "{error:#}"
    );
}

#[tokio::test]
async fn a_correctly_signed_batch_of_an_unknown_wire_version_is_refused_with_400() {
    let app = publishing_app().await;
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    let change = serde_json::to_value(Change::Match(Box::new(state(&stored, 3, 1, 0)))).unwrap();
    for (case, batch) in [
        ("v 2", json!({"v": 2, "changes": [change]})),
        ("v 0", json!({"v": 0, "changes": [change]})),
        ("no v", json!({"changes": [change]})),
    ] {
        let request = PublishRequest::signed(serde_json::to_vec(&batch).unwrap());
        assert_eq!(request.send(&app).await, 400, "{case}");
    }
    let current =
        PublishRequest::signed(serde_json::to_vec(&json!({"v": 1, "changes": [change]})).unwrap());
    assert_eq!(current.send(&app).await, 204, "the same change as v 1");
}

#[tokio::test]
async fn a_correctly_signed_body_that_is_not_a_change_batch_is_refused_with_400() {
    let app = publishing_app().await;
    let bodies: [(&str, &[u8]); 7] = [
        ("garbage", b"\x00\xffnot json at all"),
        ("empty", b""),
        ("an empty object", b"{}"),
        (
            "changes not a list",
            br#"{"v": 1, "changes": {"kind": "match"}}"#,
        ),
        (
            "an unknown kind of change",
            br#"{"v": 1, "changes": [{"kind": "goal", "data": {}}]}"#,
        ),
        (
            "an incomplete match",
            br#"{"v": 1, "changes": [{"kind": "match", "data": {"id": "m1", "version": 3}}]}"#,
        ),
        ("truncated", br#"{"v": 1, "changes": [{"kind": "ma"#),
    ];
    for (case, body) in bodies {
        let request = PublishRequest::signed(body.to_vec());
        assert_eq!(request.send(&app).await, 400, "{case}");
    }
    let empty_batch = PublishRequest::signed(br#"{"v": 1, "changes": []}"#.to_vec());
    assert_eq!(
        empty_batch.send(&app).await,
        204,
        "an empty batch is a change batch"
    );
}

#[tokio::test]
async fn a_server_without_a_publish_secret_has_no_publish_endpoint() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let stored = app.stored_match(&seed.match_id).await;
    let signed = signed_state(state(&stored, 3, 1, 0));
    assert_eq!(signed.send(&app).await, 404, "correctly signed");
    let unsigned = PublishRequest {
        timestamp: None,
        signature: None,
        body: signed.body.clone(),
    };
    assert_eq!(unsigned.send(&app).await, 404, "unsigned");
}
