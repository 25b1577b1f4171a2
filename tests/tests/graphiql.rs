//! GraphiQL at `GET /`: a page that loads everything from this server (files compiled into the
//! binary, at content-addressed URLs), under a Content-Security-Policy that allows no other
//! origin; off with `GRAPHIQL=false`. `clients/test/graphiql.test.mjs` runs it in Chromium.

use reqwest::header::{
    AsHeaderName, HeaderMap, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, ETAG,
    IF_NONE_MATCH,
};
use scoreline_tests::TestApp;

const VENDORED_GRAPHIQL: &[u8] = include_bytes!("../../api/assets/graphiql/graphiql.min.js");

fn header(headers: &HeaderMap, name: impl AsHeaderName) -> String {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// The values of every `src="..."` and `href="..."` in `html`.
fn references(html: &str) -> Vec<String> {
    let mut found = Vec::new();
    for attribute in ["src=\"", "href=\""] {
        for (at, _) in html.match_indices(attribute) {
            let rest = &html[at + attribute.len()..];
            let end = rest.find('"').expect("a closing quote");
            found.push(rest[..end].to_string());
        }
    }
    found
}

/// `GET /`: status, headers, HTML.
async fn get_page(app: &TestApp) -> (u16, HeaderMap, String) {
    let resp = app.http.get(app.url("/")).send().await.unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    (status, headers, resp.text().await.unwrap())
}

#[tokio::test]
async fn the_page_references_only_its_own_server() {
    let app = TestApp::spawn().await;
    let (status, headers, html) = get_page(&app).await;
    assert_eq!(status, 200);
    assert!(
        header(&headers, CONTENT_TYPE).starts_with("text/html"),
        "{headers:?}"
    );
    assert!(html.contains("<title>Scoreline</title>"), "{html}");
    let lower = html.to_lowercase();
    for external in ["http://", "https://", "//unpkg", "//cdn", "fonts.g"] {
        assert!(!lower.contains(external), "{external} on the page:\n{html}");
    }
    let refs = references(&html);
    let scripts: Vec<_> = refs.iter().filter(|r| r.ends_with(".js")).collect();
    assert_eq!(
        scripts.len(),
        4,
        "React, ReactDOM, GraphiQL, ours: {refs:?}"
    );
    for r in &refs {
        assert!(
            r.starts_with("/graphiql/") || r == "data:,",
            "{r} is not a same-origin path"
        );
    }
}

#[tokio::test]
async fn the_page_forbids_other_origins_in_its_csp() {
    let app = TestApp::spawn().await;
    let (_, headers, _) = get_page(&app).await;
    let csp = header(&headers, CONTENT_SECURITY_POLICY);
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self';"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    assert!(!csp.contains("http") && !csp.contains('*'), "{csp}");
    assert_eq!(header(&headers, CACHE_CONTROL), "no-cache");
}

#[tokio::test]
async fn every_file_the_page_names_is_served_with_its_type_for_a_year() {
    let app = TestApp::spawn().await;
    let (_, _, html) = get_page(&app).await;
    let files: Vec<_> = references(&html)
        .into_iter()
        .chain(
            // The licenses are named in a comment, not an attribute.
            html.split_whitespace()
                .filter(|w| w.starts_with("/graphiql/LICENSE"))
                .map(str::to_string),
        )
        .filter(|r| r.starts_with("/graphiql/"))
        .collect();
    assert_eq!(files.len(), 9, "{files:?}");
    for file in files {
        let resp = app.http.get(app.url(&file)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{file}");
        let expected = match file.rsplit('.').next() {
            Some("js") => "text/javascript",
            Some("css") => "text/css",
            Some("txt") => "text/plain",
            other => panic!("{file}: unexpected extension {other:?}"),
        };
        let headers = resp.headers();
        assert!(
            header(headers, CONTENT_TYPE).starts_with(expected),
            "{file}: {headers:?}"
        );
        assert_eq!(
            header(headers, CACHE_CONTROL),
            "public, max-age=31536000, immutable",
            "{file}"
        );
        let etag = header(headers, ETAG);
        assert!(etag.starts_with('"'), "{file}: {etag}");
        let is_graphiql = file.starts_with("/graphiql/graphiql.min.") && file.ends_with(".js");
        let body = resp.bytes().await.unwrap();
        assert!(!body.is_empty(), "{file}");
        if is_graphiql {
            assert!(body == VENDORED_GRAPHIQL, "{file} is not the vendored file");
        }
        let again = app
            .http
            .get(app.url(&file))
            .header(IF_NONE_MATCH, &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status().as_u16(), 304, "{file}");
    }
}

#[tokio::test]
async fn the_start_up_script_points_graphiql_at_this_servers_graphql_endpoint() {
    let app = TestApp::spawn().await;
    let (_, _, html) = get_page(&app).await;
    let script = references(&html)
        .into_iter()
        .find(|r| r.starts_with("/graphiql/page."))
        .expect("the start-up script");
    let js = app
        .http
        .get(app.url(&script))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(js.contains("url: '/graphql'"), "{js}");
    assert!(
        js.contains("subscriptionUrl: scheme + '//' + window.location.host + '/graphql'"),
        "{js}"
    );
}

#[tokio::test]
async fn the_page_answers_304_to_its_etag() {
    let app = TestApp::spawn().await;
    let (_, headers, _) = get_page(&app).await;
    let etag = header(&headers, ETAG);
    let again = app
        .http
        .get(app.url("/"))
        .header(IF_NONE_MATCH, &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status().as_u16(), 304);
}

#[tokio::test]
async fn an_unknown_or_unaddressed_file_is_404() {
    let app = TestApp::spawn().await;
    for path in [
        "/graphiql/graphiql.min.js",
        "/graphiql/graphiql.min.0000000000000000.js",
        "/graphiql/../Cargo.toml",
        "/graphiql/",
    ] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
}

#[tokio::test]
async fn graphiql_can_be_turned_off() {
    let on = TestApp::spawn().await;
    let (_, _, html) = get_page(&on).await;
    let file = references(&html)
        .into_iter()
        .find(|r| r.starts_with("/graphiql/"))
        .expect("a file");
    let app = TestApp::spawn_with(|config| config.graphiql = false).await;
    for path in ["/", file.as_str()] {
        let resp = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 404, "{path}");
    }
}
