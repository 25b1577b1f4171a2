//! Running executions: a group's shared execution (one execution and one serialization per
//! change, fanned out to every member) and a subscriber's replay of its resume arguments. The
//! two meet through the positions executions report in a [`PositionTap`], so that a replayed
//! subscriber joins the shared stream without a gap or a repeat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use std::panic::AssertUnwindSafe;

use async_graphql::{Request, Response, ServerError};
use axum::extract::ws::Utf8Bytes;
use futures::FutureExt as _;
use futures::StreamExt;
use tokio::sync::watch;

use super::frame::{end_frame, next_frame, Variant, Wire};
use super::group::{Group, Member, MemberState};
use super::{
    is_request_error, refusal_frames, Fanout, Outbox, Policy, Pushed, SLOW_CONSUMER_CLOSE,
};
use crate::graphql::error::INTERNAL_SERVER_ERROR;
use crate::metrics::Metrics;

/// What a subscriber is told when the execution serving it failed inside the server.
pub fn internal_error() -> ServerError {
    let mut error = ServerError::new(
        "internal error: the subscription ended; subscribe again",
        None,
    );
    let mut extensions = async_graphql::ErrorExtensionValues::default();
    extensions.set("code", INTERNAL_SERVER_ERROR);
    error.extensions = Some(extensions);
    error
}

/// Shared frames a subscriber buffers while its replay runs.
const REPLAY_BUFFER: usize = 4096;

/// Where an execution reports the position (`version` or `seq`) of the item it is resolving,
/// and, for a shared execution, that it has started: subscribed to its topic and read the
/// store, so that changes from then on reach it.
#[derive(Clone, Default)]
pub struct PositionTap {
    position: Arc<AtomicU64>,
    started: Option<Arc<watch::Sender<bool>>>,
}

impl PositionTap {
    /// A tap that also reports the start through `started`.
    fn signalling(started: watch::Sender<bool>) -> Self {
        Self {
            position: Arc::default(),
            started: Some(Arc::new(started)),
        }
    }

    pub fn set(&self, position: u64) {
        self.position.store(position, Ordering::Relaxed);
    }

    /// The position reported since the last call (0 for none).
    pub fn take(&self) -> u64 {
        self.position.swap(0, Ordering::Relaxed)
    }

    /// Called by a subscription resolver once it is subscribed and has read the store: from
    /// here on, every change reaches its stream.
    pub fn started(&self) {
        if let Some(started) = &self.started {
            started.send_replace(true);
        }
    }
}

/// In the request data of a replay: serve the resume part (stored state or events after the
/// resume argument) and end, instead of going on live.
#[derive(Clone, Copy)]
pub struct ReplayOnly;

/// In the request data of an HTTP stream resumed with `Last-Event-ID`: the position the client
/// already has. A subscription's resume argument (`sinceVersion`, `afterSeq`) takes the larger
/// of its own value and this one, so a reconnect resumes exactly as the argument would.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResumeFrom(pub u64);

/// A subscriber whose resume arguments are being served.
pub(super) struct Replay {
    pub(super) group: Arc<Group>,
    pub(super) slot: usize,
    pub(super) since: u64,
    pub(super) outbox: Arc<Outbox>,
    pub(super) protocol: Wire,
    pub(super) id: String,
    pub(super) op: u64,
}

impl Fanout {
    /// Runs the shared execution (see [`Self::run_group`]), containing a panic: the group is
    /// retired and every member is told (an `INTERNAL_SERVER_ERROR` result, then `complete`),
    /// so they can subscribe again; nothing stays registered to a dead execution.
    pub(super) async fn lead(
        self: Arc<Self>,
        group: Arc<Group>,
        request: Request,
        started: watch::Sender<bool>,
    ) {
        let run = AssertUnwindSafe(self.clone().run_group(group.clone(), request, started));
        if run.catch_unwind().await.is_err() {
            tracing::error!("a shared subscription execution panicked; its subscribers are told");
            let error = internal_error();
            self.end_group(&group, Some(&[error]));
        }
    }

    /// One execution and one serialization per change, one frame per variant, queued for
    /// every member.
    async fn run_group(
        self: Arc<Self>,
        group: Arc<Group>,
        request: Request,
        started: watch::Sender<bool>,
    ) {
        let tap = PositionTap::signalling(started);
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
                        .map(|(v, _)| next_frame(v, &payload, position)),
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
        self.end_group(&group, last.as_ref().map(|r| r.errors.as_slice()));
    }

    /// The execution ended (refused with `errors`, or done): every member gets its final
    /// frames and the group is retired.
    fn end_group(&self, group: &Arc<Group>, errors: Option<&[ServerError]>) {
        let members: Vec<Member> = {
            let mut members = group.members();
            members.ended = true;
            let taken = members.slots.drain(..).flatten().collect();
            members.len = 0;
            taken
        };
        self.retire(group, false);
        for member in members {
            let spec = member.spec;
            let end = match errors {
                Some(errors) => refusal_frames(spec.protocol, &spec.id, errors),
                None => [Some(end_frame(spec.protocol, &spec.id)), None],
            };
            spec.outbox.op_ended(spec.id.clone(), spec.op);
            for frame in end.into_iter().flatten() {
                spec.outbox.push_frame(frame);
            }
        }
    }

    /// Runs a replay (see [`Self::run_replay`]), containing a panic: the subscriber leaves the
    /// group and is told, as for a refusal.
    pub(super) async fn replay(self: Arc<Self>, replay: Replay, request: Request) {
        let (group, slot, op) = (replay.group.clone(), replay.slot, replay.op);
        let (outbox, protocol, id) = (replay.outbox.clone(), replay.protocol, replay.id.clone());
        let run = AssertUnwindSafe(self.clone().run_replay(replay, request));
        if run.catch_unwind().await.is_err() {
            tracing::error!("a subscription replay panicked; its subscriber is told");
            if group.members().remove(slot, op).is_some() {
                outbox.op_ended(id.clone(), op);
                for frame in refusal_frames(protocol, &id, &[internal_error()])
                    .into_iter()
                    .flatten()
                {
                    outbox.push_frame(frame);
                }
                self.leave_emptied(&group);
            }
        }
    }

    /// Serves a subscriber's resume arguments, then lets it join the shared stream from the
    /// first change its replay did not cover. The replay waits for the client (it may be
    /// long); live frames follow the subscription's policy.
    async fn run_replay(self: Arc<Self>, replay: Replay, request: Request) {
        let Replay {
            group,
            slot,
            since,
            outbox,
            protocol,
            id,
            op,
        } = replay;
        // The replay reads the store after the shared execution did, never before: the shared
        // stream then brings every change the replay did not see. (A replay that read first
        // could end before a change the shared execution counted as its starting state, and
        // the subscriber would never get it.) An execution that ends before it starts (e.g.
        // NOT_FOUND) has already told its members.
        let mut started = group.started.clone();
        if !*started.borrow_and_update() && started.wait_for(|s| *s).await.is_err() {
            return;
        }
        let tap = PositionTap::default();
        let variant = Variant::new(protocol, &id);
        let mut responses = self.schema.execute_stream(request.data(tap.clone()));
        let mut last = since;
        let mut first = true;
        while let Some(response) = responses.next().await {
            let position = tap.take();
            if first && is_request_error(&response) {
                // E.g. NOT_FOUND: the subscriber leaves the group with an error.
                let leaving = group.members().remove(slot, op).is_some();
                if leaving {
                    outbox.op_ended(id.clone(), op);
                    for frame in refusal_frames(protocol, &id, &response.errors)
                        .into_iter()
                        .flatten()
                    {
                        outbox.push_frame(frame);
                    }
                    self.leave_emptied(&group);
                }
                return;
            }
            first = false;
            Metrics::inc(&self.metrics.subscription_executions);
            let payload = serde_json::to_string(&response).unwrap_or_default();
            last = last.max(position);
            let frame = next_frame(&variant, &payload, position);
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::fanout::{analyze, Entry, MemberSpec};
    use crate::test_support::{panicking_schema, PANICKING_MATCH};
    use crate::ws::Protocol;

    /// Waits for the frames an outbox gets, bounded.
    async fn frames(outbox: &Outbox, count: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut batch = Vec::new();
        while out.len() < count {
            tokio::time::timeout(Duration::from_secs(10), outbox.next_batch(&mut batch))
                .await
                .expect("frames arrive");
            out.extend(batch.drain(..).filter_map(|e| match e {
                Entry::Frame(f) | Entry::Op { frame: f, .. } => Some(f.to_string()),
                _ => None,
            }));
        }
        out
    }

    #[tokio::test]
    async fn a_shared_execution_that_panics_tells_every_member_and_is_retired() {
        let metrics = Arc::new(Metrics::default());
        let fanout = Arc::new(Fanout::new(panicking_schema(), metrics.clone()));
        let query =
            format!("subscription {{ matchUpdated(id: \"{PANICKING_MATCH}\") {{ version }} }}");
        let mut outboxes = Vec::new();
        for (i, protocol) in [Protocol::GraphqlTransportWs, Protocol::LegacyGraphqlWs]
            .into_iter()
            .enumerate()
        {
            let request = Request::new(query.clone());
            let analysis = analyze(&request).expect("a subscription");
            let outbox = Arc::new(Outbox::new(metrics.clone()));
            fanout.join(
                request,
                &analysis,
                None,
                MemberSpec {
                    outbox: outbox.clone(),
                    protocol: protocol.into(),
                    id: format!("s{i}"),
                    op: 1,
                },
            );
            outboxes.push(outbox);
        }
        for (i, outbox) in outboxes.iter().enumerate() {
            let got = frames(outbox, 2).await;
            assert!(got[0].contains("INTERNAL_SERVER_ERROR"), "{got:?}");
            assert!(
                got[0].contains("subscribe again"),
                "the panic path: {got:?}"
            );
            assert_eq!(got[1], format!("{{\"type\":\"complete\",\"id\":\"s{i}\"}}"));
            assert_eq!(outbox.take_ended(), vec![(format!("s{i}"), 1)]);
        }
        // No dead group stays registered: a new subscriber starts a fresh execution.
        assert_eq!(fanout.group_count(), 0);
    }

    /// The first subscriber of a shared execution with a resume argument: its replay must not
    /// read the store before the shared execution does, or a change committed between the two
    /// reads is the shared execution's starting state, which it never sends, and beyond the
    /// replay: the subscriber would miss it until the next change.
    #[tokio::test]
    async fn a_change_between_the_shared_executions_start_and_a_replay_is_not_lost() {
        use crate::broker::Broker as _;
        use crate::test_support::{a_match, gated_schema};
        use scoreline_core::store::{MatchWrite, Store as _};
        use scoreline_core::Change;

        let (schema, store, gate, broker) = gated_schema();
        store.create_match(&a_match("m1", 1, 0)).await.unwrap();
        let metrics = Arc::new(Metrics::default());
        let fanout = Arc::new(Fanout::new(schema, metrics.clone()));
        let request = Request::new(
            "subscription($v: Int) { matchUpdated(id: \"m1\", sinceVersion: $v) { version } }",
        )
        .variables(async_graphql::Variables::from_json(
            serde_json::json!({"v": 0}),
        ));
        let analysis = analyze(&request).expect("a subscription");
        let outbox = Arc::new(Outbox::new(metrics.clone()));
        // The shared execution's lookup (its task runs first) is held; the replay's is not.
        gate.arm();
        let _member = fanout.join(
            request,
            &analysis,
            None,
            MemberSpec {
                outbox: outbox.clone(),
                protocol: Protocol::GraphqlTransportWs.into(),
                id: "s".into(),
                op: 1,
            },
        );
        gate.held().await;
        // Give the replay its turn: before the fix it read the store here, ahead of the shared
        // execution (with the fix it waits for it, so there is no event to await instead).
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        // Version 2 commits while the shared execution has not read the store yet; then it
        // reads it as its starting state, and the change arrives through the broker (before or
        // after that read: either way the shared execution does not send it).
        let v2 = a_match("m1", 2, 1);
        store
            .commit(&MatchWrite {
                next: v2.clone(),
                event: None,
                idempotency: None,
            })
            .await
            .unwrap();
        gate.release();
        broker
            .publish(&[Arc::new(Change::Match(Box::new(v2)))])
            .await
            .unwrap();
        let mut got: Vec<String> = Vec::new();
        let mut batch = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !got.iter().any(|f| f.contains("\"version\":2")) {
            if tokio::time::timeout_at(deadline, outbox.next_batch(&mut batch))
                .await
                .is_err()
            {
                panic!("the subscriber never got version 2; it got {got:?}");
            }
            got.extend(batch.drain(..).filter_map(|e| match e {
                Entry::Frame(f) | Entry::Op { frame: f, .. } => Some(f.to_string()),
                _ => None,
            }));
        }
    }
}
