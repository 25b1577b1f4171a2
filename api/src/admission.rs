//! Admission: who may hold what, decided before the work starts.
//!
//! - [`client_address`]: the address a request comes from, through `TRUSTED_PROXY_HOPS` load
//!   balancers (each appends the address it saw to `X-Forwarded-For`).
//! - [`Streams`]: long-lived connections (WebSockets, and HTTP streams), bounded in all
//!   (`MAX_STREAMS`) and per client address (`MAX_STREAMS_PER_ADDRESS`); over a bound, the
//!   upgrade is refused with 503 `TOO_MANY_CONNECTIONS` before anything is allocated.
//! - [`RateLimiter`]: token buckets, per client address for anonymous traffic
//!   (`RATE_LIMIT_PER_ADDRESS`) and per subject for signed-in mutations and subscriptions
//!   (`RATE_LIMIT_PER_SUBJECT`); over a rate, `RATE_LIMITED` with the seconds to wait.
//!
//! TCP connections themselves are bounded by the accept loop (`crate::server`).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::http::HeaderMap;
use tokio::time::Instant;

/// The address a request comes from. Behind `trusted_hops` proxies, the entry they appended to
/// `X-Forwarded-For` (the rightmost `trusted_hops`-th); entries further left are the client's
/// own claims and are never trusted. Without a usable entry, the peer's address.
pub fn client_address(peer: SocketAddr, headers: &HeaderMap, trusted_hops: usize) -> IpAddr {
    if trusted_hops == 0 {
        return peer.ip();
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .collect();
    entries
        .iter()
        .rev()
        .nth(trusted_hops - 1)
        .and_then(|e| e.parse::<IpAddr>().ok())
        .unwrap_or_else(|| peer.ip())
}

/// Why a client was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Over `MAX_STREAMS` or `MAX_STREAMS_PER_ADDRESS`.
    TooManyConnections { per_address: bool },
    /// Over a rate; try again after this long.
    RateLimited { retry_after: Duration },
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::TooManyConnections { .. } => crate::graphql::error::TOO_MANY_CONNECTIONS,
            Refusal::RateLimited { .. } => crate::graphql::error::RATE_LIMITED,
        }
    }

    /// Whole seconds to wait (at least 1), for `Retry-After`.
    pub fn retry_after_secs(&self) -> u64 {
        match self {
            Refusal::TooManyConnections { .. } => 1,
            Refusal::RateLimited { retry_after } => {
                retry_after.as_secs_f64().ceil().max(1.0) as u64
            }
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::TooManyConnections { per_address: true } => {
                "too many open connections from this address (MAX_STREAMS_PER_ADDRESS)".into()
            }
            Refusal::TooManyConnections { per_address: false } => {
                "the server holds as many connections as it may (MAX_STREAMS); try another instance or later".into()
            }
            Refusal::RateLimited { .. } => format!(
                "too many requests: retry after {} s",
                self.retry_after_secs()
            ),
        }
    }
}

/// Long-lived connections, in all and per client address.
pub struct Streams {
    max_total: usize,
    max_per_address: usize,
    total: AtomicUsize,
    per_address: Mutex<HashMap<IpAddr, usize>>,
    refused: AtomicU64,
}

/// One admitted stream; dropping it frees its place.
pub struct StreamPermit {
    streams: Arc<Streams>,
    address: IpAddr,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        self.streams.total.fetch_sub(1, Ordering::AcqRel);
        let mut map = self.streams.map();
        if let Some(count) = map.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.address);
            }
        }
    }
}

impl Streams {
    /// `0` for either bound means no bound of that kind.
    pub fn new(max_total: usize, max_per_address: usize) -> Arc<Self> {
        Arc::new(Self {
            max_total: if max_total == 0 {
                usize::MAX
            } else {
                max_total
            },
            max_per_address: if max_per_address == 0 {
                usize::MAX
            } else {
                max_per_address
            },
            total: AtomicUsize::new(0),
            per_address: Mutex::new(HashMap::new()),
            refused: AtomicU64::new(0),
        })
    }

    fn map(&self) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        self.per_address.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn admit(self: &Arc<Self>, address: IpAddr) -> Result<StreamPermit, Refusal> {
        let mut map = self.map();
        let mine = map.get(&address).copied().unwrap_or(0);
        let refusal = if mine >= self.max_per_address {
            Some(Refusal::TooManyConnections { per_address: true })
        } else if self.total.load(Ordering::Acquire) >= self.max_total {
            Some(Refusal::TooManyConnections { per_address: false })
        } else {
            None
        };
        if let Some(refusal) = refusal {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return Err(refusal);
        }
        map.insert(address, mine + 1);
        self.total.fetch_add(1, Ordering::AcqRel);
        Ok(StreamPermit {
            streams: self.clone(),
            address,
        })
    }

    pub fn open(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets by key: `rate` tokens a second, up to `burst`. The map is bounded: full
/// buckets carry no state and are swept when it grows past `max_keys`; if it is still full
/// (a flood of distinct keys), new keys pass unmetered and are counted, rather than evicting
/// the buckets of clients that are being limited.
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
    limited: AtomicU64,
    untracked: AtomicU64,
}

impl<K: Eq + Hash + Clone> RateLimiter<K> {
    /// `rate` per second with a burst of twice that; a rate of 0 turns the limiter off.
    pub fn new(rate: u32, max_keys: usize) -> Self {
        Self {
            rate: f64::from(rate),
            burst: f64::from(rate) * 2.0,
            max_keys,
            buckets: Mutex::new(HashMap::new()),
            limited: AtomicU64::new(0),
            untracked: AtomicU64::new(0),
        }
    }

    pub fn enabled(&self) -> bool {
        self.rate > 0.0
    }

    /// Takes `cost` tokens from `key`'s bucket, or says how long until it could.
    pub fn take(&self, key: &K, cost: u32) -> Result<(), Refusal> {
        if !self.enabled() {
            return Ok(());
        }
        let now = Instant::now();
        let cost = f64::from(cost.max(1));
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            let (rate, burst) = (self.rate, self.burst);
            buckets.retain(|_, b| refill(b, now, rate, burst) < burst);
            if buckets.len() >= self.max_keys {
                self.untracked.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        let bucket = buckets.entry(key.clone()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let tokens = refill(bucket, now, self.rate, self.burst);
        if tokens >= cost {
            bucket.tokens = tokens - cost;
            return Ok(());
        }
        self.limited.fetch_add(1, Ordering::Relaxed);
        let wait = (cost.min(self.burst) - tokens) / self.rate;
        Err(Refusal::RateLimited {
            retry_after: Duration::from_secs_f64(wait),
        })
    }

    /// Requests refused so far.
    pub fn limited(&self) -> u64 {
        self.limited.load(Ordering::Relaxed)
    }

    /// Keys tracked now.
    pub fn keys(&self) -> usize {
        self.buckets.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Requests let through unmetered because the map was full.
    pub fn untracked(&self) -> u64 {
        self.untracked.load(Ordering::Relaxed)
    }
}

/// Refills `bucket` up to `now`; returns its tokens.
fn refill(bucket: &mut Bucket, now: Instant, rate: f64, burst: f64) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
    bucket.updated = now;
    bucket.tokens
}

/// Every admission control of a process.
pub struct Admission {
    pub streams: Arc<Streams>,
    pub by_address: RateLimiter<IpAddr>,
    pub by_subject: RateLimiter<String>,
    pub trusted_proxy_hops: usize,
}

/// Most distinct keys a rate limiter tracks.
pub const MAX_RATE_KEYS: usize = 100_000;

impl Admission {
    /// The address of a request from `peer` with `headers`.
    pub fn address(&self, peer: SocketAddr, headers: &HeaderMap) -> IpAddr {
        client_address(peer, headers, self.trusted_proxy_hops)
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn peer() -> SocketAddr {
        "10.0.0.9:5000".parse().unwrap()
    }

    #[test]
    fn the_client_address_is_the_one_the_trusted_proxy_appended() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            HeaderValue::from_static("6.6.6.6, 203.0.113.7"),
        );
        // No trusted proxy: the peer, whatever the header claims.
        assert_eq!(client_address(peer(), &headers, 0), peer().ip());
        // One (the load balancer): the address it appended, not the client's claim.
        assert_eq!(
            client_address(peer(), &headers, 1),
            "203.0.113.7".parse::<IpAddr>().unwrap()
        );
        // More hops than entries, or garbage: the peer.
        assert_eq!(client_address(peer(), &headers, 3), peer().ip());
        headers.insert("x-forwarded-for", HeaderValue::from_static("nonsense"));
        assert_eq!(client_address(peer(), &headers, 1), peer().ip());
    }

    #[test]
    fn streams_are_bounded_per_address_and_in_all_and_permits_free_their_place() {
        let streams = Streams::new(3, 2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let first = streams.admit(a).unwrap();
        let _second = streams.admit(a).unwrap();
        assert_eq!(
            streams.admit(a).err(),
            Some(Refusal::TooManyConnections { per_address: true })
        );
        let _third = streams.admit(b).unwrap();
        assert_eq!(
            streams.admit(b).err(),
            Some(Refusal::TooManyConnections { per_address: false })
        );
        drop(first);
        assert!(streams.admit(b).is_ok());
        assert_eq!(streams.refused(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn a_bucket_allows_its_burst_then_its_rate_and_says_how_long_to_wait() {
        let limiter = RateLimiter::<u8>::new(10, 100);
        for _ in 0..20 {
            limiter.take(&1, 1).unwrap();
        }
        let Err(Refusal::RateLimited { retry_after }) = limiter.take(&1, 1) else {
            panic!("the burst is spent");
        };
        assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
        // Another key has its own bucket.
        limiter.take(&2, 1).unwrap();
        tokio::time::advance(Duration::from_millis(100)).await;
        limiter.take(&1, 1).unwrap();
        assert_eq!(limiter.limited(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_key_map_stays_bounded_sweeping_full_buckets_first() {
        let limiter = RateLimiter::<u32>::new(10, 4);
        for key in 0..4 {
            limiter.take(&key, 1).unwrap();
        }
        // Keys 0..4 refill within a second and are swept for new ones.
        tokio::time::advance(Duration::from_secs(1)).await;
        for key in 4..8 {
            limiter.take(&key, 1).unwrap();
        }
        assert!(limiter.keys() <= 4);
        // With every bucket busy, a new key passes unmetered and is counted.
        for key in 4..8 {
            limiter.take(&key, 15).unwrap();
        }
        limiter.take(&99, 1).unwrap();
        assert_eq!(limiter.untracked(), 1);
        assert!(limiter.keys() <= 4);
    }

    #[test]
    fn a_rate_of_zero_turns_the_limiter_off() {
        let limiter = RateLimiter::<u8>::new(0, 10);
        for _ in 0..10_000 {
            limiter.take(&1, 1).unwrap();
        }
        assert_eq!(limiter.keys(), 0);
    }
}
