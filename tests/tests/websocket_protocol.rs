//! The WebSocket protocols themselves, with a raw client: `graphql-transport-ws` close codes,
//! ping/pong, operation ids and limits, keep-alives, shutdown, and the upgrade handshake.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use api::{AuthConfig, Authenticator, Role};
use scoreline_tests::{Closed, TestApp, WsClient, LEGACY_WS, TEST_SECRET, TRANSPORT_WS, WAIT};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const MATCH_UPDATED: &str =
    "subscription($id: ID!, $since: Int) { matchUpdated(id: $id, sinceVersion: $since) { id version } }";

fn closed(code: u16, reason: &str) -> Closed {
    Closed {
        code,
        reason: reason.to_string(),
    }
}

/// A well-formed operator token signed with a secret the server does not know.
fn forged_token() -> String {
    Authenticator::new(AuthConfig {
        jwt_secret: Some("not-the-server-secret-0123456789abcdef".into()),
        ..Default::default()
    })
    .unwrap()
    .mint(Role::Operator, "mallory", Duration::from_secs(3600))
    .unwrap()
}

/// An operator token signed with the right secret that expired an hour ago.
fn expired_token() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "late", "cognito:groups": ["operator"], "iat": now - 7200, "exp": now - 3600}),
        &jsonwebtoken::EncodingKey::from_secret(TEST_SECRET.as_bytes()),
    )
    .unwrap()
}

async fn init(ws: &mut WsClient, payload: Value) {
    ws.send(json!({"type": "connection_init", "payload": payload}))
        .await;
}

/// Subscribes to a match's updates with `sinceVersion: 0`; the stored state answering proves
/// the operation is running.
async fn subscribe_running(ws: &mut WsClient, op: &str, match_id: &str, version: i64) {
    ws.subscribe(op, MATCH_UPDATED, json!({"id": match_id, "since": 0}))
        .await;
    let data = ws.next_data(op).await;
    assert_eq!(data["matchUpdated"]["version"], version, "{data}");
}

async fn assert_silent(ws: &mut WsClient) {
    if let Ok(msg) = ws.recv_within(Duration::from_millis(300)).await {
        panic!("expected nothing, got {msg:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// connection_init
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn connection_init_with_a_forged_token_is_closed_with_4403() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    init(
        &mut ws,
        json!({"Authorization": format!("Bearer {}", forged_token())}),
    )
    .await;
    assert_eq!(ws.closed().await, closed(4403, "Forbidden"));
}

#[tokio::test]
async fn connection_init_with_an_expired_token_is_closed_with_4403() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    // The key is case-insensitive.
    init(
        &mut ws,
        json!({"authorization": format!("Bearer {}", expired_token())}),
    )
    .await;
    assert_eq!(ws.closed().await, closed(4403, "Forbidden"));
}

#[tokio::test]
async fn connection_init_with_garbage_for_a_token_is_closed_with_4403() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    init(&mut ws, json!({"Authorization": "Bearer not.a.jwt"})).await;
    assert_eq!(ws.closed().await, closed(4403, "Forbidden"));
}

#[tokio::test]
async fn the_legacy_protocol_answers_an_invalid_token_with_connection_error_then_closes() {
    let app = TestApp::spawn().await;
    for token in [forged_token(), expired_token()] {
        let mut ws = WsClient::connect(&app, LEGACY_WS).await;
        init(&mut ws, json!({"Authorization": format!("Bearer {token}")})).await;
        let msg = ws.recv().await.expect("a connection_error");
        assert_eq!(msg["type"], "connection_error", "{msg}");
        assert_eq!(
            msg["payload"]["extensions"]["code"], "UNAUTHENTICATED",
            "{msg}"
        );
        assert_eq!(ws.closed().await, closed(4403, "Forbidden"));
    }
}

/// `connection_init` messages carrying a valid admin token and another value at once: each
/// has no single meaning, so each is refused like an invalid token. Raw text, so that key order
/// and exact repeats reach the server as written.
fn ambiguous_inits() -> Vec<String> {
    let admin = format!("Bearer {}", TestApp::token(Role::Admin));
    let init = |payload: String| format!(r#"{{"type":"connection_init","payload":{payload}}}"#);
    vec![
        init(format!(
            r#"{{"Authorization":"{admin}","authorization":"Bearer garbage"}}"#
        )),
        init(format!(
            r#"{{"authorization":"Bearer garbage","Authorization":"{admin}"}}"#
        )),
        init(format!(
            r#"{{"Authorization":"Bearer garbage","Authorization":"{admin}"}}"#
        )),
        init(format!(
            r#"{{"headers":{{"Authorization":"{admin}","AUTHORIZATION":"Bearer garbage"}}}}"#
        )),
        init(format!(
            r#"{{"Authorization":"{admin}","headers":{{"Authorization":"Bearer garbage"}}}}"#
        )),
    ]
}

#[tokio::test]
async fn ambiguous_credentials_in_connection_init_are_closed_with_4403() {
    let app = TestApp::spawn().await;
    for text in ambiguous_inits() {
        let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
        ws.send_raw(text.clone()).await;
        assert_eq!(ws.closed().await, closed(4403, "Forbidden"), "{text}");
    }
}

#[tokio::test]
async fn the_legacy_protocol_answers_ambiguous_credentials_with_connection_error_then_closes() {
    let app = TestApp::spawn().await;
    for text in ambiguous_inits() {
        let mut ws = WsClient::connect(&app, LEGACY_WS).await;
        ws.send_raw(text.clone()).await;
        let msg = ws.recv().await.expect("a connection_error");
        assert_eq!(msg["type"], "connection_error", "{text}: {msg}");
        assert_eq!(
            msg["payload"]["extensions"]["code"], "UNAUTHENTICATED",
            "{msg}"
        );
        assert_eq!(ws.closed().await, closed(4403, "Forbidden"), "{text}");
    }
}

#[tokio::test]
async fn the_same_token_at_the_top_level_and_in_headers_is_one_credential() {
    let app = TestApp::spawn().await;
    let admin = format!("Bearer {}", TestApp::token(Role::Admin));
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = WsClient::connect(&app, protocol).await;
        init(
            &mut ws,
            json!({"Authorization": admin, "headers": {"authorization": admin}}),
        )
        .await;
        let ack = ws.recv().await.expect("an answer");
        assert_eq!(ack["type"], "connection_ack", "{protocol}: {ack}");
    }
}

#[tokio::test]
async fn a_valid_token_in_connection_init_is_acknowledged() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    init(
        &mut ws,
        json!({"Authorization": format!("Bearer {}", TestApp::token(Role::Admin))}),
    )
    .await;
    assert_eq!(
        ws.recv_frame_within(WAIT).await.unwrap().unwrap(),
        json!({"type": "connection_ack"})
    );
}

#[tokio::test]
async fn a_client_that_never_sends_connection_init_is_closed_with_4408() {
    let app = TestApp::spawn_with(|c| c.ws_init_timeout_secs = 1).await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    assert_eq!(
        ws.closed().await,
        closed(4408, "Connection initialisation timeout")
    );
}

#[tokio::test]
async fn subscribe_before_connection_ack_is_closed_with_4401() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connect(&app, TRANSPORT_WS).await;
    ws.subscribe("1", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    assert_eq!(ws.closed().await, closed(4401, "Unauthorized"));
}

#[tokio::test]
async fn a_second_connection_init_is_closed_with_4429() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    init(&mut ws, json!({})).await;
    assert_eq!(
        ws.closed().await,
        closed(4429, "Too many initialisation requests")
    );
}

// ---------------------------------------------------------------------------------------------
// Invalid messages
// ---------------------------------------------------------------------------------------------

async fn assert_invalid_message_closes_with_4400(frame: &str) {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.send_raw(frame.to_string()).await;
    let got = ws.closed().await;
    assert_eq!(got.code, 4400, "{frame}: {got:?}");
    assert!(got.reason.starts_with("Invalid message"), "{got:?}");
}

#[tokio::test]
async fn invalid_json_is_closed_with_4400() {
    assert_invalid_message_closes_with_4400("{not json").await;
    assert_invalid_message_closes_with_4400("[1, 2, 3]").await;
    assert_invalid_message_closes_with_4400(r#"{"no": "type"}"#).await;
}

#[tokio::test]
async fn an_unknown_message_type_is_closed_with_4400() {
    assert_invalid_message_closes_with_4400(r#"{"type": "hello"}"#).await;
    // Legacy message types are unknown to graphql-transport-ws.
    assert_invalid_message_closes_with_4400(
        r#"{"type": "start", "id": "1", "payload": {"query": "{ __typename }"}}"#,
    )
    .await;
}

#[tokio::test]
async fn a_subscribe_without_an_id_is_closed_with_4400() {
    assert_invalid_message_closes_with_4400(
        r#"{"type": "subscribe", "payload": {"query": "{ __typename }"}}"#,
    )
    .await;
    assert_invalid_message_closes_with_4400(
        r#"{"type": "subscribe", "id": "", "payload": {"query": "{ __typename }"}}"#,
    )
    .await;
}

#[tokio::test]
async fn a_subscribe_without_a_payload_is_closed_with_4400() {
    assert_invalid_message_closes_with_4400(r#"{"type": "subscribe", "id": "1"}"#).await;
}

// ---------------------------------------------------------------------------------------------
// Ping, pong, keep-alives
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn ping_is_answered_with_pong_echoing_the_payload() {
    let app = TestApp::spawn().await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.send(json!({"type": "ping", "payload": {"nonce": 42, "from": "test"}}))
        .await;
    assert_eq!(
        ws.recv().await.unwrap(),
        json!({"type": "pong", "payload": {"nonce": 42, "from": "test"}})
    );
    ws.send(json!({"type": "ping"})).await;
    assert_eq!(ws.recv().await.unwrap(), json!({"type": "pong"}));
}

#[tokio::test]
async fn the_server_sends_keep_alive_pings_on_graphql_transport_ws() {
    let app = TestApp::spawn_with(|c| c.ws_keepalive_secs = 1).await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    let frame = ws.recv_frame_within(WAIT).await.unwrap().unwrap();
    assert_eq!(frame, json!({"type": "ping"}));
    // An unsolicited pong is fine too.
    ws.send(json!({"type": "pong"})).await;
    let frame = ws.recv_frame_within(WAIT).await.unwrap().unwrap();
    assert_eq!(frame, json!({"type": "ping"}));
}

#[tokio::test]
async fn the_legacy_protocol_sends_ka_after_the_ack_and_then_periodically() {
    let app = TestApp::spawn_with(|c| c.ws_keepalive_secs = 1).await;
    let mut ws = WsClient::connect(&app, LEGACY_WS).await;
    init(&mut ws, json!({})).await;
    let mut frames = Vec::new();
    for _ in 0..3 {
        frames.push(ws.recv_frame_within(WAIT).await.unwrap().unwrap());
    }
    assert_eq!(
        frames,
        [
            json!({"type": "connection_ack"}),
            json!({"type": "ka"}),
            json!({"type": "ka"})
        ]
    );
}

#[tokio::test]
async fn the_legacy_protocol_closes_the_connection_on_connection_terminate() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, LEGACY_WS, None).await;
    subscribe_running(&mut ws, "1", &seed.match_id, 2).await;
    ws.send(json!({"type": "connection_terminate"})).await;
    // A close frame without a status code, as subscriptions-transport-ws sends.
    assert_eq!(ws.closed().await, closed(1005, ""));
}

// ---------------------------------------------------------------------------------------------
// Operations and ids
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_duplicate_subscription_id_while_the_first_is_active_is_closed_with_4409() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    subscribe_running(&mut ws, "dup", &seed.match_id, 2).await;
    ws.subscribe(
        "dup",
        MATCH_UPDATED,
        json!({"id": seed.match_id, "since": 0}),
    )
    .await;
    assert_eq!(
        ws.closed().await,
        closed(4409, "Subscriber for this id already exists")
    );
}

#[tokio::test]
async fn an_id_may_be_reused_as_soon_as_its_operation_completed() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    // Each query ends with `complete`; the client reuses the id at once, many times over.
    for _ in 0..50 {
        ws.subscribe(
            "q",
            "query($id: ID!) { match(id: $id) { version } }",
            json!({"id": seed.match_id}),
        )
        .await;
        assert_eq!(ws.next_data("q").await["match"]["version"], 2);
        assert_eq!(
            ws.recv().await.unwrap(),
            json!({"type": "complete", "id": "q"})
        );
    }
    // And after the client completed a subscription itself.
    subscribe_running(&mut ws, "s", &seed.match_id, 2).await;
    ws.complete("s").await;
    subscribe_running(&mut ws, "s", &seed.match_id, 2).await;
}

#[tokio::test]
async fn complete_for_an_unknown_id_is_tolerated() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.complete("never-started").await;
    assert_silent(&mut ws).await;
    subscribe_running(&mut ws, "1", &seed.match_id, 2).await;
    ws.complete("also-unknown").await;
    let v = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(ws.next_data("1").await["matchUpdated"]["version"], v);
}

#[tokio::test]
async fn a_completed_subscription_receives_nothing_more() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    subscribe_running(&mut ws, "gone", &seed.match_id, 2).await;
    ws.complete("gone").await;
    // Messages are handled in order: once "kept" answers, "gone" is completed.
    subscribe_running(&mut ws, "kept", &seed.match_id, 2).await;
    let v = app.record(&seed.match_id, "GOAL", "HOME").await;
    assert_eq!(ws.next_data("kept").await["matchUpdated"]["version"], v);
    assert_silent(&mut ws).await;
}

#[tokio::test]
async fn subscriptions_beyond_the_per_connection_cap_get_too_many_subscriptions() {
    let app = TestApp::spawn_with(|c| c.max_subscriptions_per_connection = 3).await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    for op in ["1", "2", "3"] {
        subscribe_running(&mut ws, op, &seed.match_id, 2).await;
    }
    ws.subscribe("4", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    assert_eq!(ws.refused_code("4").await, "TOO_MANY_SUBSCRIPTIONS");

    // The three keep working.
    let v = app.record(&seed.match_id, "GOAL", "HOME").await;
    let mut ops = Vec::new();
    for _ in 0..3 {
        let msg = ws.recv().await.unwrap();
        assert_eq!(msg["type"], "next", "{msg}");
        assert_eq!(
            msg["payload"]["data"]["matchUpdated"]["version"], v,
            "{msg}"
        );
        ops.push(msg["id"].as_str().unwrap().to_string());
    }
    ops.sort();
    assert_eq!(ops, ["1", "2", "3"]);

    // Completing one frees a slot.
    ws.complete("2").await;
    subscribe_running(&mut ws, "5", &seed.match_id, v).await;
    // And the cap holds again.
    ws.subscribe("6", MATCH_UPDATED, json!({"id": seed.match_id, "since": 0}))
        .await;
    assert_eq!(ws.refused_code("6").await, "TOO_MANY_SUBSCRIPTIONS");
}

#[tokio::test]
async fn an_operation_that_failed_frees_its_slot_at_once() {
    let app = TestApp::spawn_with(|c| c.max_subscriptions_per_connection = 1).await;
    let seed = app.live_match("SOCCER").await;
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    for _ in 0..20 {
        ws.subscribe(
            "x",
            MATCH_UPDATED,
            json!({"id": "no-such-match", "since": 0}),
        )
        .await;
        assert_eq!(ws.refused_code("x").await, "NOT_FOUND");
    }
    subscribe_running(&mut ws, "x", &seed.match_id, 2).await;
}

// ---------------------------------------------------------------------------------------------
// Shutdown and the upgrade
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn stopping_the_server_closes_subscribed_clients_with_1001() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let mut transport = WsClient::connected(&app, TRANSPORT_WS, None).await;
    subscribe_running(&mut transport, "1", &seed.match_id, 2).await;
    let mut legacy = WsClient::connected(&app, LEGACY_WS, None).await;
    subscribe_running(&mut legacy, "1", &seed.match_id, 2).await;

    let ((), transport_closed, legacy_closed) =
        tokio::join!(app.stop(), transport.closed(), legacy.closed());
    assert_eq!(transport_closed, closed(1001, "server shutting down"));
    assert_eq!(legacy_closed, closed(1001, "server shutting down"));
}

async fn upgrade_status(protocol: Option<&'static str>) -> u16 {
    let app = TestApp::spawn().await;
    let mut request = app.ws_url().into_client_request().unwrap();
    if let Some(p) = protocol {
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(p));
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => panic!("the upgrade with {protocol:?} was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
    }
}

#[tokio::test]
async fn a_websocket_upgrade_without_a_graphql_subprotocol_is_refused_with_400() {
    assert_eq!(upgrade_status(None).await, 400);
    assert_eq!(upgrade_status(Some("mqtt")).await, 400);
}

#[tokio::test]
async fn the_protocol_announced_in_the_handshake_is_the_one_the_server_speaks() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    // graphql-transport-ws is preferred whenever it is offered, in any order.
    for (offer, announced) in [
        ("mqtt, graphql-ws, graphql-transport-ws", TRANSPORT_WS),
        ("graphql-transport-ws,graphql-ws", TRANSPORT_WS),
        ("graphql-ws, mqtt", LEGACY_WS),
    ] {
        let mut ws = WsClient::connect_offering(&app, offer).await;
        assert_eq!(ws.protocol, announced, "{offer}");
        ws.send(json!({"type": "connection_init", "payload": {}}))
            .await;
        let ack = ws.recv().await.expect("connection_ack");
        assert_eq!(ack, json!({"type": "connection_ack"}), "{offer}");
        // `subscribe`/`next` or `start`/`data`, as announced.
        subscribe_running(&mut ws, "1", &seed.match_id, 2).await;
    }
}

// ---------------------------------------------------------------------------------------------
// What reference clients expect: the closing handshake, errors at subscribe time, APQ
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_close_from_the_client_is_answered_with_the_same_code() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    for (protocol, code) in [
        (TRANSPORT_WS, 1000),
        (LEGACY_WS, 1000),
        (TRANSPORT_WS, 4499),
    ] {
        let mut ws = WsClient::connected(&app, protocol, None).await;
        subscribe_running(&mut ws, "s", &seed.match_id, 2).await;
        assert_eq!(
            ws.close_by_client(code).await,
            closed(code, "client done"),
            "{protocol}"
        );
    }
    // The subscriptions ended with their sockets.
    app.wait_for_metric("scoreline_subscriptions", 0).await;
    app.wait_for_metric("scoreline_ws_connections", 0).await;
}

#[tokio::test]
async fn a_document_that_does_not_validate_gets_error_and_the_legacy_protocol_data_then_complete() {
    let app = TestApp::spawn().await;
    let invalid = "subscription { noSuchField }";

    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.subscribe("v", invalid, json!({})).await;
    let msg = ws.recv().await.unwrap();
    assert_eq!(msg["type"], "error", "{msg}");
    assert_eq!(msg["id"], "v", "{msg}");
    assert_eq!(
        msg["payload"][0]["extensions"]["code"], "GRAPHQL_VALIDATION_FAILED",
        "{msg}"
    );
    assert_silent(&mut ws).await;

    let mut legacy = WsClient::connected(&app, LEGACY_WS, None).await;
    legacy.subscribe("v", invalid, json!({})).await;
    assert_eq!(legacy.refused_code("v").await, "GRAPHQL_VALIDATION_FAILED");
}

#[tokio::test]
async fn a_persisted_query_hash_works_over_the_websocket_once_the_document_was_sent() {
    let app = TestApp::spawn().await;
    let seed = app.live_match("SOCCER").await;
    let hash = sha256_hex(MATCH_UPDATED);
    let persisted = json!({"persistedQuery": {"version": 1, "sha256Hash": hash}});
    let variables = json!({"id": seed.match_id, "since": 0});
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;

    ws.send(json!({"type": "subscribe", "id": "h1", "payload": {
        "variables": variables, "extensions": persisted}}))
        .await;
    let errors = ws.refused("h1").await;
    assert_eq!(errors[0]["message"], "PersistedQueryNotFound");
    assert_eq!(errors[0]["extensions"]["code"], "PERSISTED_QUERY_NOT_FOUND");

    // As Apollo's link does next: the document with its hash.
    ws.send(json!({"type": "subscribe", "id": "h2", "payload": {
        "query": MATCH_UPDATED, "variables": variables, "extensions": persisted}}))
        .await;
    assert_eq!(ws.next_data("h2").await["matchUpdated"]["version"], 2);

    // From now on the hash alone is enough, on any connection.
    let mut other = WsClient::connected(&app, TRANSPORT_WS, None).await;
    other
        .send(json!({"type": "subscribe", "id": "h3", "payload": {
            "variables": variables, "extensions": persisted}}))
        .await;
    assert_eq!(other.next_data("h3").await["matchUpdated"]["version"], 2);
}

fn sha256_hex(text: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(text.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// message size
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_message_over_the_size_limit_is_closed_with_1009() {
    let app = TestApp::spawn_with(|config| config.max_body_bytes = 4 * 1024).await;
    for protocol in [TRANSPORT_WS, LEGACY_WS] {
        let mut ws = WsClient::connected(&app, protocol, None).await;
        let padding = "x".repeat(8 * 1024);
        ws.send(json!({"type": "ping", "payload": {"padding": padding}}))
            .await;
        let closed = ws.closed().await;
        assert_eq!(closed.code, 1009, "{protocol}: {closed:?}");
    }
    // A message within the limit is served as usual.
    let mut ws = WsClient::connected(&app, TRANSPORT_WS, None).await;
    ws.send(json!({"type": "ping", "payload": {"padding": "x".repeat(1024)}}))
        .await;
    assert_eq!(ws.recv().await.expect("a pong")["type"], "pong");
}
