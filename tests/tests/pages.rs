//! The console at `GET /console` and the scoreboard at `GET /scoreboard`: pages whose modules,
//! stylesheet and vendored library come from this server (compiled into the binary, at
//! content-addressed URLs), with the right content types, under a Content-Security-Policy that
//! allows no other origin and no inline script or style; and the console's service worker.
//! `clients/test/console.test.mjs` runs both pages in Chromium.
//!
//! With an OpenID provider (`CONSOLE_OIDC_*`), the console page carries the sign-in settings and
//! the provider's endpoints, and its CSP allows requests to the provider's token endpoint;
//! `clients/test/console-oidc.test.mjs` signs in through a mock provider in Chromium.

use axum::routing::get as route_get;
use axum::{Json, Router};
use reqwest::header::{
    HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use scoreline_tests::TestApp;
use serde_json::{json, Value};

const VENDORED: &[u8] = include_bytes!("../../api/assets/pages/preact-htm.module.js");

fn header(headers: &HeaderMap, name: impl reqwest::header::AsHeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn get(app: &TestApp, path: &str) -> (u16, HeaderMap, Vec<u8>) {
    let resp = app.http.get(app.url(path)).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.bytes().await.unwrap().to_vec())
}

/// Every `/assets/...` URL in `text`, in quotes or after whitespace.
fn asset_urls(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .match_indices("/assets/")
        .map(|(at, _)| {
            let rest = &text[at..];
            let end = rest
                .find(|c: char| matches!(c, '"' | '\'' | '`') || c.is_whitespace())
                .unwrap_or(rest.len());
            rest[..end].to_string()
        })
        .collect();
    found.sort();
    found.dedup();
    found
}

fn assert_strict_csp(headers: &HeaderMap, what: &str) {
    let csp = header(headers, CONTENT_SECURITY_POLICY);
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            csp.contains(directive),
            "{what}: {directive} missing: {csp}"
        );
    }
    assert!(
        !csp.contains("unsafe") && !csp.contains("http") && !csp.contains('*'),
        "{what}: {csp}"
    );
}

#[tokio::test]
async fn both_pages_are_html_under_a_strict_csp_and_revalidated() {
    let app = TestApp::spawn().await;
    for (path, title) in [
        ("/console", "<title>Scoreline console</title>"),
        ("/scoreboard", "<title>Scoreline: live scores</title>"),
    ] {
        let (status, headers, body) = get(&app, path).await;
        assert_eq!(status, 200, "{path}");
        assert!(
            header(&headers, CONTENT_TYPE).starts_with("text/html; charset=utf-8"),
            "{path}: {headers:?}"
        );
        assert_strict_csp(&headers, path);
        assert_eq!(header(&headers, CACHE_CONTROL), "no-cache", "{path}");
        assert_eq!(header(&headers, X_CONTENT_TYPE_OPTIONS), "nosniff");
        let html = String::from_utf8(body).unwrap();
        assert!(html.contains(title), "{html}");
        let lower = html.to_lowercase();
        for external in [
            "http://", "https://", "//unpkg", "//cdn", "<style", "style=",
        ] {
            assert!(!lower.contains(external), "{path}: {external} on the page");
        }
        let again = app
            .http
            .get(app.url(path))
            .header(IF_NONE_MATCH, header(&headers, ETAG))
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304, "{path}");
    }
}

#[tokio::test]
async fn every_file_and_module_import_is_served_with_its_type_for_a_year() {
    let app = TestApp::spawn().await;
    let mut pending: Vec<String> = Vec::new();
    for page in ["/console", "/scoreboard"] {
        let (_, _, body) = get(&app, page).await;
        pending.extend(asset_urls(&String::from_utf8(body).unwrap()));
    }
    // Follow module imports: each names the others by their content-addressed URL.
    let mut seen: Vec<String> = Vec::new();
    let mut vendored = false;
    while let Some(url) = pending.pop() {
        if seen.contains(&url) {
            continue;
        }
        seen.push(url.clone());
        let (status, headers, body) = get(&app, &url).await;
        assert_eq!(status, 200, "{url}");
        let expected = match url.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("txt") => "text/plain; charset=utf-8",
            other => panic!("{url}: unexpected extension {other:?}"),
        };
        assert_eq!(header(&headers, CONTENT_TYPE), expected, "{url}");
        assert_eq!(
            header(&headers, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{url}"
        );
        assert_eq!(header(&headers, X_CONTENT_TYPE_OPTIONS), "nosniff");
        if url.starts_with("/assets/preact-htm.module.") {
            assert!(body == VENDORED, "{url} is not the vendored file");
            vendored = true;
        } else if url.ends_with(".js") {
            let text = String::from_utf8(body).unwrap();
            assert!(!text.contains("{{"), "{url} has a mark left");
            pending.extend(asset_urls(&text));
        }
    }
    assert!(vendored, "{seen:?}");
    for file in [
        "console.",
        "scoreboard.",
        "graphql.",
        "queue.",
        "ui.",
        "admin.",
        "oidc.",
        "pages.",
        "LICENSE-",
    ] {
        assert!(
            seen.iter()
                .any(|u| u.starts_with(&format!("/assets/{file}"))),
            "{file} not reached: {seen:?}"
        );
    }
}

#[tokio::test]
async fn the_service_worker_is_javascript_never_cached_and_lists_the_console_files() {
    let app = TestApp::spawn().await;
    let (status, headers, body) = get(&app, "/console-sw.js").await;
    assert_eq!(status, 200);
    assert_eq!(
        header(&headers, CONTENT_TYPE),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&headers, CACHE_CONTROL), "no-cache");
    assert_strict_csp(&headers, "/console-sw.js");
    let worker = String::from_utf8(body).unwrap();
    let (_, _, page) = get(&app, "/console").await;
    for url in asset_urls(&String::from_utf8(page).unwrap()) {
        assert!(worker.contains(&url), "{url} is not cached by the worker");
    }
}

#[tokio::test]
async fn an_unknown_or_unaddressed_file_is_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/assets/console.js",
        "/assets/console.0000000000000000.js",
        "/assets/../Cargo.toml",
        "/assets/",
        "/console/nothing",
    ] {
        let (status, _, _) = get(&app, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// The console page's sign-in settings (the JSON in its `#console-settings` element).
fn console_settings(html: &str) -> Value {
    let start = r#"<script type="application/json" id="console-settings">"#;
    let from = html.find(start).expect("the settings element") + start.len();
    let to = from + html[from..].find("</script>").expect("the element's end");
    serde_json::from_str(&html[from..to]).expect("the settings are JSON")
}

/// Serves an OpenID provider's discovery document on a free loopback port, with its token and
/// revocation endpoints on `token_host` (as Cognito's are on the user pool's domain, not the
/// issuer's); returns the issuer.
async fn serve_discovery(token_host: &str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let issuer = format!("http://127.0.0.1:{port}");
    let endpoints = format!("http://{token_host}:{port}");
    let document = json!({
        "issuer": issuer,
        "authorization_endpoint": format!("{endpoints}/oauth2/authorize"),
        "token_endpoint": format!("{endpoints}/oauth2/token"),
        "revocation_endpoint": format!("{endpoints}/oauth2/revoke"),
        "end_session_endpoint": format!("{endpoints}/logout"),
        "jwks_uri": format!("{issuer}/.well-known/jwks.json"),
        "response_types_supported": ["code"],
    });
    let app = Router::new().route(
        "/.well-known/openid-configuration",
        route_get(move || {
            let document = document.clone();
            async move { Json(document) }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    issuer
}

async fn console_with_provider(issuer: &str) -> TestApp {
    let issuer = issuer.to_string();
    TestApp::spawn_with(move |config| {
        config.auth_jwt_secret = None;
        config.auth_jwks_url = Some(format!("{issuer}/.well-known/jwks.json"));
        config.console_oidc_issuer = Some(issuer);
        config.console_oidc_client_id = Some("scoreline-console".into());
    })
    .await
}

#[tokio::test]
async fn without_a_provider_the_console_signs_in_by_pasting_a_token() {
    let app = TestApp::spawn().await;
    let (_, _, body) = get(&app, "/console").await;
    let settings = console_settings(&String::from_utf8(body).unwrap());
    assert_eq!(settings, json!({"tokenPaste": true, "oidc": null}));
}

#[tokio::test]
async fn with_a_provider_the_console_gets_the_settings_and_may_post_to_its_token_endpoint() {
    let issuer = serve_discovery("127.0.0.1").await;
    let app = console_with_provider(&issuer).await;
    let (status, headers, body) = get(&app, "/console").await;
    assert_eq!(status, 200);
    let csp = header(&headers, CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains(&format!("connect-src 'self' {issuer};")),
        "{csp}"
    );
    for directive in [
        "default-src 'none'",
        "script-src 'self';",
        "style-src 'self';",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe") && !csp.contains('*'), "{csp}");

    let settings = console_settings(&String::from_utf8(body).unwrap());
    assert_eq!(settings["tokenPaste"], false);
    let oidc = &settings["oidc"];
    assert_eq!(oidc["issuer"], issuer.as_str());
    assert_eq!(oidc["clientId"], "scoreline-console");
    assert_eq!(oidc["scopes"], "openid profile email");
    assert_eq!(oidc["token"], "access");
    assert_eq!(oidc["redirectUri"], Value::Null);
    assert_eq!(oidc["name"], "127.0.0.1");
    assert_eq!(
        oidc["endpoints"],
        json!({
            "authorization": format!("{issuer}/oauth2/authorize"),
            "token": format!("{issuer}/oauth2/token"),
            "endSession": format!("{issuer}/logout"),
            "revocation": format!("{issuer}/oauth2/revoke"),
        })
    );

    // The scoreboard and the service worker keep this origin only.
    for path in ["/scoreboard", "/console-sw.js"] {
        let (_, headers, _) = get(&app, path).await;
        assert_strict_csp(&headers, path);
    }
}

#[tokio::test]
async fn the_csp_names_the_token_endpoint_when_it_is_not_on_the_issuers_origin() {
    let issuer = serve_discovery("localhost").await;
    let app = console_with_provider(&issuer).await;
    let (_, headers, body) = get(&app, "/console").await;
    let token_origin = issuer.replace("127.0.0.1", "localhost");
    let csp = header(&headers, CONTENT_SECURITY_POLICY);
    assert!(
        csp.contains(&format!("connect-src 'self' {token_origin};")),
        "{csp}"
    );
    let settings = console_settings(&String::from_utf8(body).unwrap());
    assert_eq!(
        settings["oidc"]["endpoints"]["token"],
        format!("{token_origin}/oauth2/token")
    );
}

#[tokio::test]
async fn while_the_provider_cannot_be_read_the_console_says_so_and_allows_no_other_origin() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let issuer = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let app = console_with_provider(&issuer).await;
    let (status, headers, body) = get(&app, "/console").await;
    assert_eq!(status, 200);
    assert_strict_csp(&headers, "/console");
    let settings = console_settings(&String::from_utf8(body).unwrap());
    assert_eq!(settings["oidc"]["clientId"], "scoreline-console");
    assert_eq!(settings["oidc"]["endpoints"], Value::Null);
}
