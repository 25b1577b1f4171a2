//! Variable values checked against the types their operation declares: the one part of
//! validation that depends on a request's values. async-graphql validates a document with the
//! variables substituted into its arguments, so a document that passed once may still fail
//! with other values; everything else it checks is the document's structure, which does not
//! change between requests (see `documents.rs`).
//!
//! The check is sound, not complete: it answers `true` only when the full validation would
//! pass with these values too, and `false` whenever it cannot tell (an explicit `null`, a
//! custom scalar it does not know, a `@oneOf` input, a value of the wrong shape). A `false`
//! sends the request through the full validation, which reports any error exactly as before.
//!
//! Why a value that fits its variable's declared type fits every argument the variable is
//! used in: the full validation already passed for this document, and with it the rule that a
//! variable is only used where its type is allowed (same named type, at least as strict about
//! `null` at every level). The one gap in that rule is a nullable variable with a default used
//! where `null` is not allowed: an explicit `null` for it is refused by the full validation,
//! which is why a top-level `null` always answers `false` here.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{BaseType, Type, TypeKind, TypeSystemDefinition};
use async_graphql::parser::types::{OperationDefinition, VariableDefinition};
use async_graphql::parser::Positioned;
use async_graphql::{Value, Variables};

/// Custom scalars whose async-graphql implementation accepts every value at validation (their
/// parsing reports a bad value when the field runs, validated or not).
const ACCEPTS_ANY_VALUE: &[&str] = &["DateTime"];

/// The schema's input types, as the variable check needs them.
#[derive(Debug, Default)]
pub struct InputTypes {
    enums: HashMap<String, HashSet<String>>,
    objects: HashMap<String, InputObject>,
}

#[derive(Debug)]
struct InputObject {
    fields: Vec<InputField>,
    /// `@oneOf` inputs have rules of their own; values for them are never judged here.
    one_of: bool,
}

#[derive(Debug)]
struct InputField {
    name: String,
    ty: Type,
    has_default: bool,
}

impl InputTypes {
    /// The input types of the schema whose SDL this is. An SDL that does not parse gives an
    /// empty table, with which every value of an enum or input type sends its request through
    /// the full validation.
    pub fn from_sdl(sdl: &str) -> Self {
        let mut types = InputTypes::default();
        let Ok(document) = async_graphql::parser::parse_schema(sdl) else {
            return types;
        };
        for definition in document.definitions {
            let TypeSystemDefinition::Type(definition) = definition else {
                continue;
            };
            let definition = definition.node;
            let name = definition.name.node.to_string();
            match definition.kind {
                TypeKind::Enum(e) => {
                    let values = e.values.iter().map(|v| v.node.value.node.to_string());
                    types.enums.insert(name, values.collect());
                }
                TypeKind::InputObject(object) => {
                    let one_of = definition
                        .directives
                        .iter()
                        .any(|d| d.node.name.node == "oneOf");
                    let fields = object
                        .fields
                        .into_iter()
                        .map(|f| InputField {
                            name: f.node.name.node.to_string(),
                            ty: f.node.ty.node,
                            has_default: f.node.default_value.is_some(),
                        })
                        .collect();
                    types.objects.insert(name, InputObject { fields, one_of });
                }
                _ => {}
            }
        }
        types
    }

    /// Whether every value `variables` gives for a variable `operation` declares fits the
    /// declared type. Variables the request leaves out are not judged (the full validation
    /// does not judge them either; the field that needs one reports it).
    pub fn fit(&self, operation: &OperationDefinition, variables: &Variables) -> bool {
        operation
            .variable_definitions
            .iter()
            .all(|definition| self.variable_fits(definition, variables))
    }

    fn variable_fits(
        &self,
        definition: &Positioned<VariableDefinition>,
        variables: &Variables,
    ) -> bool {
        match variables.get(&definition.node.name.node) {
            None => true,
            Some(Value::Null) => false,
            Some(value) => self.value_fits(&definition.node.var_type.node, value),
        }
    }

    /// async-graphql's `is_valid_input_value`, for the cases this check models.
    fn value_fits(&self, ty: &Type, value: &Value) -> bool {
        if matches!(value, Value::Null) {
            return ty.nullable;
        }
        match &ty.base {
            BaseType::List(item) => match value {
                Value::List(items) => items.iter().all(|v| self.value_fits(item, v)),
                // A single value where a list is expected is read as a list of one.
                _ => self.value_fits(item, value),
            },
            BaseType::Named(name) => self.named_fits(name, value),
        }
    }

    fn named_fits(&self, name: &str, value: &Value) -> bool {
        match name {
            "Int" => matches!(value, Value::Number(n) if n.is_i64()),
            "Float" => matches!(value, Value::Number(_)),
            "String" => matches!(value, Value::String(_)),
            "Boolean" => matches!(value, Value::Boolean(_)),
            "ID" => {
                matches!(value, Value::String(_)) || matches!(value, Value::Number(n) if n.is_i64())
            }
            _ if ACCEPTS_ANY_VALUE.contains(&name) => true,
            _ => {
                if let Some(values) = self.enums.get(name) {
                    match value {
                        Value::Enum(v) => values.contains(v.as_str()),
                        Value::String(v) => values.contains(v.as_str()),
                        _ => false,
                    }
                } else if let Some(object) = self.objects.get(name) {
                    self.object_fits(object, value)
                } else {
                    false
                }
            }
        }
    }

    fn object_fits(&self, object: &InputObject, value: &Value) -> bool {
        let Value::Object(values) = value else {
            return false;
        };
        if object.one_of {
            return false;
        }
        let known = values
            .keys()
            .all(|k| object.fields.iter().any(|f| f.name == k.as_str()));
        known
            && object
                .fields
                .iter()
                .all(|field| match values.get(field.name.as_str()) {
                    Some(v) => self.value_fits(&field.ty, v),
                    None => field.ty.nullable || field.has_default,
                })
    }
}

#[cfg(test)]
mod tests {
    use std::any::TypeId;
    use std::cell::Cell;
    use std::sync::Arc;

    use async_graphql::{Name, Request, Value};
    use proptest::prelude::*;

    use crate::graphql::documents::{DocumentCache, Validated};
    use crate::graphql::ScorelineSchema;

    /// Documents whose variables reach every kind of input: scalars, enums, lists, an input
    /// object, a variable inside an object literal, defaults and non-null positions.
    const DOCUMENTS: &[&str] = &[
        "query($id: ID!) { match(id: $id) { id } }",
        "query($f: MatchFilter, $n: Int, $a: String) { matches(filter: $f, first: $n, after: $a) { edges { cursor } } }",
        "query($s: Sport, $c: ID) { teams(sport: $s, competitionId: $c) { id } }",
        "query($n: Int! = 5, $st: [MatchStatus!]) { matches(first: $n, filter: { status: $st }) { edges { cursor } } }",
        "query($from: DateTime, $x: Int = 3) { matches(first: $x, filter: { from: $from }) { edges { cursor } } }",
        "query One($s: Sport) { competitions(sport: $s) { id } } query Two($t: ID!) { team(id: $t) { id } }",
    ];

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            3 => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::Boolean),
            1 => any::<i32>().prop_map(|n| Value::from(n as i64)),
            1 => Just(Value::from(u64::MAX)),
            1 => Just(Value::from(2.5)),
            3 => prop::sample::select(vec![
                "SOCCER",
                "LIVE",
                "FINISHED",
                "soccer",
                "x",
                "",
                "2026-01-01T00:00:00Z",
            ])
            .prop_map(|s| Value::String(s.to_owned())),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "sport", "status", "from", "to", "teamId", "bogus",
                        ]),
                        inner
                    ),
                    0..4
                )
                .prop_map(|fields| Value::Object(
                    fields.into_iter().map(|(k, v)| (Name::new(k), v)).collect()
                )),
            ]
        })
    }

    fn request(document: &str, operation: Option<&str>, variables: &[(&str, Value)]) -> Request {
        let mut request = Request::new(document);
        request.operation_name = operation.map(str::to_owned);
        let map = variables
            .iter()
            .map(|(k, v)| (Name::new(k), v.clone()))
            .collect();
        request.variables = async_graphql::Variables::from_value(Value::Object(map));
        request
    }

    /// The response with the full validation, and the one through the document cache after
    /// the document passed once (validation skipped when the variables fit).
    async fn both(
        schema: &ScorelineSchema,
        cache: &DocumentCache,
        document: &str,
        operation: Option<&str>,
        variables: &[(&str, Value)],
    ) -> (serde_json::Value, serde_json::Value, bool) {
        let full = schema
            .execute(request(document, operation, variables))
            .await;
        let parsed = cache.document(&Request::new(document)).expect("parses");
        let mut prime = request(document, operation, &[]);
        prime.set_parsed_query(parsed.parsed().clone());
        cache.validation(&parsed, &mut prime);
        schema.execute(prime).await;
        let mut fast = request(document, operation, variables);
        fast.set_parsed_query(parsed.parsed().clone());
        cache.validation(&parsed, &mut fast);
        let skipped = fast.data.get(&TypeId::of::<Validated>()).is_some();
        let fast = schema.execute(fast).await;
        (
            serde_json::to_value(&full).unwrap(),
            serde_json::to_value(&fast).unwrap(),
            skipped,
        )
    }

    fn setup() -> (tokio::runtime::Runtime, ScorelineSchema, Arc<DocumentCache>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let schema = runtime.block_on(async { crate::test_support::panicking_schema() });
        let cache = Arc::new(DocumentCache::new(&schema.sdl()));
        (runtime, schema, cache)
    }

    #[test]
    fn values_of_every_shape_get_the_answer_the_full_validation_gives() {
        let (runtime, schema, cache) = setup();
        let skipped = Cell::new(0u32);
        let refused = Cell::new(0u32);
        // The variables each document declares (and one it does not).
        let names: [&[&str]; 6] = [
            &["id", "z"],
            &["f", "n", "a"],
            &["s", "c"],
            &["n", "st"],
            &["from", "x"],
            &["s", "t"],
        ];
        proptest!(ProptestConfig::with_cases(1000), |(
            doc in 0..DOCUMENTS.len(),
            values in prop::collection::vec(prop::option::of(value()), 3),
            operation in prop::sample::select(vec![None, Some("One"), Some("Two")]),
        )| {
            let operation = if doc == DOCUMENTS.len() - 1 { operation.or(Some("Two")) } else { None };
            let variables: Vec<(&str, Value)> = names[doc]
                .iter()
                .zip(values)
                .filter_map(|(name, value)| Some((*name, value?)))
                .collect();
            let (full, fast, skip) = runtime.block_on(both(&schema, &cache, DOCUMENTS[doc], operation, &variables));
            prop_assert_eq!(&full, &fast, "variables {:?}", variables);
            if skip {
                skipped.set(skipped.get() + 1);
            }
            if full.to_string().contains("GRAPHQL_VALIDATION_FAILED") {
                refused.set(refused.get() + 1);
            }
        });
        let (skipped, refused) = (skipped.get(), refused.get());
        assert!(
            skipped > 40,
            "the validation was skipped {skipped} times in 400"
        );
        assert!(refused > 40, "the full validation refused {refused} of 400");
    }

    #[test]
    fn the_check_says_yes_only_for_what_it_knows_fits() {
        let (runtime, schema, cache) = setup();
        // A document, its variables, and whether the validation is skipped for them.
        type Case<'a> = (&'a str, &'a [(&'a str, Value)], bool);
        let cases: &[Case] = &[
            (DOCUMENTS[0], &[("id", Value::String("m1".into()))], true),
            (DOCUMENTS[0], &[("id", Value::from(7))], true),
            (DOCUMENTS[0], &[("id", Value::Boolean(true))], false),
            (DOCUMENTS[0], &[("id", Value::Null)], false),
            (DOCUMENTS[1], &[("n", Value::from(2.5))], false),
            (
                DOCUMENTS[1],
                &[(
                    "f",
                    Value::Object(
                        [(Name::new("sport"), Value::String("SOCCER".into()))]
                            .into_iter()
                            .collect(),
                    ),
                )],
                true,
            ),
            (
                DOCUMENTS[1],
                &[(
                    "f",
                    Value::Object([(Name::new("bogus"), Value::Null)].into_iter().collect()),
                )],
                false,
            ),
            (
                DOCUMENTS[2],
                &[("s", Value::String("CURLING".into()))],
                false,
            ),
            (DOCUMENTS[3], &[("st", Value::String("LIVE".into()))], true),
            (
                DOCUMENTS[3],
                &[("st", Value::List(vec![Value::Null]))],
                false,
            ),
            (DOCUMENTS[4], &[("from", Value::from(12))], true),
        ];
        for (document, variables, skips) in cases {
            let (full, fast, skipped) =
                runtime.block_on(both(&schema, &cache, document, None, variables));
            assert_eq!(full, fast, "{document} {variables:?}");
            assert_eq!(skipped, *skips, "{document} {variables:?}: {full}");
        }
    }
}
