//! GraphQL over WebSocket, both subprotocols, on one connection loop:
//!
//! - `graphql-transport-ws` (the graphql-ws library): `connection_init` / `connection_ack`,
//!   `ping` / `pong`, `subscribe`, `next`, `error`, `complete`, and the spec's close codes:
//!   4400 invalid message, 4401 subscribe before ack, 4403 rejected init, 4408 init timeout,
//!   4409 duplicate operation id, 4429 repeated init, 4500 internal error.
//! - `graphql-ws` (legacy subscriptions-transport-ws): `connection_init` / `connection_ack` or
//!   `connection_error`, `start`, `data`, `error`, `complete`, `stop`, `connection_terminate`,
//!   and `ka` keep-alives.
//!
//! A token from `connection_init` is checked again before each operation, so a long-lived
//! connection stops authorizing mutations once its token expires.
//!
//! Liveness is the server's job: every keep-alive interval it sends a protocol keep-alive
//! (`ping` or `ka`) and a WebSocket ping, and a connection from which nothing at all arrives
//! (no message, no pong) for the idle timeout is closed with 1001, so dead mobile connections
//! free their memory in bounded time.
//!
//! Frames go through the connection's [`Outbox`], which a writer task drains. Subscriptions
//! that can share an execution join a shared group ([`crate::fanout::Fanout`]); others (queries and mutations
//! over WebSocket, subscriptions with literal resume arguments) run in a task of their own that
//! waits for room in the outbox. `docs/subscriptions.md` describes the policy for slow clients.
//!
//! # Layout
//! - here: the protocols, settings, and the connection loop (reads, liveness, the close
//!   handshake) with its writer task;
//! - `connection`: a connection's state and its client messages (`connection_init`,
//!   `subscribe`/`start`, `complete`/`stop`), and the operations that run in a task of their own.

mod connection;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::admission::Admission;
use crate::auth::{Authenticator, Principal};
use crate::fanout::{Entry, Fanout, Outbox};
use crate::graphql::persisted::PersistedDocuments;
use crate::graphql::ScorelineSchema;
use crate::metrics::Metrics;
use connection::Connection;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// `graphql-transport-ws`
    GraphqlTransportWs,
    /// `graphql-ws`, the legacy subscriptions-transport-ws protocol.
    LegacyGraphqlWs,
}

impl Protocol {
    /// The subprotocols we speak, most preferred first.
    pub const ALL: [&'static str; 2] = ["graphql-transport-ws", "graphql-ws"];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::GraphqlTransportWs => Self::ALL[0],
            Protocol::LegacyGraphqlWs => Self::ALL[1],
        }
    }

    /// The protocol to speak for a `Sec-WebSocket-Protocol` offer: our most preferred one the
    /// client offers, whatever the offer's order. This is the rule axum's
    /// `WebSocketUpgrade::protocols(Protocol::ALL)` applies to pick the protocol it announces in
    /// the handshake, so the protocol spoken is always the one announced.
    pub fn from_header(value: &str) -> Option<Protocol> {
        let offered: Vec<&str> = value.split(',').map(str::trim).collect();
        [Protocol::GraphqlTransportWs, Protocol::LegacyGraphqlWs]
            .into_iter()
            .find(|p| offered.contains(&p.name()))
    }
}

/// Per-connection settings.
#[derive(Clone)]
pub struct WsSettings {
    pub init_timeout: Duration,
    pub keepalive: Duration,
    /// A connection from which nothing arrives for this long is closed.
    pub idle_timeout: Duration,
    pub max_subscriptions: usize,
    /// Log one line when a session ends (`ACCESS_LOG`).
    pub access_log: bool,
}

/// Everything a connection needs.
#[derive(Clone)]
pub struct WsContext {
    pub schema: ScorelineSchema,
    pub auth: Authenticator,
    pub settings: WsSettings,
    pub fanout: Arc<Fanout>,
    pub metrics: Arc<Metrics>,
    pub persisted: Arc<PersistedDocuments>,
    pub admission: Arc<Admission>,
    /// The client's address, for its rate.
    pub address: IpAddr,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// A close without a status code: how the server ends a connection the client ended.
const NO_STATUS: u16 = 1005;

/// How long a closing connection may take to send its close frame before it is dropped.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

#[derive(Deserialize)]
pub(crate) struct ClientMessage {
    #[serde(rename = "type")]
    pub(crate) kind: String,
    pub(crate) id: Option<String>,
    pub(crate) payload: Option<Value>,
}

/// Whether a read failed on a message or frame over the configured size.
fn is_too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    matches!(
        error
            .source()
            .and_then(|e| e.downcast_ref::<tungstenite::Error>()),
        Some(tungstenite::Error::Capacity(_))
    )
}

/// Writes what the outbox holds, batching the frames queued meanwhile into one flush.
async fn write_loop(mut sink: SplitSink<WebSocket, Message>, outbox: Arc<Outbox>) {
    let mut batch = Vec::new();
    loop {
        outbox.next_batch(&mut batch).await;
        for entry in batch.drain(..) {
            let message = match entry {
                Entry::Frame(frame) | Entry::Op { frame, .. } => Message::Text(frame),
                Entry::Ping => Message::Ping(Bytes::new()),
                Entry::Close(code, reason) => {
                    // 1005 ("no status") is never sent as a code: it is a close frame without one.
                    let frame = (code != NO_STATUS).then(|| CloseFrame {
                        code,
                        reason: Utf8Bytes::from_static(reason),
                    });
                    let _ = sink.send(Message::Close(frame)).await;
                    return;
                }
            };
            if sink.feed(message).await.is_err() {
                return;
            }
        }
        if sink.flush().await.is_err() {
            return;
        }
        if batch.capacity() > 64 {
            // A burst is over: an idle connection keeps no large buffer.
            batch = Vec::new();
        }
    }
}

/// Serves one upgraded connection until either side closes it.
pub async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    upgrade_principal: Option<Principal>,
    ctx: WsContext,
) {
    Metrics::add(&ctx.metrics.ws_connections, 1);
    let opened = Instant::now();
    let (sink, mut stream) = socket.split();
    let outbox = Arc::new(Outbox::new(ctx.metrics.clone()));
    let mut writer = tokio::spawn(write_loop(sink, outbox.clone()));

    let mut conn = Connection::new(protocol, ctx.clone(), outbox.clone(), upgrade_principal);
    let init_deadline = tokio::time::sleep(ctx.settings.init_timeout);
    tokio::pin!(init_deadline);
    let idle = tokio::time::sleep(ctx.settings.idle_timeout);
    tokio::pin!(idle);
    let mut keepalive = tokio::time::interval(ctx.settings.keepalive);
    keepalive.tick().await;
    let mut shutdown = ctx.shutdown.clone();
    let mut writer_ended = false;
    // The client ended the connection (close frame, terminate, or the socket went away).
    let mut client_closed = false;
    // The client sent a close frame, which must be answered.
    let mut close_received = false;

    loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else {
                    if incoming.as_ref().is_some_and(|r| r.as_ref().is_err_and(is_too_big)) {
                        // Over MAX_BODY_BYTES: tell the client why (1009) rather than drop
                        // the socket, which it would see as 1006.
                        outbox.close(1009, "message too big");
                        break;
                    }
                    client_closed = true;
                    break;
                };
                // Anything from the client, a pong included, proves it alive.
                idle.as_mut().reset(Instant::now() + ctx.settings.idle_timeout);
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => {
                        client_closed = true;
                        close_received = true;
                        break;
                    }
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        outbox.close(4400, "binary messages are not supported");
                        break;
                    }
                };
                // Forget operations that already ended before acting on the client's message: a
                // client may reuse an id (or take a freed slot) as soon as it saw `complete`.
                for (id, generation) in outbox.take_ended() {
                    conn.reap(&id, generation);
                }
                if conn.handle(text.as_str()).await.is_break() {
                    break;
                }
            }
            () = &mut init_deadline, if !conn.init_received => {
                outbox.close(4408, "Connection initialisation timeout");
                break;
            }
            () = &mut idle => {
                Metrics::inc(&ctx.metrics.idle_closes);
                outbox.close(1001, "no answer to pings");
                break;
            }
            _ = keepalive.tick(), if conn.acknowledged => {
                let frame = match protocol {
                    Protocol::GraphqlTransportWs => "{\"type\":\"ping\"}",
                    Protocol::LegacyGraphqlWs => "{\"type\":\"ka\"}",
                };
                // Clients answer a WebSocket ping in their WebSocket stack even when their
                // GraphQL client ignores keep-alives (legacy clients never answer `ka`).
                outbox.push_frame(Utf8Bytes::from_static(frame));
                outbox.push_ping();
            }
            () = outbox.ended() => {
                for (id, generation) in outbox.take_ended() {
                    conn.reap(&id, generation);
                }
            }
            () = outbox.closed() => break,
            _ = &mut writer => {
                writer_ended = true;
                break;
            }
            _ = shutdown.changed() => {
                outbox.close(1001, "server shutting down");
                break;
            }
        }
    }
    conn.stop_all();
    if ctx.settings.access_log {
        tracing::info!(
            target: "access",
            protocol = protocol.name(),
            subject = conn.principal.as_ref().map_or("", |p| p.subject.as_str()),
            operations = conn.generation,
            duration_ms = opened.elapsed().as_millis() as u64,
            ended_by = if client_closed { "client" } else { "server" },
            "websocket session"
        );
    }
    drop(conn);
    if close_received && !writer_ended {
        // The client closed: its close frame is answered with the same code (tungstenite
        // queues the echo when it reads the close, and sends it on the next read), and the
        // socket is released at once. Frames still queued are of no use to it.
        writer.abort();
        let _ = tokio::time::timeout(CLOSE_GRACE, stream.next()).await;
        writer_ended = true;
    }
    if !writer_ended {
        outbox.close(NO_STATUS, "");
        // A slow consumer gets until the idle timeout to read what was written before its
        // close, then the close itself (it may just have been busy); others get a short grace.
        let grace = if outbox.is_slow_close() {
            ctx.settings.idle_timeout
        } else {
            CLOSE_GRACE
        };
        if tokio::time::timeout(grace, &mut writer).await.is_err() {
            // The client does not read: drop the socket without the close frame.
            writer.abort();
        }
    }
    if !client_closed {
        // The closing handshake: the client answers our close frame with its own (a socket
        // dropped at once could reset before the client has read the close).
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(message)) = stream.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        })
        .await;
    }
    Metrics::add(&ctx.metrics.ws_connections, -1);
}

#[cfg(test)]
mod tests {
    use super::connection::run_operation;
    use super::*;
    use async_graphql::Request;

    #[test]
    fn the_preferred_protocol_is_chosen_whatever_the_order_of_the_offer() {
        for offer in [
            "graphql-transport-ws",
            "graphql-ws, graphql-transport-ws",
            "mqtt,graphql-ws,graphql-transport-ws",
        ] {
            assert_eq!(
                Protocol::from_header(offer),
                Some(Protocol::GraphqlTransportWs),
                "{offer}"
            );
        }
    }

    #[test]
    fn the_legacy_protocol_is_chosen_when_it_is_the_only_one_offered() {
        assert_eq!(
            Protocol::from_header("mqtt, graphql-ws"),
            Some(Protocol::LegacyGraphqlWs)
        );
    }

    #[test]
    fn an_offer_without_a_graphql_protocol_is_refused() {
        for offer in ["", "mqtt", "graphql", "graphql-ws-extra"] {
            assert_eq!(Protocol::from_header(offer), None, "{offer}");
        }
    }

    fn context() -> WsContext {
        let metrics = Arc::new(Metrics::default());
        let schema = crate::test_support::panicking_schema();
        WsContext {
            schema: schema.clone(),
            auth: Authenticator::new(crate::auth::AuthConfig {
                jwt_secret: Some("ws-unit-test-secret-0123456789abcdef".into()),
                ..Default::default()
            })
            .unwrap(),
            settings: WsSettings {
                init_timeout: Duration::from_secs(3),
                keepalive: Duration::from_secs(15),
                idle_timeout: Duration::from_secs(45),
                max_subscriptions: 10,
                access_log: false,
            },
            fanout: Arc::new(Fanout::new(schema, metrics.clone())),
            metrics,
            persisted: Arc::new(PersistedDocuments::new(0)),
            admission: Arc::new(Admission {
                streams: crate::admission::Streams::new(0, 0),
                by_address: crate::admission::RateLimiter::new(0, 1),
                by_subject: crate::admission::RateLimiter::new(0, 1),
                trusted_proxy_hops: 0,
            }),
            address: [127, 0, 0, 1].into(),
            shutdown: watch::channel(false).1,
        }
    }

    #[tokio::test]
    async fn an_operation_that_panics_closes_with_4500_or_ends_alone_on_the_legacy_protocol() {
        let query = format!(
            "subscription {{ matchUpdated(id: \"{}\", sinceVersion: 0) {{ version }} }}",
            crate::test_support::PANICKING_MATCH
        );
        for protocol in [Protocol::GraphqlTransportWs, Protocol::LegacyGraphqlWs] {
            let ctx = context();
            let outbox = Arc::new(Outbox::new(ctx.metrics.clone()));
            run_operation(
                ctx,
                Request::new(query.clone()),
                "p".into(),
                protocol,
                outbox.clone(),
                1,
                true,
            )
            .await;
            let mut batch = Vec::new();
            outbox.next_batch(&mut batch).await;
            let kinds: Vec<String> = batch
                .iter()
                .map(|e| match e {
                    Entry::Close(code, _) => format!("close {code}"),
                    Entry::Frame(f) | Entry::Op { frame: f, .. } => f.to_string(),
                    Entry::Ping => "ping".into(),
                })
                .collect();
            match protocol {
                Protocol::GraphqlTransportWs => assert_eq!(kinds, ["close 4500"]),
                Protocol::LegacyGraphqlWs => {
                    assert!(kinds[0].contains("INTERNAL_SERVER_ERROR"), "{kinds:?}");
                    assert_eq!(kinds[1], "{\"type\":\"complete\",\"id\":\"p\"}");
                    assert_eq!(outbox.take_ended(), vec![("p".to_string(), 1)]);
                }
            }
        }
    }
}
