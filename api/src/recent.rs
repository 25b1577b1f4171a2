//! A bounded memory of matches: what was last seen of each, for at most a fixed number of
//! matches. The publish intake uses it to drop changes subscribers already have, and each
//! `matchesUpdated` subscription to keep every match's versions rising.
//!
//! Forgetting a match must not let an old copy of one of its changes through later (streams are
//! at-least-once, and a redelivery can come after newer news). Versions only compare within a
//! match, so what is kept across matches is time: each change carries the instant it was
//! committed (`updatedAt` of a state, `createdAt` of an event). When the memory is full, the
//! least recently changed quarter is forgotten at once (amortised O(1) per change, no second
//! index), and the *floor* rises to the newest commit time among them. A change of a match that
//! is not remembered is then taken only if it was committed after the floor: anything older may
//! be a copy of something forgotten, and is dropped.
//!
//! What that costs: a genuinely new change committed before the floor is dropped too. For that,
//! it must arrive after changes of three quarters of `capacity` other matches committed later
//! than it, i.e. the pipeline must deliver it that late and out of order, which the bounds (one
//! per intake: 100,000 matches; one per subscription: 10,000) keep far beyond normal lag. Such
//! drops are counted (`..._stale_drops_total`) so an operator sees them.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use scoreline_core::MatchId;

/// What a memory says about a change of a match, given when that change was committed.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen<'a, V> {
    /// What was last remembered of the match.
    Known(&'a V),
    /// Nothing: the match is new here (or forgotten long before this change was made).
    New,
    /// Nothing, and the change is no newer than something forgotten: it may be an old copy.
    Stale,
}

struct Entry<V> {
    /// The newest commit time seen for the match.
    changed: DateTime<Utc>,
    value: V,
}

pub struct RecentMatches<V> {
    entries: HashMap<MatchId, Entry<V>>,
    capacity: usize,
    /// Changes committed at or before this instant may be copies of forgotten ones.
    floor: Option<DateTime<Utc>>,
}

impl<V> RecentMatches<V> {
    /// A memory of at most `capacity` matches (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            floor: None,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// What is remembered of `id`, for a change of it committed at `changed`.
    pub fn lookup(&self, id: &MatchId, changed: DateTime<Utc>) -> Seen<'_, V> {
        match self.entries.get(id) {
            Some(entry) => Seen::Known(&entry.value),
            None if self.floor.is_some_and(|floor| changed <= floor) => Seen::Stale,
            None => Seen::New,
        }
    }

    /// Remembers `value` for `id` as of a change committed at `changed`; returns how many
    /// matches were forgotten to make room.
    pub fn remember(&mut self, id: MatchId, changed: DateTime<Utc>, value: V) -> usize {
        if let Some(entry) = self.entries.get_mut(&id) {
            entry.changed = entry.changed.max(changed);
            entry.value = value;
            return 0;
        }
        let forgotten = if self.entries.len() >= self.capacity {
            self.forget_oldest()
        } else {
            0
        };
        self.entries.insert(id, Entry { changed, value });
        forgotten
    }

    /// Every remembered match with its newest commit time.
    pub fn iter(&self) -> impl Iterator<Item = (&MatchId, DateTime<Utc>, &V)> {
        self.entries.iter().map(|(id, e)| (id, e.changed, &e.value))
    }

    /// Forgets the least recently changed quarter (at least one match) and raises the floor.
    fn forget_oldest(&mut self) -> usize {
        let mut times: Vec<DateTime<Utc>> = self.entries.values().map(|e| e.changed).collect();
        let k = (self.capacity / 4).clamp(1, times.len());
        let (_, cutoff, _) = times.select_nth_unstable(k - 1);
        let cutoff = *cutoff;
        let before = self.entries.len();
        // Ties at the cutoff go too: the floor must cover every forgotten match.
        self.entries.retain(|_, e| e.changed > cutoff);
        self.floor = Some(self.floor.map_or(cutoff, |f| f.max(cutoff)));
        before - self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::at;

    fn id(raw: &str) -> MatchId {
        MatchId::parse(raw).unwrap()
    }

    #[test]
    fn a_full_memory_forgets_the_least_recently_changed_quarter() {
        let mut memory = RecentMatches::new(8);
        for i in 0..8 {
            assert_eq!(memory.remember(id(&format!("m{i}")), at(i), i), 0);
        }
        // m0 changes again: now m1 and m2 are the oldest.
        memory.remember(id("m0"), at(20), 100);
        assert_eq!(memory.remember(id("new"), at(21), 0), 2);
        assert_eq!(memory.len(), 7);
        assert_eq!(memory.lookup(&id("m0"), at(22)), Seen::Known(&100));
        assert_eq!(memory.lookup(&id("m3"), at(22)), Seen::Known(&3));
        assert_eq!(memory.lookup(&id("m1"), at(22)), Seen::New);
    }

    #[test]
    fn an_old_copy_of_a_forgotten_matchs_change_is_stale_and_a_newer_change_is_not() {
        let mut memory = RecentMatches::new(4);
        for i in 0..5 {
            memory.remember(id(&format!("m{i}")), at(i), i);
        }
        // m0 (changed at 0) was forgotten; a copy of that change, or any older one, is stale.
        assert_eq!(memory.lookup(&id("m0"), at(0)), Seen::Stale);
        assert_eq!(memory.lookup(&id("m0"), at(-10)), Seen::Stale);
        assert_eq!(memory.lookup(&id("m0"), at(1)), Seen::New);
        // A match never seen, changed now, is new.
        assert_eq!(memory.lookup(&id("other"), at(30)), Seen::New);
    }

    #[test]
    fn the_floor_only_rises() {
        let mut memory = RecentMatches::new(1);
        memory.remember(id("a"), at(10), ());
        memory.remember(id("b"), at(5), ());
        // `a` was forgotten at 10; `b`, changed at 5, is forgotten next: the floor stays 10.
        memory.remember(id("c"), at(20), ());
        assert_eq!(memory.lookup(&id("x"), at(10)), Seen::Stale);
        assert_eq!(memory.lookup(&id("x"), at(11)), Seen::New);
    }

    #[test]
    fn memory_stays_within_its_capacity_however_many_matches_change() {
        let mut memory = RecentMatches::new(100);
        for i in 0..10_000 {
            memory.remember(id(&format!("m{i}")), at(i), ());
            assert!(memory.len() <= 100);
        }
    }
}
