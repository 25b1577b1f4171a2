//! Subscription fan-out: how a change becomes frames on sockets.
//!
//! - [`Outbox`]: one per WebSocket connection (and per HTTP subscription stream), the ordered queue its writer task drains, with a
//!   bound per subscription. A state subscription (`matchUpdated`, `matchesUpdated`) that falls
//!   behind is conflated: its newest queued frame is replaced by the newer state, so a slow client
//!   gets the newest state and never a backlog. An event subscription (`matchEvents`) that
//!   overflows closes the connection with 1013 ([`SLOW_CONSUMER_CLOSE`]); the client resumes
//!   with `afterSeq`.
//! - [`Fanout`]: shared executions. Subscribers whose operation, variables (resume arguments
//!   aside) and auth scope are the same share one group: one execution of the operation per
//!   change, one serialization of its payload, and one frame per distinct (protocol, operation
//!   id), written to every socket. Resume arguments (`sinceVersion`, `afterSeq`) are served per
//!   subscriber by a replay-only execution; the subscriber then joins the shared stream, which
//!   it has been buffering meanwhile, from the first change the replay did not cover.
//!
//! Executions report the position of each item (a state's `version`, an event's `seq`)
//! through a [`PositionTap`] in the request data, which is how replays and shared streams meet
//! without a gap or a repeat.
//!
//! # Layout
//! - `outbox`: the per-connection queue and its slow-consumer policies.
//! - `analysis`: what fan-out reads from a subscription request (policy, shareability, resume
//!   argument).
//! - `group`: the registry of shared executions, their members, joining and leaving.
//! - `execution`: running a group's execution and a subscriber's replay, and the request data
//!   ([`PositionTap`], [`ReplayOnly`]) through which executions report to fan-out.
//! - `frame`: the text of `next`/`data`, `error` and `complete` frames, for each [`Wire`]:
//!   WebSocket messages, Server-Sent Events, multipart parts.

mod analysis;
mod execution;
mod frame;
mod group;
mod outbox;

pub use analysis::{analyze, Analysis};
pub use execution::{internal_error, PositionTap, ReplayOnly, ResumeFrom};
pub use frame::{
    complete_frame, end_frame, is_http_end, is_request_error, json_frame, next_type,
    refusal_frames, result_frame, slow_consumer_frames, Wire, MULTIPART_HEARTBEAT,
    MULTIPART_PREAMBLE, SSE_HEARTBEAT,
};
pub use group::{Fanout, MemberSpec, Membership};
pub use outbox::{Entry, Outbox, Policy, Pushed, SLOW_CONSUMER_CLOSE};
