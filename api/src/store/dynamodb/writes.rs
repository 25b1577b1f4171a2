//! Writes: conditional puts and transactions. A transaction that timed out may still be
//! applied, so each one runs to a known outcome under one ClientRequestToken, and its
//! cancellation reasons are mapped to what the caller needs to know (a lost race, a duplicate
//! mutation, a transient failure). The idempotency records that make mutations repeatable are
//! written and read here too.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use chrono::Utc;
use rand::Rng;
use scoreline_core::item::{self, idempotency_sk, match_pk, Record, TTL, VERSION};
use scoreline_core::store::{CommitError, MatchWrite, Store, StoreError};
use scoreline_core::{ClientMutationId, CompetitionId, Match, MatchId, Team};
use serde_dynamo::Item;

use super::{attrs, decode, key, unavailable, Attrs, DynamoStore};

impl DynamoStore {
    pub(super) async fn put_new(&self, item: Item, what: String) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(attrs(item)))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Err(StoreError::AlreadyExists(what))
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    fn put(
        &self,
        item: Item,
        condition: Option<&str>,
        names: Option<HashMap<String, String>>,
        values: Option<Attrs>,
    ) -> TransactWriteItem {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(attrs(item)))
            .set_condition_expression(condition.map(str::to_string))
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .build()
            .expect("complete put");
        TransactWriteItem::builder().put(put).build()
    }

    /// Runs a transaction. `token` (a ClientRequestToken) makes a repeat of an applied
    /// transaction a no-op that succeeds; the SDK's own retries reuse one token already.
    async fn transact(&self, items: Vec<TransactWriteItem>, token: Option<String>) -> Attempt {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .set_client_request_token(token)
            .send()
            .await;
        match result {
            Ok(_) => Attempt::Done(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => {
                    let reasons = c
                        .cancellation_reasons()
                        .iter()
                        .map(|r| r.code().unwrap_or("None").to_string())
                        .collect();
                    Attempt::Done(Err(TransactFailure::Cancelled(reasons)))
                }
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
                    Attempt::InProgress
                }
                _ => Attempt::Done(Err(TransactFailure::Store(unavailable(e)))),
            },
        }
    }

    /// Runs a transaction to a known outcome: while an attempt that timed out is still in
    /// progress, DynamoDB answers a repeat with its token `TransactionInProgressException`;
    /// repeating again later (AWS suggests after 5 s) completes it or returns its result.
    async fn transact_settled(&self, items: Vec<TransactWriteItem>) -> Result<(), TransactFailure> {
        let token = request_token();
        for wait in [1, 2, 3] {
            match self.transact(items.clone(), Some(token.clone())).await {
                Attempt::Done(result) => return result,
                Attempt::InProgress => tokio::time::sleep(Duration::from_secs(wait)).await,
            }
        }
        match self.transact(items, Some(token)).await {
            Attempt::Done(result) => result,
            Attempt::InProgress => Err(TransactFailure::Store(StoreError::Unavailable(
                "a transaction stayed in progress: outcome unknown".into(),
            ))),
        }
    }

    /// `Store::create_team`: the team and its memberships, in one transaction.
    pub(super) async fn insert_team(
        &self,
        team: &Team,
        competitions: &[CompetitionId],
    ) -> Result<(), StoreError> {
        let mut items = vec![self.put(
            item::team_item(team),
            Some("attribute_not_exists(pk)"),
            None,
            None,
        )];
        // A transaction may touch an item once: register each competition once.
        let mut unique: Vec<&CompetitionId> = competitions.iter().collect();
        unique.sort();
        unique.dedup();
        for c in unique {
            items.push(self.put(item::membership_item(c, &team.id), None, None, None));
        }
        match self.transact_settled(items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(reasons))
                if reasons
                    .first()
                    .is_some_and(|r| r == "ConditionalCheckFailed") =>
            {
                Err(StoreError::AlreadyExists(format!("team {}", team.id)))
            }
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }

    /// `Store::create_match`: the match and both teams' memberships, in one transaction.
    pub(super) async fn insert_match(&self, m: &Match) -> Result<(), StoreError> {
        let items = vec![
            self.put(
                item::match_item(m),
                Some("attribute_not_exists(pk)"),
                None,
                None,
            ),
            self.put(
                item::membership_item(&m.competition_id, &m.home_team_id),
                None,
                None,
                None,
            ),
            self.put(
                item::membership_item(&m.competition_id, &m.away_team_id),
                None,
                None,
                None,
            ),
        ];
        match self.transact_settled(items).await {
            Ok(()) => Ok(()),
            Err(TransactFailure::Cancelled(reasons))
                if reasons
                    .first()
                    .is_some_and(|r| r == "ConditionalCheckFailed") =>
            {
                Err(StoreError::AlreadyExists(format!("match {}", m.id)))
            }
            Err(TransactFailure::Cancelled(reasons)) => Err(cancelled(&reasons)),
            Err(TransactFailure::Store(e)) => Err(e),
        }
    }

    /// `Store::idempotent_result`: the result an unexpired idempotency record holds.
    pub(super) async fn stored_idempotent_result(
        &self,
        id: &MatchId,
        key_: &ClientMutationId,
    ) -> Result<Option<Match>, StoreError> {
        let Some(a) = self.get(key(match_pk(id), &idempotency_sk(key_))).await? else {
            return Ok(None);
        };
        // TTL deletion is lazy: an expired record may still be there.
        if let Some(AttributeValue::N(ttl)) = a.get(TTL) {
            if ttl
                .parse::<i64>()
                .is_ok_and(|t| t <= Utc::now().timestamp())
            {
                return Ok(None);
            }
        }
        match decode(&a)? {
            Record::Idempotency { result, .. } => Ok(Some(*result)),
            _ => Err(StoreError::Internal("expected an idempotency item".into())),
        }
    }

    /// `Store::commit`: the match, its event and its idempotency record, in one transaction.
    pub(super) async fn commit_write(&self, write: &MatchWrite) -> Result<(), CommitError> {
        let mut items = vec![self.put(
            item::match_item(&write.next),
            Some("#v = :expected"),
            Some(HashMap::from([("#v".to_string(), VERSION.to_string())])),
            Some(HashMap::from([(
                ":expected".into(),
                AttributeValue::N(write.expected_version().to_string()),
            )])),
        )];
        if let Some(event) = &write.event {
            items.push(self.put(
                item::event_item(event),
                Some("attribute_not_exists(pk)"),
                None,
                None,
            ));
        }
        let idem_index = items.len();
        if let Some(rec) = &write.idempotency {
            items.push(self.put(
                item::idempotency_item(&rec.key, &write.next, rec.expires_at),
                Some("attribute_not_exists(pk) OR #ttl <= :now"),
                Some(HashMap::from([("#ttl".to_string(), TTL.to_string())])),
                Some(HashMap::from([(
                    ":now".into(),
                    AttributeValue::N(Utc::now().timestamp().to_string()),
                )])),
            ));
        }
        let mut attempt = 0;
        loop {
            attempt += 1;
            let reasons = match self.transact_settled(items.clone()).await {
                Ok(()) => return Ok(()),
                Err(TransactFailure::Store(e)) => return Err(CommitError::Store(e)),
                Err(TransactFailure::Cancelled(reasons)) => reasons,
            };
            let failed = |i: usize| {
                reasons
                    .get(i)
                    .is_some_and(|r| r == "ConditionalCheckFailed")
            };
            if write.idempotency.is_some() && failed(idem_index) {
                return Err(CommitError::DuplicateMutation);
            }
            // A failed version condition (or an event seq that exists): another writer got
            // there first.
            if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                return Err(CommitError::VersionMismatch);
            }
            // Only a conflict with a transaction in flight on one of these items: its outcome
            // is unknown, so try once more to learn it before reporting a lost race (a
            // VersionMismatch becomes a VERSION_CONFLICT when the client gave a version).
            if reasons.iter().any(|r| r == "TransactionConflict") {
                if attempt < 2 {
                    self.contention_backoff(1).await;
                    continue;
                }
                return Err(CommitError::VersionMismatch);
            }
            return Err(CommitError::Store(cancelled(&reasons)));
        }
    }
}

/// Why a transaction was cancelled, for reasons that are not a lost race.
fn cancelled(reasons: &[String]) -> StoreError {
    let transient = reasons.iter().any(|r| {
        matches!(
            r.as_str(),
            "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
        )
    });
    let detail = format!("transaction cancelled: {reasons:?}");
    if transient {
        StoreError::Unavailable(detail.into())
    } else {
        StoreError::Internal(detail.into())
    }
}

enum TransactFailure {
    /// Cancelled, with one reason code per item (`None` for the items that were fine).
    Cancelled(Vec<String>),
    Store(StoreError),
}

/// One try of a transaction.
enum Attempt {
    Done(Result<(), TransactFailure>),
    /// An earlier attempt with the same token is still running: its outcome is unknown yet.
    InProgress,
}

/// A fresh ClientRequestToken (at most 36 characters).
fn request_token() -> String {
    format!("{:032x}", rand::thread_rng().gen::<u128>())
}
