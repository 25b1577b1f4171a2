//! Refusing replays of signed publish requests.
//!
//! A signature stays valid for [`SIGNATURE_MAX_AGE_SECS`] either side of its timestamp, so a
//! request captured on the way (or logged by a proxy) could be sent again within that window.
//! The guard remembers the HMAC tag of every request it admitted until the freshness check
//! would refuse that request anyway (`timestamp + SIGNATURE_MAX_AGE_SECS`), and refuses the
//! same tag again.
//!
//! An exact replay is never legitimate: the stream-handler's HTTP sink signs every attempt
//! anew and never signs the same body twice with one timestamp (`pipeline/src/sink/http.rs`),
//! so its at-least-once retries of a batch carry new tags. They are delivered again, and the
//! intake drops what subscribers already have.
//!
//! The memory is bounded by a count (`PUBLISH_REPLAY_CAPACITY`, about 110 bytes an entry).
//! Only correctly signed requests are recorded, so only the secret's holders (and replays of
//! fresh requests, which are refused before they are recorded) can fill it. When it is full,
//! new requests are refused with 503 until entries expire: forgetting tags early would let
//! their replays in, and the sender retries a 503 anyway.

use std::collections::{BTreeSet, HashMap};

use scoreline_core::publish::SIGNATURE_MAX_AGE_SECS;

type Tag = [u8; 32];

/// What became of a request's tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    /// Not seen before: recorded, the request may proceed.
    Fresh,
    /// Seen within the window: the request is a replay.
    Replay,
    /// The guard holds as many tags as it may; the oldest expires in `retry_after_secs`.
    Full { retry_after_secs: u64 },
}

pub struct ReplayGuard {
    capacity: usize,
    /// Tag to the last second the freshness check accepts its request.
    seen: HashMap<Tag, i64>,
    /// The same entries in expiry order, so expired ones are dropped oldest first.
    by_expiry: BTreeSet<(i64, Tag)>,
}

impl ReplayGuard {
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            seen: HashMap::new(),
            by_expiry: BTreeSet::new(),
        }
    }

    /// Records the tag of a request signed at `timestamp`, at wall-clock second `now`, unless
    /// it was seen within the window or there is no room.
    pub fn admit(&mut self, tag: Tag, timestamp: i64, now: i64) -> Admission {
        self.expire(now);
        if self.seen.contains_key(&tag) {
            return Admission::Replay;
        }
        if self.seen.len() >= self.capacity {
            let oldest = self.by_expiry.first().map_or(now, |(expiry, _)| *expiry);
            return Admission::Full {
                retry_after_secs: oldest
                    .saturating_sub(now)
                    .clamp(0, 2 * SIGNATURE_MAX_AGE_SECS) as u64
                    + 1,
            };
        }
        let expiry = timestamp.saturating_add(SIGNATURE_MAX_AGE_SECS);
        self.seen.insert(tag, expiry);
        self.by_expiry.insert((expiry, tag));
        Admission::Fresh
    }

    /// Tags remembered now.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Forgets the tags whose requests the freshness check refuses at `now`.
    fn expire(&mut self, now: i64) {
        while let Some(&(expiry, tag)) = self.by_expiry.first() {
            if expiry >= now {
                break;
            }
            self.by_expiry.pop_first();
            self.seen.remove(&tag);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_700_000_000;

    fn tag(n: u8) -> Tag {
        [n; 32]
    }

    #[test]
    fn a_tag_is_admitted_once_and_refused_as_a_replay_within_the_window() {
        let mut guard = ReplayGuard::new(10);
        assert_eq!(guard.admit(tag(1), NOW, NOW), Admission::Fresh);
        assert_eq!(guard.admit(tag(1), NOW, NOW), Admission::Replay);
        assert_eq!(
            guard.admit(tag(1), NOW, NOW + SIGNATURE_MAX_AGE_SECS),
            Admission::Replay,
            "the last second the signature is fresh"
        );
        assert_eq!(guard.admit(tag(2), NOW, NOW), Admission::Fresh);
    }

    #[test]
    fn a_tag_is_forgotten_once_its_request_would_be_stale_anyway() {
        let mut guard = ReplayGuard::new(10);
        guard.admit(tag(1), NOW, NOW);
        // Signed ahead of the server's clock: remembered until its own timestamp is stale.
        guard.admit(tag(2), NOW + 200, NOW);
        guard.admit(tag(3), NOW - 250, NOW);
        assert_eq!(guard.len(), 3);
        guard.expire(NOW + 60);
        assert_eq!(
            guard.len(),
            2,
            "the one signed 250 s early is stale 51 s later"
        );
        guard.expire(NOW + SIGNATURE_MAX_AGE_SECS + 1);
        assert_eq!(guard.len(), 1);
        guard.expire(NOW + 200 + SIGNATURE_MAX_AGE_SECS + 1);
        assert_eq!(guard.len(), 0);
        assert!(guard.by_expiry.is_empty());
    }

    #[test]
    fn a_full_guard_refuses_new_tags_until_the_oldest_expires_and_keeps_refusing_replays() {
        let mut guard = ReplayGuard::new(2);
        assert_eq!(guard.admit(tag(1), NOW - 100, NOW), Admission::Fresh);
        assert_eq!(guard.admit(tag(2), NOW, NOW), Admission::Fresh);
        assert_eq!(
            guard.admit(tag(3), NOW, NOW),
            Admission::Full {
                retry_after_secs: 201
            }
        );
        assert_eq!(guard.admit(tag(1), NOW - 100, NOW), Admission::Replay);
        assert_eq!(guard.len(), 2);
        // Once tag 1's request is stale, there is room again.
        assert_eq!(guard.admit(tag(3), NOW + 201, NOW + 201), Admission::Fresh);
        assert_eq!(guard.admit(tag(2), NOW, NOW + 201), Admission::Replay);
    }

    #[test]
    fn extreme_timestamps_neither_overflow_nor_stay_forever() {
        let mut guard = ReplayGuard::new(10);
        assert_eq!(guard.admit(tag(1), i64::MAX, i64::MAX), Admission::Fresh);
        assert_eq!(guard.admit(tag(2), i64::MIN, i64::MIN), Admission::Fresh);
        guard.expire(i64::MIN + SIGNATURE_MAX_AGE_SECS + 1);
        assert_eq!(guard.len(), 1, "the one signed at i64::MIN expired");
        let mut full = ReplayGuard::new(1);
        full.admit(tag(1), i64::MAX, i64::MIN);
        assert!(matches!(
            full.admit(tag(2), 0, i64::MIN),
            Admission::Full { .. }
        ));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Against a model that remembers everything: never more than the capacity held, a
        /// tag admitted once is never admitted again while its request is fresh, and a
        /// refusal for room happens only when the guard is full.
        #[test]
        fn the_guard_never_admits_a_replay_and_never_holds_more_than_its_capacity(
            capacity in 1usize..8,
            steps in proptest::collection::vec((0u8..12, -300i64..=300, 0i64..40), 1..200),
        ) {
            let mut guard = ReplayGuard::new(capacity);
            let mut admitted: HashMap<Tag, i64> = HashMap::new();
            let mut now = NOW;
            for (n, skew, advance) in steps {
                now += advance;
                let timestamp = now + skew;
                let answer = guard.admit(tag(n), timestamp, now);
                proptest::prop_assert!(guard.len() <= capacity);
                let seen_fresh = admitted
                    .get(&tag(n))
                    .is_some_and(|expiry| *expiry >= now);
                match answer {
                    Admission::Fresh => {
                        proptest::prop_assert!(!seen_fresh, "a replay was admitted");
                        admitted.insert(tag(n), timestamp + SIGNATURE_MAX_AGE_SECS);
                    }
                    Admission::Replay => proptest::prop_assert!(seen_fresh),
                    Admission::Full { retry_after_secs } => {
                        proptest::prop_assert!(!seen_fresh, "a replay was not called one");
                        proptest::prop_assert_eq!(guard.len(), capacity);
                        proptest::prop_assert!(retry_after_secs >= 1);
                    }
                }
            }
        }
    }
}
