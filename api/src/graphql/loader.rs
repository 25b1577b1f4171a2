//! Catalogue lookups: the teams and competitions of a page of matches are loaded in one store
//! call per kind instead of one per match, and kept: a team or competition never changes once
//! created (there is no mutation that edits one), so what was read once is exact for the life
//! of the process and later lookups cost no store call and no batching delay.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, RwLock};

use async_graphql::dataloader::Loader;
use scoreline_core::store::{Store, StoreError};
use scoreline_core::{Competition, CompetitionId, Team, TeamId};

/// Teams and competitions kept, each kind; beyond it the kind starts over (a catalogue that
/// large is far beyond any deployment's, and a miss only costs a store read).
const MAX_KEPT: usize = 50_000;

pub struct CatalogLoader {
    store: Arc<dyn Store>,
    teams: Kept<TeamId, Team>,
    competitions: Kept<CompetitionId, Competition>,
}

impl CatalogLoader {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            teams: Kept::default(),
            competitions: Kept::default(),
        }
    }

    /// A team already read, without a store call.
    pub fn kept_team(&self, id: &TeamId) -> Option<Team> {
        self.teams.get(id)
    }

    /// A competition already read, without a store call.
    pub fn kept_competition(&self, id: &CompetitionId) -> Option<Competition> {
        self.competitions.get(id)
    }
}

/// Values read once and kept, bounded by [`MAX_KEPT`].
struct Kept<K, V>(RwLock<HashMap<K, V>>);

impl<K, V> Default for Kept<K, V> {
    fn default() -> Self {
        Self(RwLock::new(HashMap::new()))
    }
}

impl<K: Eq + Hash + Clone, V: Clone> Kept<K, V> {
    fn get(&self, key: &K) -> Option<V> {
        self.0
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    fn keep(&self, found: &HashMap<K, V>) {
        let mut kept = self.0.write().unwrap_or_else(|p| p.into_inner());
        if kept.len() + found.len() > MAX_KEPT {
            kept.clear();
        }
        kept.extend(found.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
}

/// Loader errors must be `Clone`; the store error is shared.
pub type LoadError = Arc<StoreError>;

impl Loader<TeamId> for CatalogLoader {
    type Value = Team;
    type Error = LoadError;

    async fn load(&self, keys: &[TeamId]) -> Result<HashMap<TeamId, Team>, LoadError> {
        let teams = self.store.teams_by_ids(keys).await.map_err(Arc::new)?;
        let found = teams.into_iter().map(|t| (t.id.clone(), t)).collect();
        self.teams.keep(&found);
        Ok(found)
    }
}

impl Loader<CompetitionId> for CatalogLoader {
    type Value = Competition;
    type Error = LoadError;

    async fn load(
        &self,
        keys: &[CompetitionId],
    ) -> Result<HashMap<CompetitionId, Competition>, LoadError> {
        let mut out = HashMap::with_capacity(keys.len());
        for id in keys {
            if let Some(c) = self.store.competition(id).await.map_err(Arc::new)? {
                out.insert(id.clone(), c);
            }
        }
        self.competitions.keep(&out);
        Ok(out)
    }
}
