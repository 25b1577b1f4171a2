//! The DynamoDB store: one table in the layout of `scoreline_core::item` (documented in
//! `docs/data-model.md`), on aws-sdk-dynamodb with explicit timeouts and the standard retry mode.
//!
//! Reads use queries on keys and indexes, never scans. The listing indexes (gsi1..gsi4) and the
//! live index (gsi5) project keys only: a score change rewrites the match item but none of the
//! index entries (their keys do not change), so a busy match day writes to the base table's
//! per-match partitions and not to a few hot index partitions. Listings then fetch the page's
//! items with one `BatchGetItem`.
//!
//! # Layout
//! - here: configuration, connecting, the item helpers every part shares, and the [`Store`]
//!   implementation, which delegates its longer operations to the modules below.
//! - `table`: table administration (`init_table`, waiting for ACTIVE, TTL, the stream ARN).
//! - `listing`: reads that go through the indexes: query planning over index partitions and
//!   month buckets, cursors, and fetching items with `BatchGetItem`.
//! - `writes`: conditional writes and transactions (a known outcome despite timeouts), the
//!   idempotency records, and how cancellation reasons map to store errors.

mod listing;
mod table;
mod writes;

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::BehaviorVersion;
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use scoreline_core::item::{
    self, competition_pk, event_sk, match_pk, team_pk, time_key, ItemError, Record, PK, SK,
};
use scoreline_core::store::{
    CommitError, MatchFilter, MatchWrite, Page, PageRequest, Store, StoreError,
};
use scoreline_core::{
    ClientMutationId, Competition, CompetitionId, Match, MatchEvent, MatchId, Sport, Team, TeamId,
};
use scoreline_pipeline::retry::Backoff;
use serde_dynamo::Item;

/// Waits between optimistic retries of a contended match: 10 ms doubling to 2 s, full jitter.
/// The cap bounds how often a crowd of writers on one match retries (with 200 writers on
/// DynamoDB Local a 500 ms cap made ~40% more attempts and took ~30% longer); few writers never
/// reach it.
const CONTENTION_BACKOFF: Backoff = Backoff::new(Duration::from_millis(10), Duration::from_secs(2));

type Attrs = HashMap<String, AttributeValue>;

/// How to reach the table.
#[derive(Clone, Debug)]
pub struct DynamoConfig {
    pub table: String,
    /// An endpoint override (DynamoDB Local); the SDK's `AWS_ENDPOINT_URL_DYNAMODB` works too.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// Fixed credentials and patient timeouts, for DynamoDB Local (which accepts any
    /// credentials, and answers slowly under load).
    pub local_credentials: bool,
}

pub struct DynamoStore {
    client: Client,
    sdk: aws_config::SdkConfig,
    table: String,
}

/// An SDK error with a summary that says what happened (the SDK's own `Display` is only
/// "service error" or "dispatch failure"); the error itself stays the source.
#[derive(Debug, thiserror::Error)]
#[error("{summary}")]
struct SdkFailure {
    summary: String,
    #[source]
    source: scoreline_core::BoxError,
}

fn unavailable<E, R>(e: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    let throttled = matches!(
        e.code(),
        Some(
            "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "InternalServerError"
                | "ServiceUnavailable"
        )
    );
    let failure = |summary: String, e| -> scoreline_core::BoxError {
        Box::new(SdkFailure {
            summary,
            source: Box::new(e),
        })
    };
    match &e {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            let summary = DisplayErrorContext(&e).to_string();
            StoreError::Unavailable(failure(summary, e))
        }
        SdkError::ServiceError(_) if throttled => {
            let summary = format!(
                "{}: {}",
                e.code().unwrap_or("throttled"),
                e.message().unwrap_or_default()
            );
            StoreError::Unavailable(failure(summary, e))
        }
        _ => {
            let summary = format!(
                "{}: {}",
                e.code().unwrap_or("error"),
                e.message().unwrap_or_default()
            );
            StoreError::Internal(failure(summary, e))
        }
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

/// An item the codec cannot read: a bug or a foreign write, never a passing fault.
#[derive(Debug, thiserror::Error)]
#[error("corrupt item: {0}")]
struct Corrupt(#[source] ItemError);

fn corrupt(e: ItemError) -> StoreError {
    StoreError::Internal(Box::new(Corrupt(e)))
}

fn attrs(item: Item) -> Attrs {
    item.into()
}

fn decode(attrs: &Attrs) -> Result<Record, StoreError> {
    item::decode(&Item::from(attrs.clone())).map_err(corrupt)
}

fn decode_match(attrs: &Attrs) -> Result<Match, StoreError> {
    match decode(attrs)? {
        Record::Match(m) => Ok(*m),
        _ => Err(StoreError::Internal("expected a match item".into())),
    }
}

fn key(pk: String, sk: &str) -> Attrs {
    HashMap::from([(PK.to_string(), s(pk)), (SK.to_string(), s(sk))])
}

/// Sort keys of the listing indexes: `<start time>#<match id>`.
fn sort_key(m: &Match) -> String {
    format!("{}#{}", time_key(m.start_time), m.id)
}

fn key_of(item: &Attrs) -> Attrs {
    item.iter()
        .filter(|(k, _)| k.as_str() == PK || k.as_str() == SK)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

impl DynamoStore {
    pub async fn connect(config: &DynamoConfig) -> Self {
        // DynamoDB answers in milliseconds: a request that takes seconds is better retried or
        // reported. DynamoDB Local is a JVM on a developer's machine, whose answers take
        // seconds under load (hundreds of concurrent requests, a busy CPU); that is no outage.
        let (attempt, operation) = if config.local_credentials {
            (Duration::from_secs(10), Duration::from_secs(30))
        } else {
            (Duration::from_secs(3), Duration::from_secs(10))
        };
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(2))
                    .operation_attempt_timeout(attempt)
                    .operation_timeout(operation)
                    .build(),
            )
            // The standard mode: exponential backoff with full jitter, throttling-aware.
            .retry_config(
                RetryConfig::standard()
                    .with_max_attempts(4)
                    .with_initial_backoff(Duration::from_millis(50))
                    .with_max_backoff(Duration::from_secs(2)),
            );
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if config.local_credentials {
            loader = loader.credentials_provider(Credentials::new(
                "local",
                "local",
                None,
                None,
                "scoreline-local",
            ));
            if config.region.is_none() {
                loader = loader.region(aws_config::Region::new("us-east-1"));
            }
        }
        let sdk = loader.load().await;
        Self {
            client: Client::new(&sdk),
            sdk,
            table: config.table.clone(),
        }
    }

    /// The AWS configuration the store was built with (for the stream poller's client).
    pub fn sdk_config(&self) -> &aws_config::SdkConfig {
        &self.sdk
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    async fn get(&self, key: Attrs) -> Result<Option<Attrs>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(out.item)
    }
}

#[async_trait]
impl Store for DynamoStore {
    async fn create_competition(&self, competition: &Competition) -> Result<(), StoreError> {
        self.put_new(
            item::competition_item(competition),
            format!("competition {}", competition.id),
        )
        .await
    }

    async fn create_team(
        &self,
        team: &Team,
        competitions: &[CompetitionId],
    ) -> Result<(), StoreError> {
        self.insert_team(team, competitions).await
    }

    async fn create_match(&self, m: &Match) -> Result<(), StoreError> {
        self.insert_match(m).await
    }

    async fn competition(&self, id: &CompetitionId) -> Result<Option<Competition>, StoreError> {
        match self.get(key(competition_pk(id), "C")).await? {
            Some(a) => match decode(&a)? {
                Record::Competition(c) => Ok(Some(c)),
                _ => Err(StoreError::Internal("expected a competition item".into())),
            },
            None => Ok(None),
        }
    }

    async fn competitions(&self, sport: Option<Sport>) -> Result<Vec<Competition>, StoreError> {
        let keys = self.catalogue_keys("COMPETITIONS", sport).await?;
        let mut out = Vec::new();
        for a in self.batch_get(keys).await? {
            if let Record::Competition(c) = decode(&a)? {
                out.push(c);
            }
        }
        out.sort_by(|a, b| (a.sport, &a.id).cmp(&(b.sport, &b.id)));
        Ok(out)
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        match self.get(key(team_pk(id), "T")).await? {
            Some(a) => match decode(&a)? {
                Record::Team(t) => Ok(Some(t)),
                _ => Err(StoreError::Internal("expected a team item".into())),
            },
            None => Ok(None),
        }
    }

    async fn teams_by_ids(&self, ids: &[TeamId]) -> Result<Vec<Team>, StoreError> {
        let mut unique: Vec<&TeamId> = ids.iter().collect();
        unique.sort();
        unique.dedup();
        let keys = unique.into_iter().map(|id| key(team_pk(id), "T")).collect();
        let mut out = Vec::new();
        for a in self.batch_get(keys).await? {
            if let Record::Team(t) = decode(&a)? {
                out.push(t);
            }
        }
        Ok(out)
    }

    async fn teams(
        &self,
        sport: Option<Sport>,
        competition: Option<&CompetitionId>,
    ) -> Result<Vec<Team>, StoreError> {
        let keys: Vec<Attrs> = match competition {
            Some(c) => self
                .query_all(
                    None,
                    "pk = :pk AND begins_with(sk, :prefix)",
                    HashMap::new(),
                    HashMap::from([
                        (":pk".into(), s(competition_pk(c))),
                        (":prefix".into(), s("T#")),
                    ]),
                )
                .await?
                .iter()
                .filter_map(|a| match a.get(SK) {
                    Some(AttributeValue::S(sk)) => Some(key(sk.clone(), "T")),
                    _ => None,
                })
                .collect(),
            None => self.catalogue_keys("TEAMS", sport).await?,
        };
        let mut out = Vec::new();
        for a in self.batch_get(keys).await? {
            if let Record::Team(t) = decode(&a)? {
                if sport.is_none_or(|s| s == t.sport) {
                    out.push(t);
                }
            }
        }
        out.sort_by(|a, b| (a.sport, &a.id).cmp(&(b.sport, &b.id)));
        Ok(out)
    }

    async fn match_by_id(&self, id: &MatchId) -> Result<Option<Match>, StoreError> {
        self.get(key(match_pk(id), "M"))
            .await?
            .map(|a| decode_match(&a))
            .transpose()
    }

    async fn matches(
        &self,
        filter: &MatchFilter,
        page: &PageRequest,
    ) -> Result<Page<Match>, StoreError> {
        self.list_matches(filter, page).await
    }

    async fn live_matches(&self, sport: Option<Sport>) -> Result<Vec<Match>, StoreError> {
        Ok(self
            .in_play(sport)
            .await?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    async fn events(
        &self,
        id: &MatchId,
        after_seq: u32,
        limit: u32,
    ) -> Result<Vec<MatchEvent>, StoreError> {
        if limit == 0 || after_seq == u32::MAX {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut start: Option<Attrs> = None;
        while out.len() < limit as usize {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk BETWEEN :lo AND :hi")
                .expression_attribute_values(":pk", s(match_pk(id)))
                .expression_attribute_values(":lo", s(event_sk(after_seq + 1)))
                .expression_attribute_values(":hi", s(event_sk(u32::MAX)))
                .consistent_read(true)
                .limit((limit as usize - out.len()).min(1000) as i32)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(unavailable)?;
            for a in page.items() {
                match decode(a)? {
                    Record::Event(e) => out.push(e),
                    _ => return Err(StoreError::Internal("expected an event item".into())),
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(out)
    }

    async fn idempotent_result(
        &self,
        id: &MatchId,
        key_: &ClientMutationId,
    ) -> Result<Option<Match>, StoreError> {
        self.stored_idempotent_result(id, key_).await
    }

    async fn commit(&self, write: &MatchWrite) -> Result<(), CommitError> {
        self.commit_write(write).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map(|_| ())
            .map_err(unavailable)
    }

    async fn contention_backoff(&self, attempt: u32) {
        CONTENTION_BACKOFF.wait(attempt).await;
    }
}
