//! Several API instances as separate processes on one Redis broker and one DynamoDB Local
//! table, as deployed behind a load balancer. Each instance is the `scoreline-test-server`
//! binary of this package; integration tests pass its path
//! (`env!("CARGO_BIN_EXE_scoreline-test-server")`, which Cargo sets for them only).

use std::net::SocketAddr;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::redis_server::{stop_with_parent_thread, RedisServer};
use crate::{dynamodb_local, TestApp, WsClient, PUBLISH_SECRET, TEST_SECRET, TRANSPORT_WS, WAIT};

/// What the instances of one cluster share.
#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub redis_url: String,
    pub table: String,
    /// Seconds an instance lets connections finish after SIGTERM.
    pub shutdown_timeout_secs: u64,
}

impl ClusterConfig {
    /// A fresh DynamoDB Local table and the given Redis.
    pub fn new(redis_url: String) -> ClusterConfig {
        ClusterConfig {
            redis_url,
            table: dynamodb_local::unique_table("cluster"),
            shutdown_timeout_secs: 5,
        }
    }
}

/// What an instance does in a test cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Creates the table, reads its stream and publishes every change.
    Publisher,
    /// Receives changes through Redis only.
    Subscriber,
}

/// One API instance in its own process; killed when dropped. Derefs to a [`TestApp`] for
/// requests and WebSocket clients.
pub struct ApiProcess {
    app: TestApp,
    child: Child,
    _stdout: BufReader<ChildStdout>,
}

impl std::ops::Deref for ApiProcess {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

impl ApiProcess {
    /// Starts `binary` (the `scoreline-test-server`) with `BROKER=redis`, `STORE=dynamodb` and
    /// `/internal/publish` on. A [`Role::Publisher`] creates the table and reads its stream,
    /// publishing every change (as the stream-handler would through it); start it first. A
    /// [`Role::Subscriber`] gets changes only through Redis. Returns once it listens.
    pub async fn start(binary: &str, cluster: &ClusterConfig, role: Role) -> ApiProcess {
        let publisher = role == Role::Publisher;
        let mut command = Command::new(binary);
        command
            .env("HOST", "127.0.0.1")
            .env("PORT", "0")
            .env("STORE", "dynamodb")
            .env("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local::endpoint())
            .env("DYNAMODB_LOCAL", "true")
            .env("DYNAMODB_TABLE", &cluster.table)
            .env("DYNAMODB_CREATE_TABLE", publisher.to_string())
            .env("STREAM_POLL", publisher.to_string())
            .env("STREAM_POLL_FROM", "trim-horizon")
            .env("STREAM_POLL_INTERVAL_MS", "20")
            .env("BROKER", "redis")
            .env("REDIS_URL", &cluster.redis_url)
            .env("AUTH_JWT_SECRET", TEST_SECRET)
            .env("PUBLISH_SECRET", PUBLISH_SECRET)
            .env("DEMO", "false")
            .env("SIMULATE", "false")
            .env("GRAPHIQL", "false")
            // Every test client comes from 127.0.0.1: per-address bounds and rates are off,
            // as in `Config::for_tests`.
            .env("MAX_STREAMS_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_ADDRESS", "0")
            .env("RATE_LIMIT_PER_SUBJECT", "0")
            .env(
                "SHUTDOWN_TIMEOUT_SECS",
                cluster.shutdown_timeout_secs.to_string(),
            )
            .env("LOG_FORMAT", "text")
            .env(
                "RUST_LOG",
                std::env::var("SCORELINE_TEST_SERVER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env_remove("AUTH_JWKS_URL")
            .env_remove("AUTH_ISSUER")
            .env_remove("AUTH_AUDIENCE")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        stop_with_parent_thread(&mut command);
        let mut child = command
            .spawn()
            .unwrap_or_else(|e| panic!("starting {binary}: {e}"));
        let mut stdout = BufReader::new(child.stdout.take().expect("a piped stdout"));
        let mut line = String::new();
        tokio::time::timeout(WAIT, stdout.read_line(&mut line))
            .await
            .expect("the API process starts listening in time")
            .expect("reading the API process's stdout");
        let addr: SocketAddr = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("the API process did not start: {line:?}"));
        ApiProcess {
            app: TestApp::attached(addr),
            child,
            _stdout: stdout,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id().expect("the process is running") as i32
    }

    /// Sends SIGTERM, as an orchestrator stopping a task does.
    pub fn sigterm(&self) {
        // SAFETY: kill(2) with a pid this test owns.
        let result = unsafe { libc::kill(self.pid(), libc::SIGTERM) };
        assert_eq!(result, 0, "sending SIGTERM");
    }

    /// Waits for the process to exit, at most `within`.
    pub async fn exited_within(&mut self, within: Duration) -> ExitStatus {
        tokio::time::timeout(within, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the API process did not exit within {within:?}"))
            .expect("waiting for the API process")
    }

    /// `GET /readyz`'s status code.
    pub async fn readiness(&self) -> u16 {
        self.http
            .get(self.url("/readyz"))
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Waits until `GET /readyz` answers `status`.
    pub async fn wait_for_readiness(&self, status: u16) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let now = self.readiness().await;
            if now == status {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "GET /readyz on {} answered {now}, not {status}, for {WAIT:?}",
                self.addr
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl TestApp {
    /// A handle on a server running elsewhere (another process): requests and WebSocket
    /// clients work; `stop` does nothing.
    pub fn attached(addr: SocketAddr) -> TestApp {
        TestApp {
            addr,
            metrics_addr: None,
            http: reqwest::Client::new(),
            stop: None,
            server: tokio::spawn(async { std::future::pending::<anyhow::Result<()>>().await }),
        }
    }
}

/// What a client saw next: a protocol message, or the end of the connection.
#[derive(Debug)]
pub enum Seen {
    Message(serde_json::Value),
    Closed(crate::Closed),
}

impl crate::WsClient {
    /// The next protocol message (keep-alives answered and skipped) or the close frame, within
    /// [`WAIT`]; panics on a connection that ends without a close frame.
    pub async fn next_or_close(&mut self) -> Seen {
        self.next_or_close_within(WAIT)
            .await
            .expect("a message or a close arrives in time")
    }

    /// Like [`Self::next_or_close`], `None` when nothing arrives within `wait`.
    pub async fn next_or_close_within(&mut self, wait: Duration) -> Option<Seen> {
        match self.arrive(wait).await.ok()? {
            crate::Arrival::Message(_, message) => Some(Seen::Message(message)),
            crate::Arrival::Closed(closed) => Some(Seen::Closed(closed)),
            crate::Arrival::Gone => panic!("the connection ended without a close frame"),
        }
    }
}

/// A client watching one match on one instance over graphql-transport-ws: its state
/// (`matchUpdated`), its timeline (`matchEvents`) and, optionally, `matchesUpdated`, recording
/// every version and `seq` it receives.
pub struct Watch {
    pub ws: WsClient,
    match_id: String,
    /// `matchUpdated` versions.
    pub state: Vec<i64>,
    /// `matchesUpdated` versions of the watched match.
    pub all: Vec<i64>,
    /// `matchEvents` seqs.
    pub events: Vec<i64>,
    watches_all: bool,
}

impl Watch {
    pub async fn start(
        app: &TestApp,
        match_id: &str,
        since_version: i64,
        after_seq: i64,
        watches_all: bool,
    ) -> Watch {
        let mut ws = WsClient::connected(app, TRANSPORT_WS, None).await;
        ws.subscribe(
            "state",
            "subscription($id: ID!, $v: Int) { matchUpdated(id: $id, sinceVersion: $v) { version } }",
            json!({"id": match_id, "v": since_version}),
        )
        .await;
        ws.subscribe(
            "events",
            "subscription($id: ID!, $s: Int) { matchEvents(matchId: $id, afterSeq: $s) { seq } }",
            json!({"id": match_id, "s": after_seq}),
        )
        .await;
        if watches_all {
            ws.subscribe(
                "all",
                "subscription { matchesUpdated { id version } }",
                json!({}),
            )
            .await;
        }
        Watch {
            ws,
            match_id: match_id.to_string(),
            state: Vec::new(),
            all: Vec::new(),
            events: Vec::new(),
            watches_all,
        }
    }

    fn record(&mut self, message: serde_json::Value) {
        assert_eq!(message["type"], "next", "{message}");
        assert!(message["payload"].get("errors").is_none(), "{message}");
        let data = &message["payload"]["data"];
        match message["id"].as_str() {
            Some("state") => self
                .state
                .push(data["matchUpdated"]["version"].as_i64().unwrap()),
            Some("events") => self
                .events
                .push(data["matchEvents"]["seq"].as_i64().unwrap()),
            Some("all") => {
                if data["matchesUpdated"]["id"] == self.match_id.as_str() {
                    self.all
                        .push(data["matchesUpdated"]["version"].as_i64().unwrap());
                }
            }
            _ => panic!("unexpected message {message}"),
        }
    }

    fn reached(&self, version: i64, seq: i64) -> bool {
        let at = |list: &[i64], goal: i64| list.last().is_some_and(|&v| v >= goal);
        at(&self.state, version)
            && at(&self.events, seq)
            && (!self.watches_all || at(&self.all, version))
    }

    /// Reads until every subscription reached `version` / `seq`.
    pub async fn until(&mut self, version: i64, seq: i64) {
        while !self.reached(version, seq) {
            let Some(next) = self.ws.next_or_close_within(WAIT).await else {
                panic!(
                    "nothing more after {WAIT:?}, waiting for version {version} and seq {seq} of \
                     {}: state {:?}, events {:?}, all {:?}",
                    self.match_id, self.state, self.events, self.all
                );
            };
            match next {
                Seen::Message(message) => self.record(message),
                Seen::Closed(closed) => panic!(
                    "closed ({closed:?}) before version {version} and seq {seq}: state {:?}, \
                     events {:?}, all {:?}",
                    self.state, self.events, self.all
                ),
            }
        }
    }

    /// Reads until the server closes the connection; returns the close code.
    pub async fn until_closed(&mut self) -> crate::Closed {
        loop {
            match self.ws.next_or_close().await {
                Seen::Message(message) => self.record(message),
                Seen::Closed(closed) => return closed,
            }
        }
    }

    /// Positions in the histories, to check what arrived after them.
    pub fn mark(&self) -> (usize, usize, usize) {
        (self.state.len(), self.all.len(), self.events.len())
    }
}

pub fn assert_strictly_rising(list: &[i64], what: &str) {
    assert!(
        list.windows(2).all(|w| w[0] < w[1]),
        "{what} must strictly rise: {list:?}"
    );
}

/// The timeline from seq 1 to `last`, in order, none missing, none repeated.
pub fn assert_complete_timeline(events: &[i64], last: i64, who: &str) {
    assert_eq!(
        events,
        (1..=last).collect::<Vec<_>>(),
        "{who}: the event timeline"
    );
}

/// Two instances on one Redis and one table. Every change is published through `b`, which
/// reads the table's stream (the stream-handler's code, in its process): `a` gets changes only
/// through Redis.
pub struct Cluster {
    pub redis: RedisServer,
    pub config: ClusterConfig,
    pub a: ApiProcess,
    pub b: ApiProcess,
}

impl Cluster {
    /// `binary`: the `scoreline-test-server` (see the module docs).
    pub async fn start(binary: &str) -> Cluster {
        let redis = RedisServer::start().await;
        let config = ClusterConfig::new(redis.url());
        // The publisher first: it creates the table.
        let b = ApiProcess::start(binary, &config, Role::Publisher).await;
        let a = ApiProcess::start(binary, &config, Role::Subscriber).await;
        a.wait_for_readiness(200).await;
        b.wait_for_readiness(200).await;
        Cluster {
            redis,
            config,
            a,
            b,
        }
    }
}

/// A signed `POST /internal/publish` of one fresh change; returns the status code. Every call
/// is signed anew, as the stream-handler signs every attempt: the timestamp is the current
/// second, or one past the last one used if that is not in the past (the API refuses the same
/// signed request twice with 409, and a retry of the same body within a second would be one).
pub async fn publish_directly(app: &TestApp, change: scoreline_core::Change) -> u16 {
    static LAST: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);
    let body = serde_json::to_vec(&scoreline_core::ChangeBatch::new(vec![change])).unwrap();
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let previous = LAST
        .fetch_update(
            std::sync::atomic::Ordering::SeqCst,
            std::sync::atomic::Ordering::SeqCst,
            |last| Some(second.max(last + 1)),
        )
        .expect("the update always applies");
    let now = second.max(previous + 1);
    app.http
        .post(app.publish_url())
        .header(scoreline_core::publish::TIMESTAMP_HEADER, now.to_string())
        .header(
            scoreline_core::publish::SIGNATURE_HEADER,
            scoreline_core::publish::sign(PUBLISH_SECRET, now, &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers")
        .status()
        .as_u16()
}

/// A `recordEvent` request sent up to the middle of its body: in flight until `finish`.
pub struct InFlight {
    stream: tokio::net::TcpStream,
    rest: Vec<u8>,
}

impl InFlight {
    pub async fn start(app: &TestApp, match_id: &str) -> InFlight {
        let body = json!({
            "query": "mutation($i: RecordEventInput!) { recordEvent(input: $i) { version } }",
            "variables": {"i": {"matchId": match_id, "type": "GOAL", "side": "HOME"}},
        })
        .to_string()
        .into_bytes();
        let token = TestApp::token(api::Role::Operator);
        let head = format!(
            "POST /graphql HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Authorization: Bearer {token}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            app.addr,
            body.len()
        );
        let mut stream = tokio::net::TcpStream::connect(app.addr).await.unwrap();
        let (sent, rest) = body.split_at(body.len() / 2);
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(sent).await.unwrap();
        stream.flush().await.unwrap();
        InFlight {
            stream,
            rest: rest.to_vec(),
        }
    }

    /// Sends the rest of the body; returns the status line and the body of the response.
    pub async fn finish(mut self) -> (String, serde_json::Value) {
        self.stream.write_all(&self.rest).await.unwrap();
        let mut response = Vec::new();
        tokio::time::timeout(WAIT, self.stream.read_to_end(&mut response))
            .await
            .expect("the response arrives in time")
            .expect("reading the response");
        let text = String::from_utf8(response).expect("a text response");
        let status = text.lines().next().unwrap_or_default().to_string();
        let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
        // A chunked body would carry sizes; the JSON is the longest line.
        let json = body
            .lines()
            .max_by_key(|l| l.len())
            .and_then(|l| serde_json::from_str(l).ok())
            .unwrap_or(serde_json::Value::Null);
        (status, json)
    }
}
