//! One place maps every error to what a client sees: a message and `extensions.code`.
//! Internals never reach clients; unexpected errors are logged once here.

use async_graphql::{ErrorExtensions, ServerError};
use scoreline_core::service::ServiceError;
use scoreline_core::store::StoreError;
use scoreline_core::ValidationError;

pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
pub const NOT_FOUND: &str = "NOT_FOUND";
pub const VERSION_CONFLICT: &str = "VERSION_CONFLICT";
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
pub const FORBIDDEN: &str = "FORBIDDEN";
pub const BAD_REQUEST: &str = "BAD_REQUEST";
pub const SERVICE_UNAVAILABLE: &str = "SERVICE_UNAVAILABLE";
pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
pub const TOO_MANY_SUBSCRIPTIONS: &str = "TOO_MANY_SUBSCRIPTIONS";
pub const TOO_MANY_CONNECTIONS: &str = "TOO_MANY_CONNECTIONS";
pub const RATE_LIMITED: &str = "RATE_LIMITED";
pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
pub const PERSISTED_QUERY_NOT_FOUND: &str = "PERSISTED_QUERY_NOT_FOUND";
pub const PERSISTED_QUERY_NOT_SUPPORTED: &str = "PERSISTED_QUERY_NOT_SUPPORTED";
pub const PERSISTED_QUERY_NOT_IN_LIST: &str = "PERSISTED_QUERY_NOT_IN_LIST";

/// Codes of errors that refuse a request before anything runs: with the GraphQL-over-HTTP
/// media type they are answered with a 4xx status and no `data`.
pub const REQUEST_ERROR_CODES: [&str; 6] = [
    GRAPHQL_PARSE_FAILED,
    GRAPHQL_VALIDATION_FAILED,
    BAD_REQUEST,
    PERSISTED_QUERY_NOT_FOUND,
    PERSISTED_QUERY_NOT_SUPPORTED,
    PERSISTED_QUERY_NOT_IN_LIST,
];

/// The `extensions.code` of an error, if it has one.
pub fn code_of(error: &ServerError) -> Option<&str> {
    match error.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

pub fn coded(message: impl Into<String>, code: &'static str) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, e| e.set("code", code))
}

pub fn invalid(e: ValidationError) -> async_graphql::Error {
    let field = e.field().to_string();
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| {
        ext.set("code", BAD_USER_INPUT);
        ext.set("field", field.clone());
    })
}

pub fn not_found(what: &str, id: &str) -> async_graphql::Error {
    coded(format!("no {what} with id {id}"), NOT_FOUND)
}

pub fn store(e: StoreError) -> async_graphql::Error {
    store_ref(&e)
}

/// [`store`] for an error that is shared (a DataLoader's).
pub fn store_ref(e: &StoreError) -> async_graphql::Error {
    match e {
        StoreError::InvalidCursor => coded(
            "the cursor is not valid: use a cursor from a previous page",
            BAD_USER_INPUT,
        ),
        StoreError::AlreadyExists(what) => coded(format!("{what} already exists"), BAD_USER_INPUT),
        StoreError::Unavailable(error) => {
            tracing::warn!(%error, "store unavailable");
            coded(
                "the service is temporarily unavailable; try again",
                SERVICE_UNAVAILABLE,
            )
        }
        StoreError::Internal(error) => {
            tracing::error!(%error, "store failure");
            coded("internal error", INTERNAL_SERVER_ERROR)
        }
    }
}

pub fn service(e: ServiceError) -> async_graphql::Error {
    match e {
        ServiceError::Invalid(v) => invalid(v),
        ServiceError::NotFound { what, id } => not_found(what, &id),
        ServiceError::VersionConflict { current } => async_graphql::Error::new(format!(
            "the match changed: it is at version {current}; reload and retry"
        ))
        .extend_with(|_, e| {
            e.set("code", VERSION_CONFLICT);
            e.set("currentVersion", current);
        }),
        ServiceError::Contention => coded(
            "too many concurrent changes to this match; try again",
            SERVICE_UNAVAILABLE,
        ),
        ServiceError::Store(e) => store(e),
    }
}

/// Gives an error without a code the code its stage implies. Our resolvers always set a code;
/// the ones without come from async-graphql itself: parsing, validation, or coercing an input
/// value (a malformed `DateTime`, a missing argument), which is the client's input.
pub fn ensure_code(mut error: ServerError, default: &'static str) -> ServerError {
    let has_code = error
        .extensions
        .as_ref()
        .is_some_and(|ext| ext.get("code").is_some());
    if !has_code {
        error
            .extensions
            .get_or_insert_with(Default::default)
            .set("code", default);
    }
    error
}
