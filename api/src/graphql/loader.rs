//! Batched catalogue lookups: the teams and competitions of a page of matches are loaded in one
//! store call per kind instead of one per match.

use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use scoreline_core::store::{Store, StoreError};
use scoreline_core::{Competition, CompetitionId, Team, TeamId};

pub struct CatalogLoader {
    store: Arc<dyn Store>,
}

impl CatalogLoader {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

/// Loader errors must be `Clone`; the store error is shared.
pub type LoadError = Arc<StoreError>;

impl Loader<TeamId> for CatalogLoader {
    type Value = Team;
    type Error = LoadError;

    async fn load(&self, keys: &[TeamId]) -> Result<HashMap<TeamId, Team>, LoadError> {
        let teams = self.store.teams_by_ids(keys).await.map_err(Arc::new)?;
        Ok(teams.into_iter().map(|t| (t.id.clone(), t)).collect())
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
        Ok(out)
    }
}
