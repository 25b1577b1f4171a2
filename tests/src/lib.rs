//! The test harness: starts the real application on a free loopback port and talks to it the
//! way clients do, with real HTTP and real WebSocket connections.
//!
//! Integration tests run on the memory store by default and on DynamoDB Local with
//! `SCORELINE_TEST_STORE=dynamodb` (scripts/test runs both).
//!
//! # Layout
//! - `TestApp`: a running server, its HTTP client, tokens, and seeding helpers.
//! - `WsClient`: a raw WebSocket client for both GraphQL subprotocols.
//! - `dynamodb_local`: DynamoDB Local for the tests that need it.
//! - `pipeline`: the stream-handler's poller and a publishing server, in the test process.
//! - `redis_server`: a real `redis-server` that tests can kill and restart.
//! - `cluster`: API instances as separate processes on one Redis and one DynamoDB Local table.

pub mod cluster;
pub mod dynamodb_local;
pub mod pipeline;
pub mod redis_server;

use std::net::SocketAddr;
use std::time::Duration;

use api::{Application, Config};
use api::{AuthConfig, Authenticator, Role};
use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The HS256 secret test servers are configured with.
pub const TEST_SECRET: &str = "scoreline-test-secret-0123456789abcdef";
/// How long a test waits for a message it expects before failing.
pub const WAIT: Duration = Duration::from_secs(30);

pub struct TestApp {
    pub addr: SocketAddr,
    /// The metrics listener, when the test configured `METRICS_ADDR`.
    pub metrics_addr: Option<SocketAddr>,
    pub http: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: JoinHandle<anyhow::Result<()>>,
}

impl TestApp {
    /// A server with an HS256 secret and no demo data.
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// A server with the test defaults, adjusted by `configure`.
    pub async fn spawn_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = Config::for_tests();
        config.auth_jwt_secret = Some(TEST_SECRET.into());
        config.auth_jwks_url = None;
        config.auth_issuer = None;
        config.auth_audience = None;
        config.publish_secret = None;
        if dynamodb_local::integration_store_is_dynamodb() {
            config.store = api::StoreKind::Dynamodb;
            config.dynamodb_endpoint = Some(dynamodb_local::endpoint().to_string());
            config.dynamodb_table = dynamodb_local::unique_table("it");
            config.dynamodb_local = true;
            config.dynamodb_create_table = true;
            config.stream_poll = true;
            config.stream_poll_from = api::StreamStart::TrimHorizon;
            config.stream_poll_interval_ms = 20;
        }
        configure(&mut config);
        let app = Application::build(config)
            .await
            .expect("the test server builds");
        let addr = app.local_addr();
        let metrics_addr = app.metrics_addr();
        let (stop, stopped) = oneshot::channel();
        let server = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        TestApp {
            addr,
            metrics_addr,
            http: reqwest::Client::new(),
            stop: Some(stop),
            server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn ws_url(&self) -> String {
        format!("ws://{}/graphql", self.addr)
    }

    /// A token for another subject than `test-user` (each subject has its own rate).
    pub fn token_for(role: Role, subject: &str) -> String {
        Authenticator::new(AuthConfig {
            jwt_secret: Some(TEST_SECRET.into()),
            ..Default::default()
        })
        .expect("test auth config")
        .mint(role, subject, Duration::from_secs(3600))
        .expect("minting a test token")
    }

    /// A token signed with the test secret.
    pub fn token(role: Role) -> String {
        Self::token_with(role, Duration::from_secs(3600))
    }

    pub fn token_with(role: Role, ttl: Duration) -> String {
        Authenticator::new(AuthConfig {
            jwt_secret: Some(TEST_SECRET.into()),
            ..Default::default()
        })
        .expect("test auth config")
        .mint(role, "test-user", ttl)
        .expect("minting a test token")
    }

    /// The value of a metric on `GET /metrics` (0 when absent), from the metrics listener
    /// when there is one.
    pub async fn metric(&self, name: &str) -> i64 {
        let url = format!("http://{}/metrics", self.metrics_addr.unwrap_or(self.addr));
        let text = self
            .http
            .get(url)
            .send()
            .await
            .expect("the server answers")
            .text()
            .await
            .expect("a text body");
        text.lines()
            .filter_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
            .find_map(|value| value.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Waits until a metric has a value (bounded by `WAIT`).
    /// Repeats `query` until one is answered from the response cache. A change of what it
    /// read (the seeding's own changes reach the cache through the pipeline a little after
    /// their mutations answered) ends entries, so the first repeats may miss.
    pub async fn until_cached(&self, query: &str, variables: Value) {
        let hits = "scoreline_response_cache_hits_total";
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let before = self.metric(hits).await;
            self.ok(query, variables.clone(), None).await;
            self.ok(query, variables.clone(), None).await;
            if self.metric(hits).await > before {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "a repeated query is never answered from the cache"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn wait_for_metric(&self, name: &str, value: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.metric(name).await;
            if now == value {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name} stayed at {now}, expected {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a GraphQL request; returns the HTTP status and the JSON body.
    pub async fn post(&self, query: &str, variables: Value, token: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url("/graphql"))
            .json(&json!({"query": query, "variables": variables}));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.expect("the server answers");
        let status = resp.status().as_u16();
        let body = resp.json().await.expect("a JSON body");
        (status, body)
    }

    /// A query or mutation that must succeed; returns `data`.
    pub async fn ok(&self, query: &str, variables: Value, token: Option<&str>) -> Value {
        let (status, body) = self.post(query, variables, token).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    pub async fn admin(&self, query: &str, variables: Value) -> Value {
        self.ok(query, variables, Some(&Self::token(Role::Admin)))
            .await
    }

    pub async fn operator(&self, query: &str, variables: Value) -> Value {
        self.ok(query, variables, Some(&Self::token(Role::Operator)))
            .await
    }

    /// A request that must fail; returns its first error's code, message and full body.
    pub async fn error(
        &self,
        query: &str,
        variables: Value,
        token: Option<&str>,
    ) -> (String, Value) {
        let (_, body) = self.post(query, variables, token).await;
        let code = body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error with a code, got {body}"))
            .to_string();
        (code, body)
    }

    /// Creates a competition of `sport` with two teams and one scheduled match; returns the ids.
    pub async fn seed(&self, sport: &str) -> Seed {
        let c = self
            .admin(
                "mutation($i: CreateCompetitionInput!) { createCompetition(input: $i) { id } }",
                json!({"i": {"name": format!("{sport} league"), "sport": sport, "season": "2026"}}),
            )
            .await["createCompetition"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let mut teams = Vec::new();
        for name in ["Home Side", "Away Side"] {
            let t = self
                .admin(
                    "mutation($i: CreateTeamInput!) { createTeam(input: $i) { id } }",
                    json!({"i": {"name": name, "sport": sport, "competitionIds": [c]}}),
                )
                .await["createTeam"]["id"]
                .as_str()
                .unwrap()
                .to_string();
            teams.push(t);
        }
        let m = self
            .admin(
                "mutation($i: CreateMatchInput!) { createMatch(input: $i) { id } }",
                json!({"i": {"competitionId": c, "homeTeamId": teams[0], "awayTeamId": teams[1],
                              "startTime": "2026-11-22T15:00:00Z", "venue": "Test Ground"}}),
            )
            .await["createMatch"]["id"]
            .as_str()
            .unwrap()
            .to_string();
        Seed {
            competition: c,
            home: teams[0].clone(),
            away: teams[1].clone(),
            match_id: m,
        }
    }

    /// A seeded match set LIVE (version 2, one STATUS_CHANGE event).
    pub async fn live_match(&self, sport: &str) -> Seed {
        let seed = self.seed(sport).await;
        self.operator(
            "mutation($i: SetMatchStatusInput!) { setMatchStatus(input: $i) { version } }",
            json!({"i": {"matchId": seed.match_id, "status": "LIVE"}}),
        )
        .await;
        seed
    }

    /// Records a scoring event; returns the match's new version.
    pub async fn record(&self, match_id: &str, event_type: &str, side: &str) -> i64 {
        self.operator(
            "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
            json!({"i": {"matchId": match_id, "type": event_type, "side": side}}),
        )
        .await["recordEvent"]["version"]
            .as_i64()
            .unwrap()
    }

    /// Stops the server as SIGTERM would, and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.server).await;
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone, Debug)]
pub struct Seed {
    pub competition: String,
    pub home: String,
    pub away: String,
    pub match_id: String,
}

/// A raw WebSocket client speaking `graphql-transport-ws` or `graphql-ws`.
pub struct WsClient {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
    pub protocol: &'static str,
    /// Answer server pings automatically (graphql-transport-ws).
    pub answer_pings: bool,
}

pub const TRANSPORT_WS: &str = "graphql-transport-ws";
pub const LEGACY_WS: &str = "graphql-ws";

/// How a connection ended, seen by the client.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed {
    pub code: u16,
    pub reason: String,
}

impl WsClient {
    pub async fn connect(app: &TestApp, protocol: &'static str) -> WsClient {
        let mut request = app.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(protocol));
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket upgrade succeeds");
        assert_eq!(
            response
                .headers()
                .get("sec-websocket-protocol")
                .and_then(|v| v.to_str().ok()),
            Some(protocol),
            "the server agrees on the subprotocol"
        );
        WsClient {
            ws,
            protocol,
            answer_pings: true,
        }
    }

    /// Connects and completes `connection_init` (optionally with a token).
    pub async fn connected(app: &TestApp, protocol: &'static str, token: Option<&str>) -> WsClient {
        let mut c = Self::connect(app, protocol).await;
        let payload = token.map(|t| json!({"Authorization": format!("Bearer {t}")}));
        c.send(json!({"type": "connection_init", "payload": payload.unwrap_or(json!({}))}))
            .await;
        let ack = c.recv().await.expect("connection_ack");
        assert_eq!(ack["type"], "connection_ack", "{ack}");
        c
    }

    pub async fn send(&mut self, value: Value) {
        self.send_raw(value.to_string()).await;
    }

    pub async fn send_raw(&mut self, text: String) {
        self.ws
            .send(Message::Text(text.into()))
            .await
            .expect("sending a frame");
    }

    /// Starts an operation.
    pub async fn subscribe(&mut self, id: &str, query: &str, variables: Value) {
        let kind = if self.protocol == LEGACY_WS {
            "start"
        } else {
            "subscribe"
        };
        self.send(
            json!({"type": kind, "id": id, "payload": {"query": query, "variables": variables}}),
        )
        .await;
    }

    /// Ends an operation.
    pub async fn complete(&mut self, id: &str) {
        let kind = if self.protocol == LEGACY_WS {
            "stop"
        } else {
            "complete"
        };
        self.send(json!({"type": kind, "id": id})).await;
    }

    /// The next protocol message, skipping keep-alives; `None` when the connection closed.
    pub async fn recv(&mut self) -> Option<Value> {
        self.recv_within(WAIT)
            .await
            .expect("a message arrives in time")
    }

    /// Like `recv`, but `Err(())` on timeout.
    pub async fn recv_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        Ok(match self.arrive(wait).await? {
            Arrival::Message(_, value) => Some(value),
            Arrival::Closed(_) | Arrival::Gone => None,
        })
    }

    /// What arrives next within `wait` (`Err(())` on timeout), keep-alives skipped and, with
    /// `answer_pings`, answered: the one receive loop every other method is built on.
    pub(crate) async fn arrive(&mut self, wait: Duration) -> Result<Arrival, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| ())?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    let value: Value = serde_json::from_str(text.as_str()).expect("JSON frames");
                    match value["type"].as_str() {
                        Some("ka") => continue,
                        Some("ping") if self.answer_pings => {
                            self.send(json!({"type": "pong"})).await;
                            continue;
                        }
                        _ => return Ok(Arrival::Message(text.to_string(), value)),
                    }
                }
                Some(Ok(Message::Close(frame))) => {
                    return Ok(Arrival::Closed(Closed {
                        code: frame
                            .as_ref()
                            .map_or(u16::from(CloseCode::Status), |f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    }))
                }
                None | Some(Err(_)) => return Ok(Arrival::Gone),
                Some(Ok(_)) => continue,
            }
        }
    }

    /// An operation refused at subscribe time (not found, unauthenticated, a cap), as the
    /// reference servers end it: a `next` (legacy: `data`) carrying the errors and no data,
    /// then `complete`. Returns the errors; panics on anything else.
    pub async fn refused(&mut self, id: &str) -> Value {
        let msg = self.recv().await.expect("the connection stays open");
        let expected = if self.protocol == LEGACY_WS {
            "data"
        } else {
            "next"
        };
        assert_eq!(msg["type"], expected, "{msg}");
        assert_eq!(msg["id"], id, "{msg}");
        assert_eq!(msg["payload"]["data"], Value::Null, "{msg}");
        let errors = msg["payload"]["errors"].clone();
        assert!(
            errors.as_array().is_some_and(|e| !e.is_empty()),
            "errors in {msg}"
        );
        let end = self.recv().await.expect("the connection stays open");
        assert_eq!(end, json!({"type": "complete", "id": id}));
        errors
    }

    /// The `extensions.code` of the first error [`WsClient::refused`] returns.
    pub async fn refused_code(&mut self, id: &str) -> String {
        let errors = self.refused(id).await;
        errors[0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("an error code in {errors}"))
            .to_string()
    }

    /// The next `next`/`data` payload of operation `id`; panics on anything else.
    pub async fn next_data(&mut self, id: &str) -> Value {
        let msg = self.recv().await.expect("the connection stays open");
        let expected = if self.protocol == LEGACY_WS {
            "data"
        } else {
            "next"
        };
        assert_eq!(msg["type"], expected, "{msg}");
        assert_eq!(msg["id"], id, "{msg}");
        assert!(msg["payload"].get("errors").is_none(), "{msg}");
        msg["payload"]["data"].clone()
    }

    /// Closes the connection from the client side with `code` and returns the server's answer
    /// to the close frame; panics when the server drops the connection without one (a client
    /// then sees 1006).
    pub async fn close_by_client(&mut self, code: u16) -> Closed {
        use tokio_tungstenite::tungstenite::protocol::CloseFrame;
        self.ws
            .close(Some(CloseFrame {
                code: CloseCode::from(code),
                reason: "client done".into(),
            }))
            .await
            .expect("sending the close frame");
        self.closed().await
    }

    /// Waits for the server to close the connection; returns the close code and reason.
    pub async fn closed(&mut self) -> Closed {
        loop {
            match self.arrive(WAIT).await.expect("the server closes in time") {
                Arrival::Message(..) => continue,
                Arrival::Closed(closed) => return closed,
                Arrival::Gone => panic!("the connection ended without a close frame"),
            }
        }
    }
}

/// What a client sees next.
pub(crate) enum Arrival {
    /// A protocol message, as sent and parsed.
    Message(String, Value),
    /// A close frame.
    Closed(Closed),
    /// The connection ended without a close frame.
    Gone,
}

impl WsClient {
    /// The next protocol message exactly as sent (keep-alives skipped and answered as `recv`
    /// does); `None` when the connection closed.
    pub async fn recv_text(&mut self) -> Option<String> {
        match self.arrive(WAIT).await.expect("a message arrives in time") {
            Arrival::Message(text, _) => Some(text),
            Arrival::Closed(_) | Arrival::Gone => None,
        }
    }

    /// The next protocol message (keep-alives skipped), or how the server closed the
    /// connection; panics on a connection that ends without a close frame.
    pub async fn recv_or_closed(&mut self) -> Result<Value, Closed> {
        match self
            .arrive(WAIT)
            .await
            .expect("a message or a close arrives in time")
        {
            Arrival::Message(_, value) => Ok(value),
            Arrival::Closed(closed) => Err(closed),
            Arrival::Gone => panic!("the connection ended without a close frame"),
        }
    }

    /// The next text frame exactly as the server sent it, keep-alives (`ka`, `ping`) included
    /// and nothing answered; `Err(())` on timeout, `Ok(None)` when the connection closed.
    pub async fn recv_frame_within(&mut self, wait: Duration) -> Result<Option<Value>, ()> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.ws.next())
                .await
                .map_err(|_| ())?;
            match frame {
                Some(Ok(Message::Text(text))) => {
                    return Ok(Some(
                        serde_json::from_str(text.as_str()).expect("JSON frames"),
                    ))
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(None),
                Some(Ok(_)) => continue,
            }
        }
    }
}

impl WsClient {
    /// Connects offering `offer` as the `Sec-WebSocket-Protocol` header (e.g. "a, b"); the
    /// client then speaks whichever GraphQL subprotocol the server announces.
    pub async fn connect_offering(app: &TestApp, offer: &'static str) -> WsClient {
        let mut request = app.ws_url().into_client_request().unwrap();
        request
            .headers_mut()
            .insert("Sec-WebSocket-Protocol", HeaderValue::from_static(offer));
        let (ws, response) = tokio_tungstenite::connect_async(request)
            .await
            .expect("the WebSocket upgrade succeeds");
        let protocol = match response
            .headers()
            .get("sec-websocket-protocol")
            .and_then(|v| v.to_str().ok())
        {
            Some(TRANSPORT_WS) => TRANSPORT_WS,
            Some(LEGACY_WS) => LEGACY_WS,
            other => panic!("the server announced {other:?} for the offer {offer:?}"),
        };
        WsClient {
            ws,
            protocol,
            answer_pings: true,
        }
    }
}

impl TestApp {
    /// A server on DynamoDB Local (whatever `SCORELINE_TEST_STORE` says), configured as the
    /// harness does for `SCORELINE_TEST_STORE=dynamodb`: a fresh table created at start-up and
    /// the stream read in process.
    pub async fn spawn_dynamodb() -> TestApp {
        Self::spawn_dynamodb_with(|_| {}).await
    }

    /// Like `spawn_dynamodb`, adjusted by `configure`.
    pub async fn spawn_dynamodb_with(configure: impl FnOnce(&mut Config)) -> TestApp {
        Self::spawn_with(|config| {
            config.store = api::StoreKind::Dynamodb;
            config.dynamodb_endpoint = Some(dynamodb_local::endpoint().to_string());
            config.dynamodb_table = dynamodb_local::unique_table("it");
            config.dynamodb_local = true;
            config.dynamodb_create_table = true;
            config.stream_poll = true;
            config.stream_poll_from = api::StreamStart::TrimHorizon;
            config.stream_poll_interval_ms = 20;
            configure(config);
        })
        .await
    }
}

/// The secret test servers sign `POST /internal/publish` requests with, when publishing is on.
pub const PUBLISH_SECRET: &str = "scoreline-test-publish-secret-fedcba9876543210";

impl TestApp {
    /// The URL of the signed publish endpoint the stream-handler posts change batches to.
    pub fn publish_url(&self) -> String {
        self.url("/internal/publish")
    }

    /// A match's stored state as the domain type, read through the public GraphQL API (the
    /// fields the schema does not show, `createdAt` and the details union, are filled in:
    /// `updatedAt` and the sport's initial details). For building change batches and stream
    /// records of a real match.
    pub async fn stored_match(&self, match_id: &str) -> scoreline_core::Match {
        let data = self
            .ok(
                "query($id: ID!) { match(id: $id) { id sport competition { id } homeTeam { id }
                   awayTeam { id } startTime venue status score { home away }
                   periods { period label home away } clock { period elapsedSeconds running }
                   lastSeq version updatedAt } }",
                json!({"id": match_id}),
                None,
            )
            .await;
        let m = &data["match"];
        assert!(m.is_object(), "match {match_id} exists: {data}");
        let sport: scoreline_core::Sport =
            serde_json::from_value(m["sport"].clone()).expect("a sport");
        serde_json::from_value(json!({
            "id": m["id"], "sport": m["sport"], "competitionId": m["competition"]["id"],
            "homeTeamId": m["homeTeam"]["id"], "awayTeamId": m["awayTeam"]["id"],
            "startTime": m["startTime"], "venue": m["venue"], "status": m["status"],
            "score": m["score"], "periods": m["periods"], "clock": m["clock"],
            "details": scoreline_core::model::Details::initial(sport),
            "lastSeq": m["lastSeq"], "version": m["version"],
            "createdAt": m["updatedAt"], "updatedAt": m["updatedAt"],
        }))
        .unwrap_or_else(|e| panic!("the stored match {m} converts to the domain type: {e}"))
    }
}
