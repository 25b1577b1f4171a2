//! A GET request's query string, and HTTP caching of its answer.

use async_graphql::Variables;
use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde::Deserialize;

use super::{Answer, Media, Params};
use crate::auth::Principal;

/// The fields of a GraphQL request in a query string.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct GetParams {
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
    pub(super) fn parse(raw: &str) -> Result<Params, String> {
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

/// A GET answer with HTTP caching: a query's result carries its `ETag` and `Cache-Control`
/// (`public, max-age` for anonymous callers, so browsers and a CDN may reuse it; `private,
/// no-cache` for signed-in ones), and `If-None-Match` with that tag gets 304 and no body.
/// Anything else (errors, refusals) is `no-store`.
pub(super) fn http_cached(
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

#[cfg(test)]
mod tests {
    use super::*;

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
