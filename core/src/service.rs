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
    for attempt in 0..MAX_ATTEMPTS {
        if attempt > 0 {
            store.contention_backoff(attempt).await;
        }
        if let Some(key) = &options.client_mutation_id {
            if let Some(first) = store.idempotent_result(id, key).await? {
                return Ok(first);
            }
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
            Err(CommitError::VersionMismatch) if options.expected_version.is_some() => {
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
