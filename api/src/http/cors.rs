//! CORS for browser apps on other origins: `CORS_ALLOWED_ORIGINS` is `*` or a comma-separated
//! list. Credentials (cookies) are never allowed: auth is a bearer token the app sends itself.
//! Preflights (every `OPTIONS` request) are answered here for whatever headers the client asks
//! to send (Apollo's `apollographql-client-name`, tracing headers, ...), for a day.
//!
//! The headers are built once, when the server starts, and the layer shares them: axum clones
//! a route's whole service stack for every request, and every query pays for what CORS does
//! per request.

use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use futures::future::BoxFuture;
use tower::{Layer, Service};

/// Seconds a browser may keep a preflight's answer.
const MAX_AGE_SECS: u32 = 24 * 3600;

/// The CORS policy, as a layer for the public routes.
#[derive(Clone)]
pub struct CorsLayer(Arc<Policy>);

struct Policy {
    /// `None`: any origin (`*`).
    origins: Option<Vec<HeaderValue>>,
    allow_methods: HeaderValue,
    expose_headers: HeaderValue,
    max_age: HeaderValue,
    vary: HeaderValue,
}

impl CorsLayer {
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
        Ok(Self(Arc::new(Policy {
            origins,
            allow_methods: HeaderValue::from_static("GET,POST,PUT,DELETE,OPTIONS"),
            expose_headers: HeaderValue::from_static("etag,retry-after"),
            max_age: HeaderValue::from(MAX_AGE_SECS),
            vary: HeaderValue::from_static(
                "origin, access-control-request-method, access-control-request-headers",
            ),
        })))
    }
}

impl Policy {
    /// `Access-Control-Allow-Origin` for a request from `origin`, if it is allowed.
    fn allow_origin(&self, origin: Option<&HeaderValue>) -> Option<HeaderValue> {
        match &self.origins {
            None => Some(HeaderValue::from_static("*")),
            Some(list) => origin.filter(|o| list.contains(o)).cloned(),
        }
    }

    fn preflight(&self, request: &Request) -> Response {
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
    fn decorate(&self, headers: &mut HeaderMap, origin: Option<HeaderValue>) {
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

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors {
            policy: self.0.clone(),
            inner,
        }
    }
}

/// A route behind the CORS policy.
#[derive(Clone)]
pub struct Cors<S> {
    policy: Arc<Policy>,
    inner: S,
}

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if request.method() == Method::OPTIONS {
            let response = self.policy.preflight(&request);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let origin = self
            .policy
            .allow_origin(request.headers().get(header::ORIGIN));
        let policy = self.policy.clone();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let mut response = answer.await?;
            policy.decorate(response.headers_mut(), origin);
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_when_the_server_starts() {
        assert!(CorsLayer::new("*").is_ok());
        assert!(CorsLayer::new("https://a.example.com, http://b.example.com/").is_ok());
        assert!(CorsLayer::new("a.example.com").is_err());
        assert!(CorsLayer::new(" , ").is_err());
    }

    #[test]
    fn a_listed_origin_is_echoed_and_others_get_nothing() {
        let layer = CorsLayer::new("https://a.example.com/").unwrap();
        let listed = HeaderValue::from_static("https://a.example.com");
        assert_eq!(layer.0.allow_origin(Some(&listed)), Some(listed));
        let other = HeaderValue::from_static("https://b.example.com");
        assert_eq!(layer.0.allow_origin(Some(&other)), None);
        assert_eq!(layer.0.allow_origin(None), None);
        let any = CorsLayer::new("*").unwrap();
        assert_eq!(
            any.0.allow_origin(None),
            Some(HeaderValue::from_static("*"))
        );
    }
}
