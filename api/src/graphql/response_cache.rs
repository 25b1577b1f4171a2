//! An opt-in micro-cache of anonymous query responses (`QUERY_CACHE_MS`, off by default).
//!
//! Phones polling the same `match(id)` send byte-identical requests; with the cache on, the
//! answer is computed once per change instead of once per request. An entry is served only
//! while nothing changed since it was computed (the intake's change counter: every published
//! change, and every mutation answered by this instance, bumps it) and for at most the
//! configured age. One instance therefore reads its own writes; with several instances an
//! entry can trail a change published through another instance by at most that age.
//! Mutations, authenticated requests and responses with errors are never cached.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;

/// Entries kept; beyond it the cache starts over.
const CAPACITY: usize = 10_000;

struct Entry {
    body: Bytes,
    at: Instant,
    changes: u64,
}

pub struct ResponseCache {
    max_age: Duration,
    /// Rises on every change this instance learns of.
    changes: Arc<AtomicU64>,
    entries: Mutex<HashMap<String, Entry>>,
}

impl ResponseCache {
    /// `max_age` zero turns the cache off.
    pub fn new(max_age: Duration, changes: Arc<AtomicU64>) -> Self {
        Self {
            max_age,
            changes,
            entries: Mutex::new(HashMap::new()),
        }
    }

    pub fn enabled(&self) -> bool {
        !self.max_age.is_zero()
    }

    /// The key of a request: its query text, operation name and variables.
    pub fn key(request: &async_graphql::Request) -> String {
        let mut key = String::with_capacity(request.query.len() + 64);
        key.push_str(&request.query);
        key.push('\0');
        key.push_str(request.operation_name.as_deref().unwrap_or(""));
        key.push('\0');
        key.push_str(&request.variables.to_string());
        key
    }

    /// The current change count, to take before computing a response.
    pub fn changes(&self) -> u64 {
        self.changes.load(Ordering::Acquire)
    }

    /// Notes a change (a mutation answered here).
    pub fn changed(&self) {
        self.changes.fetch_add(1, Ordering::AcqRel);
    }

    pub fn get(&self, key: &str) -> Option<Bytes> {
        let entries = self.lock();
        let entry = entries.get(key)?;
        (entry.changes == self.changes() && entry.at.elapsed() < self.max_age)
            .then(|| entry.body.clone())
    }

    /// Stores a response computed when the change count was `changes`.
    pub fn put(&self, key: String, body: Bytes, changes: u64) {
        if changes != self.changes() {
            return;
        }
        let mut entries = self.lock();
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(
            key,
            Entry {
                body,
                at: Instant::now(),
                changes,
            },
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(ms: u64) -> ResponseCache {
        ResponseCache::new(Duration::from_millis(ms), Arc::new(AtomicU64::new(0)))
    }

    #[test]
    fn an_entry_is_served_until_something_changes() {
        let c = cache(60_000);
        let at = c.changes();
        c.put("k".into(), Bytes::from_static(b"1"), at);
        assert_eq!(c.get("k").as_deref(), Some(&b"1"[..]));
        c.changed();
        assert_eq!(c.get("k"), None, "a change invalidates every entry");
    }

    #[test]
    fn a_response_computed_before_a_change_is_not_stored() {
        let c = cache(60_000);
        let at = c.changes();
        c.changed();
        c.put("k".into(), Bytes::from_static(b"old"), at);
        assert_eq!(c.get("k"), None);
    }

    #[test]
    fn entries_expire_after_the_max_age() {
        let c = cache(1);
        c.put("k".into(), Bytes::from_static(b"1"), c.changes());
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(c.get("k"), None);
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
    }
}
