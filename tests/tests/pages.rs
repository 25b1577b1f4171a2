//! The console at `GET /console` and the scoreboard at `GET /scoreboard`: pages whose modules,
//! stylesheet and vendored library come from this server (compiled into the binary, at
//! content-addressed URLs), with the right content types, under a Content-Security-Policy that
//! allows no other origin and no inline script or style; and the console's service worker.
//! `clients/test/console.test.mjs` runs both pages in Chromium.

use reqwest::header::{
    HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG, IF_NONE_MATCH,
    X_CONTENT_TYPE_OPTIONS,
};
use scoreline_tests::TestApp;

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
