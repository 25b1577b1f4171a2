//! Builds the schema with its dependencies, limits and error-code extension, and exports its
//! SDL (`schema.graphql` is this output; a test fails when they differ).

use std::sync::Arc;

use async_graphql::dataloader::DataLoader;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    Response, SDLExportOptions, Schema, ServerError, ServerResult, ValidationResult, Variables,
};
use futures::stream::BoxStream;
use futures::StreamExt;
use scoreline_core::store::Store;

use crate::broker::Broker;
use crate::graphql::documents::{Validated, Validating};
use crate::graphql::error::{
    cap_errors, code_of, ensure_code, parse_error_without_input, BAD_REQUEST, BAD_USER_INPUT,
    GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED,
};
use crate::graphql::limits::DocumentLimits;
use crate::graphql::loader::CatalogLoader;
use crate::graphql::mutation::MutationRoot;
use crate::graphql::query::QueryRoot;
use crate::graphql::response_cache::ResponseCache;
use crate::graphql::subscription::SubscriptionRoot;
use crate::metrics::Metrics;

pub type ScorelineSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers reach through `ctx.data::<Services>()`.
#[derive(Clone)]
pub struct Services {
    pub store: Arc<dyn Store>,
    pub broker: Arc<dyn Broker>,
    /// For the bounds resolvers keep (listing budgets, subscriptions' memory of matches).
    pub metrics: Arc<Metrics>,
    /// Query responses kept until a change ends them; mutations end their match's entries.
    pub responses: Arc<ResponseCache>,
}

#[derive(Clone, Copy, Debug)]
pub struct SchemaLimits {
    /// Bounds on the application's fields; introspection has its own (`limits`).
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Whether `__schema` and `__type` answer (`INTROSPECTION`).
    pub introspection: bool,
    /// Longest a match-day mutation retries against concurrent writers (`MAX_WRITE_RETRY_SECS`).
    pub max_write_retry: std::time::Duration,
}

/// How long match-day mutations retry against concurrent writers, in the schema's data.
#[derive(Clone, Copy, Debug)]
pub struct WriteRetry(pub std::time::Duration);

impl Default for SchemaLimits {
    fn default() -> Self {
        Self {
            max_depth: 12,
            max_complexity: 5000,
            introspection: true,
            max_write_retry: std::time::Duration::from_secs(
                scoreline_core::service::DEFAULT_RETRY_SECS as u64,
            ),
        }
    }
}

pub fn build_schema(services: Services, limits: SchemaLimits) -> ScorelineSchema {
    let loader = DataLoader::new(CatalogLoader::new(services.store.clone()), tokio::spawn);
    let builder = Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(services)
        .data(loader)
        .data(WriteRetry(limits.max_write_retry))
        .extension(ErrorCodes {
            limits: Some(DocumentLimits {
                max_depth: limits.max_depth,
                max_complexity: limits.max_complexity,
                introspection: limits.introspection,
            }),
        });
    if limits.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// The public schema in SDL, with `@specifiedBy` on the scalars that have a specification.
pub fn sdl() -> String {
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .finish()
        .sdl_with_options(SDLExportOptions::new().include_specified_by())
}

/// Gives every error an `extensions.code`, by the stage that raised it; caps the errors of one
/// response (`cap_errors`) and keeps parse errors from quoting the document back. Every
/// error of a request, subscription item or WebSocket operation passes through here. Also
/// applies the [`DocumentLimits`] to every parsed document, before validation, and skips the
/// validation of a document that passed it before when the request's variables fit
/// ([`Validated`], `documents.rs`). One extension does all three: async-graphql runs every
/// field of every request through each extension's `resolve` hook, so each extension costs per
/// field even when it has nothing to do there.
struct ErrorCodes {
    limits: Option<DocumentLimits>,
}

impl ExtensionFactory for ErrorCodes {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorCodes {
            limits: self.limits,
        })
    }
}

fn code_all(mut response: Response, code: &'static str) -> Response {
    response.errors = cap_errors(
        response
            .errors
            .into_iter()
            .map(|e| ensure_code(e, code))
            .collect(),
    );
    response
}

#[async_graphql::async_trait::async_trait]
impl Extension for ErrorCodes {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        // Anything still without a code here is about the request itself (e.g. an unknown
        // operationName).
        code_all(next.run(ctx).await, BAD_REQUEST)
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        next.run(ctx, stream)
            .map(|r| code_all(r, BAD_USER_INPUT))
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let document = next.run(ctx, query, variables).await.map_err(|e| {
            // Errors with a code come from the parser's own bounds and quote nothing.
            let e = if code_of(&e).is_none() {
                parse_error_without_input(e)
            } else {
                e
            };
            ensure_code(e, GRAPHQL_PARSE_FAILED)
        })?;
        if let Some(limits) = &self.limits {
            limits
                .check(&document, variables)
                .map_err(|e| ensure_code(e.into_server_error(), GRAPHQL_PARSE_FAILED))?;
        }
        Ok(document)
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        if let Some(Validated(result)) = ctx.data_opt::<Validated>() {
            return Ok(*result);
        }
        let result = next.run(ctx).await;
        if let (Ok(passed), Some(document)) = (&result, ctx.data_opt::<Validating>()) {
            document.passed(*passed);
        }
        result.map_err(|errors| {
            cap_errors(
                errors
                    .into_iter()
                    .map(|e| ensure_code(e, GRAPHQL_VALIDATION_FAILED))
                    .collect(),
            )
        })
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        code_all(next.run(ctx, operation_name).await, BAD_USER_INPUT)
    }
}
