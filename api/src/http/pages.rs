//! `GET /console` (operators and admins), `GET /scoreboard` (public), their files at
//! `GET /assets/{file}`, and the console's service worker at `GET /console-sw.js`.
//!
//! Both pages are plain ES modules with no build step: our own scripts and stylesheet, and
//! Preact with htm as one vendored module (`scripts/vendor-pages`, versions pinned in
//! `api/assets/pages/versions`). As for GraphiQL (`graphiql.rs`, whose helpers this module
//! shares), every file is compiled into the binary and served at a content-addressed URL
//! (`console.<hash>.js`, cached for a year), the pages are revalidated on every load, and the
//! Content-Security-Policy allows this origin only, here without any inline style or script.
//!
//! Modules import each other by URL, so our scripts name their imports with the same `{{file}}`
//! marks as the pages, replaced by the content-addressed URLs; a file's hash is taken after the
//! replacement, so a change in a module changes the URL of every module that imports it.
//!
//! The service worker keeps the console's page and files in the browser's cache, so an operator
//! can reload the console with no network and the taps queued meanwhile are still sent later.
//! It is served from the root so that its scope can be `/console`, and never cached by HTTP.

use std::sync::LazyLock;

use axum::body::Bytes;
use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::graphiql::{
    addressed, etag, immutable_file, not_modified, short_hash, versions, CSS, JS, REVALIDATE, TEXT,
};

/// Where the pages' files are served (`startup::router` routes `/assets/{file}`).
const PREFIX: &str = "/assets/";

/// This origin only, for scripts, styles, requests and WebSockets (`'self'` covers `ws:` and
/// `wss:` to the same host), and the service worker; no inline anything.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";

/// A file compiled into the binary; `template` files have their `{{file}}` marks replaced.
struct Embedded {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
    template: bool,
}

macro_rules! embed {
    ($name:literal, $content_type:expr, $template:expr) => {
        Embedded {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/pages/", $name)),
            template: $template,
        }
    };
}

/// In dependency order: a template names only files above it.
const EMBEDDED: &[Embedded] = &[
    embed!("preact-htm.module.js", JS, false),
    embed!("pages.css", CSS, false),
    embed!("graphql.js", JS, false),
    embed!("ui.js", JS, true),
    embed!("queue.js", JS, true),
    embed!("admin.js", JS, true),
    embed!("console.js", JS, true),
    embed!("scoreboard.js", JS, true),
    // Served so the copies the binary hands out carry their licenses.
    embed!("LICENSE-htm.txt", TEXT, false),
    embed!("LICENSE-preact.txt", TEXT, false),
];

const CONSOLE: &str = include_str!("../../assets/pages/console.html");
const SCOREBOARD: &str = include_str!("../../assets/pages/scoreboard.html");
/// `{{files}}` marks the list of every file's URL, `{{build}}` a name for this set of files.
const SERVICE_WORKER: &str = include_str!("../../assets/pages/console-sw.js");
const VERSIONS: &str = include_str!("../../assets/pages/versions");

/// An embedded file at its content-addressed name, with its marks replaced.
struct Asset {
    name: &'static str,
    file: String,
    etag: HeaderValue,
    content_type: &'static str,
    body: Bytes,
}

/// A page (or the service worker): revalidated on every load.
struct Page {
    body: String,
    etag: HeaderValue,
}

impl Page {
    fn new(body: String) -> Page {
        let etag = etag(&short_hash(body.as_bytes()));
        Page { body, etag }
    }
}

struct Site {
    console: Page,
    scoreboard: Page,
    worker: Page,
    assets: Vec<Asset>,
}

static SITE: LazyLock<Site> = LazyLock::new(Site::build);

/// `template` with each `{{name}}` of `assets` replaced by its URL, and `{{versions}}`.
fn fill(template: &str, assets: &[Asset]) -> String {
    let mut out = template.replace("{{versions}}", &versions(VERSIONS));
    for asset in assets {
        let mark = format!("{{{{{}}}}}", asset.name);
        out = out.replace(&mark, &format!("{PREFIX}{}", asset.file));
    }
    // A mark left over names a file that is not embedded (or not above it): fail at the first
    // request (and in this module's tests), not with a page that loads half its modules.
    assert!(
        !out.contains("{{"),
        "a page or module names a file that is not embedded before it:\n{out}"
    );
    out
}

impl Site {
    fn build() -> Site {
        let mut assets: Vec<Asset> = Vec::with_capacity(EMBEDDED.len());
        for embedded in EMBEDDED {
            let body = if embedded.template {
                let text = std::str::from_utf8(embedded.body).expect("templates are UTF-8");
                Bytes::from(fill(text, &assets))
            } else {
                Bytes::from_static(embedded.body)
            };
            let hash = short_hash(&body);
            assets.push(Asset {
                name: embedded.name,
                file: addressed(embedded.name, &hash),
                etag: etag(&hash),
                content_type: embedded.content_type,
                body,
            });
        }
        let urls: Vec<String> = assets
            .iter()
            .map(|a| format!("'{PREFIX}{}'", a.file))
            .collect();
        let build = short_hash(urls.concat().as_bytes());
        let worker = SERVICE_WORKER
            .replace("{{files}}", &urls.join(", "))
            .replace("{{build}}", &build);
        Site {
            console: Page::new(fill(CONSOLE, &assets)),
            scoreboard: Page::new(fill(SCOREBOARD, &assets)),
            worker: Page::new(fill(&worker, &assets)),
            assets,
        }
    }
}

fn serve(page: &'static Page, content_type: &'static str, headers: &HeaderMap) -> Response {
    let cache = [
        (header::ETAG, page.etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
    ];
    if not_modified(headers, &page.etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        page.body.as_str(),
    )
        .into_response()
}

/// `GET /console`: match day for operators, and the admin forms.
pub async fn console_page(headers: HeaderMap) -> Response {
    serve(&SITE.console, HTML, &headers)
}

/// `GET /scoreboard`: the public page of live matches.
pub async fn scoreboard_page(headers: HeaderMap) -> Response {
    serve(&SITE.scoreboard, HTML, &headers)
}

/// `GET /console-sw.js`: the console's service worker (its URL cannot change between builds).
pub async fn console_worker(headers: HeaderMap) -> Response {
    serve(&SITE.worker, JS, &headers)
}

/// `GET /assets/{file}`: one of the pages' files; 404 for any other name, including a file's
/// name from another build.
pub async fn page_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = SITE.assets.iter().find(|a| a.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    immutable_file(
        &asset.etag,
        asset.content_type,
        asset.body.clone(),
        &headers,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asset<'a>(site: &'a Site, name: &str) -> &'a Asset {
        site.assets
            .iter()
            .find(|a| a.name == name)
            .expect("embedded")
    }

    #[test]
    fn every_mark_is_replaced_by_a_content_addressed_url() {
        let site = Site::build();
        let console = asset(&site, "console.js");
        let text = std::str::from_utf8(&console.body).unwrap();
        let preact = &asset(&site, "preact-htm.module.js").file;
        assert!(text.contains(&format!("{PREFIX}{preact}")), "{text}");
        for page in [&site.console, &site.scoreboard] {
            assert!(!page.body.contains("{{"), "{}", page.body);
            assert!(page.body.contains("htm@3"), "{}", page.body);
        }
        assert!(site.console.body.contains(&console.file));
        assert!(site
            .scoreboard
            .body
            .contains(&asset(&site, "scoreboard.js").file));
    }

    #[test]
    fn the_service_worker_lists_every_file() {
        let site = Site::build();
        for asset in &site.assets {
            assert!(site.worker.body.contains(&asset.file), "{}", asset.file);
        }
        assert!(!site.worker.body.contains("{{"));
    }

    #[test]
    fn a_module_hash_covers_the_urls_it_imports() {
        // console.js names ui.js by URL: had the hash been taken before the replacement, a
        // change in ui.js alone would leave console.js at a URL browsers keep for a year.
        let site = Site::build();
        let console = asset(&site, "console.js");
        assert_eq!(
            console.file,
            addressed("console.js", &short_hash(&console.body))
        );
    }
}
