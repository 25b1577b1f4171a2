//! The body of an HTTP subscription stream: drains a stream's [`Outbox`] as the client reads,
//! with a heartbeat every `WS_KEEPALIVE_SECS`, up to the end of the stream (its last operation
//! ended, its client fell too far behind, or the server shuts down).

use std::convert::Infallible;
use std::sync::Arc;

use axum::body::Bytes;
use futures::Stream;
use tokio::sync::watch;
use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::stream::prelude;
use crate::fanout::{
    is_http_end, slow_consumer_frames, Entry, Outbox, Wire, MULTIPART_HEARTBEAT,
    SLOW_CONSUMER_CLOSE, SSE_HEARTBEAT,
};

/// The response body: drains the outbox as the client reads, with heartbeats between.
pub(super) struct Pump {
    wire: Wire,
    outbox: Arc<Outbox>,
    heartbeat: Interval,
    shutdown: watch::Receiver<bool>,
    batch: Vec<Entry>,
    started: bool,
    done: bool,
    /// What the stream holds, released when the body is dropped.
    _guard: Box<dyn Send>,
    /// Called when operations end on their own (a stream of several forgets them).
    reaper: Option<Box<dyn Fn() + Send>>,
}

impl Pump {
    pub(super) fn new(
        wire: Wire,
        outbox: Arc<Outbox>,
        every: std::time::Duration,
        shutdown: watch::Receiver<bool>,
        guard: Box<dyn Send>,
    ) -> Self {
        let mut heartbeat = tokio::time::interval_at(Instant::now() + every, every);
        heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Self {
            wire,
            outbox,
            heartbeat,
            shutdown,
            batch: Vec::new(),
            started: false,
            done: false,
            _guard: guard,
            reaper: None,
        }
    }

    /// Calls `reaper` whenever an operation of the outbox ends on its own.
    pub(super) fn with_reaper(mut self, reaper: Box<dyn Fn() + Send>) -> Self {
        self.reaper = Some(reaper);
        self
    }

    pub(super) fn into_stream(self) -> impl Stream<Item = Result<Bytes, Infallible>> + Send {
        futures::stream::unfold(self, |mut pump| async move {
            let chunk = pump.next_chunk().await?;
            Some((Ok(chunk), pump))
        })
    }

    fn heartbeat_frame(&self) -> Bytes {
        match self.wire {
            Wire::Multipart => Bytes::from_static(MULTIPART_HEARTBEAT.as_bytes()),
            _ => Bytes::from_static(SSE_HEARTBEAT.as_bytes()),
        }
    }

    /// The next bytes to write; `None` ends the response.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            if let Some(prelude) = prelude(self.wire) {
                return Some(prelude);
            }
        }
        loop {
            tokio::select! {
                () = self.outbox.next_batch(&mut self.batch) => {
                    let chunk = self.take_batch();
                    if !chunk.is_empty() || self.done {
                        return Some(chunk);
                    }
                }
                _ = self.heartbeat.tick() => return Some(self.heartbeat_frame()),
                () = self.outbox.ended(), if self.reaper.is_some() => {
                    if let Some(reap) = &self.reaper {
                        reap();
                    }
                }
                changed = self.shutdown.changed() => {
                    if changed.is_err() || *self.shutdown.borrow() {
                        // The client reconnects and resumes with `Last-Event-ID`.
                        self.done = true;
                        return None;
                    }
                }
            }
        }
    }

    /// The bytes of the entries drained: frames in order, up to the end of the stream.
    fn take_batch(&mut self) -> Bytes {
        let mut out = Vec::new();
        for entry in self.batch.drain(..) {
            match entry {
                Entry::Frame(frame) | Entry::Op { frame, .. } => {
                    let end = is_http_end(frame.as_str());
                    out.extend_from_slice(frame.as_bytes());
                    if end {
                        self.done = true;
                        break;
                    }
                }
                Entry::Ping => {}
                Entry::Close(code, _) => {
                    if code == SLOW_CONSUMER_CLOSE.0 || self.outbox.is_slow_close() {
                        for frame in slow_consumer_frames(self.wire) {
                            out.extend_from_slice(frame.as_bytes());
                        }
                    }
                    self.done = true;
                    break;
                }
            }
        }
        self.batch.clear();
        Bytes::from(out)
    }
}
