//! Builders for unit tests across the crate, and a store that panics on demand to prove that a
//! failure inside one operation is contained.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use scoreline_core::model::{Competition, Details, Match, MatchEvent, Score, Team};
use scoreline_core::store::{
    CommitError, MatchFilter, MatchWrite, Page, PageRequest, Store, StoreError,
};
use scoreline_core::{ClientMutationId, CompetitionId, MatchId, MatchStatus, Sport, TeamId};

use crate::broker::MemoryBroker;
use crate::graphql::schema::Services;
use crate::graphql::{build_schema, SchemaLimits, ScorelineSchema};
use crate::store::MemoryStore;

/// An instant `seconds` after a fixed base, so tests order times without reading the clock.
pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 15, 0, 0).unwrap() + chrono::Duration::seconds(seconds)
}

/// A scheduled soccer match of competition `c`, version `version`, changed at `at(changed)`.
pub fn a_match(id: &str, version: u64, changed: i64) -> Match {
    Match {
        id: MatchId::parse(id).unwrap(),
        sport: Sport::Soccer,
        competition_id: CompetitionId::parse("c").unwrap(),
        home_team_id: TeamId::parse("home").unwrap(),
        away_team_id: TeamId::parse("away").unwrap(),
        start_time: at(0),
        venue: None,
        status: MatchStatus::Scheduled,
        score: Score::default(),
        periods: vec![],
        clock: None,
        details: Details::initial(Sport::Soccer),
        last_seq: 0,
        version,
        created_at: at(0),
        updated_at: at(changed),
    }
}

/// The id whose lookup panics.
pub const PANICKING_MATCH: &str = "boom";

/// The memory store, except that looking up [`PANICKING_MATCH`] panics, and that a match
/// lookup can be held at a [`LookupGate`].
pub struct PanickingStore(MemoryStore, Arc<LookupGate>);

/// Holds the next match lookup after [`LookupGate::arm`] until [`LookupGate::release`]: to
/// order the store reads of two executions in a test.
#[derive(Default)]
pub struct LookupGate {
    armed: AtomicBool,
    arrived: Notify,
    released: Notify,
}

impl LookupGate {
    pub fn arm(&self) {
        self.armed.store(true, Ordering::SeqCst);
    }

    /// Waits until a lookup is held.
    pub async fn held(&self) {
        self.arrived.notified().await;
    }

    pub fn release(&self) {
        self.released.notify_one();
    }

    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.arrived.notify_one();
            self.released.notified().await;
        }
    }
}

/// A schema over a [`PanickingStore`].
pub fn panicking_schema() -> ScorelineSchema {
    gated_schema().0
}

/// A schema over a [`PanickingStore`], with the store, its gate and the broker behind it.
pub fn gated_schema() -> (
    ScorelineSchema,
    Arc<PanickingStore>,
    Arc<LookupGate>,
    Arc<MemoryBroker>,
) {
    let (store, _feed) = MemoryStore::new();
    let gate = Arc::new(LookupGate::default());
    let store = Arc::new(PanickingStore(store, gate.clone()));
    let broker = Arc::new(MemoryBroker::default());
    let schema = build_schema(
        Services {
            store: store.clone(),
            broker: broker.clone(),
            metrics: Arc::new(crate::metrics::Metrics::default()),
            responses: Arc::new(crate::graphql::response_cache::ResponseCache::off()),
        },
        SchemaLimits::default(),
    );
    (schema, store, gate, broker)
}

#[async_trait]
impl Store for PanickingStore {
    async fn create_competition(&self, c: &Competition) -> Result<(), StoreError> {
        self.0.create_competition(c).await
    }
    async fn create_team(&self, t: &Team, cs: &[CompetitionId]) -> Result<(), StoreError> {
        self.0.create_team(t, cs).await
    }
    async fn create_match(&self, m: &Match) -> Result<(), StoreError> {
        self.0.create_match(m).await
    }
    async fn competition(&self, id: &CompetitionId) -> Result<Option<Competition>, StoreError> {
        self.0.competition(id).await
    }
    async fn competitions(&self, sport: Option<Sport>) -> Result<Vec<Competition>, StoreError> {
        self.0.competitions(sport).await
    }
    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        self.0.team(id).await
    }
    async fn teams_by_ids(&self, ids: &[TeamId]) -> Result<Vec<Team>, StoreError> {
        self.0.teams_by_ids(ids).await
    }
    async fn teams(
        &self,
        sport: Option<Sport>,
        competition: Option<&CompetitionId>,
    ) -> Result<Vec<Team>, StoreError> {
        self.0.teams(sport, competition).await
    }
    async fn match_by_id(&self, id: &MatchId) -> Result<Option<Match>, StoreError> {
        assert_ne!(id.as_str(), PANICKING_MATCH, "a bug reached in a test");
        self.1.pass().await;
        self.0.match_by_id(id).await
    }
    async fn matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError> {
        self.0.matches(filter, page).await
    }
    async fn live_matches(&self, sport: Option<Sport>) -> Result<Vec<Match>, StoreError> {
        self.0.live_matches(sport).await
    }
    async fn events(
        &self,
        id: &MatchId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<MatchEvent>, StoreError> {
        self.0.events(id, after_seq, limit).await
    }
    async fn idempotent_result(
        &self,
        id: &MatchId,
        key: &ClientMutationId,
    ) -> Result<Option<Match>, StoreError> {
        self.0.idempotent_result(id, key).await
    }
    async fn commit(&self, write: &MatchWrite) -> Result<(), CommitError> {
        self.0.commit(write).await
    }
    async fn check(&self) -> Result<(), StoreError> {
        self.0.check().await
    }
}
