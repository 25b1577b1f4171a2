//! Table administration: creating the table as the infrastructure template defines it, waiting
//! for it to become ACTIVE, its TTL setting, and the stream ARN the poller reads. None of this
//! is on a request path: it runs at startup (`api init-table`, a server that creates its table,
//! the in-process stream poller) and in tests.

use std::time::Duration;

use aws_sdk_dynamodb::client::Waiters as _;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TimeToLiveSpecification, TimeToLiveStatus,
};
use scoreline_core::item::{INDEXES, PK, SK, TTL};
use scoreline_core::store::StoreError;

use super::{unavailable, DynamoStore};

/// How long `init_table` waits for a new table to become ACTIVE.
const TABLE_ACTIVE_WAIT: Duration = Duration::from_secs(300);

impl DynamoStore {
    /// Creates the table, its indexes, stream (NEW_AND_OLD_IMAGES) and TTL setting, as the
    /// infrastructure template does, and waits until it is ACTIVE. On a table that exists it
    /// only completes a missing TTL setting (a run stopped between the two steps). Returns
    /// whether it created the table.
    pub async fn init_table(&self) -> Result<bool, StoreError> {
        match self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
        {
            Ok(_) => {
                self.wait_until_active().await?;
                self.ensure_ttl().await?;
                return Ok(false);
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) => {}
            Err(e) => return Err(unavailable(e)),
        }
        let mut attributes = vec![PK, SK];
        for (_, pk, sk) in INDEXES {
            attributes.push(pk);
            attributes.push(sk);
        }
        let definitions = attributes
            .into_iter()
            .map(|name| {
                AttributeDefinition::builder()
                    .attribute_name(name)
                    .attribute_type(ScalarAttributeType::S)
                    .build()
                    .expect("complete attribute definition")
            })
            .collect::<Vec<_>>();
        let schema = |pk: &str, sk: &str| {
            vec![
                KeySchemaElement::builder()
                    .attribute_name(pk)
                    .key_type(KeyType::Hash)
                    .build()
                    .expect("complete key schema"),
                KeySchemaElement::builder()
                    .attribute_name(sk)
                    .key_type(KeyType::Range)
                    .build()
                    .expect("complete key schema"),
            ]
        };
        let indexes = INDEXES
            .iter()
            .map(|(name, pk, sk)| {
                GlobalSecondaryIndex::builder()
                    .index_name(*name)
                    .set_key_schema(Some(schema(pk, sk)))
                    .projection(
                        Projection::builder()
                            .projection_type(ProjectionType::KeysOnly)
                            .build(),
                    )
                    .build()
                    .expect("complete index")
            })
            .collect::<Vec<_>>();
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(definitions))
            .set_key_schema(Some(schema(PK, SK)))
            .set_global_secondary_indexes(Some(indexes))
            .billing_mode(BillingMode::PayPerRequest)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .expect("complete stream specification"),
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            // Someone else created it meanwhile.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_in_use_exception()) =>
            {
                self.wait_until_active().await?;
                self.ensure_ttl().await?;
                return Ok(false);
            }
            Err(e) => return Err(unavailable(e)),
        }
        // A new table is CREATING for a while on DynamoDB; UpdateTimeToLive and every data
        // operation need it ACTIVE.
        self.wait_until_active().await?;
        self.ensure_ttl().await?;
        Ok(true)
    }

    async fn wait_until_active(&self) -> Result<(), StoreError> {
        self.client
            .wait_until_table_exists()
            .table_name(&self.table)
            .wait(TABLE_ACTIVE_WAIT)
            .await
            .map(|_| ())
            .map_err(|e| {
                StoreError::Unavailable(
                    format!(
                        "table {} did not become ACTIVE: {}",
                        self.table,
                        DisplayErrorContext(&e)
                    )
                    .into(),
                )
            })
    }

    /// Enables TTL on `ttl` unless it is enabled (or being enabled) already.
    async fn ensure_ttl(&self) -> Result<(), StoreError> {
        let described = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(unavailable)?;
        let status = described
            .time_to_live_description()
            .and_then(|d| d.time_to_live_status());
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            return Ok(());
        }
        let updated = self
            .client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL)
                    .build()
                    .expect("complete TTL specification"),
            )
            .send()
            .await;
        match updated {
            Ok(_) => Ok(()),
            // Another init-table enabled it meanwhile ("TimeToLive is already enabled").
            Err(e)
                if e.as_service_error().is_some_and(|s| {
                    s.code() == Some("ValidationException")
                        && s.message().is_some_and(|m| m.contains("already enabled"))
                }) =>
            {
                Ok(())
            }
            Err(e) => Err(unavailable(e)),
        }
    }

    /// The table's stream ARN, for the stream poller.
    pub async fn stream_arn(&self) -> Result<Option<String>, StoreError> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(unavailable)?;
        Ok(table
            .table()
            .and_then(|t| t.latest_stream_arn())
            .map(str::to_string))
    }
}
