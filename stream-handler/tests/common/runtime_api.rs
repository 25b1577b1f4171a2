//! A small emulator of the AWS Lambda Runtime API (2018-06-01), enough to run a function
//! binary the way Lambda does: `GET /runtime/invocation/next` long-polls for the next queued
//! event; `POST /runtime/invocation/{id}/response`, `/{id}/error` and `/runtime/init/error`
//! are recorded and come out of a channel.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::Value;
use tokio::sync::mpsc;

pub const FUNCTION_ARN: &str =
    "arn:aws:lambda:eu-west-1:123456789012:function:scoreline-stream-handler";

/// What the function reported to the Runtime API.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Response {
        request_id: String,
        body: Value,
    },
    Error {
        request_id: String,
        error_type: Option<String>,
        body: Value,
    },
    InitError {
        error_type: Option<String>,
        body: Value,
    },
}

struct Shared {
    queue: tokio::sync::Mutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    outcomes: mpsc::UnboundedSender<Outcome>,
    polls: mpsc::UnboundedSender<Instant>,
    /// How long each invocation may run, from the moment it is handed out.
    timeout: Duration,
}

pub struct RuntimeApi {
    pub addr: SocketAddr,
    queue: mpsc::UnboundedSender<(String, Vec<u8>)>,
    outcomes: tokio::sync::Mutex<mpsc::UnboundedReceiver<Outcome>>,
    polls: tokio::sync::Mutex<mpsc::UnboundedReceiver<Instant>>,
    next_id: AtomicU64,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        Self::start_with_timeout(Duration::from_secs(10)).await
    }

    pub async fn start_with_timeout(timeout: Duration) -> RuntimeApi {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let (outcomes_tx, outcomes_rx) = mpsc::unbounded_channel();
        let (polls_tx, polls_rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            queue: tokio::sync::Mutex::new(queue_rx),
            outcomes: outcomes_tx,
            polls: polls_tx,
            timeout,
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the Runtime API emulator");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("the Runtime API emulator runs");
        });
        RuntimeApi {
            addr,
            queue: queue_tx,
            outcomes: tokio::sync::Mutex::new(outcomes_rx),
            polls: tokio::sync::Mutex::new(polls_rx),
            next_id: AtomicU64::new(1),
        }
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// Queues an invocation; returns its request id.
    pub fn invoke(&self, payload: impl Into<Vec<u8>>) -> String {
        let n = self.next_id.fetch_add(1, Ordering::SeqCst);
        let request_id = format!("8476a536-e9f4-11e8-9739-{n:012x}");
        self.queue
            .send((request_id.clone(), payload.into()))
            .expect("the emulator is running");
        request_id
    }

    /// The next outcome the function reported, waiting at most `within` (`None`: nothing in
    /// time).
    pub async fn next_outcome(&self, within: Duration) -> Option<Outcome> {
        tokio::time::timeout(within, self.outcomes.lock().await.recv())
            .await
            .ok()
            .flatten()
    }

    /// When the function next polled `/invocation/next`, waiting at most `within`.
    pub async fn next_poll(&self, within: Duration) -> Instant {
        tokio::time::timeout(within, self.polls.lock().await.recv())
            .await
            .expect("the function polled for an invocation in time")
            .expect("the emulator is running")
    }
}

async fn next(State(shared): State<Arc<Shared>>) -> Response {
    let _ = shared.polls.send(Instant::now());
    let Some((request_id, payload)) = shared.queue.lock().await.recv().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let deadline = SystemTime::now() + shared.timeout;
    let deadline_ms = deadline
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_millis();
    let mut headers = HeaderMap::new();
    let mut set = |name: &'static str, value: String| {
        headers.insert(name, HeaderValue::from_str(&value).expect("a header value"));
    };
    set("content-type", "application/json".into());
    set("lambda-runtime-aws-request-id", request_id.clone());
    set("lambda-runtime-deadline-ms", deadline_ms.to_string());
    set("lambda-runtime-invoked-function-arn", FUNCTION_ARN.into());
    set(
        "lambda-runtime-trace-id",
        "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=0".into(),
    );
    (StatusCode::OK, headers, payload).into_response()
}

fn json_or_text(body: &[u8]) -> Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()))
}

fn error_type(headers: &HeaderMap) -> Option<String> {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn response(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    body: Bytes,
) -> StatusCode {
    let _ = shared.outcomes.send(Outcome::Response {
        request_id,
        body: json_or_text(&body),
    });
    StatusCode::ACCEPTED
}

async fn error(
    State(shared): State<Arc<Shared>>,
    Path(request_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = shared.outcomes.send(Outcome::Error {
        request_id,
        error_type: error_type(&headers),
        body: json_or_text(&body),
    });
    StatusCode::ACCEPTED
}

async fn init_error(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let _ = shared.outcomes.send(Outcome::InitError {
        error_type: error_type(&headers),
        body: json_or_text(&body),
    });
    StatusCode::ACCEPTED
}

/// The function process, killed and reaped when dropped (also when a test panics), so no
/// test leaves an orphan behind.
pub struct FunctionProcess {
    child: Option<std::process::Child>,
    pub log: std::path::PathBuf,
}

impl FunctionProcess {
    /// Spawns the binary as Lambda would, with the Runtime API at `runtime_api` and the extra
    /// environment `env`; its stderr (the JSON logs) goes to a file in `log_dir`.
    pub fn spawn(
        binary: &str,
        runtime_api: &str,
        env: &[(&str, String)],
        log_dir: &std::path::Path,
    ) -> FunctionProcess {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let log = log_dir.join(format!(
            "stream-handler-{}-{}.log",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let log_file = std::fs::File::create(&log).expect("create the function's log file");
        let mut command = std::process::Command::new(binary);
        command
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
            .env("AWS_LAMBDA_FUNCTION_NAME", "scoreline-stream-handler")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/11/22/[$LATEST]0123456789abcdef0123456789abcdef",
            )
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                "/aws/lambda/scoreline-stream-handler",
            )
            .env("AWS_REGION", "eu-west-1")
            .env("RUST_LOG", "info")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log_file);
        for (name, value) in env {
            command.env(name, value);
        }
        let child = command.spawn().expect("spawn the stream-handler binary");
        FunctionProcess {
            child: Some(child),
            log,
        }
    }

    /// The function's log so far, for failure messages.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        // A failing test keeps the log for a look afterwards.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}
