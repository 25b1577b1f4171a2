//! What every request passes through around the router: the access log and a panic guard; for
//! the public routes also CORS, the request timeout (`REQUEST_TIMEOUT_SECS`) and the body limit
//! (`MAX_BODY_BYTES`). `/internal/publish` has a body limit of its own
//! (`MAX_PUBLISH_BODY_BYTES`), no CORS and no timeout: change batches come from the
//! stream-handler, never from a browser.
//!
//! One service around the router rather than layers on its routes: axum clones a route's layer
//! stack for every request, one boxed service per layer, and each layer boxed its future too.
//! That was a sixth of the instructions of a query answered from the response cache.
//!
//! Refusals here are GraphQL-shaped JSON, as the handlers' are: 413 (`BAD_REQUEST`) for a
//! declared body over the limit (a chunked body over it is refused with 413 by the extractor
//! that reads it, which counts against the same limit rather than axum's default of 2 MiB),
//! 408 (`SERVICE_UNAVAILABLE`) past the timeout, and 500 (`INTERNAL_SERVER_ERROR`) for a panic,
//! which is logged and contained: the connection and the server go on.

use std::any::Any;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::future::{BoxFuture, FutureExt};
use serde_json::json;
use tower::Service;

use super::access;
use super::cors::Cors;
use crate::graphql::error::{BAD_REQUEST, INTERNAL_SERVER_ERROR, SERVICE_UNAVAILABLE};

/// The path of the publish endpoint.
pub const PUBLISH_PATH: &str = "/internal/publish";

/// The router with what surrounds it; cheap to clone (one `Arc`).
#[derive(Clone)]
pub struct Front(Arc<Inner>);

/// The settings of [`Front`].
pub struct FrontOptions {
    pub cors: Cors,
    /// `MAX_BODY_BYTES`.
    pub body_limit: usize,
    /// `MAX_PUBLISH_BODY_BYTES`.
    pub publish_body_limit: usize,
    /// `REQUEST_TIMEOUT_SECS`.
    pub timeout: Duration,
    pub access_log: bool,
}

struct Inner {
    router: Router,
    options: FrontOptions,
}

impl Front {
    pub fn new(router: Router, options: FrontOptions) -> Self {
        Self(Arc::new(Inner { router, options }))
    }
}

impl Service<Request> for Front {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let inner = self.0.clone();
        Box::pin(async move { Ok(inner.serve(request).await) })
    }
}

impl Inner {
    async fn serve(&self, request: Request) -> Response {
        let options = &self.options;
        let start = Instant::now();
        let method = request.method().clone();
        let uri = request.uri().clone();
        let response = if uri.path() == PUBLISH_PATH {
            match limit(
                request,
                options.publish_body_limit,
                "MAX_PUBLISH_BODY_BYTES",
            ) {
                Ok(request) => self.guarded(request).await,
                Err(refusal) => refusal,
            }
        } else {
            self.public(request).await
        };
        if options.access_log {
            access::log(&method, uri.path(), start, &response);
        }
        response
    }

    /// A request to a public route: CORS, the body limit and the timeout.
    async fn public(&self, request: Request) -> Response {
        let options = &self.options;
        if request.method() == Method::OPTIONS {
            return options.cors.preflight(&request);
        }
        let origin = options
            .cors
            .allow_origin(request.headers().get(header::ORIGIN));
        let mut response = match limit(request, options.body_limit, "MAX_BODY_BYTES") {
            Ok(request) => tokio::time::timeout(options.timeout, self.guarded(request))
                .await
                .unwrap_or_else(|_| timed_out(options.timeout)),
            Err(refusal) => refusal,
        };
        options.cors.decorate(response.headers_mut(), origin);
        response
    }

    /// The router's answer, or a 500 if it panics.
    async fn guarded(&self, request: Request) -> Response {
        let mut router = self.router.clone();
        let answer = match std::panic::catch_unwind(AssertUnwindSafe(|| router.call(request))) {
            Ok(answer) => answer,
            Err(panic) => return panicked(&*panic),
        };
        match AssertUnwindSafe(answer).catch_unwind().await {
            Ok(Ok(response)) => response,
            Ok(Err(never)) => match never {},
            Err(panic) => panicked(&*panic),
        }
    }
}

/// The request with its body bounded by `max` bytes, or a 413 when it declares more.
///
/// A body over the limit that does not declare its length (chunked) is refused with 413 by the
/// extractor that reads it: the limit replaces axum's default of 2 MiB for that extractor.
#[allow(clippy::result_large_err)]
fn limit(mut request: Request, max: usize, setting: &str) -> Result<Request, Response> {
    if let Some(length) = request.body().size_hint().exact() {
        if length > max as u64 {
            return Err(refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the body is over {max} bytes ({setting})"),
                BAD_REQUEST,
            ));
        }
    }
    DefaultBodyLimit::max(max).apply(&mut request);
    Ok(request)
}

fn timed_out(timeout: Duration) -> Response {
    refuse(
        StatusCode::REQUEST_TIMEOUT,
        format!(
            "the request took longer than {} s (REQUEST_TIMEOUT_SECS)",
            timeout.as_secs()
        ),
        SERVICE_UNAVAILABLE,
    )
}

fn panicked(panic: &(dyn Any + Send)) -> Response {
    let message = panic
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| panic.downcast_ref::<&str>().copied())
        .unwrap_or("(no message)");
    tracing::error!(panic = message, "a request handler panicked; answered 500");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal error".into(),
        INTERNAL_SERVER_ERROR,
    )
}

fn refuse(status: StatusCode, message: String, code: &str) -> Response {
    let body = json!({"errors": [{"message": message, "extensions": {"code": code}}]});
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use axum::body::{Body, Bytes};
    use axum::routing::{get, post};
    use tower::ServiceExt as _;

    use super::*;

    async fn boom() -> &'static str {
        panic!("a bug in a handler")
    }

    async fn echo(body: Bytes) -> String {
        body.len().to_string()
    }

    const PUBLISH_LIMIT: usize = 3 << 20;

    fn front(access_log: bool) -> Front {
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/echo", post(echo))
            .route(PUBLISH_PATH, post(echo));
        Front::new(
            router,
            FrontOptions {
                cors: Cors::new("https://app.example.com").unwrap(),
                body_limit: 10,
                // Over axum's default limit for extractors (2 MiB).
                publish_body_limit: PUBLISH_LIMIT,
                timeout: Duration::from_secs(30),
                access_log,
            },
        )
    }

    fn post_to(path: &str, body: Body, length: Option<usize>) -> Request {
        let mut request = Request::post(path).header(header::ORIGIN, "https://app.example.com");
        if let Some(length) = length {
            request = request.header(header::CONTENT_LENGTH, length);
        }
        request.body(body).unwrap()
    }

    /// A body of `n` bytes whose length is not declared (as a chunked one).
    fn chunked(n: usize) -> Body {
        let chunks = (0..n)
            .step_by(4096)
            .map(move |at| Ok::<_, Infallible>(Bytes::from(vec![b'x'; (n - at).min(4096)])));
        Body::from_stream(futures::stream::iter(chunks))
    }

    async fn json(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_panicking_handler_gets_a_500_and_the_service_goes_on() {
        for access_log in [false, true] {
            let front = front(access_log);
            let request = Request::get("/boom").body(Body::empty()).unwrap();
            let response = front.clone().oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            let body = json(response).await;
            assert_eq!(
                body["errors"][0]["extensions"]["code"],
                "INTERNAL_SERVER_ERROR"
            );
            let request = post_to("/echo", Body::from("12345"), Some(5));
            let response = front.oneshot(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
    }

    #[tokio::test]
    async fn each_body_limit_holds_declared_or_chunked() {
        let front = front(true);
        let cases = [
            ("/echo", 10, true),
            ("/echo", 11, false),
            (PUBLISH_PATH, PUBLISH_LIMIT, true),
            (PUBLISH_PATH, PUBLISH_LIMIT + 1, false),
        ];
        for (path, n, fits) in cases {
            for declared in [true, false] {
                let (body, length) = if declared {
                    (Body::from(vec![b'x'; n]), Some(n))
                } else {
                    (chunked(n), None)
                };
                let response = front
                    .clone()
                    .oneshot(post_to(path, body, length))
                    .await
                    .unwrap();
                let status = response.status();
                if fits {
                    assert_eq!(status, StatusCode::OK, "{path} {n} declared={declared}");
                    let bytes = axum::body::to_bytes(response.into_body(), 100)
                        .await
                        .unwrap();
                    assert_eq!(bytes, n.to_string());
                } else {
                    assert_eq!(
                        status,
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "{path} {n} declared={declared}"
                    );
                }
            }
        }
    }

    #[tokio::test]
    async fn cors_covers_the_public_routes_and_not_the_publish_endpoint() {
        let front = front(false);
        let response = front
            .clone()
            .oneshot(post_to("/echo", Body::from("1"), Some(1)))
            .await
            .unwrap();
        assert_eq!(
            response.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://app.example.com"
        );
        let response = front
            .clone()
            .oneshot(post_to(PUBLISH_PATH, Body::from("1"), Some(1)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(!response
            .headers()
            .contains_key(header::ACCESS_CONTROL_ALLOW_ORIGIN));
        assert!(!response.headers().contains_key(header::VARY));
        let preflight = Request::options("/graphql")
            .header(header::ORIGIN, "https://app.example.com")
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .body(Body::empty())
            .unwrap();
        let response = front.oneshot(preflight).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response
            .headers()
            .contains_key(header::ACCESS_CONTROL_MAX_AGE));
    }
}
