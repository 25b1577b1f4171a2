//! The embedded store: everything in memory, behind one lock, with the same item layout and the
//! same change feed as DynamoDB. Every write emits one DynamoDB-Streams-shaped record per item
//! it touches (NEW_AND_OLD_IMAGES), in commit order, into the change feed the embedded pipeline
//! reads.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

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

/// The table name the embedded store reports in its stream records.
const TABLE: &str = "scoreline-embedded";

/// Sort key of a match in listings: start time, then id.
type MatchKey = (DateTime<Utc>, MatchId);

#[derive(Default)]
struct Tables {
    competitions: BTreeMap<CompetitionId, Competition>,
    teams: BTreeMap<TeamId, Team>,
    memberships: HashMap<CompetitionId, HashSet<TeamId>>,
    matches: HashMap<MatchId, Match>,
    by_start: BTreeMap<MatchKey, ()>,
    events: HashMap<MatchId, Vec<MatchEvent>>,
    idempotency: HashMap<(MatchId, ClientMutationId), (Match, DateTime<Utc>)>,
    sequence: u64,
}

/// The in-memory store. Clones of the feed receiver are not possible: one pipeline reads it.
pub struct MemoryStore {
    tables: Mutex<Tables>,
    feed: mpsc::UnboundedSender<EventRecord>,
}

impl MemoryStore {
    /// A store and the receiving end of its change feed.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<EventRecord>) {
        let (feed, rx) = mpsc::unbounded_channel();
        (
            Self {
                tables: Mutex::new(Tables::default()),
                feed,
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
    fn emit(&self, tables: &mut Tables, old: Option<Item>, new: Option<Item>) {
        tables.sequence += 1;
        let record = build_record(TABLE, tables.sequence, Utc::now(), old, new);
        // The receiver only goes away when the server shuts down.
        let _ = self.feed.send(record);
    }

    fn add_membership(&self, tables: &mut Tables, competition: &CompetitionId, team: &TeamId) {
        let inserted = tables
            .memberships
            .entry(competition.clone())
            .or_default()
            .insert(team.clone());
        if inserted {
            self.emit(tables, None, Some(item::membership_item(competition, team)));
        }
    }
}

fn sorted_by_start(mut matches: Vec<Match>) -> Vec<Match> {
    matches.sort_by(|a, b| (a.start_time, &a.id).cmp(&(b.start_time, &b.id)));
    matches
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_competition(&self, competition: &Competition) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.competitions.contains_key(&competition.id) {
            return Err(StoreError::AlreadyExists(format!(
                "competition {}",
                competition.id
            )));
        }
        t.competitions
            .insert(competition.id.clone(), competition.clone());
        self.emit(&mut t, None, Some(item::competition_item(competition)));
        Ok(())
    }

    async fn create_team(
        &self,
        team: &Team,
        competitions: &[CompetitionId],
    ) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.teams.contains_key(&team.id) {
            return Err(StoreError::AlreadyExists(format!("team {}", team.id)));
        }
        t.teams.insert(team.id.clone(), team.clone());
        self.emit(&mut t, None, Some(item::team_item(team)));
        for c in competitions {
            self.add_membership(&mut t, c, &team.id);
        }
        Ok(())
    }

    async fn create_match(&self, m: &Match) -> Result<(), StoreError> {
        let mut t = self.lock();
        if t.matches.contains_key(&m.id) {
            return Err(StoreError::AlreadyExists(format!("match {}", m.id)));
        }
        t.matches.insert(m.id.clone(), m.clone());
        t.by_start.insert((m.start_time, m.id.clone()), ());
        self.emit(&mut t, None, Some(item::match_item(m)));
        self.add_membership(&mut t, &m.competition_id, &m.home_team_id);
        self.add_membership(&mut t, &m.competition_id, &m.away_team_id);
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
        let t = self.lock();
        let range = match &after {
            Some(key) => t.by_start.range((
                std::ops::Bound::Excluded(key.clone()),
                std::ops::Bound::Unbounded,
            )),
            None => t.by_start.range(..),
        };
        let mut items = Vec::with_capacity(first);
        let mut has_next_page = false;
        for ((start, id), ()) in range {
            let m = &t.matches[id];
            if !filter.admits(m) {
                continue;
            }
            if items.len() == first {
                has_next_page = true;
                break;
            }
            items.push((cursor::encode(&(start, id)), m.clone()));
        }
        Ok(Page {
            items,
            has_next_page,
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
        let t = self.lock();
        Ok(t.idempotency
            .get(&(id.clone(), key.clone()))
            .filter(|(_, expires)| *expires > Utc::now())
            .map(|(m, _)| m.clone()))
    }

    async fn commit(&self, write: &MatchWrite) -> Result<(), CommitError> {
        let mut t = self.lock();
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
                .is_some_and(|(_, expires)| *expires > Utc::now());
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
            t.by_start.insert((write.next.start_time, id.clone()), ());
        }
        t.matches.insert(id.clone(), write.next.clone());
        if let Some(rec) = &write.idempotency {
            t.idempotency.insert(
                (id.clone(), rec.key.clone()),
                (write.next.clone(), rec.expires_at),
            );
        }
        // The records a DynamoDB transaction of the same items would produce.
        if let Some(event) = &write.event {
            self.emit(&mut t, None, Some(item::event_item(event)));
        }
        self.emit(
            &mut t,
            Some(item::match_item(&old)),
            Some(item::match_item(&write.next)),
        );
        if let Some(rec) = &write.idempotency {
            self.emit(
                &mut t,
                None,
                Some(item::idempotency_item(
                    &rec.key,
                    &write.next,
                    rec.expires_at,
                )),
            );
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
