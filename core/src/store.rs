//! The store port: what Scoreline needs from a database. The memory store and the DynamoDB store
//! implement it; the rules that sit above it (optimistic retries, idempotency) live once in
//! [`crate::service`].

use async_trait::async_trait;
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
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

/// The widest `from`/`to` window a filter may name, in days. On DynamoDB a window names one
/// index partition per month and sport, so its width is what reading it costs; 400 days holds
/// a season that straddles a year.
pub const MAX_WINDOW_DAYS: i64 = 400;

/// The earliest instant a start time or a filter bound may be: sort keys write the year in
/// four digits, so instants outside years 1 to 9999 would sort out of order.
pub fn earliest_instant() -> DateTime<Utc> {
    DateTime::<Utc>::from_naive_utc_and_offset(
        NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("0001-01-01T00:00:00 exists"),
        Utc,
    )
}

/// The latest instant a start time or a filter bound may be (see [`earliest_instant`]).
pub fn latest_instant() -> DateTime<Utc> {
    DateTime::<Utc>::from_naive_utc_and_offset(
        NaiveDate::from_ymd_opt(9999, 12, 31)
            .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 999_999_999))
            .expect("9999-12-31T23:59:59.999999999 exists"),
        Utc,
    )
}

/// How much one page of a listing may read before it answers with what it has. A filter the
/// indexes cannot apply (a status over a busy window, a one-sided window far from now) would
/// otherwise read until the page fills, however far that is; with a budget a page may come back
/// short, or empty, with `has_next_page` and an `end_cursor` that resumes where reading stopped.
/// Every page reads at least one step (one stored match, or one month of index partitions), so
/// following `end_cursor` always gets further.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReadBudget {
    /// Stored matches examined (index entries on DynamoDB), those the filter refuses included.
    pub items: u32,
    /// Requests to the database (DynamoDB `Query` pages and `BatchGetItem` calls); the memory
    /// store makes none.
    pub requests: u32,
}

/// The read budget of one page of `matches`. 150 requests read the DynamoDB store's default
/// window (366 days either side of now: 25 months of 5 sports, 125 small key-only queries) in
/// one page when it is sparse, so an unfiltered first page is not empty for want of budget.
pub const LISTING_READ_BUDGET: ReadBudget = ReadBudget {
    items: 1_000,
    requests: 150,
};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub first: u32,
    /// An opaque cursor from an earlier page (an edge's cursor or its `end_cursor`).
    pub after: Option<String>,
    pub budget: ReadBudget,
}

impl PageRequest {
    /// A page of at most `first` items after `after`, with the listing budget.
    pub fn new(first: u32, after: Option<String>) -> Self {
        Self {
            first,
            after,
            budget: LISTING_READ_BUDGET,
        }
    }
}

/// A page of a listing: each item with the cursor that resumes after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<(String, T)>,
    pub has_next_page: bool,
    /// Where the next page starts: the last item's cursor, or, when the read budget ended the
    /// page before it was full, the position reading reached (past the last item; the page may
    /// then be empty). `None` only for an empty page with nothing after it.
    pub end_cursor: Option<String>,
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
    fn the_supported_instants_are_the_ones_sort_keys_write_with_four_digit_years() {
        use crate::item::time_key;
        assert_eq!(time_key(earliest_instant()), "0001-01-01T00:00:00Z");
        assert_eq!(time_key(latest_instant()), "9999-12-31T23:59:59Z");
        let beyond = latest_instant() + chrono::TimeDelta::nanoseconds(1);
        assert_eq!(
            time_key(beyond),
            "+10000-01-01T00:00:00Z",
            "year 10000 would sort before year 1"
        );
    }

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
