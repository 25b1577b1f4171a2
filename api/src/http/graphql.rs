//! GraphQL over HTTP, as the GraphQL-over-HTTP spec and Apollo's clients expect it:
//!
//! - `POST /graphql` with `Content-Type: application/json`: one request object, or a JSON array
//!   of them (a batch, at most `MAX_BATCH_OPERATIONS`), answered with an array in order.
//! - `GET /graphql?query=…&operationName=…&variables=…&extensions=…` for queries (and APQ
//!   hashes); a WebSocket upgrade on the same path.
//! - Subscriptions as HTTP streams on both methods, chosen by `Accept` (`text/event-stream`, or
//!   `multipart/mixed;subscriptionSpec="1.0"`): see [`super::stream`].
//! - Media types: a client that accepts `application/graphql-response+json` gets it, with the
//!   spec's status codes (400 for a request refused before execution: unparsable, invalid, over
//!   a limit; 405 for a mutation over GET; no `data` entry then). Others get `application/json`
//!   as always: 200 for every GraphQL result, 4xx only for a request that is not GraphQL at all.
//! - Persisted documents (APQ and trusted documents) are resolved before anything else
//!   ([`crate::graphql::persisted`]).

use async_graphql::parser::types::OperationType;
use async_graphql::{ServerError, Variables};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State, WebSocketUpgrade};
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use std::net::IpAddr;
use std::sync::Arc;

use super::access::AccessNote;
use crate::admission::{Refusal, StreamPermit};
use crate::auth::Principal;
use crate::graphql::documents::DocumentCache;
use crate::graphql::error::{
    code_of, BAD_REQUEST, REQUEST_ERROR_CODES, SERVICE_UNAVAILABLE, UNAUTHENTICATED,
};
use crate::graphql::guard::HttpGet;
use crate::graphql::response_cache::{etag, Cached, Reads, ResponseCache};
use crate::startup::AppState;
use crate::ws::{self, Protocol, WsContext};

/// Initial read buffer of a WebSocket connection; it grows for a larger message.
const WS_READ_BUFFER: usize = 512;
/// Bytes buffered before a write goes to the socket (a flush writes them anyway).
const WS_WRITE_BUFFER: usize = 16 * 1024;

const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";
const APPLICATION_JSON: &str = "application/json";

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
pub(super) struct Answer {
    pub(super) status: StatusCode,
    pub(super) body: Bytes,
    operation: Option<String>,
    /// The `ETag` of a query's successful result: what GET answers may be revalidated with.
    etag: Option<Arc<str>>,
}

impl Answer {
    fn new(status: StatusCode, body: impl Into<Bytes>) -> Self {
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

    pub(super) fn into_response(
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

/// The TCP peer of a request, as the accept loop recorded it (unspecified when the router is
/// served some other way).
pub struct Peer(pub std::net::SocketAddr);

impl<S: Send + Sync> FromRequestParts<S> for Peer {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Peer(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(([0, 0, 0, 0], 0).into(), |c| c.0),
        ))
    }
}

/// A request refused by admission: 429 with `Retry-After` for a rate, 503 for a bound.
pub(super) fn refused(media: Media, refusal: &Refusal) -> Response {
    let retry_after = HeaderValue::from(refusal.retry_after_secs());
    refusal_answer(refusal).into_response(media, None, Some((header::RETRY_AFTER, retry_after)))
}

/// Charges an anonymous request to its address's rate; the refusal when over it.
fn admit_anonymous(
    state: &AppState,
    principal: Option<&Principal>,
    address: IpAddr,
    operations: usize,
    media: Media,
) -> Option<Response> {
    if principal.is_some() {
        return None;
    }
    let cost = u32::try_from(operations).unwrap_or(u32::MAX);
    let refusal = state.admission.by_address.take(&address, cost).err()?;
    Some(refused(media, &refusal))
}

/// An error about the HTTP request itself, in the chosen media type.
pub(super) fn refuse(
    media: Media,
    status: StatusCode,
    message: impl Into<String>,
    code: &str,
) -> Response {
    let error = json!({"errors": [{"message": message.into(), "extensions": {"code": code}}]});
    Answer::new(status, serde_json::to_vec(&error).unwrap_or_default())
        .into_response(media, None, None)
}

/// The caller, from `Authorization`. A present but invalid credential is refused (401), never
/// downgraded to anonymous; so is more than one `Authorization` header.
pub(super) async fn principal(
    state: &AppState,
    headers: &HeaderMap,
    media: Media,
) -> Result<Option<Principal>, Response> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = values.next();
    let unauthenticated = |message: String| {
        tracing::info!(reason = %message, "authentication refused");
        refuse(media, StatusCode::UNAUTHORIZED, message, UNAUTHENTICATED)
    };
    if values.next().is_some() {
        return Err(unauthenticated(
            "send one Authorization header, not several".into(),
        ));
    }
    let value = match value.map(HeaderValue::to_str).transpose() {
        Ok(v) => v,
        Err(_) => {
            return Err(unauthenticated(
                "the Authorization header is not valid text".into(),
            ))
        }
    };
    state
        .auth
        .authenticate(value)
        .await
        .map_err(|e| unauthenticated(e.to_string()))
}

/// The fields of a GraphQL request, as JSON (POST) carries them.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Params {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<Variables>,
    #[serde(default)]
    extensions: Option<async_graphql::Extensions>,
}

impl Params {
    /// Whether the document is a subscription (false when it does not parse, or is absent: a
    /// persisted-query hash alone).
    pub(super) fn is_subscription(&self) -> bool {
        let Some(query) = &self.query else {
            return false;
        };
        let mut request = async_graphql::Request::new(query.clone());
        request.operation_name = self.operation_name.clone();
        crate::fanout::analyze(&request).is_some()
    }

    pub(super) fn into_request(self) -> async_graphql::Request {
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
pub(super) async fn run(
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
        .and_then(|doc| DocumentCache::operation_type(doc, &request));
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
    if let Some(document) = document {
        request.set_parsed_query((*document).clone());
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
        return with_name(Answer::errors(StatusCode::SERVICE_UNAVAILABLE, &[error]));
    };
    if !query {
        return with_name(encode(&state.schema.execute(request).await, media));
    }
    let ticket = cache.ticket();
    let reads = Arc::new(Reads::default());
    let response = state.schema.execute(request.data(reads.clone())).await;
    let mut answer = encode(&response, media);
    if !response.errors.is_empty() {
        return with_name(answer);
    }
    answer.etag = Some(match (key, Arc::try_unwrap(reads)) {
        (Some(key), Ok(reads)) => cache.put(key, answer.body.clone(), reads, ticket).etag,
        _ if *method == Method::GET => etag(&answer.body),
        _ => return with_name(answer),
    });
    with_name(answer)
}

/// A permit to execute (`MAX_CONCURRENT_REQUESTS`), waiting at most the request timeout.
async fn busy_permit(state: &AppState) -> Option<tokio::sync::SemaphorePermit<'_>> {
    tokio::time::timeout(state.request_timeout, state.work.acquire())
        .await
        .ok()?
        .ok()
}

/// A refusal as one result of a request (a mutation over a subject's rate in a batch).
fn refusal_answer(refusal: &Refusal) -> Answer {
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

/// `POST /graphql`: one request object or a batch (a JSON array).
pub async fn graphql_post(
    State(state): State<AppState>,
    Peer(peer): Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let media = Media::negotiate(&headers);
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(APPLICATION_JSON));
    if !json {
        return refuse(
            media,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send GraphQL requests as JSON, with Content-Type: application/json",
            BAD_REQUEST,
        );
    }
    if let Some(token) = headers
        .get(super::single::TOKEN_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        let address = state.admission.address(peer, &headers);
        let token = token.trim().to_string();
        return super::single::operation(state, address, &headers, &token, &body).await;
    }
    if let Some(wire) = super::stream::negotiate(&headers) {
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        if first != Some(&b'[') {
            let params: Params = match serde_json::from_slice(&body) {
                Ok(p) => p,
                Err(e) => return not_graphql(media, &e),
            };
            if super::stream::wanted(&headers, &params) {
                let address = state.admission.address(peer, &headers);
                return super::stream::serve(state, address, &headers, &Method::POST, params, wire)
                    .await;
            }
        }
    }
    let principal = match principal(&state, &headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let address = state.admission.address(peer, &headers);
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        let batch: Vec<Params> = match serde_json::from_slice(&body) {
            Ok(b) => b,
            Err(e) => return not_graphql(media, &e),
        };
        if let Some(response) =
            admit_anonymous(&state, principal.as_ref(), address, batch.len(), media)
        {
            return response;
        }
        return batch_response(&state, batch, principal.as_ref(), media).await;
    }
    if let Some(response) = admit_anonymous(&state, principal.as_ref(), address, 1, media) {
        return response;
    }
    let params: Params = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return not_graphql(media, &e),
    };
    run(
        &state,
        params.into_request(),
        principal.as_ref(),
        &Method::POST,
        media,
    )
    .await
    .into_response(media, principal.as_ref(), None)
}

fn not_graphql(media: Media, error: &serde_json::Error) -> Response {
    refuse(
        media,
        StatusCode::BAD_REQUEST,
        format!("the body is not a GraphQL request: {error}"),
        BAD_REQUEST,
    )
}

/// A batch: each request in order, answered as a JSON array in the same order.
async fn batch_response(
    state: &AppState,
    batch: Vec<Params>,
    principal: Option<&Principal>,
    media: Media,
) -> Response {
    if batch.is_empty() || batch.len() > state.max_batch_operations {
        return refuse(
            media,
            StatusCode::BAD_REQUEST,
            format!(
                "a batch holds from 1 to {} operations (MAX_BATCH_OPERATIONS); this one has {}",
                state.max_batch_operations,
                batch.len()
            ),
            BAD_REQUEST,
        );
    }
    let count = batch.len();
    let mut body = Vec::with_capacity(256 * count);
    body.push(b'[');
    for (i, params) in batch.into_iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        let answer = run(
            state,
            params.into_request(),
            principal,
            &Method::POST,
            media,
        )
        .await;
        body.extend_from_slice(&answer.body);
    }
    body.push(b']');
    let mut answer = Answer::new(StatusCode::OK, body);
    answer.operation = Some(format!("batch of {count}"));
    answer.into_response(media, principal, None)
}

/// The fields of a GraphQL request in a query string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GetParams {
    #[serde(default)]
    query: Option<String>,
    #[serde(default)]
    operation_name: Option<String>,
    #[serde(default)]
    variables: Option<String>,
    #[serde(default)]
    extensions: Option<String>,
}

impl GetParams {
    fn parse(raw: &str) -> Result<Params, String> {
        let get: GetParams =
            serde_urlencoded::from_str(raw).map_err(|e| format!("the query string: {e}"))?;
        let variables = get
            .variables
            .filter(|v| !v.is_empty())
            .map(|v| serde_json::from_str::<Option<Variables>>(&v))
            .transpose()
            .map_err(|e| format!("variables must be a JSON object: {e}"))?
            .flatten();
        let extensions = get
            .extensions
            .filter(|v| !v.is_empty())
            .map(|v| serde_json::from_str::<Option<async_graphql::Extensions>>(&v))
            .transpose()
            .map_err(|e| format!("extensions must be a JSON object: {e}"))?
            .flatten();
        Ok(Params {
            query: get.query,
            operation_name: get.operation_name.filter(|n| !n.is_empty()),
            variables,
            extensions,
        })
    }
}

/// `GET /graphql`: a WebSocket upgrade, or a query in the query string.
pub async fn graphql_get(
    State(state): State<AppState>,
    Peer(peer): Peer,
    request: Request<axum::body::Body>,
) -> Response {
    let (parts, _body) = request.into_parts();
    let media = Media::negotiate(&parts.headers);
    let principal = match principal(&state, &parts.headers, media).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let address = state.admission.address(peer, &parts.headers);
    if parts.headers.contains_key(header::UPGRADE) {
        // Every connection attempt counts against its address's rate, signed in or not.
        if let Err(refusal) = state.admission.by_address.take(&address, 1) {
            return refused(Media::Json, &refusal);
        }
        let permit = match state.admission.streams.admit(address) {
            Ok(permit) => permit,
            Err(refusal) => return refused(Media::Json, &refusal),
        };
        return upgrade(state, parts, principal, address, permit).await;
    }
    if let Some(wire) = super::stream::negotiate(&parts.headers) {
        if let Some(token) = super::single::token(&parts.headers, &parts.uri) {
            if wire == crate::fanout::Wire::Sse {
                return super::single::connect(state, token).await;
            }
        }
        let params = match GetParams::parse(parts.uri.query().unwrap_or("")) {
            Ok(p) => p,
            Err(message) => {
                return refuse(
                    media,
                    StatusCode::BAD_REQUEST,
                    format!("not a GraphQL request: {message}"),
                    BAD_REQUEST,
                )
            }
        };
        if super::stream::wanted(&parts.headers, &params) {
            return super::stream::serve(
                state,
                address,
                &parts.headers,
                &Method::GET,
                params,
                wire,
            )
            .await;
        }
    }
    if let Some(response) = admit_anonymous(&state, principal.as_ref(), address, 1, media) {
        return response;
    }
    let params = match GetParams::parse(parts.uri.query().unwrap_or("")) {
        Ok(p) => p,
        Err(message) => {
            return refuse(
                media,
                StatusCode::BAD_REQUEST,
                format!("not a GraphQL request: {message}"),
                BAD_REQUEST,
            )
        }
    };
    let answer = run(
        &state,
        params.into_request(),
        principal.as_ref(),
        &Method::GET,
        media,
    )
    .await;
    http_cached(
        answer,
        media,
        principal.as_ref(),
        &parts.headers,
        state.http_cache_max_age,
    )
}

/// A GET answer with HTTP caching: a query's result carries its `ETag` and `Cache-Control`
/// (`public, max-age` for anonymous callers, so browsers and a CDN may reuse it; `private,
/// no-cache` for signed-in ones), and `If-None-Match` with that tag gets 304 and no body.
/// Anything else (errors, refusals) is `no-store`.
fn http_cached(
    mut answer: Answer,
    media: Media,
    principal: Option<&Principal>,
    request: &HeaderMap,
    max_age: u32,
) -> Response {
    let allow = (answer.status == StatusCode::METHOD_NOT_ALLOWED)
        .then(|| (header::ALLOW, HeaderValue::from_static("POST")));
    let etag = answer
        .etag
        .take()
        .and_then(|tag| HeaderValue::from_str(&tag).ok());
    let fresh = etag
        .as_ref()
        .is_some_and(|tag| if_none_match(request, tag.as_bytes()));
    if fresh {
        answer.status = StatusCode::NOT_MODIFIED;
        answer.body = Bytes::new();
    }
    let mut response = answer.into_response(media, principal, allow);
    let headers = response.headers_mut();
    if fresh {
        headers.remove(header::CONTENT_TYPE);
    }
    let Some(etag) = etag else {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        return response;
    };
    let cache_control = match (principal, max_age) {
        (Some(_), _) => HeaderValue::from_static("private, no-cache"),
        (None, 0) => HeaderValue::from_static("public, no-cache"),
        (None, secs) => HeaderValue::from_str(&format!("public, max-age={secs}"))
            .expect("a number is a valid header value"),
    };
    headers.insert(header::ETAG, etag);
    headers.insert(header::CACHE_CONTROL, cache_control);
    // The body is the same for both media types, the Content-Type is not.
    headers.append(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// Whether `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for this header)
/// or is `*`.
fn if_none_match(request: &HeaderMap, etag: &[u8]) -> bool {
    let strip = |t: &[u8]| t.strip_prefix(b"W/").unwrap_or(t).to_vec();
    let wanted = strip(etag);
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|&b| b == b','))
        .map(|t| t.trim_ascii())
        .any(|t| t == b"*" || strip(t) == wanted)
}

async fn upgrade(
    state: AppState,
    mut parts: axum::http::request::Parts,
    principal: Option<Principal>,
    address: IpAddr,
    permit: StreamPermit,
) -> Response {
    // Clients may offer their subprotocols in one header or several.
    let offered: Vec<&str> = parts
        .headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let Some(protocol) = Protocol::from_header(&offered.join(",")) else {
        return refuse(
            Media::Json,
            StatusCode::BAD_REQUEST,
            "WebSocket clients must ask for the graphql-transport-ws or graphql-ws subprotocol",
            BAD_REQUEST,
        );
    };
    let upgrade = match WebSocketUpgrade::from_request_parts(&mut parts, &state).await {
        Ok(u) => u,
        Err(rejection) => return rejection.into_response(),
    };
    let ctx = WsContext {
        schema: state.schema.clone(),
        auth: state.auth.clone(),
        settings: state.ws.clone(),
        fanout: state.fanout.clone(),
        metrics: state.metrics.clone(),
        persisted: state.persisted.clone(),
        admission: state.admission.clone(),
        address,
        shutdown: state.shutdown.clone(),
    };
    // Client messages are small and server frames are written as they come, so the buffers
    // stay small: tungstenite's 128 KiB defaults would cost 128 KiB of memory per connection
    // (its read buffer is zero-filled to capacity on every read).
    upgrade
        .protocols([protocol.name()])
        .read_buffer_size(WS_READ_BUFFER)
        .write_buffer_size(WS_WRITE_BUFFER)
        .max_message_size(state.max_body_bytes)
        .max_frame_size(state.max_body_bytes)
        .on_upgrade(move |socket| async move {
            ws::serve(socket, protocol, principal, ctx).await;
            drop(permit);
        })
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

    #[test]
    fn get_parameters_follow_the_spec_names_and_refuse_malformed_json() {
        let params = GetParams::parse(
            "query=query%20Q(%24id%3A%20ID!)%7Bmatch(id%3A%24id)%7Bid%7D%7D&operationName=Q&variables=%7B%22id%22%3A%22m1%22%7D",
        )
        .unwrap();
        let request = params.into_request();
        assert_eq!(request.operation_name.as_deref(), Some("Q"));
        assert_eq!(
            request.variables.get("id"),
            Some(&async_graphql::Value::String("m1".into()))
        );
        assert!(GetParams::parse("query=%7Ba%7D&variables=%5B1%5D").is_err());
        assert!(GetParams::parse("query=%7Ba%7D&extensions=nope").is_err());
    }
}
