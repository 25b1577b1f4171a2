//! The response cache: query responses kept until a change makes them wrong, never for a set
//! time (`RESPONSE_CACHE_BYTES`, on by default).
//!
//! Phones opening a score screen send byte-identical queries; each distinct one is computed
//! once per change of what it read instead of once per request.
//!
//! - **What a response read.** While a query runs, its resolvers note in [`Reads`] what its
//!   answer depends on: a match by id ([`Tag::Match`], whether found or not), or a listing of
//!   matches ([`Tag::Matches`]: `matches`, `liveMatches`). Teams and competitions never change
//!   once created, so reading one that exists needs no tag; a response that lists them
//!   (`teams`, `competitions`) or looked one up and found none is not cached, because their
//!   creation travels on no change stream that every instance hears.
//! - **What ends an entry.** Every change this instance hears of, through the broker's `All`
//!   topic (the embedded pipeline, `POST /internal/publish`, or Redis from any instance), ends
//!   the entries tagged with its match and every listing ([`ResponseCache::follow`]). A
//!   mutation answered here ends its match's entries as soon as its write returns, before the
//!   change comes back through the stream: an instance reads its own writes. A gap in the
//!   stream (a lagging reader, a Redis reconnect) empties the cache, and nothing is served or
//!   stored while the broker cannot hear changes (Redis down).
//! - **Races.** A response is stored only if nothing it read changed while it was computed:
//!   each invalidation takes a sequence number, and a response computed from before the last
//!   invalidation of one of its tags is dropped instead of stored.
//! - **Staleness.** On the answering instance a cached read is never older than a mutation it
//!   answered; across instances an entry outlives a change by the broker's delivery latency
//!   (milliseconds on Redis), or by its failure detection (`ping` + `timeout`, about 4 s) when
//!   the Redis connection dies silently. There is no TTL.
//! - **Bounds.** Entries are counted in bytes (key, body, tags) against the budget and the
//!   oldest go first; a response larger than an eighth of the budget is not stored; the table
//!   of recent invalidations is bounded too.
//!
//! Queries do not depend on who asks (every query field is public), so a response is shared by
//! anonymous and signed-in callers. Mutations, subscriptions and responses with errors are
//! never stored.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_graphql::Context;
use axum::body::Bytes;
use scoreline_core::MatchId;
use sha2::{Digest, Sha256};

use crate::broker::{Broker, Received, Topic};
use crate::metrics::Metrics;

/// Invalidations remembered for the race check; beyond it they are forgotten behind a floor
/// that refuses every response computed before it.
const MAX_RECENT_INVALIDATIONS: usize = 65_536;
/// What an entry costs beyond its key, body and tags: the maps' slots, the `Arc`s.
const ENTRY_OVERHEAD: usize = 160;

/// What a response depends on.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Tag {
    /// One match, by id: its state and timeline (found or not).
    Match(MatchId),
    /// Any listing of matches: every change of any match may add, remove or reorder.
    Matches,
}

/// What one query read, noted by its resolvers (request data; absent outside the HTTP query
/// path, where nothing is cached).
#[derive(Default)]
pub struct Reads {
    tags: Mutex<Vec<Tag>>,
    uncacheable: AtomicBool,
}

impl Reads {
    /// The `Reads` of the running request, if it is one that may be cached.
    pub fn of<'a>(ctx: &'a Context<'_>) -> Option<&'a Reads> {
        ctx.data_opt::<Arc<Reads>>().map(|r| &**r)
    }

    pub fn depends_on(&self, tag: Tag) {
        let mut tags = self.tags.lock().unwrap_or_else(|p| p.into_inner());
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }

    /// The response must not be stored.
    pub fn uncacheable(&self) {
        self.uncacheable.store(true, Ordering::Relaxed);
    }

    fn into_tags(self) -> Option<Vec<Tag>> {
        if self.uncacheable.into_inner() {
            return None;
        }
        Some(self.tags.into_inner().unwrap_or_else(|p| p.into_inner()))
    }
}

/// Notes a read of a match by id in the running request.
pub fn read_match(ctx: &Context<'_>, id: &MatchId) {
    if let Some(reads) = Reads::of(ctx) {
        reads.depends_on(Tag::Match(id.clone()));
    }
}

/// Notes a listing of matches in the running request.
pub fn read_listing(ctx: &Context<'_>) {
    if let Some(reads) = Reads::of(ctx) {
        reads.depends_on(Tag::Matches);
    }
}

/// Notes a read whose response must not be stored.
pub fn read_uncacheable(ctx: &Context<'_>) {
    if let Some(reads) = Reads::of(ctx) {
        reads.uncacheable();
    }
}

/// A stored response: its body and the `ETag` of that body.
#[derive(Clone)]
pub struct Cached {
    pub body: Bytes,
    pub etag: Arc<str>,
}

struct Entry {
    /// Tells this entry from an earlier one under the same key in the eviction queue.
    id: u64,
    cached: Cached,
    tags: Box<[Tag]>,
    cost: usize,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<Arc<str>, Entry>,
    by_tag: HashMap<Tag, HashSet<Arc<str>>>,
    /// Keys in the order they were stored (with their entry id), oldest first.
    order: VecDeque<(Arc<str>, u64)>,
    bytes: usize,
    next_id: u64,
    /// The sequence number of each recent invalidation, by tag.
    invalidated: HashMap<Tag, u64>,
    /// Responses computed before this sequence number are not stored.
    floor: u64,
}

/// When a response started to be computed, to tell whether what it read changed since.
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

pub struct ResponseCache {
    budget: usize,
    broker: Option<Arc<dyn Broker>>,
    metrics: Arc<Metrics>,
    /// Rises with every invalidation; read without the lock to issue tickets.
    seq: AtomicU64,
    inner: Mutex<Inner>,
}

impl ResponseCache {
    /// A cache of at most `budget` bytes (0: off) that serves while `broker` can hear changes.
    pub fn new(budget: usize, broker: Option<Arc<dyn Broker>>, metrics: Arc<Metrics>) -> Self {
        Self {
            budget,
            broker,
            metrics,
            seq: AtomicU64::new(0),
            inner: Mutex::new(Inner::default()),
        }
    }

    /// A cache that is off (for schemas built without a server around them).
    pub fn off() -> Self {
        Self::new(0, None, Arc::new(Metrics::default()))
    }

    pub fn enabled(&self) -> bool {
        self.budget > 0
    }

    /// Whether entries may be served and stored now: on, and hearing every change.
    fn usable(&self) -> bool {
        self.enabled() && self.broker.as_ref().is_none_or(|b| b.hears_changes())
    }

    /// The key of a request: its query text, operation name and variables (as JSON, written
    /// straight into the key).
    pub fn key(request: &async_graphql::Request) -> String {
        let operation = request.operation_name.as_deref().unwrap_or("");
        let mut key = Vec::with_capacity(request.query.len() + operation.len() + 64);
        key.extend_from_slice(request.query.as_bytes());
        key.push(0);
        key.extend_from_slice(operation.as_bytes());
        key.push(0);
        // Writing into a Vec cannot fail, and JSON is text: the key is UTF-8.
        let _ = serde_json::to_writer(&mut key, &request.variables);
        String::from_utf8(key)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
    }

    /// Taken before computing a response that may be stored.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.seq.load(Ordering::Acquire))
    }

    pub fn get(&self, key: &str) -> Option<Cached> {
        if !self.usable() {
            return None;
        }
        let found = self.lock().entries.get(key).map(|e| e.cached.clone());
        if found.is_some() {
            Metrics::inc(&self.metrics.response_cache_hits);
        } else {
            Metrics::inc(&self.metrics.response_cache_misses);
        }
        found
    }

    /// Stores a response computed since `ticket`, unless what it read changed meanwhile or it
    /// read something that cannot be followed. Returns the response with its `ETag`.
    pub fn put(&self, key: String, body: Bytes, reads: Reads, ticket: Ticket) -> Cached {
        let cached = Cached {
            etag: etag(&body),
            body,
        };
        let Some(tags) = reads.into_tags() else {
            return cached;
        };
        let cost = key.len()
            + cached.body.len()
            + cached.etag.len()
            + tags.len() * std::mem::size_of::<Tag>()
            + ENTRY_OVERHEAD;
        if !self.usable() || cost > self.budget / 8 {
            return cached;
        }
        let mut inner = self.lock();
        if ticket.0 < inner.floor
            || tags
                .iter()
                .any(|t| inner.invalidated.get(t).is_some_and(|&at| at > ticket.0))
        {
            return cached;
        }
        let key: Arc<str> = key.into();
        inner.remove(&key);
        inner.next_id += 1;
        let id = inner.next_id;
        for tag in &tags {
            inner
                .by_tag
                .entry(tag.clone())
                .or_default()
                .insert(key.clone());
        }
        inner.order.push_back((key.clone(), id));
        inner.bytes += cost;
        inner.entries.insert(
            key,
            Entry {
                id,
                cached: cached.clone(),
                tags: tags.into_boxed_slice(),
                cost,
            },
        );
        let mut evicted = 0;
        while inner.bytes > self.budget {
            let Some((key, id)) = inner.order.pop_front() else {
                break;
            };
            if inner.entries.get(&key).is_some_and(|e| e.id == id) {
                inner.remove(&key);
                evicted += 1;
            }
        }
        inner.compact_order();
        self.gauges(&inner);
        drop(inner);
        if evicted > 0 {
            self.metrics
                .response_cache_evictions
                .fetch_add(evicted, Ordering::Relaxed);
        }
        cached
    }

    /// Ends the entries that depend on `tags`.
    pub fn invalidate(&self, tags: &[Tag]) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        if inner.invalidated.len() + tags.len() > MAX_RECENT_INVALIDATIONS {
            inner.invalidated.clear();
            inner.floor = seq;
        }
        for tag in tags {
            inner.invalidated.insert(tag.clone(), seq);
            if let Some(keys) = inner.by_tag.remove(tag) {
                for key in keys {
                    inner.remove(&key);
                }
            }
        }
        inner.compact_order();
        self.gauges(&inner);
    }

    /// Ends the entries a change of this match makes wrong: the match's own, and listings.
    pub fn match_changed(&self, id: &MatchId) {
        self.invalidate(&[Tag::Match(id.clone()), Tag::Matches]);
    }

    /// Ends every entry (a gap in the change stream: what changed is unknown).
    pub fn clear(&self) {
        if !self.enabled() {
            return;
        }
        let mut inner = self.lock();
        let seq = self.seq.fetch_add(1, Ordering::AcqRel) + 1;
        *inner = Inner {
            floor: seq,
            next_id: inner.next_id,
            ..Inner::default()
        };
        self.gauges(&inner);
    }

    /// Follows the change stream for ever (a background task): each change ends its match's
    /// entries, a gap ends them all. Subscribing to `All` also makes a Redis broker hear every
    /// instance's changes.
    pub fn follow(self: &Arc<Self>, broker: &dyn Broker) -> tokio::task::JoinHandle<()> {
        let mut changes = broker.subscribe(Topic::All);
        let cache = self.clone();
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Received::Change(change) => cache.match_changed(change.match_id()),
                    Received::Gap => cache.clear(),
                    Received::Closed => {
                        cache.clear();
                        tracing::warn!("the change stream closed: the response cache is emptied and stops following it");
                        return;
                    }
                }
            }
        })
    }

    fn gauges(&self, inner: &Inner) {
        Metrics::set(&self.metrics.response_cache_bytes, inner.bytes as i64);
        Metrics::set(
            &self.metrics.response_cache_entries,
            inner.entries.len() as i64,
        );
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Inner {
    fn remove(&mut self, key: &Arc<str>) {
        let Some(entry) = self.entries.remove(key) else {
            return;
        };
        self.bytes -= entry.cost;
        for tag in entry.tags.iter() {
            if let Some(keys) = self.by_tag.get_mut(tag) {
                keys.remove(key);
                if keys.is_empty() {
                    self.by_tag.remove(tag);
                }
            }
        }
    }

    /// Drops the queue's references to removed entries once they outnumber the live ones.
    fn compact_order(&mut self) {
        if self.order.len() > 2 * self.entries.len() + 1024 {
            let entries = &self.entries;
            self.order
                .retain(|(key, id)| entries.get(key).is_some_and(|e| e.id == *id));
        }
    }
}

/// A strong `ETag` for a body: the first 16 bytes of its SHA-256, in hex, quoted.
pub fn etag(body: &[u8]) -> Arc<str> {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for byte in &digest[..16] {
        tag.push_str(&format!("{byte:02x}"));
    }
    tag.push('"');
    tag.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(budget: usize) -> ResponseCache {
        ResponseCache::new(budget, None, Arc::new(Metrics::default()))
    }

    fn id(s: &str) -> MatchId {
        MatchId::parse(s).unwrap()
    }

    fn reads(tags: &[Tag]) -> Reads {
        let r = Reads::default();
        for t in tags {
            r.depends_on(t.clone());
        }
        r
    }

    fn store(c: &ResponseCache, key: &str, body: &'static str, tags: &[Tag]) {
        let ticket = c.ticket();
        c.put(
            key.into(),
            Bytes::from_static(body.as_bytes()),
            reads(tags),
            ticket,
        );
    }

    fn body(c: &ResponseCache, key: &str) -> Option<String> {
        c.get(key)
            .map(|e| String::from_utf8(e.body.to_vec()).unwrap())
    }

    #[test]
    fn a_change_ends_exactly_the_entries_that_read_its_match() {
        let c = cache(1 << 20);
        store(&c, "a", "A", &[Tag::Match(id("m-a"))]);
        store(&c, "b", "B", &[Tag::Match(id("m-b"))]);
        store(&c, "list", "L", &[Tag::Matches]);
        store(&c, "schema", "S", &[]);
        c.match_changed(&id("m-a"));
        assert_eq!(body(&c, "a"), None);
        assert_eq!(body(&c, "b").as_deref(), Some("B"));
        assert_eq!(body(&c, "list"), None, "every listing may have changed");
        assert_eq!(body(&c, "schema").as_deref(), Some("S"));
    }

    #[test]
    fn a_response_computed_across_a_change_of_what_it_read_is_not_stored() {
        let c = cache(1 << 20);
        let ticket = c.ticket();
        c.match_changed(&id("m-a"));
        let tags = [Tag::Match(id("m-a"))];
        c.put("a".into(), Bytes::from_static(b"old"), reads(&tags), ticket);
        assert_eq!(body(&c, "a"), None);
        // A change of another match does not stop it.
        let ticket = c.ticket();
        c.match_changed(&id("m-b"));
        let tags = [Tag::Match(id("m-a"))];
        c.put("a".into(), Bytes::from_static(b"new"), reads(&tags), ticket);
        assert_eq!(body(&c, "a").as_deref(), Some("new"));
    }

    #[test]
    fn a_gap_ends_everything_and_refuses_responses_computed_before_it() {
        let c = cache(1 << 20);
        store(&c, "a", "A", &[]);
        let ticket = c.ticket();
        c.clear();
        assert_eq!(body(&c, "a"), None);
        c.put("b".into(), Bytes::from_static(b"B"), reads(&[]), ticket);
        assert_eq!(body(&c, "b"), None);
    }

    #[test]
    fn an_uncacheable_read_is_not_stored_but_gets_its_etag() {
        let c = cache(1 << 20);
        let r = reads(&[]);
        r.uncacheable();
        let ticket = c.ticket();
        let out = c.put("a".into(), Bytes::from_static(b"A"), r, ticket);
        assert_eq!(body(&c, "a"), None);
        assert_eq!(out.etag, etag(b"A"));
    }

    #[test]
    fn the_budget_bounds_the_bytes_and_the_oldest_go_first() {
        let c = cache(8 * 1024);
        let big = "x".repeat(600);
        let big: &'static str = Box::leak(big.into_boxed_str());
        for i in 0..40 {
            store(
                &c,
                &format!("k{i}"),
                big,
                &[Tag::Match(id(&format!("m{i}")))],
            );
        }
        let inner = c.lock();
        assert!(inner.bytes <= 8 * 1024, "{} bytes", inner.bytes);
        assert!(inner.entries.contains_key("k39"));
        assert!(!inner.entries.contains_key("k0"));
        assert!(inner.order.len() <= 2 * inner.entries.len() + 1024);
        // Every tag index points at live entries only.
        for keys in inner.by_tag.values() {
            assert!(keys.iter().all(|k| inner.entries.contains_key(k)));
        }
    }

    #[test]
    fn a_response_over_an_eighth_of_the_budget_is_not_stored() {
        let c = cache(8 * 1024);
        let big: &'static str = Box::leak("x".repeat(2000).into_boxed_str());
        store(&c, "big", big, &[]);
        assert_eq!(body(&c, "big"), None);
    }

    #[test]
    fn the_invalidation_table_is_bounded() {
        let c = cache(1 << 20);
        for i in 0..MAX_RECENT_INVALIDATIONS + 10 {
            c.match_changed(&id(&format!("m{i}")));
        }
        assert!(c.lock().invalidated.len() <= MAX_RECENT_INVALIDATIONS);
        // A response computed before the table was forgotten is refused.
        let ticket = Ticket(1);
        c.put("a".into(), Bytes::from_static(b"A"), reads(&[]), ticket);
        assert_eq!(body(&c, "a"), None);
    }

    #[test]
    fn off_stores_nothing() {
        let c = cache(0);
        store(&c, "a", "A", &[]);
        assert_eq!(body(&c, "a"), None);
    }

    #[test]
    fn the_key_tells_variables_apart() {
        let a = async_graphql::Request::new("q").variables(async_graphql::Variables::from_json(
            serde_json::json!({"id": "a"}),
        ));
        let b = async_graphql::Request::new("q").variables(async_graphql::Variables::from_json(
            serde_json::json!({"id": "b"}),
        ));
        assert_ne!(ResponseCache::key(&a), ResponseCache::key(&b));
        let quote = async_graphql::Request::new("q").variables(
            async_graphql::Variables::from_json(serde_json::json!({"id": "a\",\"x\":\"b"})),
        );
        let two = async_graphql::Request::new("q").variables(async_graphql::Variables::from_json(
            serde_json::json!({"id": "a", "x": "b"}),
        ));
        assert_ne!(ResponseCache::key(&quote), ResponseCache::key(&two));
        let named = async_graphql::Request::new("q").operation_name("Q");
        assert_ne!(
            ResponseCache::key(&named),
            ResponseCache::key(&async_graphql::Request::new("q"))
        );
    }

    #[test]
    fn etags_are_quoted_and_tell_bodies_apart() {
        let a = etag(b"{\"data\":1}");
        assert!(a.starts_with('"') && a.ends_with('"') && a.len() == 34);
        assert_ne!(a, etag(b"{\"data\":2}"));
        assert_eq!(a, etag(b"{\"data\":1}"));
    }
}
