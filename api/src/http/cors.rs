//! CORS for browser apps on other origins: `CORS_ALLOWED_ORIGINS` is `*` or a comma-separated
//! list. Credentials (cookies) are never allowed: auth is a bearer token the app sends itself.
//! Preflights (every `OPTIONS` request) are answered here for whatever headers the client asks
//! to send (Apollo's `apollographql-client-name`, tracing headers, ...), for a day.
//!
//! The headers are built once, when the server starts; [`super::front`] applies the policy to
//! every request but those to the publish endpoint.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// Seconds a browser may keep a preflight's answer.
const MAX_AGE_SECS: u32 = 24 * 3600;

/// The CORS policy of the public routes.
pub struct Cors {
    /// `None`: any origin (`*`).
    origins: Option<Vec<HeaderValue>>,
    allow_methods: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
    vary: HeaderValue,
}

impl Cors {
    /// The policy `CORS_ALLOWED_ORIGINS` describes; an entry that is not an `http(s)://`
    /// origin is refused.
    pub fn new(allowed_origins: &str) -> anyhow::Result<Self> {
        let origins = allowed_origins.trim();
        let origins = if origins == "*" {
            None
        } else {
            let list = origins
                .split(',')
                .map(str::trim)
                .filter(|o| !o.is_empty())
                .map(|o| {
                    anyhow::ensure!(
                        o.starts_with("http://") || o.starts_with("https://"),
                        "CORS_ALLOWED_ORIGINS: {o:?} is not an origin such as https://app.example.com"
                    );
                    HeaderValue::from_str(o.trim_end_matches('/')).map_err(anyhow::Error::from)
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            anyhow::ensure!(
                !list.is_empty(),
                "CORS_ALLOWED_ORIGINS is empty: use * or a list of origins"
            );
            Some(list)
        };
        Ok(Self {
            origins,
            allow_methods: HeaderValue::from_static("GET,POST,PUT,DELETE,OPTIONS"),
            expose_headers: HeaderValue::from_static("etag,retry-after"),
            max_age: HeaderValue::from(MAX_AGE_SECS),
            vary: HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        })
    }

    /// `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    pub(super) fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => origin.filter(|o| list.contains(o)).cloned(),
        }
    }

    /// The answer to an `OPTIONS` request.
    pub(super) fn preflight(&self, request: &Request) -> Response {
        let mut response = StatusCode::OK.into_response();
        let headers = response.headers_mut();
        headers.insert(header::VARY, self.vary.clone());
        if let Some(origin) = self.allow_origin(request.headers().get(header::ORIGIN)) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            self.allow_methods.clone(),
        );
        if let Some(asked) = request
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        {
            headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked.clone());
        }
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, self.max_age.clone());
        response
    }

    /// The CORS headers of an answer (the handler's own `Vary` is kept).
    pub(super) fn decorate(&self, headers: &mut HeaderMap, origin: Option<HeaderValue>) {
        headers.append(header::VARY, self.vary.clone());
        if let Some(origin) = origin {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        }
        headers.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            self.expose_headers.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_when_the_server_starts() {
        assert!(Cors::new("*").is_ok());
        assert!(Cors::new("https://a.example.com, http://b.example.com/").is_ok());
        assert!(Cors::new("a.example.com").is_err());
        assert!(Cors::new(" , ").is_err());
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_nothing() {
        let layer = Cors::new("https://a.example.com/").unwrap();
        let listed = HeaderValue::from_static("https://a.example.com");
        assert_eq!(layer.allow_origin(Some(&listed)), Some(listed));
        let other = HeaderValue::from_static("https://b.example.com");
        assert_eq!(layer.allow_origin(Some(&other)), None);
        assert_eq!(layer.allow_origin(None), None);
        let any = Cors::new("*").unwrap();
        assert_eq!(any.allow_origin(None), Some(HeaderValue::from_static("*")));
    }
}
