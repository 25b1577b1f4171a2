//! The store port: what Scoreline needs from a database. The memory store and the DynamoDB store
//! implement it; the rules that sit above it (optimistic retries, idempotency) live once in
//! [`crate::service`].

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{de::DeserializeOwned, Serialize};

use crate::error::BoxError;
use crate::ids::{ClientMutationId, CompetitionId, MatchId, TeamId};
use crate::model::{Competition, Match, MatchEvent, MatchStatus, Team};
use crate::sport::Sport;

/// How long an idempotency record is kept: long enough for a phone's offline queue to drain.
pub const IDEMPOTENCY_TTL_HOURS: i64 = 24;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("the cursor is not one this server issued")]
    InvalidCursor,
    /// Passing (a timeout, throttling, the network): the same request may work later.
    #[error("the store is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// Not expected to pass by retrying (a corrupt item, a refused request).
    #[error("store failure: {0}")]
    Internal(#[source] BoxError),
}

/// Which matches a listing admits. Empty `statuses` admits every status.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MatchFilter {
    pub sport: Option<Sport>,
    pub competition_id: Option<CompetitionId>,
    pub team_id: Option<TeamId>,
    pub statuses: Vec<MatchStatus>,
    /// Matches starting at or after this instant.
    pub from: Option<DateTime<Utc>>,
    /// Matches starting before this instant.
    pub to: Option<DateTime<Utc>>,
}

impl MatchFilter {
    pub fn admits(&self, m: &Match) -> bool {
        self.sport.is_none_or(|s| s == m.sport)
            && self
                .competition_id
                .as_ref()
                .is_none_or(|c| c == &m.competition_id)
            && self.team_id.as_ref().is_none_or(|t| m.involves(t))
            && (self.statuses.is_empty() || self.statuses.contains(&m.status))
            && self.from.is_none_or(|f| m.start_time >= f)
            && self.to.is_none_or(|t| m.start_time < t)
    }
}

/// The largest page `matches` returns.
pub const MAX_PAGE_SIZE: u32 = 100;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PageRequest {
    pub first: u32,
    /// An opaque cursor from an earlier page's edge.
    pub after: Option<String>,
}

/// A page of a listing: each item with the cursor that resumes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
}

/// Opaque cursors: base64url of a small JSON value, so clients cannot read meaning into them and
/// a tampered one fails to decode.
pub mod cursor {
    use super::*;

    pub fn encode<T: Serialize>(value: &T) -> String {
        let json = serde_json::to_vec(value).expect("cursor values serialize");
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode<T: DeserializeOwned>(raw: &str) -> Result<T, StoreError> {
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw)
            .map_err(|_| StoreError::InvalidCursor)?;
        serde_json::from_slice(&bytes).map_err(|_| StoreError::InvalidCursor)
    }
}

/// The idempotency key written with a match-day change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyRecord {
    pub key: ClientMutationId,
    pub expires_at: DateTime<Utc>,
}

/// One atomic match-day write: the next state of the match (its `version` one above the stored
/// one, which is the condition), the event it appends, and the idempotency record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchWrite {
    pub next: Match,
    pub event: Option<MatchEvent>,
    pub idempotency: Option<IdempotencyRecord>,
}

impl MatchWrite {
    /// The version the stored match must have for the write to apply.
    pub fn expected_version(&self) -> u64 {
        self.next.version - 1
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CommitError {
    #[error("the match changed since it was read")]
    VersionMismatch,
    #[error("the clientMutationId was already used on this match")]
    DuplicateMutation,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes a new competition; `AlreadyExists` when the id is taken.
    async fn create_competition(&self, competition: &Competition) -> Result<(), StoreError>;
    /// Writes a new team and registers it in the given competitions.
    async fn create_team(
        &self,
        team: &Team,
        competitions: &[CompetitionId],
    ) -> Result<(), StoreError>;
    /// Writes a new match and registers both teams in its competition.
    async fn create_match(&self, m: &Match) -> Result<(), StoreError>;

    async fn competition(&self, id: &CompetitionId) -> Result<Option<Competition>, StoreError>;
    async fn competitions(&self, sport: Option<Sport>) -> Result<Vec<Competition>, StoreError>;
    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError>;
    /// Teams by id, in no particular order; unknown ids are left out.
    async fn teams_by_ids(&self, ids: &[TeamId]) -> Result<Vec<Team>, StoreError>;
    async fn teams(
        &self,
        sport: Option<Sport>,
        competition: Option<&CompetitionId>,
    ) -> Result<Vec<Team>, StoreError>;

    async fn match_by_id(&self, id: &MatchId) -> Result<Option<Match>, StoreError>;
    /// Matches ordered by start time then id.
    async fn matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError>;
    /// LIVE and PAUSED matches, ordered by start time then id.
    async fn live_matches(&self, sport: Option<Sport>) -> Result<Vec<Match>, StoreError>;
    /// Events of a match with `seq > after_seq`, ascending, at most `limit`.
    async fn events(
        &self,
        id: &MatchId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<MatchEvent>, StoreError>;

    /// The first result of a mutation made with this key, if one was made.
    async fn idempotent_result(
        &self,
        id: &MatchId,
        key: &ClientMutationId,
    ) -> Result<Option<Match>, StoreError>;
    /// Applies a match-day write atomically, or refuses it whole.
    async fn commit(&self, write: &MatchWrite) -> Result<(), CommitError>;

    /// Readiness: can the store serve requests now?
    async fn check(&self) -> Result<(), StoreError>;

    /// Called between optimistic attempts that lost a race; stores with real latency back off.
    async fn contention_backoff(&self, _attempt: u32) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_a_tampered_one_is_refused() {
        let c = cursor::encode(&("2026-11-22T15:00:00Z", "m1"));
        let back: (String, String) = cursor::decode(&c).unwrap();
        assert_eq!(back, ("2026-11-22T15:00:00Z".to_string(), "m1".to_string()));
        assert!(matches!(
            cursor::decode::<(String, String)>("not*base64"),
            Err(StoreError::InvalidCursor)
        ));
        assert!(matches!(
            cursor::decode::<(String, String)>(&cursor::encode(&42)),
            Err(StoreError::InvalidCursor)
        ));
    }
}
