//! Process counters and gauges, served as Prometheus text on `GET /metrics`. Plain atomics: the
//! hot path pays one relaxed add, never a lock.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Default, Debug)]
pub struct Metrics {
    /// WebSocket connections open now.
    pub ws_connections: AtomicI64,
    /// Subscription operations running now (shared or not).
    pub subscriptions: AtomicI64,
    /// Shared executions running now: distinct (operation, variables, scope) being served.
    pub shared_executions: AtomicI64,
    /// Times a subscription's selection set was executed for a change. With shared execution
    /// this grows with distinct operations, not with subscribers.
    pub subscription_executions: AtomicU64,
    /// Frames queued for subscribers (`next`/`data`).
    pub frames_queued: AtomicU64,
    /// Bytes waiting in WebSocket outboxes now, all connections together.
    pub queued_bytes: AtomicI64,
    /// State frames replaced by a newer one for a subscriber that fell behind.
    pub frames_conflated: AtomicU64,
    /// Connections closed because an event subscription's queue overflowed.
    pub slow_consumer_closes: AtomicU64,
    /// Connections closed because the client stopped answering pings.
    pub idle_closes: AtomicU64,
    /// Anonymous queries answered from the micro-cache.
    pub query_cache_hits: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        let gauges = [
            (
                "scoreline_ws_connections",
                "WebSocket connections open.",
                &self.ws_connections,
            ),
            (
                "scoreline_subscriptions",
                "Subscription operations running.",
                &self.subscriptions,
            ),
            (
                "scoreline_shared_executions",
                "Shared subscription executions running.",
                &self.shared_executions,
            ),
            (
                "scoreline_ws_queued_bytes",
                "Bytes waiting in WebSocket outboxes.",
                &self.queued_bytes,
            ),
        ];
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        let counters = [
            (
                "scoreline_subscription_executions_total",
                "Executions of a subscription selection set for a change.",
                &self.subscription_executions,
            ),
            (
                "scoreline_ws_frames_queued_total",
                "Subscription frames queued for clients.",
                &self.frames_queued,
            ),
            (
                "scoreline_ws_frames_conflated_total",
                "State frames replaced by a newer state for a client that fell behind.",
                &self.frames_conflated,
            ),
            (
                "scoreline_ws_slow_consumer_closes_total",
                "Connections closed because an event subscription overflowed its queue.",
                &self.slow_consumer_closes,
            ),
            (
                "scoreline_ws_idle_closes_total",
                "Connections closed because the client stopped answering pings.",
                &self.idle_closes,
            ),
            (
                "scoreline_query_cache_hits_total",
                "Anonymous queries answered from the micro-cache.",
                &self.query_cache_hits,
            ),
        ];
        for (name, help, value) in counters {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
        out
    }
}

/// Appends one metric (`gauge` or `counter`) in the exposition format; for values kept outside
/// [`Metrics`] (admission, the accept loop, persisted documents).
pub fn write_metric(out: &mut String, name: &str, help: &str, kind: &str, value: u64) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_lists_every_metric_with_its_value() {
        let m = Metrics::default();
        Metrics::add(&m.ws_connections, 3);
        Metrics::inc(&m.subscription_executions);
        Metrics::inc(&m.subscription_executions);
        let text = m.render();
        assert!(text.contains("\nscoreline_ws_connections 3\n"), "{text}");
        assert!(
            text.contains("\nscoreline_subscription_executions_total 2\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE scoreline_ws_idle_closes_total counter"));
    }
}
