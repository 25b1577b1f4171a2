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
    /// Queries answered from the response cache.
    pub response_cache_hits: AtomicU64,
    /// Cacheable queries the response cache did not hold.
    pub response_cache_misses: AtomicU64,
    /// Responses dropped from the cache to stay within `RESPONSE_CACHE_BYTES`.
    pub response_cache_evictions: AtomicU64,
    /// Bytes the response cache holds now (keys, bodies, tags, overhead).
    pub response_cache_bytes: AtomicI64,
    /// Responses the cache holds now.
    pub response_cache_entries: AtomicI64,
    /// Tags of signed publish requests remembered to refuse their replays.
    pub publish_replay_entries: AtomicI64,
    /// Publish requests refused as replays of one already received.
    pub publish_replays_refused: AtomicU64,
    /// Publish requests refused because the replay guard was full.
    pub publish_replay_full: AtomicU64,
    /// Publish requests signed with `PUBLISH_SECRET_PREVIOUS`: zero for a while means a
    /// rotation is complete.
    pub publish_previous_secret: AtomicU64,
    /// Matches the intake remembers the newest published version and seq of (dedupe).
    pub intake_tracked_matches: AtomicI64,
    /// Matches the intake forgot to stay within its bound (the least recently changed).
    pub intake_evictions: AtomicU64,
    /// Changes the intake dropped as older than what it forgot (a redelivery of old news).
    pub intake_stale_drops: AtomicU64,
    /// Matches all `matchesUpdated` subscriptions together remember having seen.
    pub matches_updated_tracked: AtomicI64,
    /// Matches a `matchesUpdated` subscription forgot to stay within its bound.
    pub matches_updated_evictions: AtomicU64,
    /// Changes a `matchesUpdated` subscription dropped as older than what it forgot.
    pub matches_updated_stale_drops: AtomicU64,
    /// `matchesUpdated` catch-ups that stopped at their read budget before the end.
    pub resyncs_truncated: AtomicU64,
    /// Idempotency records the memory store holds.
    pub idempotency_records: AtomicI64,
    /// Idempotency records the memory store removed after they expired.
    pub idempotency_expired: AtomicU64,
    /// Records waiting in the memory store's change feed.
    pub change_feed_records: AtomicI64,
    /// Writes that found the change feed full and waited for room.
    pub change_feed_waits: AtomicU64,
    /// Writes refused (SERVICE_UNAVAILABLE) because the change feed stayed full.
    pub change_feed_full: AtomicU64,
    /// `matches` pages ended early by their read budget.
    pub listing_budget_stops: AtomicU64,
}

impl Metrics {
    pub fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(gauge: &AtomicI64, delta: i64) {
        gauge.fetch_add(delta, Ordering::Relaxed);
    }

    pub fn set(gauge: &AtomicI64, value: i64) {
        gauge.store(value, Ordering::Relaxed);
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
                "scoreline_publish_replay_entries",
                "Signed publish requests remembered to refuse their replays.",
                &self.publish_replay_entries,
            ),
            (
                "scoreline_response_cache_bytes",
                "Bytes the response cache holds (keys, bodies, tags, overhead).",
                &self.response_cache_bytes,
            ),
            (
                "scoreline_response_cache_entries",
                "Responses the response cache holds.",
                &self.response_cache_entries,
            ),
            (
                "scoreline_ws_queued_bytes",
                "Bytes waiting in WebSocket outboxes.",
                &self.queued_bytes,
            ),
            (
                "scoreline_intake_tracked_matches",
                "Matches the publish intake remembers for dedupe (bounded).",
                &self.intake_tracked_matches,
            ),
            (
                "scoreline_matches_updated_tracked_matches",
                "Matches remembered by all matchesUpdated subscriptions (bounded per subscription).",
                &self.matches_updated_tracked,
            ),
            (
                "scoreline_idempotency_records",
                "Idempotency records held by the memory store (expire after their TTL).",
                &self.idempotency_records,
            ),
            (
                "scoreline_change_feed_records",
                "Records waiting in the memory store's change feed (bounded).",
                &self.change_feed_records,
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
                "scoreline_response_cache_hits_total",
                "Queries answered from the response cache.",
                &self.response_cache_hits,
            ),
            (
                "scoreline_response_cache_misses_total",
                "Cacheable queries the response cache did not hold.",
                &self.response_cache_misses,
            ),
            (
                "scoreline_response_cache_evictions_total",
                "Responses dropped from the cache to stay within RESPONSE_CACHE_BYTES.",
                &self.response_cache_evictions,
            ),
            (
                "scoreline_publish_replays_refused_total",
                "Publish requests refused as replays of one already received.",
                &self.publish_replays_refused,
            ),
            (
                "scoreline_publish_replay_full_total",
                "Publish requests refused with 503 because the replay guard was full.",
                &self.publish_replay_full,
            ),
            (
                "scoreline_publish_previous_secret_total",
                "Publish requests signed with PUBLISH_SECRET_PREVIOUS.",
                &self.publish_previous_secret,
            ),
            (
                "scoreline_intake_evictions_total",
                "Matches the publish intake forgot, least recently changed first.",
                &self.intake_evictions,
            ),
            (
                "scoreline_intake_stale_drops_total",
                "Changes the publish intake dropped as older than what it forgot.",
                &self.intake_stale_drops,
            ),
            (
                "scoreline_matches_updated_evictions_total",
                "Matches a matchesUpdated subscription forgot, least recently changed first.",
                &self.matches_updated_evictions,
            ),
            (
                "scoreline_matches_updated_stale_drops_total",
                "Changes a matchesUpdated subscription dropped as older than what it forgot.",
                &self.matches_updated_stale_drops,
            ),
            (
                "scoreline_resyncs_truncated_total",
                "matchesUpdated catch-ups that stopped at their read budget.",
                &self.resyncs_truncated,
            ),
            (
                "scoreline_idempotency_expired_total",
                "Idempotency records the memory store removed after they expired.",
                &self.idempotency_expired,
            ),
            (
                "scoreline_change_feed_waits_total",
                "Writes that waited for room in the memory store's change feed.",
                &self.change_feed_waits,
            ),
            (
                "scoreline_change_feed_full_total",
                "Writes refused with SERVICE_UNAVAILABLE because the change feed stayed full.",
                &self.change_feed_full,
            ),
            (
                "scoreline_listing_budget_stops_total",
                "matches pages ended early by their read budget.",
                &self.listing_budget_stops,
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
