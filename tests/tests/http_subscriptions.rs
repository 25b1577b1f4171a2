//! Subscriptions over HTTP streams, end to end with a real HTTP client: graphql-sse (distinct
//! connections mode, `text/event-stream`) and Apollo multipart (`multipart/mixed`), through the
//! same fan-out as WebSocket. Event ids are positions (`version`, `seq`) and `Last-Event-ID`
//! resumes with no gap and no repeat.

use std::time::Duration;

use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS, WAIT};
use serde_json::{json, Value};

const MATCH_UPDATED: &str =
    "subscription($id: ID!) { matchUpdated(id: $id) { id version score { home away } } }";
const MATCH_EVENTS: &str = "subscription($id: ID!) { matchEvents(matchId: $id) { seq type side } }";

/// One Server-Sent Event.
#[derive(Debug, Clone)]
struct Event {
    id: Option<String>,
    event: String,
    data: String,
}

impl Event {
    fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }
}

/// An open HTTP stream read chunk by chunk.
struct HttpStream {
    response: reqwest::Response,
    buffer: String,
    /// Comment lines (heartbeats) seen.
    comments: usize,
    ended: bool,
}

impl HttpStream {
    async fn open(
        app: &TestApp,
        accept: &str,
        query: &str,
        variables: Value,
        last_event_id: Option<&str>,
    ) -> HttpStream {
        let response = request(app, accept, query, variables, last_event_id).await;
        assert_eq!(response.status(), 200, "a stream opens");
        HttpStream {
            response,
            buffer: String::new(),
            comments: 0,
            ended: false,
        }
    }

    /// Reads more of the body; false at its end.
    async fn read(&mut self) -> bool {
        if self.ended {
            return false;
        }
        let chunk = tokio::time::timeout(WAIT, self.response.chunk())
            .await
            .expect("the stream sends something in time")
            .expect("the stream reads");
        match chunk {
            Some(bytes) => {
                self.buffer.push_str(std::str::from_utf8(&bytes).unwrap());
                true
            }
            None => {
                self.ended = true;
                false
            }
        }
    }

    /// The next event (heartbeat comments are counted and skipped); `None` at the end.
    async fn event(&mut self) -> Option<Event> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = Event {
                    id: None,
                    event: "message".into(),
                    data: String::new(),
                };
                let mut fields = false;
                for line in block.lines().filter(|l| !l.is_empty()) {
                    if line.starts_with(':') {
                        self.comments += 1;
                        continue;
                    }
                    let (name, value) = line.split_once(':').unwrap_or((line, ""));
                    let value = value.strip_prefix(' ').unwrap_or(value);
                    fields = true;
                    match name {
                        "id" => event.id = Some(value.to_string()),
                        "event" => event.event = value.to_string(),
                        "data" => event.data.push_str(value),
                        other => panic!("unexpected field {other:?} in {block:?}"),
                    }
                }
                if fields {
                    return Some(event);
                }
            }
            if !self.read().await {
                assert!(
                    self.buffer.trim().is_empty(),
                    "left over: {:?}",
                    self.buffer
                );
                return None;
            }
        }
    }

    /// The next `next` event, failing on anything else.
    async fn next(&mut self) -> Event {
        let event = self.event().await.expect("a next event");
        assert_eq!(event.event, "next", "{event:?}");
        event
    }
}

async fn request(
    app: &TestApp,
    accept: &str,
    query: &str,
    variables: Value,
    last_event_id: Option<&str>,
) -> reqwest::Response {
    let mut builder = app
        .http
        .post(app.url("/graphql"))
        .header("accept", accept)
        .json(&json!({"query": query, "variables": variables}));
    if let Some(id) = last_event_id {
        builder = builder.header("last-event-id", id);
    }
    builder.send().await.expect("the request is sent")
}

/// Waits until the server counts `n` subscribers (the stream has joined the fan-out).
async fn subscribed(app: &TestApp, n: i64) {
    app.wait_for_metric("scoreline_subscriptions", n).await;
}

#[tokio::test]
async fn sse_streams_live_updates_with_the_version_as_event_id() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    assert!(sse.response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    subscribed(&app, 1).await;
    for expected in 3..=5 {
        let version = app.record(&seed.match_id, "FIELD_GOAL", "HOME").await;
        assert_eq!(version, expected);
        let event = sse.next().await;
        assert_eq!(event.id.as_deref(), Some(expected.to_string().as_str()));
        let data = event.json();
        assert_eq!(data["data"]["matchUpdated"]["version"], expected);
        assert_eq!(data["data"]["matchUpdated"]["id"], seed.match_id.as_str());
    }
    // The client going away frees the subscription.
    drop(sse);
    subscribed(&app, 0).await;
    app.wait_for_metric("scoreline_streams", 0).await;
}

#[tokio::test]
async fn sse_and_websocket_subscribers_share_one_execution() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("1", MATCH_UPDATED, json!({"id": seed.match_id}))
        .await;
    subscribed(&app, 2).await;
    assert_eq!(app.metric("scoreline_shared_executions").await, 1);
    let version = app.record(&seed.match_id, "GOAL", "AWAY").await;
    assert_eq!(ws.next_data("1").await["matchUpdated"]["version"], version);
    let event = sse.next().await;
    assert_eq!(event.json()["data"]["matchUpdated"]["version"], version);
    assert_eq!(event.id, Some(version.to_string()));
}

#[tokio::test]
async fn match_events_carry_their_seq_and_last_event_id_resumes_with_no_gap_and_no_repeat() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASKETBALL").await;
    // seq 1 is the STATUS_CHANGE to LIVE, before the subscription.
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_EVENTS,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    subscribed(&app, 1).await;
    app.record(&seed.match_id, "FIELD_GOAL", "HOME").await;
    app.record(&seed.match_id, "FREE_THROW", "AWAY").await;
    let mut last = String::new();
    for seq in [2, 3] {
        let event = sse.next().await;
        assert_eq!(event.id.as_deref(), Some(seq.to_string().as_str()));
        assert_eq!(event.json()["data"]["matchEvents"]["seq"], seq);
        last = event.id.unwrap();
    }
    // The connection drops; events go on meanwhile.
    drop(sse);
    subscribed(&app, 0).await;
    for _ in 0..3 {
        app.record(&seed.match_id, "THREE_POINTER", "HOME").await;
    }
    // Reconnect with the last id received: the missed events, then live ones.
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_EVENTS,
        json!({"id": seed.match_id}),
        Some(&last),
    )
    .await;
    for seq in [4, 5, 6] {
        let event = sse.next().await;
        assert_eq!(event.json()["data"]["matchEvents"]["seq"], seq, "{event:?}");
        assert_eq!(event.id, Some(seq.to_string()));
    }
    subscribed(&app, 1).await;
    app.record(&seed.match_id, "FIELD_GOAL", "AWAY").await;
    let event = sse.next().await;
    assert_eq!(event.json()["data"]["matchEvents"]["seq"], 7, "no repeat");

    // An explicit afterSeq and a Last-Event-ID: the later position wins.
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        "subscription($id: ID!, $after: Int) { matchEvents(matchId: $id, afterSeq: $after) { seq } }",
        json!({"id": seed.match_id, "after": 2}),
        Some("5"),
    )
    .await;
    for seq in [6, 7] {
        assert_eq!(sse.next().await.json()["data"]["matchEvents"]["seq"], seq);
    }
}

#[tokio::test]
async fn last_event_id_on_match_updated_sends_the_newest_state_once_then_live_changes() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("ICE_HOCKEY").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    subscribed(&app, 1).await;
    let v3 = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(sse.next().await.id, Some(v3.to_string()));
    drop(sse);
    subscribed(&app, 0).await;
    app.record(&seed.match_id, "GOAL", "AWAY").await;
    let v5 = app.record(&seed.match_id, "GOAL", "AWAY").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        Some(&v3.to_string()),
    )
    .await;
    let event = sse.next().await;
    assert_eq!(event.id, Some(v5.to_string()), "the newest state first");
    assert_eq!(event.json()["data"]["matchUpdated"]["score"]["away"], 2);
    subscribed(&app, 1).await;
    let v6 = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(sse.next().await.id, Some(v6.to_string()));

    // Already current: nothing is sent until the next change.
    let mut current = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        Some(&v6.to_string()),
    )
    .await;
    subscribed(&app, 2).await;
    let v7 = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(current.next().await.id, Some(v7.to_string()));
}

#[tokio::test]
async fn an_unknown_match_is_a_next_with_not_found_then_complete() {
    let app = TestApp::spawn().await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": "no-such-match"}),
        None,
    )
    .await;
    let event = sse.next().await;
    assert_eq!(
        event.json()["errors"][0]["extensions"]["code"],
        "NOT_FOUND",
        "{event:?}"
    );
    let complete = sse.event().await.expect("complete");
    assert_eq!(complete.event, "complete");
    assert!(sse.event().await.is_none(), "the stream ends");
    subscribed(&app, 0).await;
    app.wait_for_metric("scoreline_streams", 0).await;
}

#[tokio::test]
async fn unparsable_documents_get_400_json_and_invalid_ones_a_streamed_error() {
    let app = TestApp::spawn().await;
    let response = request(&app, "text/event-stream", "subscription {", json!({}), None).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_PARSE_FAILED"
    );

    // graphql-sse streams validation errors (its protocol), multipart answers 400.
    let invalid = "subscription { matchUpdated(id: \"x\") { noSuchField } }";
    let mut sse = HttpStream::open(&app, "text/event-stream", invalid, json!({}), None).await;
    let event = sse.next().await;
    assert_eq!(
        event.json()["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    assert_eq!(sse.event().await.unwrap().event, "complete");
    let response = request(
        &app,
        "multipart/mixed;subscriptionSpec=\"1.0\", application/json",
        invalid,
        json!({}),
        None,
    )
    .await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );

    // A Last-Event-ID that is no position is refused.
    let response = request(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": "x"}),
        Some("not-a-number"),
    )
    .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn a_query_over_sse_is_one_next_then_complete() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        "query($id: ID!) { match(id: $id) { version } }",
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    let event = sse.next().await;
    assert_eq!(event.json()["data"]["match"]["version"], 2);
    assert_eq!(sse.event().await.unwrap().event, "complete");
    assert!(sse.event().await.is_none());
}

#[tokio::test]
async fn http_streams_count_against_the_stream_caps_of_websockets() {
    let app = TestApp::spawn_with(|c| c.max_streams_per_address = 2).await;
    let seed = app.live_match("SOCCER").await;
    let _ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    let _sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    let refused = request(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"],
        "TOO_MANY_CONNECTIONS"
    );
}

#[tokio::test]
async fn http_streams_count_against_the_address_rate() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_address = 2).await;
    let mut statuses = Vec::new();
    for _ in 0..10 {
        let response = request(
            &app,
            "text/event-stream",
            MATCH_UPDATED,
            json!({"id": "no-such-match"}),
            None,
        )
        .await;
        statuses.push(response.status().as_u16());
    }
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[tokio::test]
async fn sse_sends_a_heartbeat_comment_every_keepalive_interval() {
    let app = TestApp::spawn_with(|c| c.ws_keepalive_secs = 1).await;
    let seed = app.live_match("SOCCER").await;
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    tokio::time::timeout(Duration::from_secs(10), async {
        while sse.comments < 2 {
            sse.read().await;
            // Parse what arrived: only comments are expected.
            let _ = tokio::time::timeout(Duration::from_millis(1), sse.event()).await;
        }
    })
    .await
    .expect("two heartbeats within 10 s");
}

/// The parts of a multipart body read so far: the JSON of each part.
fn multipart_parts(body: &str) -> (Vec<Value>, bool) {
    assert!(body.starts_with("\r\n--graphql\r\n"), "{body:?}");
    let closed = body.ends_with("\r\n--graphql--\r\n");
    let mut parts = Vec::new();
    for part in body.split("\r\n--graphql") {
        let part = part.trim_start_matches("--");
        let Some((headers, json)) = part.split_once("\r\n\r\n") else {
            continue;
        };
        assert!(
            headers
                .to_ascii_lowercase()
                .contains("content-type: application/json"),
            "{headers:?}"
        );
        parts.push(serde_json::from_str(json).unwrap_or_else(|e| panic!("{json:?}: {e}")));
    }
    (parts, closed)
}

#[tokio::test]
async fn multipart_streams_payload_parts_with_crlf_delimiters() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("BASEBALL").await;
    let mut stream = HttpStream::open(
        &app,
        "multipart/mixed;boundary=\"graphql\";subscriptionSpec=\"1.0\",application/json",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    let content_type = stream.response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("multipart/mixed"),
        "{content_type}"
    );
    assert!(
        content_type.contains("boundary=\"graphql\""),
        "{content_type}"
    );
    subscribed(&app, 1).await;
    let version = app.record(&seed.match_id, "RUN", "HOME").await;
    let payload = loop {
        stream.read().await;
        let (parts, _) = multipart_parts(&stream.buffer);
        if let Some(p) = parts.iter().find(|p| p.get("payload").is_some()) {
            break p.clone();
        }
    };
    assert_eq!(
        payload["payload"]["data"]["matchUpdated"]["version"],
        version
    );

    // A refusal is a payload with the errors, then the close delimiter.
    let mut refused = HttpStream::open(
        &app,
        "multipart/mixed;subscriptionSpec=1.0",
        MATCH_UPDATED,
        json!({"id": "no-such-match"}),
        None,
    )
    .await;
    while refused.read().await {}
    let (parts, closed) = multipart_parts(&refused.buffer);
    assert!(closed, "{:?}", refused.buffer);
    assert_eq!(
        parts[0]["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn multipart_sends_an_empty_heartbeat_part_every_keepalive_interval() {
    let app = TestApp::spawn_with(|c| c.ws_keepalive_secs = 1).await;
    let seed = app.live_match("SOCCER").await;
    let mut stream = HttpStream::open(
        &app,
        "multipart/mixed;subscriptionSpec=\"1.0\",application/json",
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    // Apollo's clients read `{}` parts as heartbeats; two arrive with no change to the match.
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            assert!(stream.read().await, "the stream ended: {:?}", stream.buffer);
            let (parts, closed) = multipart_parts(&stream.buffer);
            assert!(!closed, "{:?}", stream.buffer);
            if parts.iter().filter(|p| **p == json!({})).count() >= 2 {
                break;
            }
        }
    })
    .await
    .expect("two heartbeat parts within 10 s");
}

#[tokio::test]
async fn single_connection_mode_multiplexes_operations_on_one_reserved_stream() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    // Reserve, then connect the stream with the token.
    let reserved = app.http.put(app.url("/graphql")).send().await.unwrap();
    assert_eq!(reserved.status(), 201);
    let token = reserved.text().await.unwrap();
    assert!(token.len() >= 32, "{token}");
    let response = app
        .http
        .get(app.url("/graphql"))
        .header("accept", "text/event-stream")
        .header("x-graphql-event-stream-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut stream = HttpStream {
        response,
        buffer: String::new(),
        comments: 0,
        ended: false,
    };
    // A second stream on the same token is refused.
    let second = app
        .http
        .get(app.url(&format!("/graphql?token={token}")))
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 409);

    let operation = |id: &str, query: &str, variables: Value| {
        app.http
            .post(app.url("/graphql"))
            .header("x-graphql-event-stream-token", &token)
            .json(&json!({"query": query, "variables": variables,
                          "extensions": {"operationId": id}}))
            .send()
    };
    let accepted = operation("a", MATCH_UPDATED, json!({"id": seed.match_id}))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let accepted = operation("b", MATCH_EVENTS, json!({"id": seed.match_id}))
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let missing = operation("c", MATCH_UPDATED, json!({"id": "no-such-match"}))
        .await
        .unwrap();
    assert_eq!(missing.status(), 202);
    // Documents that do not parse or validate are refused at once.
    let invalid = operation("d", "subscription { nope }", json!({}))
        .await
        .unwrap();
    assert_eq!(invalid.status(), 400);

    // The refusal of "c": next with the errors, then complete, both naming it.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let event = stream.event().await.expect("an event");
        seen.push((event.event.clone(), event.json()));
    }
    assert_eq!(seen[0].0, "next");
    assert_eq!(seen[0].1["id"], "c");
    assert_eq!(
        seen[0].1["payload"]["errors"][0]["extensions"]["code"],
        "NOT_FOUND"
    );
    assert_eq!(seen[1].0, "complete");
    assert_eq!(seen[1].1, json!({"id": "c"}));

    subscribed(&app, 2).await;
    let version = app.record(&seed.match_id, "GOAL", "HOME").await;
    let mut by_id = std::collections::HashMap::new();
    while by_id.len() < 2 {
        let event = stream.next().await;
        let data = event.json();
        by_id.insert(
            data["id"].as_str().unwrap().to_string(),
            data["payload"].clone(),
        );
    }
    assert_eq!(by_id["a"]["data"]["matchUpdated"]["version"], version);
    assert_eq!(by_id["b"]["data"]["matchEvents"]["type"], "GOAL");

    // DELETE stops one operation; the other goes on.
    let stopped = app
        .http
        .delete(app.url("/graphql?operationId=a"))
        .header("x-graphql-event-stream-token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    subscribed(&app, 1).await;
    app.record(&seed.match_id, "GOAL", "AWAY").await;
    let event = stream.next().await;
    assert_eq!(event.json()["id"], "b");

    // The stream going away ends the reservation and its operations.
    drop(stream);
    subscribed(&app, 0).await;
    app.wait_for_metric("scoreline_streams", 0).await;
    let gone = operation("e", MATCH_UPDATED, json!({"id": seed.match_id}))
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
}

/// Records `count` NOTE events, `BATCH` mutations a request.
async fn record_notes(app: &TestApp, match_id: &str, count: usize, description: &str) {
    const BATCH: usize = 50;
    let numbers: Vec<usize> = (1..=count).collect();
    for chunk in numbers.chunks(BATCH) {
        let fields: String = chunk
            .iter()
            .map(|n| format!("n{n}: recordEvent(input: {{matchId: $m, type: NOTE, description: $d}}) {{ version }} "))
            .collect();
        app.operator(
            &format!("mutation($m: ID!, $d: String!) {{ {fields} }}"),
            json!({"m": match_id, "d": description}),
        )
        .await;
    }
}

#[tokio::test]
async fn a_slow_sse_event_stream_ends_with_slow_consumer_and_resumes_with_last_event_id() {
    const EVENTS: usize = 1_500;
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let id = seed.match_id.as_str();
    let description = "x".repeat(500);
    // ~20 KB an event: 1,500 of them are far more than the socket buffers hold, so a client
    // that does not read overflows its subscription's queue.
    let aliases: String = (0..40).map(|i| format!("d{i}: description ")).collect();
    let query = format!(
        "subscription($id: ID!, $after: Int) {{ matchEvents(matchId: $id, afterSeq: $after) {{ seq type {aliases} }} }}"
    );
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        &query,
        json!({"id": id, "after": 0}),
        None,
    )
    .await;
    assert_eq!(sse.next().await.id.as_deref(), Some("1"));

    // The client reads nothing while every event is recorded.
    record_notes(&app, id, EVENTS, &description).await;
    let last_seq = 1 + EVENTS as i64;

    // What was written before the overflow arrives in order, then the documented end.
    let mut seen: i64 = 1;
    let code = tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            let event = sse.next().await;
            let data = event.json();
            if event.id.is_none() {
                break data["errors"][0]["extensions"]["code"].clone();
            }
            assert_eq!(
                data["data"]["matchEvents"]["seq"],
                seen + 1,
                "no gap, no repeat"
            );
            assert_eq!(event.id, Some((seen + 1).to_string()));
            seen += 1;
        }
    })
    .await
    .expect("the slow stream ends in bounded time");
    assert_eq!(code, "SLOW_CONSUMER");
    assert_eq!(sse.event().await.unwrap().event, "complete");
    assert!(sse.event().await.is_none(), "the stream ends");
    assert!(
        seen < last_seq,
        "the client fell behind before the end ({seen})"
    );
    subscribed(&app, 0).await;

    // Resuming with Last-Event-ID delivers the rest without a gap, then live events.
    let mut sse = HttpStream::open(
        &app,
        "text/event-stream",
        &query,
        json!({"id": id, "after": 0}),
        Some(&seen.to_string()),
    )
    .await;
    tokio::time::timeout(Duration::from_secs(120), async {
        for expected in seen + 1..=last_seq {
            let event = sse.next().await;
            assert_eq!(
                event.json()["data"]["matchEvents"]["seq"],
                expected,
                "no gap, no repeat"
            );
        }
    })
    .await
    .expect("the resumed stream catches up in bounded time");
    app.record(id, "GOAL", "HOME").await;
    let event = sse.next().await;
    assert_eq!(event.json()["data"]["matchEvents"]["seq"], last_seq + 1);
    assert_eq!(event.json()["data"]["matchEvents"]["type"], "GOAL");
}

#[tokio::test]
async fn a_query_from_a_client_that_also_accepts_json_gets_json() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    // urql's Accept for every request lists the stream types after JSON.
    let accept = "application/graphql-response+json, application/graphql+json, application/json, text/event-stream, multipart/mixed";
    let response = request(
        &app,
        accept,
        "query($id: ID!) { match(id: $id) { version } }",
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/graphql-response+json"));
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["data"]["match"]["version"], 2);
    // Its subscriptions stream.
    let mut sse = HttpStream::open(
        &app,
        accept,
        MATCH_UPDATED,
        json!({"id": seed.match_id}),
        None,
    )
    .await;
    subscribed(&app, 1).await;
    let version = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(sse.next().await.id, Some(version.to_string()));
}
