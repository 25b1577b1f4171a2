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

/// Most errors one response carries. Validation reports every offence, so a small document
/// (4,000 unknown directives in 60 KB) could make a response of half a megabyte.
pub const MAX_ERRORS: usize = 50;

/// Caps `errors` at [`MAX_ERRORS`]: the first `MAX_ERRORS - 1` as they are, then one that says
/// how many were left out (with the code of the first of those). A capped list is left alone,
/// so every stage may apply it.
pub fn cap_errors(mut errors: Vec<ServerError>) -> Vec<ServerError> {
    if errors.len() <= MAX_ERRORS {
        return errors;
    }
    let left_out = errors.split_off(MAX_ERRORS - 1);
    let mut summary = ServerError::new(
        format!(
            "{} more errors were left out: a response reports at most {MAX_ERRORS}",
            left_out.len()
        ),
        None,
    );
    let code = code_of(&left_out[0]).map(str::to_string);
    summary.extensions = code.map(|code| {
        let mut extensions = async_graphql::ErrorExtensionValues::default();
        extensions.set("code", code);
        extensions
    });
    errors.push(summary);
    errors
}

/// Parser messages that name nothing from the document.
const FIXED_PARSE_MESSAGES: [&str; 4] = [
    "document contains multiple operations",
    "document does not contain an operation",
    "recursion limit exceeded.",
    "invalid number: ",
];

/// Rewrites a parse error so that it names the position without repeating the document:
/// the parser's syntax errors quote the offending line, and its duplicate-name errors the
/// name, which a client could make as long as the body limit allows. What the parser
/// expected (its grammar's rule names) is kept.
pub fn parse_error_without_input(mut error: ServerError) -> ServerError {
    let message = &error.message;
    if FIXED_PARSE_MESSAGES
        .iter()
        .any(|fixed| message.starts_with(fixed) && message.len() <= fixed.len() + 64)
    {
        return error;
    }
    let what = if message.starts_with("operation ") && message.ends_with(" is defined twice") {
        "an operation name is defined twice".to_string()
    } else if message.starts_with("fragment ") && message.ends_with(" is defined twice") {
        "a fragment name is defined twice".to_string()
    } else {
        // pest's layout: ` --> line:column`, the quoted line, then `= expected <rules>`.
        let expected = message
            .lines()
            .filter_map(|line| line.trim_start().strip_prefix("= "))
            .find(|rest| {
                (rest.starts_with("expected ") || rest.starts_with("unexpected "))
                    && rest.len() <= 200
                    && rest
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_, ".contains(&b))
            });
        match expected {
            Some(expected) => format!("syntax error: {expected}"),
            None => "syntax error".to_string(),
        }
    };
    error.message = match error.locations.first() {
        Some(pos) => format!("{what} at line {}, column {}", pos.line, pos.column),
        None => what,
    };
    error
}

#[cfg(test)]
mod tests {
    use async_graphql::Pos;

    use super::*;

    fn parse_error(query: &str) -> ServerError {
        let error = async_graphql::parser::parse_query(query).expect_err(query);
        parse_error_without_input(error.into())
    }

    #[test]
    fn a_syntax_error_names_its_position_and_what_was_expected_but_not_the_document() {
        let secret = "s3cr3t_payload_text";
        let error = parse_error(&format!("{{ match(id: \"1\") {{ {secret} ( }} }}"));
        assert!(!error.message.contains(secret), "{}", error.message);
        assert!(
            error.message.starts_with("syntax error"),
            "{}",
            error.message
        );
        assert!(
            error.message.contains("at line 1, column"),
            "{}",
            error.message
        );
        assert_eq!(error.locations.len(), 1);
    }

    #[test]
    fn a_duplicate_name_is_reported_without_the_name() {
        let long = "N".repeat(5000);
        let error = parse_error(&format!("query {long} {{ a }} query {long} {{ b }}"));
        assert!(!error.message.contains("NNN"), "{}", error.message);
        assert!(error
            .message
            .starts_with("an operation name is defined twice"));
        let error = parse_error(&format!(
            "{{ a }} fragment {long} on Query {{ a }} fragment {long} on Query {{ a }}"
        ));
        assert!(error
            .message
            .starts_with("a fragment name is defined twice"));
    }

    #[test]
    fn fixed_parser_messages_are_kept() {
        let error = parse_error("fragment F on Query { a }");
        assert_eq!(error.message, "document does not contain an operation");
    }

    #[test]
    fn errors_beyond_the_cap_are_summed_up_in_one_more_with_their_code() {
        let errors: Vec<ServerError> = (0..4000)
            .map(|i| {
                ensure_code(
                    ServerError::new(format!("error {i}"), Some(Pos::default())),
                    GRAPHQL_VALIDATION_FAILED,
                )
            })
            .collect();
        let capped = cap_errors(errors);
        assert_eq!(capped.len(), MAX_ERRORS);
        assert_eq!(capped[MAX_ERRORS - 2].message, "error 48");
        let last = &capped[MAX_ERRORS - 1];
        assert!(
            last.message.starts_with("3951 more errors"),
            "{}",
            last.message
        );
        assert_eq!(code_of(last), Some(GRAPHQL_VALIDATION_FAILED));
        // Capping again changes nothing.
        let again = cap_errors(capped.clone());
        assert_eq!(again, capped);
    }

    #[test]
    fn a_short_list_is_left_alone() {
        let errors = vec![ServerError::new("one", None); MAX_ERRORS];
        assert_eq!(cap_errors(errors.clone()), errors);
    }
}
