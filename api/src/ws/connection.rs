//! One WebSocket connection's state: its credential, its running operations by client id, and
//! what each client message does to them.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::{ErrorExtensions as _, Request};
use axum::extract::ws::Utf8Bytes;
use futures::{FutureExt as _, StreamExt};
use serde_json::{json, Value};
use tokio::task::AbortHandle;

use super::{ClientMessage, Protocol, WsContext};
use crate::auth::{token_from_init_message, AuthError, Principal};
use crate::fanout::{
    self, complete_frame, is_request_error, json_frame, next_type, refusal_frames, MemberSpec,
    Membership, Outbox, Pushed,
};
use crate::graphql::error::{coded, TOO_MANY_SUBSCRIPTIONS, UNAUTHENTICATED};
use crate::metrics::Metrics;

/// How an operation runs.
enum Running {
    /// In a shared execution.
    Shared(Membership),
    /// In a task of its own.
    Task(AbortHandle),
}

struct Operation {
    generation: u64,
    running: Running,
    subscription: bool,
}

pub(super) struct Connection {
    protocol: Protocol,
    ctx: WsContext,
    outbox: Arc<Outbox>,
    pub(super) principal: Option<Principal>,
    /// The `connection_init` credential the principal came from, checked again before every
    /// operation: a connection outlives its token, and an expired token must not keep
    /// authorizing mutations.
    init_token: Option<String>,
    pub(super) acknowledged: bool,
    pub(super) init_received: bool,
    /// Running operations by client id, with a generation so a finished operation never
    /// removes a newer one that reused its id.
    operations: HashMap<String, Operation>,
    /// Operations started so far.
    pub(super) generation: u64,
}

pub(super) type Flow = std::ops::ControlFlow<()>;
const CONTINUE: Flow = std::ops::ControlFlow::Continue(());
const BREAK: Flow = std::ops::ControlFlow::Break(());

impl Connection {
    pub(super) fn new(
        protocol: Protocol,
        ctx: WsContext,
        outbox: Arc<Outbox>,
        principal: Option<Principal>,
    ) -> Self {
        Self {
            protocol,
            ctx,
            outbox,
            principal,
            init_token: None,
            acknowledged: false,
            init_received: false,
            operations: HashMap::new(),
            generation: 0,
        }
    }

    /// Forgets an operation that ended on its own, unless its id now names a newer one.
    pub(super) fn reap(&mut self, id: &str, generation: u64) {
        if self
            .operations
            .get(id)
            .is_some_and(|op| op.generation == generation)
        {
            if let Some(op) = self.operations.remove(id) {
                self.stop(op);
            }
        }
    }

    /// Stops an operation (a no-op for one that already ended).
    fn stop(&self, op: Operation) {
        match op.running {
            Running::Shared(membership) => self.ctx.fanout.leave(membership),
            Running::Task(handle) => handle.abort(),
        }
        if op.subscription {
            Metrics::add(&self.ctx.metrics.subscriptions, -1);
        }
    }

    pub(super) fn stop_all(&mut self) {
        let operations: Vec<Operation> = self.operations.drain().map(|(_, op)| op).collect();
        for op in operations {
            self.stop(op);
        }
    }

    fn send(&self, value: Value) {
        self.outbox.push_frame(Utf8Bytes::from(value.to_string()));
    }

    /// Ends an operation that never started with `error` (see [`refusal_frames`]).
    fn refuse(&self, id: &str, error: async_graphql::Error) {
        let errors = [error.into_server_error(async_graphql::Pos::default())];
        for frame in refusal_frames(self.protocol, id, &errors)
            .into_iter()
            .flatten()
        {
            self.outbox.push_frame(frame);
        }
    }

    fn close(&self, code: u16, reason: &'static str) -> Flow {
        self.outbox.close(code, reason);
        BREAK
    }

    pub(super) async fn handle(&mut self, text: &str) -> Flow {
        let Ok(message) = serde_json::from_str::<ClientMessage>(text) else {
            return self.close(4400, "Invalid message: not a JSON object with a type");
        };
        let legacy = self.protocol == Protocol::LegacyGraphqlWs;
        match (message.kind.as_str(), legacy) {
            ("connection_init", _) => self.init(text).await,
            ("ping", false) => {
                let mut pong = json!({"type": "pong"});
                if let Some(p) = message.payload {
                    pong["payload"] = p;
                }
                self.send(pong);
                CONTINUE
            }
            ("pong", false) => CONTINUE,
            ("subscribe", false) | ("start", true) => {
                let Some(id) = message.id.filter(|id| !id.is_empty()) else {
                    return self.close(4400, "Invalid message: an operation needs an id");
                };
                let Some(payload) = message.payload else {
                    return self.close(4400, "Invalid message: an operation needs a payload");
                };
                self.start(id, payload).await
            }
            ("complete", false) | ("stop", true) => {
                if let Some(op) = message.id.and_then(|id| self.operations.remove(&id)) {
                    self.stop(op);
                }
                CONTINUE
            }
            ("connection_terminate", true) => BREAK,
            _ => self.close(4400, "Invalid message: unknown type"),
        }
    }

    /// Answers `connection_init` (`text`, the message as received: its credential is read from
    /// it, repeated keys included).
    async fn init(&mut self, text: &str) -> Flow {
        if self.init_received {
            if self.protocol == Protocol::LegacyGraphqlWs {
                return CONTINUE;
            }
            return self.close(4429, "Too many initialisation requests");
        }
        self.init_received = true;
        let token = match token_from_init_message(text) {
            Ok(token) => token,
            Err(error) => return self.refuse_init(error),
        };
        if let Some(token) = token {
            match self.ctx.auth.authenticate(Some(&token)).await {
                Ok(principal) => {
                    self.principal = principal;
                    self.init_token = Some(token);
                }
                Err(error) => return self.refuse_init(error),
            }
        }
        self.acknowledged = true;
        self.send(json!({"type": "connection_ack"}));
        if self.protocol == Protocol::LegacyGraphqlWs {
            self.send(json!({"type": "ka"}));
        }
        CONTINUE
    }

    /// Refuses `connection_init` with an invalid or ambiguous credential.
    fn refuse_init(&self, error: AuthError) -> Flow {
        tracing::info!(%error, "websocket connection_init refused");
        if self.protocol == Protocol::LegacyGraphqlWs {
            self.send(json!({
                "type": "connection_error",
                "payload": {"message": error.to_string(), "extensions": {"code": UNAUTHENTICATED}},
            }));
        }
        self.close(4403, "Forbidden")
    }

    async fn start(&mut self, id: String, payload: Value) -> Flow {
        if !self.acknowledged {
            return self.close(4401, "Unauthorized");
        }
        if self.operations.contains_key(&id) {
            match self.protocol {
                Protocol::GraphqlTransportWs => {
                    return self.close(4409, "Subscriber for this id already exists");
                }
                // subscriptions-transport-ws replaces an operation that reuses an id.
                Protocol::LegacyGraphqlWs => {
                    if let Some(op) = self.operations.remove(&id) {
                        self.stop(op);
                    }
                }
            }
        }
        let mut request: Request = match serde_json::from_value(payload) {
            Ok(r) => r,
            Err(_) => {
                return self.close(
                    4400,
                    "Invalid message: the payload is not a GraphQL request",
                )
            }
        };
        if let Some(token) = &self.init_token {
            if let Err(error) = self.ctx.auth.authenticate(Some(token)).await {
                // Typically expired since `connection_init`: refuse the operation, as HTTP
                // refuses a request with such a token, rather than run it anonymously.
                self.refuse(&id, coded(error.to_string(), UNAUTHENTICATED));
                return CONTINUE;
            }
        }
        // Anonymous operations count against their address's rate, signed-in ones against
        // their subject's.
        let rate = match &self.principal {
            None => self.ctx.admission.by_address.take(&self.ctx.address, 1),
            Some(p) => self.ctx.admission.by_subject.take(&p.subject, 1),
        };
        if let Err(refusal) = rate {
            let error = coded(refusal.message(), refusal.code());
            let retry = refusal.retry_after_secs();
            self.refuse(
                &id,
                error.extend_with(|_, e| e.set("retryAfterSeconds", retry)),
            );
            return CONTINUE;
        }
        if self.operations.len() >= self.ctx.settings.max_subscriptions {
            let message = format!(
                "at most {} operations may run on one connection",
                self.ctx.settings.max_subscriptions
            );
            self.refuse(&id, coded(message, TOO_MANY_SUBSCRIPTIONS));
            return CONTINUE;
        }
        if let Err(error) = self
            .ctx
            .persisted
            .resolve(&mut request, self.principal.is_none())
        {
            let errors = [error.to_server_error()];
            for frame in refusal_frames(self.protocol, &id, &errors)
                .into_iter()
                .flatten()
            {
                self.outbox.push_frame(frame);
            }
            return CONTINUE;
        }
        self.generation += 1;
        let generation = self.generation;
        let analysis = fanout::analyze(&request);
        let subscription = analysis.is_some();
        if subscription {
            Metrics::add(&self.ctx.metrics.subscriptions, 1);
        }
        let running = match analysis {
            Some(analysis) if analysis.shareable => Running::Shared(self.ctx.fanout.join(
                request,
                &analysis,
                self.principal.clone(),
                MemberSpec {
                    outbox: self.outbox.clone(),
                    protocol: self.protocol.into(),
                    id: id.clone(),
                    op: generation,
                },
            )),
            _ => {
                let mut request = request;
                if let Some(p) = &self.principal {
                    request = request.data(p.clone());
                }
                let task = tokio::spawn(run_operation(
                    self.ctx.clone(),
                    request,
                    id.clone(),
                    self.protocol,
                    self.outbox.clone(),
                    generation,
                    subscription,
                ));
                Running::Task(task.abort_handle())
            }
        };
        self.operations.insert(
            id,
            Operation {
                generation,
                running,
                subscription,
            },
        );
        CONTINUE
    }
}

/// Close code for a connection whose operation failed inside the server: 4500, as the
/// graphql-ws reference server closes with it.
const INTERNAL_ERROR_CLOSE: (u16, &str) = (4500, "Internal server error");

/// Runs an operation of its own (see [`execute_operation`]), containing a panic: on
/// graphql-transport-ws the connection is closed with 4500, as the reference server does; the
/// legacy protocol has no such code, so only the operation ends, with an `INTERNAL_SERVER_ERROR`
/// result. Other connections and operations never notice.
pub(super) async fn run_operation(
    ctx: WsContext,
    request: Request,
    id: String,
    protocol: Protocol,
    outbox: Arc<Outbox>,
    generation: u64,
    subscription: bool,
) {
    let run = execute_operation(
        ctx,
        request,
        id.clone(),
        protocol,
        outbox.clone(),
        generation,
        subscription,
    );
    if std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .is_ok()
    {
        return;
    }
    tracing::error!(operation = %id, "a WebSocket operation panicked");
    match protocol {
        Protocol::GraphqlTransportWs => {
            outbox.close(INTERNAL_ERROR_CLOSE.0, INTERNAL_ERROR_CLOSE.1);
        }
        Protocol::LegacyGraphqlWs => {
            outbox.op_ended(id.clone(), generation);
            for frame in refusal_frames(protocol, &id, &[fanout::internal_error()])
                .into_iter()
                .flatten()
            {
                outbox.push_frame(frame);
            }
        }
    }
}

/// Runs an operation that shares no execution: queries and mutations over WebSocket, and
/// subscriptions whose text carries their resume arguments. It waits while its queue is full;
/// a subscription that lags meanwhile catches up from the store.
async fn execute_operation(
    ctx: WsContext,
    request: Request,
    id: String,
    protocol: Protocol,
    outbox: Arc<Outbox>,
    generation: u64,
    subscription: bool,
) {
    let mut responses = ctx.schema.execute_stream(request);
    let mut first = true;
    let mut last = None;
    while let Some(response) = responses.next().await {
        if first && is_request_error(&response) {
            // Refused before anything ran (parse, validation, NOT_FOUND).
            last = Some(refusal_frames(protocol, &id, &response.errors));
            break;
        }
        first = false;
        if subscription {
            Metrics::inc(&ctx.metrics.subscription_executions);
        }
        let payload = serde_json::to_string(&response).unwrap_or_default();
        let frame = json_frame(next_type(protocol), &id, &payload);
        if outbox
            .push_op_waiting(generation, frame, &ctx.metrics)
            .await
            == Pushed::Closed
        {
            return;
        }
    }
    let last = last.unwrap_or_else(|| [Some(complete_frame(&id)), None]);
    // The connection forgets the operation before the client can see that it ended, so the
    // client may reuse its id (or its slot) right after the last frame without a spurious 4409
    // or TOO_MANY_SUBSCRIPTIONS.
    outbox.op_ended(id, generation);
    for frame in last.into_iter().flatten() {
        outbox.push_frame(frame);
    }
}
