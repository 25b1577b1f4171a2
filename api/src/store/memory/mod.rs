//! The embedded store: everything in memory, behind one lock, with the same item layout and the
//! same change feed as DynamoDB. Every write emits one DynamoDB-Streams-shaped record per item
//! it touches (NEW_AND_OLD_IMAGES), in commit order, into the change feed the embedded pipeline
//! reads.
//!
//! What grows is bounded as on DynamoDB: the change feed holds a bounded number of records
//! (writes wait for room, see `feed`), idempotency records are removed once expired (as
//! DynamoDB's TTL does), and a listing page examines at most its read budget of matches.
//!
//! # Layout
//! - here: the tables and the [`Store`] implementation.
//! - `feed`: the bounded change feed and its backpressure.

mod feed;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aws_lambda_events::event::dynamodb::EventRecord;
use chrono::{DateTime, Utc};
use scoreline_core::item;
use scoreline_core::store::{
    cursor, CommitError, MatchFilter, MatchWrite, Page, PageRequest, Store, StoreError,
    MAX_PAGE_SIZE,
};
use scoreline_core::stream::build_record;
use scoreline_core::{
    ClientMutationId, Competition, CompetitionId, Match, MatchEvent, MatchId, Sport, Team, TeamId,
};
use serde_dynamo::Item;
use tokio::sync::mpsc;

#[cfg(test)]
use feed::MIN_FEED_CAPACITY;
pub use feed::{DEFAULT_FEED_CAPACITY, DEFAULT_FEED_WAIT};

use crate::metrics::Metrics;
use feed::{Feed, Room};

/// The table name the embedded store reports in its stream records.
const TABLE: &str = "scoreline-embedded";

/// Sort key of a match in listings: start time, then id.
type MatchKey = (DateTime<Utc>, MatchId);

/// Idempotency records by match and key.
type IdempotencyKey = (MatchId, ClientMutationId);

/// The time idempotency records expire by; tests move it instead of sleeping.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// The most records one match-day write emits: its event, the match, its idempotency record.
const RECORDS_PER_COMMIT: usize = 3;

#[derive(Default)]
struct Tables {
    competitions: BTreeMap<CompetitionId, Competition>,
    teams: BTreeMap<TeamId, Team>,
    memberships: HashMap<CompetitionId, HashSet<TeamId>>,
    matches: HashMap<MatchId, Match>,
    by_start: BTreeSet<MatchKey>,
    events: HashMap<MatchId, Vec<MatchEvent>>,
    idempotency: HashMap<IdempotencyKey, (Match, DateTime<Utc>)>,
    /// The idempotency records in expiry order, so expired ones are found without a scan.
    expiries: BTreeSet<(DateTime<Utc>, IdempotencyKey)>,
    sequence: u64,
}

impl Tables {
    /// Removes the idempotency records that expired by `now`, oldest first; returns how many.
    fn expire_idempotency(&mut self, now: DateTime<Utc>) -> u64 {
        let mut removed = 0;
        while let Some(first) = self.expiries.first() {
            if first.0 > now {
                break;
            }
            let (_, key) = self.expiries.pop_first().expect("checked above");
            self.idempotency.remove(&key);
            removed += 1;
        }
        removed
    }
}

/// How the embedded store is set up.
#[derive(Clone)]
pub struct MemoryOptions {
    /// Records the change feed holds before writes wait (at least 64).
    pub feed_capacity: usize,
    /// How long a write waits for room in a full feed before it fails as unavailable.
    pub feed_wait: Duration,
    /// The clock idempotency records expire by.
    pub clock: Clock,
}

impl Default for MemoryOptions {
    fn default() -> Self {
        Self {
            feed_capacity: DEFAULT_FEED_CAPACITY,
            feed_wait: DEFAULT_FEED_WAIT,
            clock: Arc::new(Utc::now),
        }
    }
}

/// The in-memory store. Clones of the feed receiver are not possible: one pipeline reads it.
pub struct MemoryStore {
    tables: Mutex<Tables>,
    feed: Feed,
    clock: Clock,
    metrics: Arc<Metrics>,
}

impl MemoryStore {
    /// A store with the default options and the receiving end of its change feed.
    pub fn new() -> (Self, mpsc::Receiver<EventRecord>) {
        Self::with_options(MemoryOptions::default())
    }

    pub fn with_options(options: MemoryOptions) -> (Self, mpsc::Receiver<EventRecord>) {
        Self::with_metrics(options, Arc::default())
    }

    /// A store that reports its feed and idempotency records in `metrics`.
    pub(crate) fn with_metrics(
        options: MemoryOptions,
        metrics: Arc<Metrics>,
    ) -> (Self, mpsc::Receiver<EventRecord>) {
        let (feed, rx) = Feed::new(options.feed_capacity, options.feed_wait, metrics.clone());
        (
            Self {
                tables: Mutex::new(Tables::default()),
                feed,
                clock: options.clock,
                metrics,
            },
            rx,
        )
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the maps half-written (every write
        // checks first, then mutates), so a poisoned lock is still consistent.
        self.tables.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Emits a record while the lock is held, so the feed's order is the commit order.
    fn emit(tables: &mut Tables, room: &mut Room<'_>, old: Option<Item>, new: Option<Item>) {
        tables.sequence += 1;
        room.send(build_record(TABLE, tables.sequence, Utc::now(), old, new));
    }

    fn add_membership(
        tables: &mut Tables,
        room: &mut Room<'_>,
        competition: &CompetitionId,
        team: &TeamId,
    ) {
        let inserted = tables
            .memberships
            .entry(competition.clone())
            .or_default()
            .insert(team.clone());
        if inserted {
            let record = item::membership_item(competition, team);
            Self::emit(tables, room, None, Some(record));
        }
    }

    /// Idempotency records held now (expired ones go at the next write).
    #[cfg(test)]
    fn idempotency_records(&self) -> usize {
        self.lock().idempotency.len()
    }
}

/// The lowest match id: `-` is the lowest byte an id may hold, so `(t, LOWEST)` sorts at or
/// before every match starting at `t`, and a window bound can be a listing key.
fn lowest_id() -> MatchId {
    MatchId::parse("-").expect("'-' is a valid id")
}

fn sorted_by_start(mut matches: Vec<Match>) -> Vec<Match> {
    matches.sort_by(|a, b| (a.start_time, &a.id).cmp(&(b.start_time, &b.id)));
    matches
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_competition(&self, competition: &Competition) -> Result<(), StoreError> {
        let mut room = self.feed.room(1).await?;
        let mut t = self.lock();
        if t.competitions.contains_key(&competition.id) {
            return Err(StoreError::AlreadyExists(format!(
                "competition {}",
                competition.id
            )));
        }
        t.competitions
            .insert(competition.id.clone(), competition.clone());
        let record = item::competition_item(competition);
        Self::emit(&mut t, &mut room, None, Some(record));
        Ok(())
    }

    async fn create_team(
        &self,
        team: &Team,
        competitions: &[CompetitionId],
    ) -> Result<(), StoreError> {
        let mut room = self.feed.room(1 + competitions.len()).await?;
        let mut t = self.lock();
        if t.teams.contains_key(&team.id) {
            return Err(StoreError::AlreadyExists(format!("team {}", team.id)));
        }
        t.teams.insert(team.id.clone(), team.clone());
        Self::emit(&mut t, &mut room, None, Some(item::team_item(team)));
        for c in competitions {
            Self::add_membership(&mut t, &mut room, c, &team.id);
        }
        Ok(())
    }

    async fn create_match(&self, m: &Match) -> Result<(), StoreError> {
        // The match and up to two memberships.
        let mut room = self.feed.room(3).await?;
        let mut t = self.lock();
        if t.matches.contains_key(&m.id) {
            return Err(StoreError::AlreadyExists(format!("match {}", m.id)));
        }
        t.matches.insert(m.id.clone(), m.clone());
        t.by_start.insert((m.start_time, m.id.clone()));
        Self::emit(&mut t, &mut room, None, Some(item::match_item(m)));
        Self::add_membership(&mut t, &mut room, &m.competition_id, &m.home_team_id);
        Self::add_membership(&mut t, &mut room, &m.competition_id, &m.away_team_id);
        Ok(())
    }

    async fn competition(&self, id: &CompetitionId) -> Result<Option<Competition>, StoreError> {
        Ok(self.lock().competitions.get(id).cloned())
    }

    async fn competitions(&self, sport: Option<Sport>) -> Result<Vec<Competition>, StoreError> {
        let t = self.lock();
        let mut out: Vec<Competition> = t
            .competitions
            .values()
            .filter(|c| sport.is_none_or(|s| s == c.sport))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.sport, &a.id).cmp(&(b.sport, &b.id)));
        Ok(out)
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        Ok(self.lock().teams.get(id).cloned())
    }

    async fn teams_by_ids(&self, ids: &[TeamId]) -> Result<Vec<Team>, StoreError> {
        let t = self.lock();
        Ok(ids
            .iter()
            .filter_map(|id| t.teams.get(id).cloned())
            .collect())
    }

    async fn teams(
        &self,
        sport: Option<Sport>,
        competition: Option<&CompetitionId>,
    ) -> Result<Vec<Team>, StoreError> {
        let t = self.lock();
        let members = competition.map(|c| t.memberships.get(c).cloned().unwrap_or_default());
        let mut out: Vec<Team> = t
            .teams
            .values()
            .filter(|team| sport.is_none_or(|s| s == team.sport))
            .filter(|team| members.as_ref().is_none_or(|m| m.contains(&team.id)))
            .cloned()
            .collect();
        out.sort_by(|a, b| (a.sport, &a.id).cmp(&(b.sport, &b.id)));
        Ok(out)
    }

    async fn match_by_id(&self, id: &MatchId) -> Result<Option<Match>, StoreError> {
        Ok(self.lock().matches.get(id).cloned())
    }

    async fn matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError> {
        let after: Option<MatchKey> = match &page.after {
            Some(raw) => {
                let (time, id): (DateTime<Utc>, String) = cursor::decode(raw)?;
                Some((
                    time,
                    MatchId::parse(id).map_err(|_| StoreError::InvalidCursor)?,
                ))
            }
            None => None,
        };
        let first = page.first.clamp(1, MAX_PAGE_SIZE) as usize;
        // At least one match is examined, so following `end_cursor` always gets further.
        let budget = page.budget.items.max(1) as usize;
        // Only the window is examined: from the cursor or `from`, whichever is later, to `to`.
        let from = filter.from.map(|t| (t, lowest_id()));
        let lower = match (after, from) {
            (Some(after), Some(from)) if after < from => Bound::Included(from),
            (Some(after), _) => Bound::Excluded(after),
            (None, Some(from)) => Bound::Included(from),
            (None, None) => Bound::Unbounded,
        };
        let upper = match filter.to {
            Some(to) => Bound::Excluded((to, lowest_id())),
            None => Bound::Unbounded,
        };
        let t = self.lock();
        let mut items = Vec::with_capacity(first);
        let mut has_next_page = false;
        let mut reached: Option<&MatchKey> = None;
        let mut stopped = false;
        for (examined, key) in window(&t.by_start, lower, upper).enumerate() {
            if examined == budget {
                // Out of budget: there is more to read, from where reading stopped.
                has_next_page = true;
                stopped = true;
                break;
            }
            let m = &t.matches[&key.1];
            if !filter.admits(m) {
                reached = Some(key);
                continue;
            }
            if items.len() == first {
                has_next_page = true;
                break;
            }
            reached = Some(key);
            items.push((cursor::encode(&(key.0, &key.1)), m.clone()));
        }
        let end_cursor = if stopped {
            reached.map(|(start, id)| cursor::encode(&(start, id)))
        } else {
            items.last().map(|(c, _)| c.clone())
        };
        Ok(Page {
            items,
            has_next_page,
            end_cursor,
        })
    }

    async fn live_matches(&self, sport: Option<Sport>) -> Result<Vec<Match>, StoreError> {
        let t = self.lock();
        let live = t
            .matches
            .values()
            .filter(|m| m.status.is_in_play() && sport.is_none_or(|s| s == m.sport))
            .cloned()
            .collect();
        Ok(sorted_by_start(live))
    }

    async fn events(
        &self,
        id: &MatchId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<MatchEvent>, StoreError> {
        let t = self.lock();
        let Some(events) = t.events.get(id) else {
            return Ok(Vec::new());
        };
        // Events are stored in seq order starting at 1, so seq n sits at index n - 1.
        let start = (after_seq as usize).min(events.len());
        Ok(events[start..]
            .iter()
            .take(limit as usize)
            .cloned()
            .collect())
    }

    async fn idempotent_result(
        &self,
        id: &MatchId,
        key: &ClientMutationId,
    ) -> Result<Option<Match>, StoreError> {
        let now = (self.clock)();
        let t = self.lock();
        // An expired record counts as absent before it is removed, as with DynamoDB's TTL.
        Ok(t.idempotency
            .get(&(id.clone(), key.clone()))
            .filter(|(_, expires)| *expires > now)
            .map(|(m, _)| m.clone()))
    }

    async fn commit(&self, write: &MatchWrite) -> Result<(), CommitError> {
        let mut room = self.feed.room(RECORDS_PER_COMMIT).await?;
        let now = (self.clock)();
        let mut t = self.lock();
        let expired = t.expire_idempotency(now);
        if expired > 0 {
            self.metrics
                .idempotency_expired
                .fetch_add(expired, std::sync::atomic::Ordering::Relaxed);
            Metrics::set(
                &self.metrics.idempotency_records,
                t.idempotency.len() as i64,
            );
        }
        let id = &write.next.id;
        let Some(current) = t.matches.get(id) else {
            return Err(
                StoreError::Internal(format!("commit to unknown match {id}").into()).into(),
            );
        };
        if current.version != write.expected_version() {
            return Err(CommitError::VersionMismatch);
        }
        if let Some(rec) = &write.idempotency {
            let live = t
                .idempotency
                .get(&(id.clone(), rec.key.clone()))
                .is_some_and(|(_, expires)| *expires > now);
            if live {
                return Err(CommitError::DuplicateMutation);
            }
        }
        let old = current.clone();
        if let Some(event) = &write.event {
            let events = t.events.entry(id.clone()).or_default();
            if event.seq as usize != events.len() + 1 {
                return Err(StoreError::Internal(
                    format!("event seq {} does not follow {}", event.seq, events.len()).into(),
                )
                .into());
            }
            events.push(event.clone());
        }
        if old.start_time != write.next.start_time {
            t.by_start.remove(&(old.start_time, id.clone()));
            t.by_start.insert((write.next.start_time, id.clone()));
        }
        t.matches.insert(id.clone(), write.next.clone());
        if let Some(rec) = &write.idempotency {
            let key = (id.clone(), rec.key.clone());
            let replaced = t
                .idempotency
                .insert(key.clone(), (write.next.clone(), rec.expires_at));
            // A key used again after it expired (but before it was removed) moves in the order.
            if let Some((_, expires)) = replaced {
                t.expiries.remove(&(expires, key.clone()));
            }
            t.expiries.insert((rec.expires_at, key));
            Metrics::set(
                &self.metrics.idempotency_records,
                t.idempotency.len() as i64,
            );
        }
        // The records a DynamoDB transaction of the same items would produce.
        if let Some(event) = &write.event {
            Self::emit(&mut t, &mut room, None, Some(item::event_item(event)));
        }
        Self::emit(
            &mut t,
            &mut room,
            Some(item::match_item(&old)),
            Some(item::match_item(&write.next)),
        );
        if let Some(rec) = &write.idempotency {
            let record = item::idempotency_item(&rec.key, &write.next, rec.expires_at);
            Self::emit(&mut t, &mut room, None, Some(record));
        }
        Ok(())
    }

    async fn check(&self) -> Result<(), StoreError> {
        if self.feed.is_closed() {
            return Err(StoreError::Unavailable(
                "the change feed has stopped".into(),
            ));
        }
        Ok(())
    }

    async fn contention_backoff(&self, _attempt: u32) {
        tokio::task::yield_now().await;
    }
}

/// The listing keys within `(lower, upper)`; empty when the bounds cross (a range over crossed
/// bounds would panic).
fn window(
    keys: &BTreeSet<MatchKey>,
    lower: Bound<MatchKey>,
    upper: Bound<MatchKey>,
) -> impl Iterator<Item = &MatchKey> {
    let crossed = match (&lower, &upper) {
        (Bound::Included(lo) | Bound::Excluded(lo), Bound::Included(hi) | Bound::Excluded(hi)) => {
            lo >= hi
        }
        _ => false,
    };
    let range = (!crossed).then(|| keys.range((lower, upper)));
    range.into_iter().flatten()
}
