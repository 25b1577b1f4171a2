//! The HTTP server loop: accepts TCP connections within a bound, serves each with hyper
//! (HTTP/1.1 with upgrades: what load balancers speak to their targets), and stops gracefully.
//!
//! Why not `axum::serve`: it cannot bound what a client holds. Here
//! - a connection must send a request's headers within `HEADER_READ_TIMEOUT_SECS`, and an idle
//!   keep-alive connection is closed after the same time, so slow or silent clients (slow-loris)
//!   cannot pin sockets;
//! - at most `MAX_CONNECTIONS` are open at once, below the process's descriptor limit: beyond
//!   it a new connection gets an immediate 503 and is closed, so the server keeps serving the
//!   connections it has instead of failing `accept` for everyone (`EMFILE`);
//! - each request knows its peer's address (`ConnectInfo`), for the per-address bounds.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::http::Front;

/// Descriptors kept free for everything that is not a client connection (the store's and the
/// broker's connections, files, the listener).
const RESERVED_DESCRIPTORS: u64 = 256;

/// What the accept loop counts, for `/metrics`.
#[derive(Default, Debug)]
pub struct ConnectionStats {
    /// TCP connections open now.
    pub open: AtomicUsize,
    /// Connections refused at accept because `MAX_CONNECTIONS` were open.
    pub refused: AtomicU64,
}

#[derive(Clone, Copy, Debug)]
pub struct ServerLimits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
}

/// Raises the soft descriptor limit to the hard one (servers need many sockets) and returns
/// the most connections the process can hold with a reserve left: the default of
/// `MAX_CONNECTIONS`.
pub fn connection_capacity() -> usize {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the struct we pass, nothing else.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
                if limit.rlim_cur < limit.rlim_max {
                    let raised = libc::rlimit {
                        rlim_cur: limit.rlim_max,
                        rlim_max: limit.rlim_max,
                    };
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                        limit = raised;
                    }
                }
                // rlim_t is not u64 on every platform.
                #[allow(clippy::unnecessary_cast)]
                let usable = (limit.rlim_cur as u64).saturating_sub(RESERVED_DESCRIPTORS);
                return usize::try_from(usable.max(16)).unwrap_or(usize::MAX);
            }
        }
    }
    65_536
}

/// Serves `front` (the router and what surrounds it) on `listener` until `signal` resolves,
/// then stops accepting, lets hyper connections finish their requests, and returns once they
/// have (upgraded WebSockets are detached and end on their own shutdown signal).
pub async fn serve(
    listener: TcpListener,
    front: Front,
    limits: ServerLimits,
    stats: Arc<ConnectionStats>,
    signal: impl Future<Output = ()> + Send,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    // Every connection task holds a receiver; `closed()` resolves when the last is gone.
    let (done_tx, done_rx) = watch::channel(());
    tokio::pin!(signal);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Per-connection errors (a reset before accept) or descriptor exhaustion:
                    // never spin on them.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        if stats.open.load(Ordering::Acquire) >= limits.max_connections {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream));
            continue;
        }
        let _ = stream.set_nodelay(true);
        stats.open.fetch_add(1, Ordering::AcqRel);
        let guard = OpenGuard(stats.clone());
        let front = front.clone();
        let stop = stop_rx.clone();
        let done = done_rx.clone();
        tokio::spawn(async move {
            serve_connection(stream, peer, front, limits, stop).await;
            drop(guard);
            drop(done);
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    drop(done_rx);
    done_tx.closed().await;
}

/// Decrements the open count when a connection ends.
struct OpenGuard(Arc<ConnectionStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    front: Front,
    limits: ServerLimits,
    mut stop: watch::Receiver<bool>,
) {
    let service = front.map_request(move |request: axum::http::Request<Incoming>| {
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = TowerToHyperService::new(service);
    // HTTP/1.1 only: sniffing for HTTP/2 (as hyper-util's `auto` builder does) would wait for a
    // silent client's first bytes with no timeout at all. The header timer starts as soon as
    // the connection is served, and again while a keep-alive connection waits for its next
    // request.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let connection = builder
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, %peer, "connection ended with an error");
                }
                return;
            }
            changed = stop.changed(), if !*stop.borrow() => {
                if changed.is_err() || *stop.borrow() {
                    connection.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Answers a connection over the bound with a short 503 and closes it, without reading.
async fn refuse(mut stream: TcpStream) {
    const BODY: &str = "{\"errors\":[{\"message\":\"the server holds as many connections as it may (MAX_CONNECTIONS); retry shortly\",\"extensions\":{\"code\":\"TOO_MANY_CONNECTIONS\"}}]}";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
