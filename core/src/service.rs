//! Use cases over the store port, shared by every store: creating the catalogue with its
//! referential rules, and applying match-day commands with optimistic concurrency and
//! idempotency. Transports call these; they never write to a store directly.

use chrono::{DateTime, Duration, Utc};

use crate::command::MatchCommand;
use crate::error::ValidationError;
use crate::ids::{ClientMutationId, CompetitionId, MatchId};
use crate::model::{Competition, Match, Team};
use crate::store::{
    CommitError, IdempotencyRecord, MatchWrite, Store, StoreError, IDEMPOTENCY_TTL_HOURS,
};

/// Attempts a command makes against concurrent writers before giving up.
pub const MAX_ATTEMPTS: u32 = 200;

/// Longest a command keeps retrying against concurrent writers (by the command's clock) unless
/// its options say otherwise, so one request never waits for minutes: past it the command fails
/// with `Contention`, having written nothing, and the client retries (safely, with a
/// `clientMutationId`).
pub const DEFAULT_RETRY_SECS: i64 = 20;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("no {what} with id {id}")]
    NotFound { what: &'static str, id: String },
    #[error("the match is at version {current}")]
    VersionConflict { current: u64 },
    #[error("too many concurrent changes to this match; try again")]
    Contention,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Optimistic concurrency and idempotency options of a match-day mutation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteOptions {
    pub expected_version: Option<u64>,
    pub client_mutation_id: Option<ClientMutationId>,
    /// Longest to retry against concurrent writers; `None` is [`DEFAULT_RETRY_SECS`].
    pub retry_for: Option<Duration>,
}

pub async fn create_competition(
    store: &dyn Store,
    competition: Competition,
) -> Result<Competition, ServiceError> {
    store
        .create_competition(&competition)
        .await
        .map_err(already_exists("id"))?;
    Ok(competition)
}

fn already_exists(field: &'static str) -> impl Fn(StoreError) -> ServiceError {
    move |e| match e {
        StoreError::AlreadyExists(what) => ServiceError::Invalid(ValidationError::new(
            field,
            format!("{what} already exists"),
        )),
        other => ServiceError::Store(other),
    }
}

pub async fn create_team(
    store: &dyn Store,
    team: Team,
    competitions: &[CompetitionId],
) -> Result<Team, ServiceError> {
    for id in competitions {
        let c = store.competition(id).await?.ok_or_else(|| {
            ValidationError::new("competitionIds", format!("no competition with id {id}"))
        })?;
        if c.sport != team.sport {
            return Err(ValidationError::new(
                "competitionIds",
                format!(
                    "competition {id} is {}, the team is {}",
                    c.sport.as_str(),
                    team.sport.as_str()
                ),
            )
            .into());
        }
    }
    store
        .create_team(&team, competitions)
        .await
        .map_err(already_exists("id"))?;
    Ok(team)
}

/// Creates a match after checking its references: the competition exists and both teams exist,
/// differ, and play the competition's sport. The match takes the competition's sport.
pub async fn create_match(store: &dyn Store, m: Match) -> Result<Match, ServiceError> {
    if m.home_team_id == m.away_team_id {
        return Err(ValidationError::new("awayTeamId", "a team cannot play itself").into());
    }
    let competition = store.competition(&m.competition_id).await?.ok_or_else(|| {
        ValidationError::new(
            "competitionId",
            format!("no competition with id {}", m.competition_id),
        )
    })?;
    if competition.sport != m.sport {
        return Err(ValidationError::new(
            "competitionId",
            "the match must take its competition's sport",
        )
        .into());
    }
    for (field, id) in [
        ("homeTeamId", &m.home_team_id),
        ("awayTeamId", &m.away_team_id),
    ] {
        let team = store
            .team(id)
            .await?
            .ok_or_else(|| ValidationError::new(field, format!("no team with id {id}")))?;
        if team.sport != competition.sport {
            return Err(ValidationError::new(
                field,
                format!(
                    "team {id} plays {}, the competition is {}",
                    team.sport.as_str(),
                    competition.sport.as_str()
                ),
            )
            .into());
        }
    }
    store.create_match(&m).await.map_err(already_exists("id"))?;
    Ok(m)
}

/// Applies a match-day command.
///
/// The idempotency key is checked first: a replay returns the stored first result even when its
/// `expectedVersion` has gone stale. With `expectedVersion`, a stale read is a
/// `VersionConflict`; without it the command is re-applied to the newest state until it commits,
/// so concurrent scorers never lose an event.
pub async fn apply_command(
    store: &dyn Store,
    id: &MatchId,
    command: &MatchCommand,
    options: &WriteOptions,
    clock: impl Fn() -> DateTime<Utc>,
) -> Result<Match, ServiceError> {
    let started = clock();
    let budget = options
        .retry_for
        .unwrap_or(Duration::seconds(DEFAULT_RETRY_SECS));
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            store.contention_backoff(attempt).await;
            if clock() - started >= budget {
                break;
            }
        }
        if let Some(first) = first_result(store, id, options).await? {
            return Ok(first);
        }
        let current = store
            .match_by_id(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound {
                what: "match",
                id: id.to_string(),
            })?;
        if let Some(expected) = options.expected_version {
            if expected != current.version {
                // What moved the version may be a copy of this very mutation that committed
                // after the lookup above; the match and its key are written together, so a
                // second lookup, made after this read, sees it.
                if let Some(first) = first_result(store, id, options).await? {
                    return Ok(first);
                }
                return Err(ServiceError::VersionConflict {
                    current: current.version,
                });
            }
        }
        let now = clock();
        let applied = command.apply(&current, now)?;
        let write = MatchWrite {
            next: applied.next,
            event: applied.event,
            idempotency: options
                .client_mutation_id
                .clone()
                .map(|key| IdempotencyRecord {
                    key,
                    expires_at: now + Duration::hours(IDEMPOTENCY_TTL_HOURS),
                }),
        };
        match store.commit(&write).await {
            Ok(()) => return Ok(write.next),
            // Without a key, losing the race to another writer is a conflict. With one, the
            // winner may be a copy of this very mutation (a client retrying before the first
            // attempt answered): the next attempt looks the key up before comparing versions.
            Err(CommitError::VersionMismatch)
                if options.expected_version.is_some() && options.client_mutation_id.is_none() =>
            {
                let current = store
                    .match_by_id(id)
                    .await?
                    .map(|m| m.version)
                    .unwrap_or_default();
                return Err(ServiceError::VersionConflict { current });
            }
            // Lost a race: another writer committed first (or used the same key); read again.
            Err(CommitError::VersionMismatch | CommitError::DuplicateMutation) => continue,
            Err(CommitError::Store(e)) => return Err(e.into()),
        }
    }
    Err(ServiceError::Contention)
}

/// The stored first result of this mutation, when it carries a key that was used already.
async fn first_result(
    store: &dyn Store,
    id: &MatchId,
    options: &WriteOptions,
) -> Result<Option<Match>, ServiceError> {
    match &options.client_mutation_id {
        Some(key) => Ok(store.idempotent_result(id, key).await?),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;

    use super::*;
    use crate::command::NewEvent;
    use crate::ids::TeamId;
    use crate::model::{Details, MatchEvent, MatchStatus, Score, Side};
    use crate::sport::{EventType, Sport};
    use crate::store::{MatchFilter, Page, PageRequest};

    fn live_match() -> Match {
        let t = DateTime::parse_from_rfc3339("2026-11-22T15:00:00Z")
            .unwrap()
            .to_utc();
        Match {
            id: MatchId::parse("m1").unwrap(),
            sport: Sport::Soccer,
            competition_id: CompetitionId::parse("c1").unwrap(),
            home_team_id: TeamId::parse("h").unwrap(),
            away_team_id: TeamId::parse("a").unwrap(),
            start_time: t,
            venue: None,
            status: MatchStatus::Live,
            score: Score::default(),
            periods: vec![],
            clock: None,
            details: Details::initial(Sport::Soccer),
            last_seq: 0,
            version: 1,
            created_at: t,
            updated_at: t,
        }
    }

    /// One match, its idempotency records, and a competing write that lands just before the
    /// first commit: the deterministic shape of two requests racing.
    struct RacingStore {
        inner: Mutex<Racing>,
    }

    struct Racing {
        current: Match,
        keys: Vec<(ClientMutationId, Match)>,
        /// Committed (as if by another request) right before the next commit is examined,
        /// or, with `at_read`, right before the next read of the match.
        competitor: Option<MatchWrite>,
        at_read: bool,
        /// Every commit loses to another writer; `commits` counts them.
        always_contended: bool,
        commits: u32,
    }

    impl RacingStore {
        fn new(competitor: impl FnOnce(&Match) -> MatchWrite) -> Self {
            let current = live_match();
            let competitor = Some(competitor(&current));
            Self {
                inner: Mutex::new(Racing {
                    current,
                    keys: Vec::new(),
                    competitor,
                    at_read: false,
                    always_contended: false,
                    commits: 0,
                }),
            }
        }

        /// The competing write lands between the key lookup and the read of the match.
        fn racing_the_read(self) -> Self {
            self.inner.lock().unwrap().at_read = true;
            self
        }

        /// Every commit finds that another writer moved the match first.
        fn always_contended(self) -> Self {
            self.inner.lock().unwrap().always_contended = true;
            self
        }

        fn current(&self) -> Match {
            self.inner.lock().unwrap().current.clone()
        }
    }

    fn write(inner: &mut Racing, w: &MatchWrite) -> Result<(), CommitError> {
        if inner.current.version != w.expected_version() {
            return Err(CommitError::VersionMismatch);
        }
        if let Some(rec) = &w.idempotency {
            if inner.keys.iter().any(|(k, _)| *k == rec.key) {
                return Err(CommitError::DuplicateMutation);
            }
            inner.keys.push((rec.key.clone(), w.next.clone()));
        }
        inner.current = w.next.clone();
        Ok(())
    }

    #[async_trait]
    impl Store for RacingStore {
        async fn create_competition(&self, _: &Competition) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn create_team(&self, _: &Team, _: &[CompetitionId]) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn create_match(&self, _: &Match) -> Result<(), StoreError> {
            unimplemented!()
        }
        async fn competition(&self, _: &CompetitionId) -> Result<Option<Competition>, StoreError> {
            unimplemented!()
        }
        async fn competitions(&self, _: Option<Sport>) -> Result<Vec<Competition>, StoreError> {
            unimplemented!()
        }
        async fn team(&self, _: &TeamId) -> Result<Option<Team>, StoreError> {
            unimplemented!()
        }
        async fn teams_by_ids(&self, _: &[TeamId]) -> Result<Vec<Team>, StoreError> {
            unimplemented!()
        }
        async fn teams(
            &self,
            _: Option<Sport>,
            _: Option<&CompetitionId>,
        ) -> Result<Vec<Team>, StoreError> {
            unimplemented!()
        }
        async fn match_by_id(&self, _: &MatchId) -> Result<Option<Match>, StoreError> {
            let mut inner = self.inner.lock().unwrap();
            if inner.at_read {
                if let Some(competitor) = inner.competitor.take() {
                    write(&mut inner, &competitor).expect("the competing write applies");
                }
            }
            Ok(Some(inner.current.clone()))
        }
        async fn matches(
            &self,
            _: &MatchFilter,
            _: &PageRequest,
        ) -> Result<Page<Match>, StoreError> {
            unimplemented!()
        }
        async fn live_matches(&self, _: Option<Sport>) -> Result<Vec<Match>, StoreError> {
            unimplemented!()
        }
        async fn events(&self, _: &MatchId, _: u32, _: u32) -> Result<Vec<MatchEvent>, StoreError> {
            unimplemented!()
        }
        async fn idempotent_result(
            &self,
            _: &MatchId,
            key: &ClientMutationId,
        ) -> Result<Option<Match>, StoreError> {
            let inner = self.inner.lock().unwrap();
            Ok(inner
                .keys
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, m)| m.clone()))
        }
        async fn commit(&self, w: &MatchWrite) -> Result<(), CommitError> {
            let mut inner = self.inner.lock().unwrap();
            inner.commits += 1;
            if inner.always_contended {
                return Err(CommitError::VersionMismatch);
            }
            if !inner.at_read {
                if let Some(competitor) = inner.competitor.take() {
                    write(&mut inner, &competitor).expect("the competing write applies");
                }
            }
            write(&mut inner, w)
        }
        async fn check(&self) -> Result<(), StoreError> {
            Ok(())
        }
    }

    fn goal() -> MatchCommand {
        MatchCommand::RecordEvent(NewEvent::new(EventType::Goal).side(Side::Home))
    }

    fn keyed(key: &str, expected_version: u64) -> WriteOptions {
        WriteOptions {
            expected_version: Some(expected_version),
            client_mutation_id: Some(ClientMutationId::parse(key).unwrap()),
            retry_for: None,
        }
    }

    /// The write the same mutation makes when applied to `current`.
    fn same_mutation(current: &Match, options: &WriteOptions) -> MatchWrite {
        let applied = goal().apply(current, Utc::now()).unwrap();
        MatchWrite {
            next: applied.next,
            event: applied.event,
            idempotency: options
                .client_mutation_id
                .clone()
                .map(|key| IdempotencyRecord {
                    key,
                    expires_at: Utc::now() + Duration::hours(IDEMPOTENCY_TTL_HOURS),
                }),
        }
    }

    #[tokio::test]
    async fn a_command_stops_retrying_a_contended_match_after_its_time_budget() {
        let options = WriteOptions {
            retry_for: Some(Duration::seconds(10)),
            ..WriteOptions::default()
        };
        let store = RacingStore::new(|m| same_mutation(m, &options)).always_contended();
        let id = MatchId::parse("m1").unwrap();
        // A clock that moves one second each time it is read: the budget, not the attempt
        // count, ends the retries.
        let base = Utc::now();
        let reads = std::sync::atomic::AtomicI64::new(0);
        let clock =
            || base + Duration::seconds(reads.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        let result = apply_command(&store, &id, &goal(), &options, clock).await;
        assert!(
            matches!(result, Err(ServiceError::Contention)),
            "{result:?}"
        );
        let commits = store.inner.lock().unwrap().commits;
        assert!(commits <= 10, "{commits} commits in a 10 s budget");
        assert!(commits >= 2, "it retried: {commits}");
    }

    #[tokio::test]
    async fn a_copy_of_a_keyed_mutation_that_loses_the_race_returns_the_first_result() {
        let options = keyed("retry-1", 1);
        let store = RacingStore::new(|m| same_mutation(m, &options));
        let id = MatchId::parse("m1").unwrap();
        let result = apply_command(&store, &id, &goal(), &options, Utc::now)
            .await
            .expect("a replay is never a conflict");
        assert_eq!(result.version, 2);
        assert_eq!(result.score.home, 1);
        assert_eq!(store.current().version, 2, "applied once");
        assert_eq!(store.current().score.home, 1);
    }

    #[tokio::test]
    async fn a_copy_of_a_keyed_mutation_read_after_the_first_committed_returns_the_first_result() {
        let options = keyed("retry-2", 1);
        let store = RacingStore::new(|m| same_mutation(m, &options)).racing_the_read();
        let id = MatchId::parse("m1").unwrap();
        let result = apply_command(&store, &id, &goal(), &options, Utc::now)
            .await
            .expect("a replay is never a conflict");
        assert_eq!((result.version, result.score.home), (2, 1));
        assert_eq!(store.current().version, 2, "applied once");
    }

    #[tokio::test]
    async fn a_keyed_mutation_read_after_another_change_is_a_conflict() {
        let options = keyed("mine", 1);
        let store =
            RacingStore::new(|m| same_mutation(m, &WriteOptions::default())).racing_the_read();
        let id = MatchId::parse("m1").unwrap();
        let err = apply_command(&store, &id, &goal(), &options, Utc::now)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::VersionConflict { current: 2 }),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_keyed_mutation_that_loses_the_race_to_another_change_is_a_conflict() {
        let options = keyed("mine", 1);
        let store = RacingStore::new(|m| same_mutation(m, &WriteOptions::default()));
        let id = MatchId::parse("m1").unwrap();
        let err = apply_command(&store, &id, &goal(), &options, Utc::now)
            .await
            .unwrap_err();
        assert!(
            matches!(err, ServiceError::VersionConflict { current: 2 }),
            "{err:?}"
        );
        assert_eq!(
            store.current().score.home,
            1,
            "only the other change applied"
        );
    }

    #[tokio::test]
    async fn without_an_expected_version_a_lost_race_is_retried_on_the_new_state() {
        let store = RacingStore::new(|m| same_mutation(m, &WriteOptions::default()));
        let id = MatchId::parse("m1").unwrap();
        let result = apply_command(&store, &id, &goal(), &WriteOptions::default(), Utc::now)
            .await
            .unwrap();
        assert_eq!(result.version, 3);
        assert_eq!(result.score.home, 2, "neither goal is lost");
    }
}
