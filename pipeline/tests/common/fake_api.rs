//! A fake of the API's `POST /internal/publish`: verifies the signature the way the API does
//! (401 when it does not verify), then answers from a script (e.g. 503 three times) before
//! falling back to a default answer. Accepted batches come out of a channel.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use scoreline_core::publish::{verify, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use scoreline_core::ChangeBatch;
use tokio::sync::mpsc;

/// How the fake answers one request that carries a valid signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// This status; a 2xx accepts the batch.
    Status(u16),
    /// Never answers (the client's timeout has to end the request).
    Hang,
}

struct Shared {
    secret: String,
    script: Mutex<VecDeque<Answer>>,
    default: Mutex<Answer>,
    requests: AtomicUsize,
    refused_signatures: AtomicUsize,
    /// Every signature header received, in order.
    signatures: Mutex<Vec<String>>,
    accepted: mpsc::UnboundedSender<ChangeBatch>,
}

pub struct FakeApi {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    accepted: tokio::sync::Mutex<mpsc::UnboundedReceiver<ChangeBatch>>,
}

impl FakeApi {
    /// Starts the fake on 127.0.0.1, on a port of the system's choosing.
    pub async fn start(secret: &str) -> FakeApi {
        let (tx, rx) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            secret: secret.to_string(),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Answer::Status(204)),
            requests: AtomicUsize::new(0),
            refused_signatures: AtomicUsize::new(0),
            signatures: Mutex::new(Vec::new()),
            accepted: tx,
        });
        let app = Router::new()
            .route("/internal/publish", post(publish))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake API");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the fake API runs");
        });
        FakeApi {
            addr,
            shared,
            accepted: tokio::sync::Mutex::new(rx),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/internal/publish", self.addr)
    }

    /// Answers the next requests with these, in order, before the default answer.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.shared.script.lock().unwrap().extend(answers);
    }

    pub fn set_default(&self, answer: Answer) {
        *self.shared.default.lock().unwrap() = answer;
    }

    /// Publish requests received so far, whatever their answer.
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Requests answered 401 because their signature did not verify.
    pub fn refused_signatures(&self) -> usize {
        self.shared.refused_signatures.load(Ordering::SeqCst)
    }

    /// Every signature header received so far, in order.
    pub fn signatures(&self) -> Vec<String> {
        self.shared.signatures.lock().unwrap().clone()
    }

    /// The next accepted batch, waiting at most `within`.
    pub async fn next_accepted(&self, within: Duration) -> ChangeBatch {
        tokio::time::timeout(within, self.accepted.lock().await.recv())
            .await
            .expect("the fake API accepted a batch in time")
            .expect("the fake API is running")
    }

    /// A batch accepted already, if any (no waiting).
    pub async fn try_accepted(&self) -> Option<ChangeBatch> {
        self.accepted.lock().await.try_recv().ok()
    }
}

async fn publish(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(signature) = header(SIGNATURE_HEADER) {
        shared
            .signatures
            .lock()
            .unwrap()
            .push(signature.to_string());
    }
    let now = chrono::Utc::now().timestamp();
    if verify(
        &shared.secret,
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now,
    )
    .is_err()
    {
        shared.refused_signatures.fetch_add(1, Ordering::SeqCst);
        return StatusCode::UNAUTHORIZED;
    }
    let scripted = shared.script.lock().unwrap().pop_front();
    let answer = scripted.unwrap_or_else(|| *shared.default.lock().unwrap());
    match answer {
        Answer::Hang => std::future::pending().await,
        Answer::Status(code) => {
            let status = StatusCode::from_u16(code).expect("a valid status");
            if status.is_success() {
                let batch: ChangeBatch = match serde_json::from_slice(&body) {
                    Ok(batch) => batch,
                    Err(_) => return StatusCode::BAD_REQUEST,
                };
                let _ = shared.accepted.send(batch);
            }
            status
        }
    }
}
