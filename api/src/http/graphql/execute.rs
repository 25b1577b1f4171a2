//! One GraphQL request over HTTP: persisted documents, the GET rules, the response cache, then
//! the schema; and its answer in the media type the client accepts.

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use std::sync::Arc;

use crate::admission::Refusal;
use crate::auth::Principal;
use crate::graphql::documents::{Document, DocumentCache};
use crate::graphql::error::{code_of, BAD_REQUEST, REQUEST_ERROR_CODES, SERVICE_UNAVAILABLE};
use crate::graphql::guard::HttpGet;
use crate::graphql::response_cache::{etag, Cached, Reads, ResponseCache};
use crate::http::access::AccessNote;
use crate::startup::AppState;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
pub(super) const APPLICATION_JSON: &str = "application/json";

/// The media type of a response, chosen from the request's `Accept`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Media {
    /// `application/json`: the legacy answer, 200 for every GraphQL result.
    Json,
    /// `application/graphql-response+json`: status codes tell request errors apart.
    GraphqlResponse,
}

impl Media {
    /// The preferred of the media types we produce among those `Accept` lists, by quality;
    /// `application/graphql-response+json` wins a tie. No `Accept` (or nothing we produce)
    /// gets `application/json`, as clients written before the spec expect.
    pub fn negotiate(headers: &HeaderMap) -> Media {
        let mut best: Option<(f32, Media)> = None;
        for value in headers.get_all(header::ACCEPT) {
            let Ok(value) = value.to_str() else { continue };
            for range in value.split(',') {
                let mut parts = range.split(';');
                let kind = parts.next().unwrap_or("").trim();
                let quality = parts
                    .filter_map(|p| p.trim().strip_prefix("q="))
                    .find_map(|q| q.trim().parse::<f32>().ok())
                    .unwrap_or(1.0);
                if quality <= 0.0 {
                    continue;
                }
                let media = if kind.eq_ignore_ascii_case("application/graphql-response+json") {
                    Media::GraphqlResponse
                } else if kind.eq_ignore_ascii_case("application/json")
                    || kind.eq_ignore_ascii_case("application/*")
                    || kind == "*/*"
                {
                    Media::Json
                } else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((q, m)) => {
                        quality > q
                            || (quality == q && media == Media::GraphqlResponse && m != media)
                    }
                };
                if better {
                    best = Some((quality, media));
                }
            }
        }
        best.map_or(Media::Json, |(_, media)| media)
    }

    fn content_type(self) -> &'static str {
        match self {
            Media::Json => APPLICATION_JSON,
            Media::GraphqlResponse => GRAPHQL_RESPONSE_JSON,
        }
    }
}

/// A finished answer: status, body, and what the access log should know.
pub(in crate::http) struct Answer {
    pub(in crate::http) status: StatusCode,
    pub(in crate::http) body: Bytes,
    pub(super) operation: Option<String>,
    /// The `ETag` of a query's successful result: what GET answers may be revalidated with.
    pub(super) etag: Option<Arc<str>>,
}

impl Answer {
    pub(super) fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            body: body.into(),
            operation: None,
            etag: None,
        }
    }

    fn cached(cached: Cached) -> Self {
        Self {
            etag: Some(cached.etag),
            ..Self::new(StatusCode::OK, cached.body)
        }
    }

    fn errors(status: StatusCode, errors: &[ServerError]) -> Self {
        let body = serde_json::to_vec(&json!({ "errors": errors })).unwrap_or_default();
        Self::new(status, body)
    }

    pub(in crate::http) fn into_response(
        self,
        media: Media,
        subject: Option<&Principal>,
        extra: Option<(header::HeaderName, HeaderValue)>,
    ) -> Response {
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, media.content_type())],
            self.body,
        )
            .into_response();
        if let Some((name, value)) = extra {
            response.headers_mut().insert(name, value);
        }
        response.extensions_mut().insert(AccessNote {
            operation: self.operation,
            subject: subject.map(|p| p.subject.clone()),
        });
        response
    }
}

/// The fields of a GraphQL request, as JSON (POST) carries them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(in crate::http) struct Params {
    #[serde(default)]
    pub(super) query: Option<String>,
    #[serde(default)]
    pub(super) operation_name: Option<String>,
    #[serde(default)]
    pub(super) variables: Option<Variables>,
    #[serde(default)]
    pub(super) extensions: Option<async_graphql::Extensions>,
}

impl Params {
    /// Whether the document is a subscription (false when it does not parse, or is absent: a
    /// persisted-query hash alone).
    pub(in crate::http) fn is_subscription(&self) -> bool {
        let Some(query) = &self.query else {
            return false;
        };
        let mut request = async_graphql::Request::new(query.clone());
        request.operation_name = self.operation_name.clone();
        crate::fanout::analyze(&request).is_some()
    }

    pub(in crate::http) fn into_request(self) -> async_graphql::Request {
        let mut request = async_graphql::Request::new(self.query.unwrap_or_default());
        request.operation_name = self.operation_name;
        request.variables = self.variables.unwrap_or_default();
        if let Some(extensions) = self.extensions {
            request.extensions = extensions;
        }
        request
    }
}

/// Whether a result is a request error: nothing ran (parse, validation, limits, persisted
/// documents), so there is no `data`.
fn is_request_error(response: &async_graphql::Response) -> bool {
    matches!(response.data, async_graphql::Value::Null)
        && !response.errors.is_empty()
        && response
            .errors
            .iter()
            .all(|e| code_of(e).is_some_and(|c| REQUEST_ERROR_CODES.contains(&c)))
}

/// Runs one GraphQL request: persisted documents, the GET rules, the response cache, then the
/// schema.
pub(in crate::http) async fn run(
    state: &AppState,
    mut request: async_graphql::Request,
    principal: Option<&Principal>,
    method: &Method,
    media: Media,
) -> Answer {
    let anonymous = principal.is_none();
    let operation_name = request.operation_name.clone();
    let with_name = |mut answer: Answer| {
        answer.operation = operation_name.clone();
        answer
    };
    if let Err(error) = state.persisted.resolve(&mut request, anonymous) {
        let status = if error.is_negotiation() {
            StatusCode::OK
        } else {
            StatusCode::BAD_REQUEST
        };
        return with_name(Answer::errors(status, &[error.to_server_error()]));
    }
    if let Some(p) = principal {
        request = request.data(p.clone());
    }
    let document = state.documents.document(&request);
    let operation = document
        .as_deref()
        .and_then(|doc| DocumentCache::operation_type(doc.parsed(), &request));
    if let (Some(p), Some(OperationType::Mutation)) = (principal, operation) {
        if let Err(refusal) = state.admission.by_subject.take(&p.subject, 1) {
            let mut answer = refusal_answer(&refusal);
            answer.operation = operation_name;
            return answer;
        }
    }
    if *method == Method::GET {
        if operation == Some(OperationType::Mutation) && media == Media::GraphqlResponse {
            let error = ServerError::new("mutations must be sent with POST", None);
            let mut answer = Answer::errors(StatusCode::METHOD_NOT_ALLOWED, &[with_code(error)]);
            answer.operation = operation_name;
            return answer;
        }
        request = request.data(HttpGet);
    }
    let cache = &state.responses;
    let query = operation == Some(OperationType::Query);
    let key = (query && cache.enabled()).then(|| ResponseCache::key(&request));
    if let Some(hit) = key.as_deref().and_then(|k| cache.get(k)) {
        return with_name(Answer::cached(hit));
    }
    // Boxed: the execution's future is large, and a request answered above would move it
    // around for nothing.
    let miss = Miss {
        document,
        key,
        query,
    };
    with_name(Box::pin(miss.execute(state, request, method, media)).await)
}

/// A request the response cache did not answer.
struct Miss {
    document: Option<Arc<Document>>,
    key: Option<String>,
    query: bool,
}

impl Miss {
    async fn execute(
        self,
        state: &AppState,
        mut request: async_graphql::Request,
        method: &Method,
        media: Media,
    ) -> Answer {
        let cache = &state.responses;
        if let Some(document) = self.document {
            request.set_parsed_query(document.parsed().clone());
            state.documents.validation(&document, &mut request);
        }
        let Some(_permit) = busy_permit(state).await else {
            let error = ServerError::new(
                "the server is busy (MAX_CONCURRENT_REQUESTS); retry shortly",
                None,
            );
            let mut error = with_code(error);
            if let Some(extensions) = error.extensions.as_mut() {
                extensions.set("code", SERVICE_UNAVAILABLE);
            }
            return Answer::errors(StatusCode::SERVICE_UNAVAILABLE, &[error]);
        };
        if !self.query {
            return encode(&state.schema.execute(request).await, media);
        }
        let ticket = cache.ticket();
        let reads = Arc::new(Reads::default());
        let response = state.schema.execute(request.data(reads.clone())).await;
        let mut answer = encode(&response, media);
        if !response.errors.is_empty() {
            return answer;
        }
        answer.etag = Some(match (self.key, Arc::try_unwrap(reads)) {
            (Some(key), Ok(reads)) => cache.put(key, answer.body.clone(), reads, ticket).etag,
            _ if *method == Method::GET => etag(&answer.body),
            _ => return answer,
        });
        answer
    }
}

/// A permit to execute (`MAX_CONCURRENT_REQUESTS`), waiting at most the request timeout.
async fn busy_permit(state: &AppState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    tokio::time::timeout(state.request_timeout, state.work.acquire())
        .await
        .ok()?
        .ok()
}

/// A refusal as one result of a request (a mutation over a subject's rate in a batch).
pub(super) fn refusal_answer(refusal: &Refusal) -> Answer {
    let status = match refusal {
        Refusal::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        Refusal::TooManyConnections { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    let error = json!({"errors": [{
        "message": refusal.message(),
        "extensions": {"code": refusal.code(), "retryAfterSeconds": refusal.retry_after_secs()},
    }]});
    Answer::new(status, serde_json::to_vec(&error).unwrap_or_default())
}

fn with_code(mut error: ServerError) -> ServerError {
    error
        .extensions
        .get_or_insert_with(Default::default)
        .set("code", BAD_REQUEST);
    error
}

/// A result in the chosen media type.
fn encode(response: &async_graphql::Response, media: Media) -> Answer {
    if media == Media::GraphqlResponse && is_request_error(response) {
        return Answer::errors(StatusCode::BAD_REQUEST, &response.errors);
    }
    Answer::new(
        StatusCode::OK,
        serde_json::to_vec(response).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn the_graphql_response_media_type_is_chosen_when_preferred_or_tied() {
        assert_eq!(Media::negotiate(&HeaderMap::new()), Media::Json);
        assert_eq!(
            Media::negotiate(&accept(
                "application/graphql-response+json, application/json;q=0.9"
            )),
            Media::GraphqlResponse
        );
        assert_eq!(
            Media::negotiate(&accept(
                "application/json, application/graphql-response+json"
            )),
            Media::GraphqlResponse
        );
        assert_eq!(
            Media::negotiate(&accept(
                "application/graphql-response+json;q=0.5, application/json"
            )),
            Media::Json
        );
        assert_eq!(Media::negotiate(&accept("*/*")), Media::Json);
        assert_eq!(Media::negotiate(&accept("text/html")), Media::Json);
        assert_eq!(
            Media::negotiate(&accept("application/graphql-response+json;q=0")),
            Media::Json
        );
    }
}
