//! The Redis broker (`BROKER=redis`): many API instances share one Redis (ElastiCache, Valkey)
//! pub/sub server, so a change published through any instance reaches subscribers on all.
//!
//! - Publishing goes through the pipeline's [`RedisPublisher`] (channels and versioned payloads
//!   are defined once, in `scoreline_core::change`): one message per match and batch on
//!   `scoreline:m:{matchId}`. It fails fast (a bounded timeout) while Redis is down, so
//!   `/internal/publish` answers 503 and the stream-handler retries.
//! - Receiving: one subscriber connection per instance, owned by a background task that feeds
//!   the local [`Hub`]. It follows the hub's topics: SUBSCRIBEs to a match channel while local
//!   subscribers need the match, UNSUBSCRIBEs after, and PSUBSCRIBEs to `scoreline:m:*` while a
//!   local `All` subscriber exists. Messages from
//!   the pattern go to the `All` topic only and channel messages to their match topic only, so
//!   none is delivered twice. The publishing instance gets its own messages back through this
//!   connection and does not also deliver them locally.
//! - Faults: the task PINGs the connection; when it breaks, `check()` fails (readiness 503) and
//!   the task reconnects with the pipeline's [`Backoff`], resubscribes, then sends
//!   [`Delivery::Gap`] to every local topic so subscribers catch up from the store.
//! - A channel (or the pattern) newly subscribed also gets a `Gap` once Redis confirms: a
//!   subscription starts locally before Redis knows of it, and a change published in between
//!   is read from the store instead. For `matchesUpdated` this means the first subscriber of
//!   an instance is sent the current state of the matches its filter admits.
//! - A payload of an unknown format version (a newer release during a rolling deploy) is
//!   logged, counted, and becomes a `Gap` for its topic.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use redis::aio::PubSubSink;
use scoreline_core::change::{
    channel_match, decode_changes, match_channel, WireError, ALL_PATTERN,
};
use scoreline_core::{Change, MatchId};
use scoreline_pipeline::retry::{Backoff, RetryPolicy};
use scoreline_pipeline::sink::RedisPublisher;
use tokio::task::JoinHandle;

use super::hub::{Hub, DEFAULT_TOPIC_CAPACITY};
use super::{Broker, BrokerError, BrokerSubscription, Delivery, Topic};

/// Timings of the Redis broker.
#[derive(Clone, Debug)]
pub struct RedisBrokerConfig {
    /// Most time a publish, a PING or a (re)connection may take.
    pub timeout: Duration,
    /// How often the subscriber connection is PINGed (a cut network sends no FIN).
    pub ping_interval: Duration,
    /// A subscriber connection whose PING gets no answer within this is given up and made
    /// again. Longer than `timeout`: a reconnect costs every local subscriber a store read, so
    /// a slow moment should not cause one.
    pub ping_timeout: Duration,
    /// Waits between reconnection attempts.
    pub reconnect: Backoff,
    /// How far a local subscriber may fall behind before it resynchronises from the store.
    pub topic_capacity: usize,
}

impl Default for RedisBrokerConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(1),
            ping_interval: Duration::from_secs(1),
            ping_timeout: Duration::from_secs(3),
            reconnect: Backoff::new(Duration::from_millis(100), Duration::from_secs(5)),
            topic_capacity: DEFAULT_TOPIC_CAPACITY,
        }
    }
}

/// What the subscriber task and the broker share.
struct Shared {
    hub: Arc<Hub>,
    /// Whether the subscriber connection is up and subscribed to what is needed.
    up: AtomicBool,
    /// Payloads this release cannot read (another format version, or malformed).
    unknown_format: AtomicU64,
}

pub struct RedisBroker {
    shared: Arc<Shared>,
    publisher: Arc<RedisPublisher>,
    config: RedisBrokerConfig,
    task: JoinHandle<()>,
}

impl RedisBroker {
    /// Starts the subscriber task; it connects in the background, so an instance starts (and
    /// serves queries and mutations) while Redis is still unreachable, unready until it is.
    /// Fails only on a malformed URL; the error never repeats the URL (it may hold a password).
    pub fn start(url: &str, config: RedisBrokerConfig) -> Result<Self, BrokerError> {
        let publisher = RedisPublisher::new(
            url,
            RetryPolicy {
                attempt_timeout: config.timeout,
                max_attempts: 1,
                ..RetryPolicy::default()
            },
        )
        .map_err(|e| BrokerError::Unavailable(format!("invalid REDIS_URL: {e}").into()))?;
        let shared = Arc::new(Shared {
            hub: Hub::new(config.topic_capacity),
            up: AtomicBool::new(false),
            unknown_format: AtomicU64::new(0),
        });
        let task = tokio::spawn(run(
            publisher.client().clone(),
            shared.clone(),
            config.clone(),
        ));
        Ok(Self {
            shared,
            publisher: Arc::new(publisher),
            config,
            task,
        })
    }

    /// Messages this release could not read (another format version, or malformed), each
    /// turned into a `Gap` (for metrics and tests).
    pub fn unknown_format_messages(&self) -> u64 {
        self.shared.unknown_format.load(Ordering::Relaxed)
    }
}

impl Drop for RedisBroker {
    fn drop(&mut self) {
        // The task holds the topics' senders: ending it lets subscribers see `Closed`.
        self.task.abort();
    }
}

#[async_trait]
impl Broker for RedisBroker {
    async fn publish(&self, changes: &[Arc<Change>]) -> Result<(), BrokerError> {
        // Not delivered locally: this instance receives its own messages from Redis.
        self.publisher
            .publish_once(changes.iter().map(|c| &**c), self.config.timeout)
            .await
            .map_err(|e| BrokerError::Unavailable(Box::new(e)))
    }

    fn subscribe(&self, topic: Topic) -> BrokerSubscription {
        self.shared.hub.subscribe(topic)
    }

    fn hears_changes(&self) -> bool {
        self.shared.up.load(Ordering::Acquire)
    }

    async fn check(&self) -> Result<(), BrokerError> {
        if !self.shared.up.load(Ordering::Acquire) {
            return Err(BrokerError::Unavailable(
                "the Redis subscriber connection is down; reconnecting".into(),
            ));
        }
        self.publisher
            .ping(self.config.timeout)
            .await
            .map_err(|e| BrokerError::Unavailable(Box::new(e)))
    }
}

/// The subscriber connection, for ever: connect, serve until it breaks, back off, again.
async fn run(client: redis::Client, shared: Arc<Shared>, config: RedisBrokerConfig) {
    let mut failures = 0u32;
    let mut connected_before = false;
    loop {
        match serve(&client, &shared, &config, connected_before).await {
            Ok(never) => match never {},
            Err(Lost { error, connected }) => {
                shared.up.store(false, Ordering::Release);
                if connected {
                    connected_before = true;
                    failures = 0;
                    tracing::error!(%error, "lost the Redis subscriber connection; reconnecting");
                } else {
                    tracing::warn!(%error, attempt = failures, "connecting to Redis failed; will retry");
                }
                config.reconnect.wait(failures).await;
                failures = failures.saturating_add(1);
            }
        }
    }
}

/// Why a connection ended, and whether it had been established.
struct Lost {
    error: String,
    connected: bool,
}

enum Never {}

/// One connection's life: connect, subscribe to what is needed, dispatch messages, follow
/// changes of what is needed, PING; returns when anything fails.
async fn serve(
    client: &redis::Client,
    shared: &Shared,
    config: &RedisBrokerConfig,
    reconnected: bool,
) -> Result<Never, Lost> {
    let failed = |connected: bool| move |error: String| Lost { error, connected };
    let pubsub = tokio::time::timeout(config.timeout, client.get_async_pubsub())
        .await
        .map_err(|_| format!("no connection within {:?}", config.timeout))
        .map_err(failed(false))?
        .map_err(|e| e.to_string())
        .map_err(failed(false))?;
    let (mut sink, mut stream) = pubsub.split();
    let mut subscribed = Subscribed::default();
    subscribed
        .reconcile(&mut sink, shared, config.timeout)
        .await
        .map_err(failed(false))?;
    shared.up.store(true, Ordering::Release);
    if reconnected {
        // Anything published while the connection was down is lost to this instance; every
        // topic was subscribed anew above, so each got its `Gap`.
        tracing::info!("reconnected to Redis; subscribers catch up from the store");
    } else {
        tracing::info!("connected to Redis");
    }
    let mut ping = tokio::time::interval_at(
        tokio::time::Instant::now() + config.ping_interval,
        config.ping_interval,
    );
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            message = stream.next() => match message {
                Some(message) => dispatch(shared, &message),
                None => return Err(Lost { error: "the connection closed".into(), connected: true }),
            },
            () = shared.hub.changed() => {
                subscribed.reconcile(&mut sink, shared, config.timeout).await.map_err(failed(true))?;
            }
            _ = ping.tick() => {
                match tokio::time::timeout(config.ping_timeout, sink.ping::<redis::Value>()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(Lost { error: format!("PING failed: {e}"), connected: true }),
                    Err(_) => return Err(Lost { error: format!("no PONG within {:?}", config.ping_timeout), connected: true }),
                }
            }
        }
    }
}

/// What the current connection is subscribed to.
#[derive(Default)]
struct Subscribed {
    channels: HashSet<MatchId>,
    all: bool,
}

impl Subscribed {
    /// Subscribes to what local subscribers need and releases the rest. A newly subscribed
    /// channel or pattern gets a `Gap`: its local subscribers may have started before Redis
    /// knew, and after a reconnect everything is subscribed anew.
    async fn reconcile(
        &mut self,
        sink: &mut PubSubSink,
        shared: &Shared,
        timeout: Duration,
    ) -> Result<(), String> {
        let (wanted, all) = shared.hub.wanted();
        let added: Vec<MatchId> = wanted.difference(&self.channels).cloned().collect();
        let removed: Vec<MatchId> = self.channels.difference(&wanted).cloned().collect();
        let within =
            |what: &'static str| move |_| format!("{what} got no answer within {timeout:?}");
        if !added.is_empty() {
            let names: Vec<String> = added.iter().map(match_channel).collect();
            tokio::time::timeout(timeout, sink.subscribe(&names))
                .await
                .map_err(within("SUBSCRIBE"))?
                .map_err(|e| format!("SUBSCRIBE failed: {e}"))?;
            tracing::debug!(channels = ?names, "subscribed");
            for id in added {
                shared.hub.send(&Topic::Match(id.clone()), Delivery::Gap);
                self.channels.insert(id);
            }
        }
        if !removed.is_empty() {
            let names: Vec<String> = removed.iter().map(match_channel).collect();
            tokio::time::timeout(timeout, sink.unsubscribe(&names))
                .await
                .map_err(within("UNSUBSCRIBE"))?
                .map_err(|e| format!("UNSUBSCRIBE failed: {e}"))?;
            for id in removed {
                self.channels.remove(&id);
            }
        }
        if all != self.all {
            if all {
                tokio::time::timeout(timeout, sink.psubscribe(ALL_PATTERN))
                    .await
                    .map_err(within("PSUBSCRIBE"))?
                    .map_err(|e| format!("PSUBSCRIBE failed: {e}"))?;
                // Only subscribers that started while the pattern was not subscribed get it.
                shared.hub.send(&Topic::All, Delivery::Gap);
            } else {
                tokio::time::timeout(timeout, sink.punsubscribe(ALL_PATTERN))
                    .await
                    .map_err(within("PUNSUBSCRIBE"))?
                    .map_err(|e| format!("PUNSUBSCRIBE failed: {e}"))?;
            }
            self.all = all;
        }
        Ok(())
    }
}

/// Hands a message's changes to its topic: the `All` topic for pattern messages, the match
/// topic for channel messages.
fn dispatch(shared: &Shared, message: &redis::Msg) {
    let topic = if message.from_pattern() {
        Topic::All
    } else {
        match channel_match(message.get_channel_name()) {
            Some(id) => Topic::Match(id),
            None => return,
        }
    };
    match decode_changes(message.get_payload_bytes()) {
        Ok(batch) => {
            tracing::debug!(
                channel = message.get_channel_name(),
                pattern = message.from_pattern(),
                changes = batch.changes.len(),
                "received from Redis"
            );
            for change in batch.changes {
                shared.hub.send(&topic, Delivery::Change(Arc::new(change)));
            }
        }
        Err(error) => {
            shared.unknown_format.fetch_add(1, Ordering::Relaxed);
            match &error {
                WireError::UnknownVersion(_) => tracing::warn!(
                    channel = message.get_channel_name(),
                    %error,
                    "a message of another format version; its subscribers catch up from the store"
                ),
                WireError::Malformed(_) => tracing::error!(
                    channel = message.get_channel_name(),
                    %error,
                    "an unreadable message; its subscribers catch up from the store"
                ),
            }
            // Something happened on this topic that cannot be read: the store has it.
            shared.hub.send(&topic, Delivery::Gap);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_malformed_url_is_refused_without_repeating_it() {
        let error = RedisBroker::start("redis://:hunter2@[::1", RedisBrokerConfig::default())
            .err()
            .expect("an error");
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }
}
