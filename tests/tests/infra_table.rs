//! `infra/template.yaml` deploys the table `api init-table` creates, and configures the API
//! with settings it reads.
//!
//! The table is compared twice: with the item layout in `scoreline_core::item` (keys, indexes,
//! TTL attribute) and the constants `init_table` passes to CreateTable, and with what
//! `DynamoStore::init_table` actually creates on DynamoDB Local, read back with DescribeTable
//! and DescribeTimeToLive. Either drift (an index added in code but not in the template, a
//! projection changed in one place) fails here rather than in production.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use api::{DynamoConfig, DynamoStore};
use aws_sdk_dynamodb::types::KeySchemaElement;
use clap::CommandFactory;
use scoreline_core::item::{INDEXES, PK, SK, TTL};
use scoreline_tests::dynamodb_local;
use serde_yaml::Value;

// What `init_table` (api/src/store/dynamodb/table.rs) asks CreateTable for, beyond the names in
// `scoreline_core::item`; the DynamoDB Local test below checks these against the real thing.
const KEY_ATTRIBUTE_TYPE: &str = "S";
const PROJECTION: &str = "KEYS_ONLY";
const BILLING_MODE: &str = "PAY_PER_REQUEST";
const STREAM_VIEW_TYPE: &str = "NEW_AND_OLD_IMAGES";

/// A table definition, reduced to what both sides can state.
#[derive(Debug, PartialEq, Eq)]
struct TableDefinition {
    /// `(attribute, HASH | RANGE)`, in order.
    key_schema: Vec<(String, String)>,
    /// Attribute name to type.
    attributes: BTreeMap<String, String>,
    /// Index name to definition.
    indexes: BTreeMap<String, IndexDefinition>,
    billing_mode: String,
    stream_view_type: String,
    ttl_attribute: String,
}

#[derive(Debug, PartialEq, Eq)]
struct IndexDefinition {
    key_schema: Vec<(String, String)>,
    projection: String,
    non_key_attributes: Vec<String>,
}

fn key_schema(pk: &str, sk: &str) -> Vec<(String, String)> {
    vec![(pk.into(), "HASH".into()), (sk.into(), "RANGE".into())]
}

/// The table as the code defines it.
fn from_item_layout() -> TableDefinition {
    let mut attributes = BTreeMap::new();
    for name in [PK, SK]
        .into_iter()
        .chain(INDEXES.iter().flat_map(|(_, pk, sk)| [*pk, *sk]))
    {
        attributes.insert(name.to_string(), KEY_ATTRIBUTE_TYPE.to_string());
    }
    TableDefinition {
        key_schema: key_schema(PK, SK),
        attributes,
        indexes: INDEXES
            .iter()
            .map(|(name, pk, sk)| {
                (
                    name.to_string(),
                    IndexDefinition {
                        key_schema: key_schema(pk, sk),
                        projection: PROJECTION.into(),
                        non_key_attributes: vec![],
                    },
                )
            })
            .collect(),
        billing_mode: BILLING_MODE.into(),
        stream_view_type: STREAM_VIEW_TYPE.into(),
        ttl_attribute: TTL.into(),
    }
}

fn template() -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    // CloudFormation's short tags (!Ref, !Sub, …) parse as tagged values.
    serde_yaml::from_str(&text).expect("infra/template.yaml is YAML")
}

/// The template's resources of one type, by logical id.
fn resources<'a>(template: &'a Value, kind: &str) -> Vec<(&'a str, &'a Value)> {
    template["Resources"]
        .as_mapping()
        .expect("the template has Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some(kind))
        .map(|(id, r)| (id.as_str().unwrap_or("?"), &r["Properties"]))
        .collect()
}

/// A property that must be a literal string (not an intrinsic function) for the check to mean
/// anything.
fn literal<'a>(value: &'a Value, what: &str) -> &'a str {
    value
        .as_str()
        .unwrap_or_else(|| panic!("{what} must be a literal string in the template, not {value:?}"))
}

fn template_key_schema(value: &Value, what: &str) -> Vec<(String, String)> {
    value
        .as_sequence()
        .unwrap_or_else(|| panic!("{what}: KeySchema must be a list"))
        .iter()
        .map(|k| {
            (
                literal(&k["AttributeName"], what).to_string(),
                literal(&k["KeyType"], what).to_string(),
            )
        })
        .collect()
}

/// The one table of the template, with the properties a faithful copy of `init_table` must
/// (and must not) have.
fn from_template(template: &Value) -> TableDefinition {
    let tables = resources(template, "AWS::DynamoDB::Table");
    assert_eq!(tables.len(), 1, "the template defines exactly one table");
    let (_, table) = tables[0];

    for absent in ["LocalSecondaryIndexes", "ProvisionedThroughput"] {
        assert!(
            table.get(absent).is_none(),
            "the table has no {absent} (init_table sets none)"
        );
    }
    assert_eq!(
        table["TimeToLiveSpecification"]["Enabled"].as_bool(),
        Some(true),
        "TTL is enabled"
    );
    assert_eq!(
        table["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"].as_bool(),
        Some(true),
        "point-in-time recovery is on"
    );

    let definitions = table["AttributeDefinitions"]
        .as_sequence()
        .expect("AttributeDefinitions is a list");
    let attributes: BTreeMap<String, String> = definitions
        .iter()
        .map(|d| {
            (
                literal(&d["AttributeName"], "AttributeDefinitions").to_string(),
                literal(&d["AttributeType"], "AttributeDefinitions").to_string(),
            )
        })
        .collect();
    assert_eq!(
        attributes.len(),
        definitions.len(),
        "no attribute is defined twice"
    );

    let mut indexes = BTreeMap::new();
    for index in table["GlobalSecondaryIndexes"]
        .as_sequence()
        .expect("GlobalSecondaryIndexes is a list")
    {
        let name = literal(&index["IndexName"], "IndexName").to_string();
        assert!(
            index.get("ProvisionedThroughput").is_none(),
            "index {name} has no ProvisionedThroughput (the table is on demand)"
        );
        let non_key_attributes = index["Projection"]
            .get("NonKeyAttributes")
            .and_then(Value::as_sequence)
            .map(|names| {
                names
                    .iter()
                    .map(|n| literal(n, "NonKeyAttributes").to_string())
                    .collect()
            })
            .unwrap_or_default();
        let definition = IndexDefinition {
            key_schema: template_key_schema(&index["KeySchema"], &name),
            projection: literal(&index["Projection"]["ProjectionType"], &name).to_string(),
            non_key_attributes,
        };
        assert!(
            indexes.insert(name.clone(), definition).is_none(),
            "index {name} is defined once"
        );
    }

    TableDefinition {
        key_schema: template_key_schema(&table["KeySchema"], "the table"),
        attributes,
        indexes,
        billing_mode: literal(&table["BillingMode"], "BillingMode").to_string(),
        stream_view_type: literal(
            &table["StreamSpecification"]["StreamViewType"],
            "StreamViewType",
        )
        .to_string(),
        ttl_attribute: literal(
            &table["TimeToLiveSpecification"]["AttributeName"],
            "TTL AttributeName",
        )
        .to_string(),
    }
}

#[test]
fn the_template_defines_the_table_of_the_item_layout() {
    assert_eq!(from_template(&template()), from_item_layout());
}

#[tokio::test]
async fn the_template_defines_the_table_init_table_creates() {
    let store = DynamoStore::connect(&DynamoConfig {
        table: dynamodb_local::unique_table("infra"),
        endpoint: Some(dynamodb_local::endpoint().into()),
        region: None,
        local_credentials: true,
    })
    .await;
    assert!(
        store.init_table().await.expect("creating the table"),
        "a fresh table is created"
    );
    let table = store
        .client()
        .describe_table()
        .table_name(store.table())
        .send()
        .await
        .expect("DescribeTable")
        .table
        .expect("a table description");
    let ttl = store
        .client()
        .describe_time_to_live()
        .table_name(store.table())
        .send()
        .await
        .expect("DescribeTimeToLive")
        .time_to_live_description
        .expect("a TTL description");
    assert!(
        matches!(
            ttl.time_to_live_status().map(|s| s.as_str()),
            Some("ENABLED" | "ENABLING")
        ),
        "init_table enables TTL: {ttl:?}"
    );

    let keys = |schema: &[KeySchemaElement]| -> Vec<(String, String)> {
        schema
            .iter()
            .map(|k| {
                (
                    k.attribute_name().to_string(),
                    k.key_type().as_str().to_string(),
                )
            })
            .collect()
    };
    let created = TableDefinition {
        key_schema: keys(table.key_schema()),
        attributes: table
            .attribute_definitions()
            .iter()
            .map(|d| {
                (
                    d.attribute_name().to_string(),
                    d.attribute_type().as_str().to_string(),
                )
            })
            .collect(),
        indexes: table
            .global_secondary_indexes()
            .iter()
            .map(|index| {
                let projection = index.projection().expect("an index projection");
                (
                    index.index_name().unwrap_or_default().to_string(),
                    IndexDefinition {
                        key_schema: keys(index.key_schema()),
                        projection: projection
                            .projection_type()
                            .map(|p| p.as_str().to_string())
                            .unwrap_or_default(),
                        non_key_attributes: projection.non_key_attributes().to_vec(),
                    },
                )
            })
            .collect(),
        billing_mode: table
            .billing_mode_summary()
            .and_then(|b| b.billing_mode())
            .map(|b| b.as_str().to_string())
            .unwrap_or_default(),
        stream_view_type: table
            .stream_specification()
            .filter(|s| s.stream_enabled())
            .and_then(|s| s.stream_view_type())
            .map(|v| v.as_str().to_string())
            .unwrap_or_default(),
        ttl_attribute: ttl.attribute_name().unwrap_or_default().to_string(),
    };
    assert_eq!(from_template(&template()), created);
}

/// The entries a list item stands for: itself, or both branches of an `!If` (an entry set only
/// under a condition, such as the previous publish secret during a rotation), less
/// `!Ref AWS::NoValue`.
fn conditional_entries(entry: &Value) -> Vec<&Value> {
    let Value::Tagged(tagged) = entry else {
        return vec![entry];
    };
    assert_eq!(
        tagged.tag, "If",
        "an entry is a mapping or an !If: {entry:?}"
    );
    let branches = tagged
        .value
        .as_sequence()
        .expect("!If [condition, then, else]");
    branches[1..]
        .iter()
        .filter(|branch| !matches!(branch, Value::Tagged(t) if t.tag == "Ref"))
        .collect()
}

/// Settings the API task gets that the API itself does not read, on purpose.
const NOT_API_SETTINGS: [&str; 3] = [
    // Read by the AWS SDK.
    "AWS_REGION",
    // Read by the log filter (tracing's EnvFilter).
    "RUST_LOG",
    // Only changes the task definition, so tasks restart with a rotated secret.
    "PUBLISH_SECRET_GENERATION",
];

#[test]
fn the_api_task_is_configured_with_settings_the_api_reads() {
    let known: BTreeSet<String> = api::Cli::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect();
    assert!(
        known.contains("DYNAMODB_TABLE"),
        "the API's settings: {known:?}"
    );

    let template = template();
    let tasks = resources(&template, "AWS::ECS::TaskDefinition");
    assert_eq!(tasks.len(), 1, "one task definition, the API's");
    let container = &tasks[0].1["ContainerDefinitions"][0];
    let mut given = BTreeSet::new();
    for list in ["Environment", "Secrets"] {
        for entry in container[list]
            .as_sequence()
            .into_iter()
            .flatten()
            .flat_map(conditional_entries)
        {
            let name = literal(&entry["Name"], list).to_string();
            assert!(
                known.contains(&name) || NOT_API_SETTINGS.contains(&name.as_str()),
                "the API task sets {name}, which the API does not read (a typo?)"
            );
            given.insert(name);
        }
    }
    for needed in [
        "HOST",
        "PORT",
        "STORE",
        "DYNAMODB_TABLE",
        "BROKER",
        "REDIS_URL",
        "AUTH_JWKS_URL",
        "AUTH_ISSUER",
        "AUTH_AUDIENCE",
        "PUBLISH_SECRET",
        "DEMO",
    ] {
        assert!(given.contains(needed), "the API task sets {needed}");
    }
    assert_eq!(
        container["Secrets"][0]["Name"].as_str(),
        Some("PUBLISH_SECRET"),
        "the publish secret comes from Secrets Manager, not from a plain variable"
    );
}

#[test]
fn the_stream_handler_gets_its_publish_settings_and_a_partial_batch_response() {
    let template = template();
    let functions = resources(&template, "AWS::Serverless::Function");
    assert_eq!(functions.len(), 1, "one function, the stream-handler");
    let variables = &functions[0].1["Environment"]["Variables"];
    for needed in [
        "PUBLISH_URL",
        "PUBLISH_SECRET",
        "PUBLISH_TIMEOUT_MS",
        "PUBLISH_MAX_ATTEMPTS",
    ] {
        assert!(
            variables.get(needed).is_some(),
            "the stream-handler gets {needed}"
        );
    }
    let secret = serde_yaml::to_string(&variables["PUBLISH_SECRET"]).unwrap();
    assert!(
        secret.contains("{{resolve:secretsmanager:"),
        "PUBLISH_SECRET is a dynamic reference to Secrets Manager, not a value: {secret}"
    );

    let mappings = resources(&template, "AWS::Lambda::EventSourceMapping");
    assert_eq!(mappings.len(), 1, "one event source mapping");
    let mapping = mappings[0].1;
    assert_eq!(
        mapping["FunctionResponseTypes"][0].as_str(),
        Some("ReportBatchItemFailures"),
        "the handler answers with batchItemFailures"
    );
    assert_eq!(mapping["BisectBatchOnFunctionError"].as_bool(), Some(true));
    assert!(
        !mapping["DestinationConfig"]["OnFailure"]["Destination"].is_null(),
        "failed batches go to an on-failure destination"
    );
}
