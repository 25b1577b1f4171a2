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
//! Each operation runs in its own task and writes into the connection's bounded outbox; a
//! client that stops reading makes its operations wait, and their broker subscriptions then
//! lag and resynchronise from the store instead of queueing without bound.

use std::collections::HashMap;
use std::time::Duration;

use async_graphql::{Request, Response};
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures::{SinkExt, StreamExt};
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::AbortHandle;

use crate::auth::{token_from_init_payload, Authenticator, Principal};
use crate::graphql::error::{TOO_MANY_SUBSCRIPTIONS, UNAUTHENTICATED};
use crate::graphql::ScorelineSchema;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
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
    pub max_subscriptions: usize,
}

/// Everything a connection needs.
#[derive(Clone)]
pub struct WsContext {
    pub schema: ScorelineSchema,
    pub auth: Authenticator,
    pub settings: WsSettings,
    /// Flips to true when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

/// Frames waiting for the socket, per connection; operations wait when it is full.
const OUTBOX: usize = 256;

#[derive(Deserialize)]
struct ClientMessage {
    #[serde(rename = "type")]
    kind: String,
    id: Option<String>,
    payload: Option<Value>,
}

enum Out {
    Text(String),
    Close(u16, &'static str),
}

fn close(code: u16, reason: &'static str) -> Out {
    Out::Close(code, reason)
}

/// Serves one upgraded connection until either side closes it.
pub async fn serve(
    socket: WebSocket,
    protocol: Protocol,
    upgrade_principal: Option<Principal>,
    ctx: WsContext,
) {
    let (mut sink, mut stream) = socket.split();
    let (out_tx, mut out_rx) = mpsc::channel::<Out>(OUTBOX);

    let writer = tokio::spawn(async move {
        let mut batch = Vec::with_capacity(64);
        'outer: while out_rx.recv_many(&mut batch, 64).await > 0 {
            for out in batch.drain(..) {
                let result = match out {
                    Out::Text(text) => sink.feed(Message::Text(Utf8Bytes::from(text))).await,
                    Out::Close(code, reason) => {
                        let _ = sink
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: Utf8Bytes::from_static(reason),
                            })))
                            .await;
                        break 'outer;
                    }
                };
                if result.is_err() {
                    break 'outer;
                }
            }
            if sink.flush().await.is_err() {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut conn = Connection {
        protocol,
        ctx: ctx.clone(),
        out: out_tx.clone(),
        principal: upgrade_principal,
        init_token: None,
        acknowledged: false,
        init_received: false,
        operations: HashMap::new(),
        generation: 0,
    };
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<(String, u64)>();
    let init_deadline = tokio::time::sleep(ctx.settings.init_timeout);
    tokio::pin!(init_deadline);
    let mut keepalive = tokio::time::interval(ctx.settings.keepalive);
    keepalive.tick().await;
    let mut shutdown = ctx.shutdown.clone();

    loop {
        tokio::select! {
            incoming = stream.next() => {
                let Some(Ok(message)) = incoming else { break };
                let text = match message {
                    Message::Text(text) => text,
                    Message::Close(_) => break,
                    Message::Ping(_) | Message::Pong(_) => continue,
                    Message::Binary(_) => {
                        let _ = out_tx.send(close(4400, "binary messages are not supported")).await;
                        break;
                    }
                };
                // Forget operations that already ended before acting on the client's message: a
                // client may reuse an id (or take a freed slot) as soon as it saw `complete`.
                while let Ok((id, generation)) = done_rx.try_recv() {
                    conn.reap(&id, generation);
                }
                if conn.handle(text.as_str(), &done_tx).await.is_break() {
                    break;
                }
            }
            () = &mut init_deadline, if !conn.init_received => {
                let _ = out_tx.send(close(4408, "Connection initialisation timeout")).await;
                break;
            }
            _ = keepalive.tick(), if conn.acknowledged => {
                let frame = match protocol {
                    Protocol::GraphqlTransportWs => json!({"type": "ping"}),
                    Protocol::LegacyGraphqlWs => json!({"type": "ka"}),
                };
                if out_tx.try_send(Out::Text(frame.to_string())).is_err() {
                    // The outbox is full: the client is not reading; a keep-alive can wait.
                }
            }
            Some((id, generation)) = done_rx.recv() => conn.reap(&id, generation),
            _ = shutdown.changed() => {
                let _ = out_tx.send(close(1001, "server shutting down")).await;
                break;
            }
        }
    }
    for (_, (_, handle)) in conn.operations.drain() {
        handle.abort();
    }
    drop(out_tx);
    drop(conn);
    let _ = writer.await;
}

struct Connection {
    protocol: Protocol,
    ctx: WsContext,
    out: mpsc::Sender<Out>,
    principal: Option<Principal>,
    /// The `connection_init` credential the principal came from, checked again before every
    /// operation: a connection outlives its token, and an expired token must not keep
    /// authorizing mutations.
    init_token: Option<String>,
    acknowledged: bool,
    init_received: bool,
    /// Running operations by client id, with a generation so a finished task never removes a
    /// newer operation that reused its id.
    operations: HashMap<String, (u64, AbortHandle)>,
    generation: u64,
}

type Flow = std::ops::ControlFlow<()>;
const CONTINUE: Flow = std::ops::ControlFlow::Continue(());
const BREAK: Flow = std::ops::ControlFlow::Break(());

impl Connection {
    /// Forgets an operation that ended on its own, unless its id now names a newer one.
    fn reap(&mut self, id: &str, generation: u64) {
        if self
            .operations
            .get(id)
            .is_some_and(|(g, _)| *g == generation)
        {
            self.operations.remove(id);
        }
    }

    async fn send(&self, value: Value) {
        let _ = self.out.send(Out::Text(value.to_string())).await;
    }

    async fn close(&self, code: u16, reason: &'static str) -> Flow {
        let _ = self.out.send(close(code, reason)).await;
        BREAK
    }

    async fn handle(&mut self, text: &str, done: &mpsc::UnboundedSender<(String, u64)>) -> Flow {
        let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
            return self
                .close(4400, "Invalid message: not a JSON object with a type")
                .await;
        };
        let legacy = self.protocol == Protocol::LegacyGraphqlWs;
        match (message.kind.as_str(), legacy) {
            ("connection_init", _) => self.init(message.payload).await,
            ("ping", false) => {
                let mut pong = json!({"type": "pong"});
                if let Some(p) = message.payload {
                    pong["payload"] = p;
                }
                self.send(pong).await;
                CONTINUE
            }
            ("pong", false) => CONTINUE,
            ("subscribe", false) | ("start", true) => {
                let Some(id) = message.id.filter(|id| !id.is_empty()) else {
                    return self
                        .close(4400, "Invalid message: an operation needs an id")
                        .await;
                };
                let Some(payload) = message.payload else {
                    return self
                        .close(4400, "Invalid message: an operation needs a payload")
                        .await;
                };
                self.start(id, payload, done).await
            }
            ("complete", false) | ("stop", true) => {
                if let Some((_, handle)) = message.id.and_then(|id| self.operations.remove(&id)) {
                    handle.abort();
                }
                CONTINUE
            }
            ("connection_terminate", true) => BREAK,
            _ => self.close(4400, "Invalid message: unknown type").await,
        }
    }

    async fn init(&mut self, payload: Option<Value>) -> Flow {
        if self.init_received {
            if self.protocol == Protocol::LegacyGraphqlWs {
                return CONTINUE;
            }
            return self.close(4429, "Too many initialisation requests").await;
        }
        self.init_received = true;
        let token = payload.as_ref().and_then(token_from_init_payload);
        if let Some(token) = token {
            match self.ctx.auth.authenticate(Some(&token)).await {
                Ok(principal) => {
                    self.principal = principal;
                    self.init_token = Some(token);
                }
                Err(error) => {
                    tracing::info!(%error, "websocket connection_init refused");
                    return match self.protocol {
                        Protocol::GraphqlTransportWs => self.close(4403, "Forbidden").await,
                        Protocol::LegacyGraphqlWs => {
                            self.send(json!({
                                "type": "connection_error",
                                "payload": {"message": error.to_string(), "extensions": {"code": UNAUTHENTICATED}},
                            }))
                            .await;
                            self.close(4403, "Forbidden").await
                        }
                    };
                }
            }
        }
        self.acknowledged = true;
        self.send(json!({"type": "connection_ack"})).await;
        if self.protocol == Protocol::LegacyGraphqlWs {
            self.send(json!({"type": "ka"})).await;
        }
        CONTINUE
    }

    async fn start(
        &mut self,
        id: String,
        payload: Value,
        done: &mpsc::UnboundedSender<(String, u64)>,
    ) -> Flow {
        if !self.acknowledged {
            return self.close(4401, "Unauthorized").await;
        }
        if self.operations.contains_key(&id) {
            match self.protocol {
                Protocol::GraphqlTransportWs => {
                    return self
                        .close(4409, "Subscriber for this id already exists")
                        .await;
                }
                // subscriptions-transport-ws replaces an operation that reuses an id.
                Protocol::LegacyGraphqlWs => {
                    if let Some((_, handle)) = self.operations.remove(&id) {
                        handle.abort();
                    }
                }
            }
        }
        let request: Request = match serde_json::from_value(payload) {
            Ok(r) => r,
            Err(_) => {
                return self
                    .close(
                        4400,
                        "Invalid message: the payload is not a GraphQL request",
                    )
                    .await
            }
        };
        if let Some(token) = &self.init_token {
            if let Err(error) = self.ctx.auth.authenticate(Some(token)).await {
                // Typically expired since `connection_init`: refuse the operation, as HTTP
                // refuses a request with such a token, rather than run it anonymously.
                let errors = json!([{
                    "message": error.to_string(),
                    "extensions": {"code": UNAUTHENTICATED},
                }]);
                self.send(json!({"type": "error", "id": id, "payload": errors}))
                    .await;
                return CONTINUE;
            }
        }
        if self.operations.len() >= self.ctx.settings.max_subscriptions {
            let errors = json!([{
                "message": format!(
                    "at most {} operations may run on one connection",
                    self.ctx.settings.max_subscriptions
                ),
                "extensions": {"code": TOO_MANY_SUBSCRIPTIONS},
            }]);
            self.send(json!({"type": "error", "id": id, "payload": errors}))
                .await;
            return CONTINUE;
        }
        let mut request = request;
        if let Some(p) = &self.principal {
            request = request.data(p.clone());
        }
        self.generation += 1;
        let generation = self.generation;
        let task = tokio::spawn(run_operation(
            self.ctx.schema.clone(),
            request,
            id.clone(),
            self.protocol,
            self.out.clone(),
            done.clone(),
            generation,
        ));
        self.operations
            .insert(id, (generation, task.abort_handle()));
        CONTINUE
    }
}

async fn run_operation(
    schema: ScorelineSchema,
    request: Request,
    id: String,
    protocol: Protocol,
    out: mpsc::Sender<Out>,
    done: mpsc::UnboundedSender<(String, u64)>,
    generation: u64,
) {
    let mut responses = schema.execute_stream(request);
    let mut first = true;
    let next_type = match protocol {
        Protocol::GraphqlTransportWs => "next",
        Protocol::LegacyGraphqlWs => "data",
    };
    let mut last = None;
    while let Some(response) = responses.next().await {
        if first && is_request_error(&response) {
            // Refused before anything ran (parse, validation, NOT_FOUND): the operation ends
            // with `error` and no `complete`.
            last = Some(json!({"type": "error", "id": id, "payload": response.errors}));
            break;
        }
        first = false;
        let frame = json!({"type": next_type, "id": id, "payload": response});
        if out.send(Out::Text(frame.to_string())).await.is_err() {
            return;
        }
    }
    let last = last.unwrap_or_else(|| json!({"type": "complete", "id": id}));
    // The connection forgets the operation before the client can see that it ended, so the
    // client may reuse its id (or its slot) right after the last frame without a spurious 4409
    // or TOO_MANY_SUBSCRIPTIONS.
    let _ = done.send((id, generation));
    let _ = out.send(Out::Text(last.to_string())).await;
}

fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty() && matches!(response.data, async_graphql::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
