//! Bounds on what one document may ask for, checked right after parsing and before
//! validation, so an expensive document is refused before the expensive step:
//!
//! - the depth and the complexity (fields selected, fragments expanded) of the application's
//!   fields, `MAX_QUERY_DEPTH` and `MAX_QUERY_COMPLEXITY`;
//! - introspection (`__schema`, `__type`) has bounds of its own, [`MAX_INTROSPECTION_DEPTH`]
//!   and [`MAX_INTROSPECTION_COMPLEXITY`], sized for the standard introspection query of
//!   GraphiQL, codegen and schema tools, so those work whatever the application's limits;
//! - every document, whatever its operations, expands (fragments spread into fragments) to at
//!   most [`MAX_EXPANDED_SELECTIONS`] selections: a small document whose fragments each spread
//!   the previous one twice would otherwise cost exponential time to validate.
//!
//! A document over a bound is refused with `GRAPHQL_VALIDATION_FAILED`, a message that names
//! the bound, and `extensions.limit` (the setting's name) and `extensions.maximum`.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{ServerError, ServerResult, Variables};

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
    fn into_server_error(self) -> ServerError {
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
    pub fn check(&self, document: &ExecutableDocument) -> Result<(), Exceeded> {
        let mut walker = Walker {
            document,
            visited: 0,
            spreading: Vec::new(),
        };
        for (_, operation) in document.operations.iter() {
            let mut cost = Cost::default();
            walker.walk(&operation.node.selection_set.node, 0, None, &mut cost)?;
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
                "the query selects too many fields",
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

struct Walker<'a> {
    document: &'a ExecutableDocument,
    /// Selections visited so far, fragments expanded, across the whole document.
    visited: usize,
    /// Fragments being expanded (a cycle is left to validation to report).
    spreading: Vec<&'a str>,
}

impl<'a> Walker<'a> {
    /// `introspection` is the depth inside `__schema`/`__type`, when there.
    fn walk(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
        introspection: Option<usize>,
        cost: &mut Cost,
    ) -> Result<(), Exceeded> {
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
                            cost.complexity += 1;
                            cost.depth = cost.depth.max(depth + 1);
                            self.walk(children, depth + 1, None, cost)?;
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
                    result?;
                }
                Selection::InlineFragment(inline) => {
                    self.walk(&inline.node.selection_set.node, depth, introspection, cost)?;
                }
            }
        }
        Ok(())
    }
}

/// The extension that applies [`DocumentLimits`] to every parsed document.
pub struct LimitsExtension(pub DocumentLimits);

impl ExtensionFactory for LimitsExtension {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(LimitsExtension(self.0))
    }
}

#[async_graphql::async_trait::async_trait]
impl Extension for LimitsExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await?;
        self.0
            .check(&document)
            .map_err(Exceeded::into_server_error)?;
        Ok(document)
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
        LIMITS.check(&async_graphql::parser::parse_query(query).unwrap())
    }

    fn cost(query: &str) -> Cost {
        let document = async_graphql::parser::parse_query(query).unwrap();
        let mut walker = Walker {
            document: &document,
            visited: 0,
            spreading: Vec::new(),
        };
        let mut cost = Cost::default();
        for (_, op) in document.operations.iter() {
            walker
                .walk(&op.node.selection_set.node, 0, None, &mut cost)
                .unwrap();
        }
        cost
    }

    #[test]
    fn depth_and_complexity_count_the_application_fields_through_fragments() {
        let c = cost(
            "{ matches { edges { node { id ...M } } } } fragment M on Match { version score { home } }",
        );
        assert_eq!(c.depth, 5);
        assert_eq!(c.complexity, 7);
        assert_eq!(c.introspection_complexity, 0);
    }

    #[test]
    fn introspection_is_measured_apart_from_the_application() {
        let c = cost(
            "{ __schema { types { fields { type { ofType { name } } } } } liveMatches { id } }",
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
        let error = check("{ matches { edges { node { score { home } } } } }").unwrap_err();
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
            String::from("query { ...F24 } fragment F0 on Query { liveMatches { id } }");
        for i in 1..=24 {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{p} ...F{p} }}",
                p = i - 1
            ));
        }
        let error = check(&query).unwrap_err();
        assert_eq!(error.limit, "MAX_EXPANDED_SELECTIONS");
    }

    #[test]
    fn introspection_turned_off_is_refused_but_typename_is_not() {
        let off = DocumentLimits {
            introspection: false,
            ..LIMITS
        };
        let document = |q| async_graphql::parser::parse_query(q).unwrap();
        let error = off
            .check(&document("{ __schema { queryType { name } } }"))
            .unwrap_err();
        assert_eq!(error.limit, "INTROSPECTION");
        assert!(off
            .check(&document("{ __type(name: \"Match\") { name } }"))
            .is_err());
        assert_eq!(
            off.check(&document("{ __typename liveMatches { id } }")),
            Ok(())
        );
    }

    #[test]
    fn a_fragment_cycle_ends_the_walk_and_is_left_to_validation() {
        assert_eq!(
            check("{ ...A } fragment A on Query { ...B } fragment B on Query { ...A liveMatches { id } }"),
            Ok(())
        );
    }
}
