//! Clients that do not behave, with raw sockets and real clients: slow and silent connections,
//! connection floods, too many streams from one address, request floods, and documents built to
//! cost more than they look. Each gets its documented answer, and the server keeps serving.

use std::time::Duration;

use api::Role;
use reqwest::StatusCode;
use scoreline_tests::{TestApp, WsClient, TRANSPORT_WS, WAIT};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The server still answers a fresh client.
async fn healthy(app: &TestApp) {
    let response = reqwest::Client::new()
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status(), StatusCode::OK);
}

/// Reads until the server closes the connection; returns what it sent. Panics if the
/// connection is still open after `WAIT`.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout(WAIT, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return received,
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Err(_) => panic!("the connection is still open after {WAIT:?}"),
        }
    }
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_closed_after_the_header_timeout() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    slow.write_all(b"GET /graphql HTTP/1.1\r\nHost: x\r\nUpgrade: web")
        .await
        .unwrap();
    read_until_closed(&mut slow).await;
    // A silent connection too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    read_until_closed(&mut silent).await;
    healthy(&app).await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let received = read_until_closed(&mut stream).await;
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.1 200"),
        "answered first"
    );
}

#[tokio::test]
async fn a_body_trickled_slower_than_the_request_timeout_gets_408() {
    let app = TestApp::spawn_with(|c| c.request_timeout_secs = 1).await;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream
        .write_all(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await
        .unwrap();
    let mut buffer = [0u8; 1024];
    let read = async {
        loop {
            // One byte now and then, never the whole body.
            let _ = stream.write_all(b" ").await;
            tokio::select! {
                n = stream.read(&mut buffer) => return n.map(|n| buffer[..n].to_vec()),
                () = tokio::time::sleep(Duration::from_millis(300)) => {}
            }
        }
    };
    let received = tokio::time::timeout(WAIT, read)
        .await
        .expect("answered within the wait")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&received).starts_with("HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&received)
    );
    healthy(&app).await;
}

#[tokio::test]
async fn beyond_max_connections_new_ones_get_503_and_open_ones_keep_being_served() {
    let app = TestApp::spawn_with(|c| c.max_connections = 10).await;
    // One client with a kept-alive connection, served before the flood.
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .build()
        .unwrap();
    let ok = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    // Nine idle connections fill the bound.
    let mut flood = Vec::new();
    for _ in 0..9 {
        flood.push(TcpStream::connect(app.addr).await.unwrap());
    }
    let refused = loop {
        // The accept loop counts a connection once it took it: try until one is refused.
        let mut extra = TcpStream::connect(app.addr).await.unwrap();
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let received = read_until_closed(&mut extra).await;
        let text = String::from_utf8_lossy(&received).to_string();
        if text.starts_with("HTTP/1.1 503") {
            break text;
        }
        flood.push(extra);
        assert!(flood.len() < 20, "never refused: {text}");
    };
    assert!(refused.contains("TOO_MANY_CONNECTIONS"), "{refused}");
    assert!(
        refused.to_lowercase().contains("retry-after: 1"),
        "{refused}"
    );
    // The kept-alive connection is still served.
    let still = client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::OK);
    drop(flood);
}

async fn upgrade_status(app: &TestApp) -> (u16, Option<String>) {
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(TRANSPORT_WS),
    );
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => (101, None),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => (
            response.status().as_u16(),
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string()),
        ),
        Err(e) => panic!("unexpected: {e}"),
    }
}

#[tokio::test]
async fn an_address_over_its_stream_bound_is_refused_before_the_upgrade() {
    let app = TestApp::spawn_with(|c| c.max_streams_per_address = 3).await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(WsClient::connected(&app, TRANSPORT_WS, None).await);
    }
    let (status, retry_after) = upgrade_status(&app).await;
    assert_eq!(status, 503);
    assert_eq!(retry_after.as_deref(), Some("1"));
    app.wait_for_metric("scoreline_streams_refused_total", 1)
        .await;
    // A closed stream frees its place.
    drop(open.pop());
    app.wait_for_metric("scoreline_streams", 2).await;
    let _again = WsClient::connected(&app, TRANSPORT_WS, None).await;
    healthy(&app).await;
}

#[tokio::test]
async fn an_anonymous_flood_from_one_address_gets_429_with_retry_after() {
    // One request a second, bursts of two; twenty at once are over it however slowly the
    // machine answers (a query that reads no store, so each is quick anyway).
    let app = TestApp::spawn_with(|c| c.rate_limit_per_address = 1).await;
    let query = json!({"query": "{ __typename }"});
    let flood = (0..20).map(|_| app.http.post(app.url("/graphql")).json(&query).send());
    let responses = futures::future::join_all(flood).await;
    let mut statuses = Vec::new();
    let mut limited = None;
    for response in responses {
        let response = response.unwrap();
        statuses.push(response.status());
        if response.status() == StatusCode::TOO_MANY_REQUESTS && limited.is_none() {
            let retry_after = response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .to_string();
            let body: Value = response.json().await.unwrap();
            limited = Some((retry_after, body));
        }
    }
    let (retry_after, body) = limited.expect("the flood is limited");
    assert!(retry_after.parse::<u64>().unwrap() >= 1);
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    // The burst (twice the rate) went through.
    assert!(statuses.iter().filter(|s| **s == StatusCode::OK).count() >= 2);
    // A signed-in client's queries are not charged to the address.
    let data = app
        .ok(
            "{ liveMatches { id } }",
            json!({}),
            Some(&TestApp::token(Role::Operator)),
        )
        .await;
    assert!(data["liveMatches"].is_array());
    assert!(app.metric("scoreline_rate_limited_address_total").await >= 1);
}

#[tokio::test]
async fn a_subject_over_its_rate_gets_rate_limited_for_that_operation_on_its_socket() {
    let app = TestApp::spawn_with(|c| c.rate_limit_per_subject = 5).await;
    let seed = app.live_match("SOCCER").await;
    // Another subject than the harness's, whose seeding spent part of its own rate.
    let token = TestApp::token_for(Role::Operator, "rate-test");
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, Some(&token)).await;
    let query = "subscription($id: ID!) { matchUpdated(id: $id, sinceVersion: 0) { version } }";
    let mut refused = None;
    for op in 0..30 {
        let id = format!("s{op}");
        ws.subscribe(&id, query, json!({"id": seed.match_id})).await;
        let msg = ws.recv().await.unwrap();
        if msg["payload"]["errors"].is_array() {
            refused = Some((id, msg));
            break;
        }
    }
    let (id, msg) = refused.expect("the rate is enforced");
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "RATE_LIMITED",
        "{msg}"
    );
    assert!(msg["payload"]["errors"][0]["extensions"]["retryAfterSeconds"].as_u64() >= Some(1));
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"type": "complete", "id": id})
    );
    healthy(&app).await;
}

#[tokio::test]
async fn aliases_of_nested_pages_are_judged_by_what_they_can_return() {
    let app = TestApp::spawn().await;
    let alias = |i: usize| {
        format!(
            "m{i}: matches(first: 100) {{ edges {{ node {{ id events(first: 200) {{ seq type description }} }} }} }}"
        )
    };
    let query = format!("{{ {} }}", (0..34).map(alias).collect::<Vec<_>>().join(" "));
    let (code, body) = app.error(&query, json!({}), None).await;
    assert_eq!(code, "GRAPHQL_VALIDATION_FAILED", "{body}");
    assert_eq!(
        body["errors"][0]["extensions"]["limit"],
        "MAX_QUERY_COMPLEXITY"
    );
    // One page of matches with a few events each is fine.
    let data = app
        .ok(
            "{ matches(first: 100) { edges { node { id events(first: 10) { seq } } } } }",
            json!({}),
            None,
        )
        .await;
    assert!(data["matches"]["edges"].is_array());
    healthy(&app).await;
}
