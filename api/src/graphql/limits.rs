//! Bounds on what one document may ask for, checked right after parsing and before
//! validation, so an expensive document is refused before the expensive step:
//!
//! - the depth and the complexity of the application's fields, `MAX_QUERY_DEPTH` and
//!   `MAX_QUERY_COMPLEXITY`: complexity estimates the fields a response can hold, each list's
//!   children multiplied by the items it can return (`first`, or a nominal size);
//! - introspection (`__schema`, `__type`) has bounds of its own, [`MAX_INTROSPECTION_DEPTH`]
//!   and [`MAX_INTROSPECTION_COMPLEXITY`], sized for the standard introspection query of
//!   GraphiQL, codegen and schema tools, so those work whatever the application's limits;
//! - every document, whatever its operations, expands (fragments spread into fragments) to at
//!   most [`MAX_EXPANDED_SELECTIONS`] selections: a small document whose fragments each spread
//!   the previous one twice would otherwise cost exponential time to validate.
//!
//! A document over a bound is refused with `GRAPHQL_VALIDATION_FAILED`, a message that names
//! the bound, and `extensions.limit` (the setting's name) and `extensions.maximum`.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::parser::Positioned;
use async_graphql::{Name, ServerError, Variables};
use async_graphql_value::Value as GqlValue;

use super::error::GRAPHQL_VALIDATION_FAILED;

/// Deepest introspection selection (the standard introspection query nests 14 levels).
pub const MAX_INTROSPECTION_DEPTH: usize = 20;
/// Most introspection fields in one document (the standard query expands to about 250).
pub const MAX_INTROSPECTION_COMPLEXITY: usize = 2_000;
/// Most selections a whole document may expand to.
pub const MAX_EXPANDED_SELECTIONS: usize = 20_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DocumentLimits {
    pub max_depth: usize,
    pub max_complexity: usize,
    /// `INTROSPECTION=false` refuses `__schema` and `__type` with an error that says so
    /// (rather than the `null` a disabled schema answers).
    pub introspection: bool,
}

/// What one operation asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub depth: usize,
    pub complexity: usize,
    pub introspection_depth: usize,
    pub introspection_complexity: usize,
}

/// Why a document was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: &'static str,
    pub maximum: usize,
    pub message: String,
}

impl Exceeded {
    pub fn into_server_error(self) -> ServerError {
        let mut error = ServerError::new(self.message, None);
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", GRAPHQL_VALIDATION_FAILED);
        extensions.set("limit", self.limit);
        extensions.set("maximum", self.maximum as u64);
        error.extensions = Some(extensions);
        error
    }
}

impl DocumentLimits {
    /// Checks every operation of `document` against the limits.
    pub fn check(
        &self,
        document: &ExecutableDocument,
        variables: &Variables,
    ) -> Result<(), Exceeded> {
        let mut walker = Walker {
            document,
            variables,
            visited: 0,
            spreading: Vec::new(),
        };
        for (_, operation) in document.operations.iter() {
            let mut cost = Cost::default();
            let complexity = walker.walk(&operation.node.selection_set.node, 0, None, &mut cost)?;
            cost.complexity = usize::try_from(complexity).unwrap_or(usize::MAX);
            self.judge(&cost)?;
        }
        Ok(())
    }

    fn judge(&self, cost: &Cost) -> Result<(), Exceeded> {
        if !self.introspection && cost.introspection_complexity > 0 {
            return Err(Exceeded {
                limit: "INTROSPECTION",
                maximum: 0,
                message: "introspection is turned off on this server (INTROSPECTION=false)".into(),
            });
        }
        let checks = [
            (
                cost.depth,
                self.max_depth,
                "MAX_QUERY_DEPTH",
                "the query is nested too deep",
            ),
            (
                cost.complexity,
                self.max_complexity,
                "MAX_QUERY_COMPLEXITY",
                "the query can return too many fields (list sizes multiply)",
            ),
            (
                cost.introspection_depth,
                MAX_INTROSPECTION_DEPTH,
                "MAX_INTROSPECTION_DEPTH",
                "the introspection query is nested too deep",
            ),
            (
                cost.introspection_complexity,
                MAX_INTROSPECTION_COMPLEXITY,
                "MAX_INTROSPECTION_COMPLEXITY",
                "the introspection query selects too many fields",
            ),
        ];
        for (actual, maximum, limit, what) in checks {
            if actual > maximum {
                return Err(Exceeded {
                    limit,
                    maximum,
                    message: format!("{what}: {actual} is over the limit of {maximum} ({limit})"),
                });
            }
        }
        Ok(())
    }
}

/// How many items a list field can return, for the complexity estimate: the page size its
/// `first` argument asks for (or its default), or a nominal size for lists without one.
fn list_size(
    name: &str,
    arguments: &[(Positioned<Name>, Positioned<GqlValue>)],
    variables: &Variables,
) -> u64 {
    let first = || {
        arguments
            .iter()
            .find(|(arg, _)| arg.node.as_str() == "first")
            .and_then(|(_, value)| match &value.node {
                GqlValue::Number(n) => n.as_i64(),
                GqlValue::Variable(var) => match variables.get(var) {
                    Some(async_graphql::Value::Number(n)) => n.as_i64(),
                    _ => None,
                },
                _ => None,
            })
    };
    // Out-of-range values are refused by the resolver; for the estimate they are clamped.
    match name {
        "matches" => first().unwrap_or(20).clamp(1, 100) as u64,
        "events" => first().unwrap_or(50).clamp(1, 200) as u64,
        "liveMatches" | "competitions" => 50,
        "teams" => 100,
        _ => 1,
    }
}

struct Walker<'a> {
    document: &'a ExecutableDocument,
    variables: &'a Variables,
    /// Selections visited so far, fragments expanded, across the whole document.
    visited: usize,
    /// Fragments being expanded (a cycle is left to validation to report).
    spreading: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    /// Walks a selection set; returns the complexity of its application fields: each field
    /// costs 1 plus its children's cost times the items the field can return (`first`), so
    /// `matches(first: 100) { edges { node { events(first: 200) { seq } } } }` is judged by the
    /// 20,000 events it can return. `introspection` is the depth inside `__schema`/`__type`.
    fn walk(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
        introspection: Option<usize>,
        cost: &mut Cost,
    ) -> Result<u64, Exceeded> {
        let mut complexity = 0u64;
        for item in &set.items {
            self.visited += 1;
            if self.visited > MAX_EXPANDED_SELECTIONS {
                return Err(Exceeded {
                    limit: "MAX_EXPANDED_SELECTIONS",
                    maximum: MAX_EXPANDED_SELECTIONS,
                    message: format!(
                        "the document expands to more than {MAX_EXPANDED_SELECTIONS} selections \
                         (MAX_EXPANDED_SELECTIONS)"
                    ),
                });
            }
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    if name == "__typename" {
                        continue;
                    }
                    let children = &field.node.selection_set.node;
                    match introspection {
                        None if name != "__schema" && name != "__type" => {
                            cost.depth = cost.depth.max(depth + 1);
                            let inner = self.walk(children, depth + 1, None, cost)?;
                            let items = list_size(name, &field.node.arguments, self.variables);
                            complexity = complexity
                                .saturating_add(1)
                                .saturating_add(inner.saturating_mul(items));
                        }
                        inside => {
                            let level = inside.unwrap_or(0) + 1;
                            cost.introspection_complexity += 1;
                            cost.introspection_depth = cost.introspection_depth.max(level);
                            self.walk(children, depth, Some(level), cost)?;
                        }
                    }
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    if self.spreading.contains(&name) {
                        continue;
                    }
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    self.spreading.push(name);
                    let result = self.walk(
                        &fragment.node.selection_set.node,
                        depth,
                        introspection,
                        cost,
                    );
                    self.spreading.pop();
                    complexity = complexity.saturating_add(result?);
                }
                Selection::InlineFragment(inline) => {
                    let inner =
                        self.walk(&inline.node.selection_set.node, depth, introspection, cost)?;
                    complexity = complexity.saturating_add(inner);
                }
            }
        }
        Ok(complexity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: DocumentLimits = DocumentLimits {
        max_depth: 4,
        max_complexity: 10,
        introspection: true,
    };

    fn check(query: &str) -> Result<(), Exceeded> {
        LIMITS.check(
            &async_graphql::parser::parse_query(query).unwrap(),
            &Variables::default(),
        )
    }

    fn cost_with(query: &str, variables: serde_json::Value) -> Cost {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let variables = Variables::from_json(variables);
        let mut walker = Walker {
            document: &document,
            variables: &variables,
            visited: 0,
            spreading: Vec::new(),
        };
        let mut cost = Cost::default();
        for (_, op) in document.operations.iter() {
            cost.complexity += walker
                .walk(&op.node.selection_set.node, 0, None, &mut cost)
                .unwrap() as usize;
        }
        cost
    }

    fn cost(query: &str) -> Cost {
        cost_with(query, serde_json::json!({}))
    }

    #[test]
    fn depth_and_complexity_count_the_application_fields_through_fragments() {
        let c =
            cost("{ match(id: \"m\") { id ...M } } fragment M on Match { version score { home } }");
        assert_eq!(c.depth, 3);
        assert_eq!(c.complexity, 5);
        assert_eq!(c.introspection_complexity, 0);
    }

    #[test]
    fn list_sizes_multiply_what_their_items_select() {
        let nested = "{ matches(first: 100) { edges { node { events(first: 200) { seq } } } } }";
        // events: 1 + 200 x 1; node: 1 + 201; edges: 1 + 202; matches: 1 + 100 x 203.
        assert_eq!(cost(nested).complexity, 20_301);
        // A variable counts as its value; an absent `first` as the field's default.
        let with_variable = cost_with(
            "query($n: Int) { matches(first: $n) { edges { node { id } } } }",
            serde_json::json!({"n": 5}),
        );
        assert_eq!(with_variable.complexity, 1 + 5 * 3);
        assert_eq!(
            cost("{ matches { edges { node { id } } } }").complexity,
            1 + 20 * 3
        );
    }

    #[test]
    fn introspection_is_measured_apart_from_the_application() {
        let c = cost(
            "{ __schema { types { fields { type { ofType { name } } } } } match(id: \"m\") { id } }",
        );
        assert_eq!((c.depth, c.complexity), (2, 2));
        assert_eq!(c.introspection_depth, 6);
        assert_eq!(c.introspection_complexity, 6);
        // Deep introspection passes limits far below its depth.
        assert_eq!(
            check("{ __schema { types { fields { type { ofType { ofType { name } } } } } } }"),
            Ok(())
        );
    }

    #[test]
    fn a_deep_query_is_refused_naming_the_limit() {
        let error = check("{ a { b { c { d { e } } } } }").unwrap_err();
        assert_eq!(error.limit, "MAX_QUERY_DEPTH");
        assert!(
            error.message.contains("over the limit of 4"),
            "{}",
            error.message
        );
    }

    #[test]
    fn a_wide_query_is_refused_naming_the_limit() {
        let aliases: String = (0..11)
            .map(|i| format!("a{i}: liveMatches {{ id }} "))
            .collect();
        let error = check(&format!("{{ {aliases} }}")).unwrap_err();
        assert_eq!(error.limit, "MAX_QUERY_COMPLEXITY");
    }

    #[test]
    fn fragments_that_double_at_every_step_are_refused_without_expanding_them() {
        let mut query =
            String::from("query { ...F24 } fragment F0 on Query { match(id: \"m\") { id } }");
        for i in 1..=24 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
                p = i - 1
            ));
        }
        let error = check(&query).unwrap_err();
        assert_eq!(error.limit, "MAX_EXPANDED_SELECTIONS");
    }

    impl DocumentLimits {
        fn check_plain(&self, document: &ExecutableDocument) -> Result<(), Exceeded> {
            self.check(document, &Variables::default())
        }
    }

    #[test]
    fn introspection_turned_off_is_refused_but_typename_is_not() {
        let off = DocumentLimits {
            introspection: false,
            ..LIMITS
        };
        let document = |q| async_graphql::parser::parse_query(q).unwrap();
        let error = off
            .check_plain(&document("{ __schema { queryType { name } } }"))
            .unwrap_err();
        assert_eq!(error.limit, "INTROSPECTION");
        assert!(off
            .check_plain(&document("{ __type(name: \"Match\") { name } }"))
            .is_err());
        assert_eq!(
            off.check_plain(&document("{ __typename match(id: \"m\") { id } }")),
            Ok(())
        );
    }

    #[test]
    fn a_fragment_cycle_ends_the_walk_and_is_left_to_validation() {
        assert_eq!(
            check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A match(id: \"m\") { id } }"),
            Ok(())
        );
    }
}
