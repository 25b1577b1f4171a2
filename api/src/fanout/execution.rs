//! Running executions: a group's shared execution (one execution and one serialization per
//! change, fanned out to every member) and a subscriber's replay of its resume arguments. The
//! two meet through the positions executions report in a [`PositionTap`], so that a replayed
//! subscriber joins the shared stream without a gap or a repeat.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use async_graphql::{Request, Response};
use axum::extract::ws::Utf8Bytes;
use futures::StreamExt;

use super::frame::{frame, Variant};
use super::group::{Group, Member, MemberState};
use super::{
    complete_frame, is_request_error, next_type, refusal_frames, Fanout, Outbox, Policy, Pushed,
    SLOW_CONSUMER_CLOSE,
};
use crate::metrics::Metrics;
use crate::ws::Protocol;

/// Shared frames a subscriber buffers while its replay runs.
const REPLAY_BUFFER: usize = 4096;

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

/// A subscriber whose resume arguments are being served.
pub(super) struct Replay {
    pub(super) group: Arc<Group>,
    pub(super) slot: usize,
    pub(super) since: u64,
    pub(super) outbox: Arc<Outbox>,
    pub(super) protocol: Protocol,
    pub(super) id: String,
    pub(super) op: u64,
}

impl Fanout {
    /// Runs the shared execution: one execution and one serialization per change, one frame
    /// per variant, queued for every member.
    pub(super) async fn lead(self: Arc<Self>, group: Arc<Group>, request: Request) {
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
                Some(refused) => refusal_frames(spec.protocol, &spec.id, &refused.errors),
                None => [Some(complete_frame(&spec.id)), None],
            };
            spec.outbox.op_ended(spec.id.clone(), spec.op);
            for frame in end.into_iter().flatten() {
                spec.outbox.push_frame(frame);
            }
        }
    }

    /// Serves a subscriber's resume arguments, then lets it join the shared stream from the
    /// first change its replay did not cover. The replay waits for the client (it may be
    /// long); live frames follow the subscription's policy.
    pub(super) async fn replay(self: Arc<Self>, replay: Replay, request: Request) {
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
