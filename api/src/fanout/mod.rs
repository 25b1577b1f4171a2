//! Subscription fan-out: how a change becomes frames on sockets.
//!
//! - [`Outbox`]: one per WebSocket connection, the ordered queue its writer task drains, with a
//!   bound per subscription. A state subscription (`matchUpdated`, `matchesUpdated`) that falls
//!   behind is conflated: its newest queued frame is replaced by the newer state, so a slow client
//!   gets the newest state and never a backlog. An event subscription (`matchEvents`) that
//!   overflows closes the connection with 1013 ([`SLOW_CONSUMER_CLOSE`]); the client resumes
//!   with `afterSeq`.
//! - [`Fanout`]: shared executions. Subscribers whose operation, variables (resume arguments
//!   aside) and auth scope are the same share one [`Group`]: one execution of the operation per
//!   change, one serialization of its payload, and one frame per distinct (protocol, operation
//!   id), written to every socket. Resume arguments (`sinceVersion`, `afterSeq`) are served per
//!   subscriber by a replay-only execution; the subscriber then joins the shared stream, which
//!   it has been buffering meanwhile, from the first change the replay did not cover.
//!
//! Executions report the position of each item (a state's `version`, an event's `seq`)
//! through a [`PositionTap`] in the request data, which is how replays and shared streams meet
//! without a gap or a repeat.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::parser::types::{DocumentOperations, OperationType, Selection};
use async_graphql::{Name, Request, Response, Value};
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;
use tokio::sync::Notify;
use tokio::task::AbortHandle;

use crate::auth::Principal;
use crate::graphql::ScorelineSchema;
use crate::metrics::Metrics;
use crate::ws::Protocol;

/// Close code for a connection whose event subscription overflowed its queue: 1013 "Try Again
/// Later", which clients (the graphql-ws reference client included) treat as retryable.
pub const SLOW_CONSUMER_CLOSE: (u16, &str) = (1013, "slow consumer: resubscribe with afterSeq");
/// Frames one subscription may have queued before its policy applies: a burst of changes (a
/// stream-handler batch after an outage) fits, a client that stopped reading does not.
pub const SUBSCRIPTION_QUEUE: u32 = 256;
/// Frames a connection may have queued in all; beyond it the client is not reading at all.
const CONNECTION_QUEUE: usize = 4096;
/// Shared frames a subscriber buffers while its replay runs.
const REPLAY_BUFFER: usize = 4096;

/// What a subscription does when its client falls behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Policy {
    /// State subscriptions: keep only the newest state.
    Conflate,
    /// Event subscriptions (and anything unknown): never drop; close the connection instead.
    CloseOnOverflow,
}

/// An entry of an outbox, in the order it goes on the wire.
pub enum Entry {
    /// A protocol frame (ack, pong, error, complete, keep-alive).
    Frame(Utf8Bytes),
    /// A subscription's `next`/`data` frame.
    Op {
        op: u64,
        frame: Utf8Bytes,
    },
    /// A WebSocket ping (liveness for clients that do not answer protocol pings).
    Ping,
    Close(u16, &'static str),
}

#[derive(Default)]
struct OutboxInner {
    queue: VecDeque<Entry>,
    /// Frames queued per operation (by generation); only operations with frames queued.
    per_op: Vec<(u64, u32)>,
    /// A close is queued: nothing more is accepted.
    closing: bool,
    /// The close is for a slow consumer.
    slow: bool,
    /// Operations that ended on their own (`id`, generation), for the connection to forget.
    ended: Vec<(String, u64)>,
}

/// A connection's outgoing queue, shared by its operations and drained by its writer.
#[derive(Default)]
pub struct Outbox {
    inner: Mutex<OutboxInner>,
    /// Wakes the writer.
    notify: Notify,
    /// Wakes operations waiting for room.
    drained: Notify,
    /// Wakes the connection loop when a close is queued.
    closing: Notify,
    /// Wakes the connection loop when an operation ended on its own.
    ended: Notify,
}

/// The result of queueing a subscription frame.
#[derive(Debug, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    /// Replaced an older state of the same subscription.
    Conflated,
    /// The connection is closing (now or already).
    Closed,
}

impl OutboxInner {
    /// Frames of operation `op` queued now.
    fn queued(&self, op: u64) -> u32 {
        self.per_op
            .iter()
            .find(|(o, _)| *o == op)
            .map_or(0, |(_, n)| *n)
    }
}

impl Outbox {
    fn lock(&self) -> MutexGuard<'_, OutboxInner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a protocol frame. False when the connection is closing.
    pub fn push_frame(&self, frame: Utf8Bytes) -> bool {
        self.push_entry(Entry::Frame(frame))
    }

    /// Queues a WebSocket ping.
    pub fn push_ping(&self) -> bool {
        self.push_entry(Entry::Ping)
    }

    fn push_entry(&self, entry: Entry) -> bool {
        let mut inner = self.lock();
        if inner.closing {
            return false;
        }
        if inner.queue.len() >= CONNECTION_QUEUE {
            Self::close_slow(&mut inner);
            drop(inner);
            self.wake_closed();
            return false;
        }
        inner.queue.push_back(entry);
        drop(inner);
        self.notify.notify_one();
        true
    }

    /// Queues a subscription frame under the subscription's policy.
    pub fn push_op(&self, op: u64, policy: Policy, frame: Utf8Bytes, metrics: &Metrics) -> Pushed {
        let mut inner = self.lock();
        if inner.closing {
            return Pushed::Closed;
        }
        if inner.queued(op) >= SUBSCRIPTION_QUEUE {
            match policy {
                Policy::Conflate => {
                    // The newest queued frame of this subscription takes the newer state; the
                    // order of its states on the wire still rises.
                    if let Some(slot) = inner.queue.iter_mut().rev().find_map(|e| match e {
                        Entry::Op { op: o, frame } if *o == op => Some(frame),
                        _ => None,
                    }) {
                        *slot = frame;
                    }
                    Metrics::inc(&metrics.frames_conflated);
                    return Pushed::Conflated;
                }
                Policy::CloseOnOverflow => {
                    Self::close_slow(&mut inner);
                    drop(inner);
                    Metrics::inc(&metrics.slow_consumer_closes);
                    self.wake_closed();
                    return Pushed::Closed;
                }
            }
        }
        if inner.queue.len() >= CONNECTION_QUEUE {
            Self::close_slow(&mut inner);
            drop(inner);
            Metrics::inc(&metrics.slow_consumer_closes);
            self.wake_closed();
            return Pushed::Closed;
        }
        match inner.per_op.iter_mut().find(|(o, _)| *o == op) {
            Some((_, n)) => *n += 1,
            None => inner.per_op.push((op, 1)),
        }
        inner.queue.push_back(Entry::Op { op, frame });
        drop(inner);
        Metrics::inc(&metrics.frames_queued);
        self.notify.notify_one();
        Pushed::Queued
    }

    /// Queues a subscription frame, waiting while the subscription has a full queue: for
    /// replays and per-subscriber executions, which catch up from the store when they lag.
    pub async fn push_op_waiting(&self, op: u64, frame: Utf8Bytes, metrics: &Metrics) -> Pushed {
        loop {
            let drained = self.drained.notified();
            tokio::pin!(drained);
            drained.as_mut().enable();
            {
                let inner = self.lock();
                if inner.closing {
                    return Pushed::Closed;
                }
                if inner.queued(op) < SUBSCRIPTION_QUEUE {
                    drop(inner);
                    return self.push_op(op, Policy::CloseOnOverflow, frame, metrics);
                }
            }
            drained.await;
        }
    }

    /// A client that does not read: what is queued is dropped and the close goes first.
    fn close_slow(inner: &mut OutboxInner) {
        inner.queue.clear();
        inner.per_op.clear();
        let (code, reason) = SLOW_CONSUMER_CLOSE;
        inner.queue.push_back(Entry::Close(code, reason));
        inner.closing = true;
        inner.slow = true;
    }

    /// Queues a close after what is already queued; later pushes are refused.
    pub fn close(&self, code: u16, reason: &'static str) {
        let mut inner = self.lock();
        if inner.closing {
            return;
        }
        inner.closing = true;
        inner.queue.push_back(Entry::Close(code, reason));
        drop(inner);
        self.wake_closed();
    }

    /// After a close is queued: the writer sends it, waiting operations give up.
    fn wake_closed(&self) {
        self.notify.notify_one();
        self.drained.notify_waiters();
        self.closing.notify_one();
    }

    /// Reports an operation that ended on its own, before its last frame is queued, so the
    /// client may reuse its id (or its slot) as soon as it sees that frame.
    pub fn op_ended(&self, id: String, op: u64) {
        self.lock().ended.push((id, op));
        self.ended.notify_one();
    }

    /// Operations that ended on their own since the last call.
    pub fn take_ended(&self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.lock().ended)
    }

    /// Completes when an operation may have ended on its own.
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// Completes once a close has been queued (by anyone).
    pub async fn closed(&self) {
        self.closing.notified().await;
    }

    /// Whether the connection is being closed for not reading fast enough.
    pub fn is_slow_close(&self) -> bool {
        self.lock().slow
    }

    /// Moves what is queued into `batch`, waiting until there is something.
    pub async fn next_batch(&self, batch: &mut Vec<Entry>) {
        loop {
            let took = {
                let mut guard = self.lock();
                let inner = &mut *guard;
                batch.extend(inner.queue.drain(..));
                inner.per_op.clear();
                !batch.is_empty()
            };
            if took {
                self.drained.notify_waiters();
                return;
            }
            self.notify.notified().await;
        }
    }
}

/// Where an execution reports the position (`version` or `seq`) of the item it is resolving.
#[derive(Clone, Default)]
pub struct PositionTap(Arc<AtomicU64>);

impl PositionTap {
    pub fn set(&self, position: u64) {
        self.0.store(position, Ordering::Relaxed);
    }

    fn take(&self) -> u64 {
        self.0.swap(0, Ordering::Relaxed)
    }
}

/// In the request data of a replay: serve the resume part (stored state or events after the
/// resume argument) and end, instead of going on live.
#[derive(Clone, Copy)]
pub struct ReplayOnly;

/// A subscription operation as far as fan-out cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub policy: Policy,
    /// Shareable: the operation is one known root field whose resume argument, if any, is a
    /// variable (or absent).
    pub shareable: bool,
    /// The variable carrying the resume argument, and its value in this request.
    pub resume: Option<(Name, Option<u64>)>,
}

/// Reads what fan-out needs from a request; `None` for anything that is not a subscription
/// (queries and mutations over WebSocket) or does not parse (the execution reports the error).
pub fn analyze(request: &Request) -> Option<Analysis> {
    let document = async_graphql::parser::parse_query(&request.query).ok()?;
    let operation = match (&document.operations, request.operation_name.as_deref()) {
        (DocumentOperations::Single(op), _) => op,
        (DocumentOperations::Multiple(ops), Some(name)) => ops.get(name)?,
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => ops.values().next()?,
        _ => return None,
    };
    if operation.node.ty != OperationType::Subscription {
        return None;
    }
    let items = &operation.node.selection_set.node.items;
    let field = match items.as_slice() {
        [one] => match &one.node {
            Selection::Field(field) => field,
            // A fragment at the root: served per subscriber, never dropping frames.
            _ => {
                return Some(Analysis {
                    policy: Policy::CloseOnOverflow,
                    shareable: false,
                    resume: None,
                })
            }
        },
        _ => {
            return Some(Analysis {
                policy: Policy::CloseOnOverflow,
                shareable: false,
                resume: None,
            })
        }
    };
    let (policy, resume_arg) = match field.node.name.node.as_str() {
        "matchUpdated" => (Policy::Conflate, Some("sinceVersion")),
        "matchesUpdated" => (Policy::Conflate, None),
        "matchEvents" => (Policy::CloseOnOverflow, Some("afterSeq")),
        _ => (Policy::CloseOnOverflow, None),
    };
    let resume_value = resume_arg.and_then(|arg| {
        field
            .node
            .arguments
            .iter()
            .find(|(name, _)| name.node.as_str() == arg)
            .map(|(_, value)| &value.node)
    });
    let (shareable, resume) = match resume_value {
        None | Some(async_graphql_value::Value::Null) => (true, None),
        Some(async_graphql_value::Value::Variable(var)) => match request.variables.get(var) {
            None | Some(Value::Null) => (true, Some((var.clone(), None))),
            Some(Value::Number(n)) if n.as_u64().is_some() => {
                (true, Some((var.clone(), n.as_u64())))
            }
            // Invalid: executed on its own, which reports the error to this subscriber.
            Some(_) => (false, None),
        },
        // A literal resume argument makes the text itself differ per subscriber.
        Some(_) => (false, None),
    };
    Some(Analysis {
        policy,
        shareable,
        resume,
    })
}

/// What makes subscribers share an execution.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct ShareKey {
    query: String,
    operation_name: Option<String>,
    /// Canonical text of the variables, resume variable removed.
    variables: String,
    /// The role the operation runs as (subscriptions are public, but resolvers may look).
    scope: Option<String>,
}

/// A subscriber as a group sees it.
pub struct MemberSpec {
    pub outbox: Arc<Outbox>,
    pub protocol: Protocol,
    pub id: String,
    pub op: u64,
}

enum MemberState {
    /// Served from the shared stream. `after` is the position its replay reached: the shared
    /// execution learns of changes from the broker, later than a replay reads them from the
    /// store, so frames not beyond it are skipped until the shared stream has caught up.
    Live { after: u64 },
    /// The replay is running: shared frames wait here with their positions.
    Replaying {
        buffered: Vec<(u64, Utf8Bytes)>,
        overflowed: bool,
    },
}

struct Member {
    spec: MemberSpec,
    variant: usize,
    state: MemberState,
}

/// A frame shape: protocol and operation id, pre-escaped.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Variant {
    protocol: Protocol,
    id_json: Arc<str>,
}

#[derive(Default)]
struct Members {
    slots: Vec<Option<Member>>,
    free: Vec<usize>,
    len: usize,
    variants: Vec<Option<(Variant, usize)>>,
    variant_index: HashMap<Variant, usize>,
    /// The execution ended (or everyone left): joiners start a new group.
    ended: bool,
}

impl Members {
    fn variant(&mut self, protocol: Protocol, id: &str) -> usize {
        let variant = Variant {
            protocol,
            id_json: serde_json::to_string(id).unwrap_or_default().into(),
        };
        if let Some(&i) = self.variant_index.get(&variant) {
            if let Some((_, n)) = &mut self.variants[i] {
                *n += 1;
            }
            return i;
        }
        let i = match self.variants.iter().position(Option::is_none) {
            Some(i) => i,
            None => {
                self.variants.push(None);
                self.variants.len() - 1
            }
        };
        self.variants[i] = Some((variant.clone(), 1));
        self.variant_index.insert(variant, i);
        i
    }

    fn release_variant(&mut self, i: usize) {
        if let Some((variant, n)) = &mut self.variants[i] {
            *n -= 1;
            if *n == 0 {
                self.variant_index.remove(variant);
                self.variants[i] = None;
            }
        }
    }

    fn insert(&mut self, spec: MemberSpec, state: MemberState) -> usize {
        let variant = self.variant(spec.protocol, &spec.id);
        let member = Member {
            spec,
            variant,
            state,
        };
        self.len += 1;
        match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(member);
                slot
            }
            None => {
                self.slots.push(Some(member));
                self.slots.len() - 1
            }
        }
    }

    fn remove(&mut self, slot: usize, op: u64) -> Option<Member> {
        let member = self.slots.get_mut(slot)?;
        if member.as_ref().is_none_or(|m| m.spec.op != op) {
            return None;
        }
        let member = member.take()?;
        self.free.push(slot);
        self.len -= 1;
        self.release_variant(member.variant);
        Some(member)
    }
}

/// One shared execution and its subscribers.
pub struct Group {
    key: ShareKey,
    policy: Policy,
    members: Mutex<Members>,
    leader: Mutex<Option<AbortHandle>>,
}

impl Group {
    fn members(&self) -> MutexGuard<'_, Members> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn leader(&self) -> MutexGuard<'_, Option<AbortHandle>> {
        self.leader.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds a member unless the execution already ended.
    fn try_insert(
        &self,
        spec: MemberSpec,
        state: MemberState,
    ) -> Result<usize, (MemberSpec, MemberState)> {
        let mut members = self.members();
        if members.ended {
            return Err((spec, state));
        }
        Ok(members.insert(spec, state))
    }
}

/// A subscriber whose resume arguments are being served.
struct Replay {
    group: Arc<Group>,
    slot: usize,
    since: u64,
    outbox: Arc<Outbox>,
    protocol: Protocol,
    id: String,
    op: u64,
}

/// A subscriber's place in a group, to leave it.
pub struct Membership {
    group: Arc<Group>,
    slot: usize,
    op: u64,
}

/// The registry of shared executions.
pub struct Fanout {
    schema: ScorelineSchema,
    metrics: Arc<Metrics>,
    groups: Mutex<HashMap<ShareKey, Arc<Group>>>,
}

fn frame(kind: &str, variant: &Variant, payload: &str) -> Utf8Bytes {
    let mut text = String::with_capacity(payload.len() + variant.id_json.len() + 40);
    text.push_str("{\"type\":\"");
    text.push_str(kind);
    text.push_str("\",\"id\":");
    text.push_str(&variant.id_json);
    text.push_str(",\"payload\":");
    text.push_str(payload);
    text.push('}');
    Utf8Bytes::from(text)
}

/// The `next` (or legacy `data`) frame type of a protocol.
pub fn next_type(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::GraphqlTransportWs => "next",
        Protocol::LegacyGraphqlWs => "data",
    }
}

/// Refused before anything ran (parse, validation, NOT_FOUND): the operation ends with `error`.
pub fn is_request_error(response: &Response) -> bool {
    !response.errors.is_empty() && matches!(response.data, Value::Null)
}

impl Fanout {
    pub fn new(schema: ScorelineSchema, metrics: Arc<Metrics>) -> Self {
        Self {
            schema,
            metrics,
            groups: Mutex::new(HashMap::new()),
        }
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<ShareKey, Arc<Group>>> {
        self.groups.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Joins (or starts) the shared execution of `request`, which `analysis` found shareable.
    /// With a resume value, the subscriber is served its replay first and joins live after.
    pub fn join(
        self: &Arc<Self>,
        request: Request,
        analysis: &Analysis,
        principal: Option<Principal>,
        spec: MemberSpec,
    ) -> Membership {
        let mut shared_request = Request::new(request.query.clone());
        shared_request.operation_name = request.operation_name.clone();
        shared_request.variables = request.variables.clone();
        if let Some((var, _)) = &analysis.resume {
            shared_request.variables.remove(var);
        }
        let mut roles: Vec<String> = principal
            .iter()
            .flat_map(|p| p.roles.iter().map(|r| format!("{r:?}")))
            .collect();
        roles.sort();
        let key = ShareKey {
            query: request.query.clone(),
            operation_name: request.operation_name.clone(),
            variables: shared_request.variables.to_string(),
            scope: principal.as_ref().map(|_| roles.join(",")),
        };
        let since = analysis.resume.as_ref().and_then(|(_, v)| *v);
        let state = match since {
            Some(_) => MemberState::Replaying {
                buffered: Vec::new(),
                overflowed: false,
            },
            None => MemberState::Live { after: 0 },
        };
        let op = spec.op;
        let replay_parts =
            since.map(|since| (since, spec.outbox.clone(), spec.protocol, spec.id.clone()));

        let (group, slot) = {
            let mut groups = self.groups();
            let existing = groups.get(&key).cloned();
            let attempt = match existing {
                Some(group) => group.try_insert(spec, state).map(|slot| (group, slot)),
                None => Err((spec, state)),
            };
            match attempt {
                Ok(found) => found,
                Err(pending) => {
                    let group = Arc::new(Group {
                        key: key.clone(),
                        policy: analysis.policy,
                        members: Mutex::new(Members::default()),
                        leader: Mutex::new(None),
                    });
                    let slot = group.members().insert(pending.0, pending.1);
                    groups.insert(key, group.clone());
                    Metrics::add(&self.metrics.shared_executions, 1);
                    if let Some(p) = &principal {
                        shared_request = shared_request.data(p.clone());
                    }
                    let task = tokio::spawn(self.clone().lead(group.clone(), shared_request));
                    *group.leader() = Some(task.abort_handle());
                    (group, slot)
                }
            }
        };

        if let Some((since, outbox, protocol, id)) = replay_parts {
            let mut request = request.data(ReplayOnly);
            if let Some(p) = principal {
                request = request.data(p);
            }
            let replay = Replay {
                group: group.clone(),
                slot,
                since,
                outbox,
                protocol,
                id,
                op,
            };
            tokio::spawn(self.clone().replay(replay, request));
        }
        Membership { group, slot, op }
    }

    /// Leaves a group; the last one out stops its execution.
    pub fn leave(&self, membership: Membership) {
        let Membership { group, slot, op } = membership;
        let emptied = {
            let mut members = group.members();
            if members.remove(slot, op).is_none() && !members.ended {
                // Not this operation's slot any more: nothing to do.
                return;
            }
            if members.len == 0 && !members.ended {
                members.ended = true;
                true
            } else {
                false
            }
        };
        if emptied {
            self.retire(&group, true);
        }
    }

    /// Takes an ended group out of the registry and stops its execution (unless it is the
    /// execution itself that ended).
    fn retire(&self, group: &Arc<Group>, abort: bool) {
        {
            let mut groups = self.groups();
            if groups
                .get(&group.key)
                .is_some_and(|g| Arc::ptr_eq(g, group))
            {
                groups.remove(&group.key);
            }
        }
        if let Some(leader) = group.leader().take() {
            Metrics::add(&self.metrics.shared_executions, -1);
            if abort {
                leader.abort();
            }
        }
    }

    /// Runs the shared execution: one execution and one serialization per change, one frame
    /// per variant, queued for every member.
    async fn lead(self: Arc<Self>, group: Arc<Group>, request: Request) {
        let tap = PositionTap::default();
        let mut responses = self.schema.execute_stream(request.data(tap.clone()));
        let mut first = true;
        let mut frames: Vec<Option<Utf8Bytes>> = Vec::new();
        let mut last: Option<Response> = None;
        while let Some(response) = responses.next().await {
            let position = tap.take();
            if first && is_request_error(&response) {
                last = Some(response);
                break;
            }
            first = false;
            Metrics::inc(&self.metrics.subscription_executions);
            let payload = serde_json::to_string(&response).unwrap_or_default();
            let mut members = group.members();
            frames.clear();
            for variant in &members.variants {
                frames.push(
                    variant
                        .as_ref()
                        .map(|(v, _)| frame(next_type(v.protocol), v, &payload)),
                );
            }
            let members = &mut *members;
            for member in members.slots.iter_mut().flatten() {
                let Some(frame) = frames[member.variant].clone() else {
                    continue;
                };
                match &mut member.state {
                    MemberState::Live { after } => {
                        if *after != 0 {
                            if position != 0 && position <= *after {
                                continue;
                            }
                            *after = 0;
                        }
                        member.spec.outbox.push_op(
                            member.spec.op,
                            group.policy,
                            frame,
                            &self.metrics,
                        );
                    }
                    MemberState::Replaying {
                        buffered,
                        overflowed,
                    } => {
                        if buffered.len() < REPLAY_BUFFER {
                            buffered.push((position, frame));
                        } else if group.policy == Policy::Conflate {
                            if let Some(newest) = buffered.last_mut() {
                                *newest = (position, frame);
                            }
                        } else {
                            *overflowed = true;
                        }
                    }
                }
            }
        }
        // The execution ended: every member gets the final frame and the group is retired.
        let members: Vec<Member> = {
            let mut members = group.members();
            members.ended = true;
            let taken = members.slots.drain(..).flatten().collect();
            members.len = 0;
            taken
        };
        self.retire(&group, false);
        for member in members {
            let spec = member.spec;
            let end = match &last {
                Some(error) => json_frame(
                    "error",
                    &spec.id,
                    &serde_json::to_string(&error.errors).unwrap_or_default(),
                ),
                None => complete_frame(&spec.id),
            };
            spec.outbox.op_ended(spec.id.clone(), spec.op);
            spec.outbox.push_frame(end);
        }
    }

    /// Serves a subscriber's resume arguments, then lets it join the shared stream from the
    /// first change its replay did not cover. The replay waits for the client (it may be
    /// long); live frames follow the subscription's policy.
    async fn replay(self: Arc<Self>, replay: Replay, request: Request) {
        let Replay {
            group,
            slot,
            since,
            outbox,
            protocol,
            id,
            op,
        } = replay;
        let tap = PositionTap::default();
        let variant = Variant {
            protocol,
            id_json: serde_json::to_string(&id).unwrap_or_default().into(),
        };
        let mut responses = self.schema.execute_stream(request.data(tap.clone()));
        let mut last = since;
        let mut first = true;
        while let Some(response) = responses.next().await {
            let position = tap.take();
            if first && is_request_error(&response) {
                // E.g. NOT_FOUND: the subscriber leaves the group with an error.
                let leaving = group.members().remove(slot, op).is_some();
                if leaving {
                    let errors = serde_json::to_string(&response.errors).unwrap_or_default();
                    outbox.op_ended(id.clone(), op);
                    outbox.push_frame(json_frame("error", &id, &errors));
                    self.leave_emptied(&group);
                }
                return;
            }
            first = false;
            Metrics::inc(&self.metrics.subscription_executions);
            let payload = serde_json::to_string(&response).unwrap_or_default();
            last = last.max(position);
            let frame = frame(next_type(protocol), &variant, &payload);
            if outbox.push_op_waiting(op, frame, &self.metrics).await == Pushed::Closed {
                return;
            }
        }
        // Caught up: deliver what the shared stream brought meanwhile, beyond the replay.
        let mut members = group.members();
        let Some(member) = members
            .slots
            .get_mut(slot)
            .and_then(Option::as_mut)
            .filter(|m| m.spec.op == op)
        else {
            return;
        };
        let state = std::mem::replace(&mut member.state, MemberState::Live { after: last });
        if let MemberState::Replaying {
            buffered,
            overflowed,
        } = state
        {
            if overflowed {
                // Too much arrived during the replay to hold: the client resumes again.
                outbox.close(SLOW_CONSUMER_CLOSE.0, SLOW_CONSUMER_CLOSE.1);
                Metrics::inc(&self.metrics.slow_consumer_closes);
                return;
            }
            for (position, frame) in buffered {
                if position == 0 || position > last {
                    member.state = MemberState::Live { after: 0 };
                    outbox.push_op(op, group.policy, frame, &self.metrics);
                }
            }
        }
    }

    /// Retires a group that a failed replay left without members.
    fn leave_emptied(&self, group: &Arc<Group>) {
        let emptied = {
            let mut members = group.members();
            if members.len == 0 && !members.ended {
                members.ended = true;
                true
            } else {
                false
            }
        };
        if emptied {
            self.retire(group, true);
        }
    }
}

/// `{"type": kind, "id": id, "payload": payload}` with a payload already in JSON.
pub fn json_frame(kind: &str, id: &str, payload_json: &str) -> Utf8Bytes {
    let variant = Variant {
        protocol: Protocol::GraphqlTransportWs,
        id_json: serde_json::to_string(id).unwrap_or_default().into(),
    };
    frame(kind, &variant, payload_json)
}

/// `{"type": "complete", "id": id}` (both protocols).
pub fn complete_frame(id: &str) -> Utf8Bytes {
    let id = serde_json::to_string(id).unwrap_or_default();
    Utf8Bytes::from(format!("{{\"type\":\"complete\",\"id\":{id}}}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Utf8Bytes {
        Utf8Bytes::from(s.to_string())
    }

    fn drain(outbox: &Outbox) -> Vec<String> {
        let mut inner = outbox.lock();
        inner.per_op.clear();
        inner
            .queue
            .drain(..)
            .map(|e| match e {
                Entry::Frame(f) | Entry::Op { frame: f, .. } => f.to_string(),
                Entry::Ping => "ping".into(),
                Entry::Close(code, _) => format!("close {code}"),
            })
            .collect()
    }

    #[test]
    fn a_state_subscription_that_falls_behind_keeps_its_newest_state() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for v in 1..=1000 {
            outbox.push_op(7, Policy::Conflate, text(&format!("v{v}")), &metrics);
        }
        let frames = drain(&outbox);
        assert_eq!(frames.len(), SUBSCRIPTION_QUEUE as usize);
        assert_eq!(frames.last().unwrap(), "v1000");
        assert_eq!(frames[0], "v1");
        let numbers: Vec<u32> = frames.iter().map(|f| f[1..].parse().unwrap()).collect();
        assert!(numbers.windows(2).all(|w| w[0] < w[1]), "{numbers:?}");
    }

    #[test]
    fn an_event_subscription_that_overflows_closes_the_connection_with_1013() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for s in 0..SUBSCRIPTION_QUEUE {
            assert_eq!(
                outbox.push_op(1, Policy::CloseOnOverflow, text(&s.to_string()), &metrics),
                Pushed::Queued
            );
        }
        assert_eq!(
            outbox.push_op(1, Policy::CloseOnOverflow, text("x"), &metrics),
            Pushed::Closed
        );
        assert_eq!(drain(&outbox), vec!["close 1013".to_string()]);
        assert!(!outbox.push_frame(text("late")));
    }

    #[test]
    fn subscriptions_on_one_connection_have_separate_bounds() {
        let outbox = Outbox::default();
        let metrics = Metrics::default();
        for s in 0..SUBSCRIPTION_QUEUE {
            outbox.push_op(1, Policy::CloseOnOverflow, text(&s.to_string()), &metrics);
        }
        assert_eq!(
            outbox.push_op(2, Policy::CloseOnOverflow, text("other"), &metrics),
            Pushed::Queued
        );
    }

    fn request(query: &str, variables: serde_json::Value) -> Request {
        Request::new(query).variables(async_graphql::Variables::from_json(variables))
    }

    #[test]
    fn resume_variables_are_found_and_literal_resume_arguments_are_not_shared() {
        let a = analyze(&request(
            "subscription($id: ID!, $v: Int) { matchUpdated(id: $id, sinceVersion: $v) { version } }",
            serde_json::json!({"id": "m", "v": 4}),
        ))
        .unwrap();
        assert_eq!(a.policy, Policy::Conflate);
        assert!(a.shareable);
        assert_eq!(a.resume, Some((Name::new("v"), Some(4))));

        let b = analyze(&request(
            "subscription { matchEvents(matchId: \"m\", afterSeq: 3) { seq } }",
            serde_json::json!({}),
        ))
        .unwrap();
        assert_eq!(b.policy, Policy::CloseOnOverflow);
        assert!(!b.shareable);

        let c = analyze(&request(
            "subscription { matchesUpdated { id } }",
            serde_json::json!({}),
        ))
        .unwrap();
        assert!(c.shareable && c.resume.is_none() && c.policy == Policy::Conflate);

        assert!(analyze(&request(
            "{ match(id: \"m\") { id } }",
            serde_json::json!({})
        ))
        .is_none());
    }
}
