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
//!
//! The console page carries its sign-in settings (`oidc`) as JSON in a
//! `<script type="application/json">` element, which is data, never run; with an OpenID
//! provider, its CSP also allows the origins of the provider's token and revocation endpoints.

use std::sync::LazyLock;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::graphiql::{
    addressed, etag, immutable_file, not_modified, short_hash, versions, CSS, JS, REVALIDATE, TEXT,
};
use super::oidc::{may_retry, ConsoleSignIn, Discovery, Endpoints};
use crate::startup::AppState;

/// Where the pages' files are served (`startup::router` routes `/assets/{file}`).
const PREFIX: &str = "/assets/";

/// This origin only, for scripts, styles, requests and WebSockets (`'self'` covers `ws:` and
/// `wss:` to the same host), and the service worker; no inline anything.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; worker-src 'self'; \
    manifest-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// The same policy, with requests also allowed to `origins` (an OpenID provider's).
fn content_security_policy(origins: &[String]) -> HeaderValue {
    let mut connect = String::from("connect-src 'self'");
    for origin in origins {
        connect.push(' ');
        connect.push_str(origin);
    }
    HeaderValue::try_from(CONTENT_SECURITY_POLICY.replace("connect-src 'self'", &connect))
        .expect("origins are ASCII without control characters")
}

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
    embed!("oidc.js", JS, false),
    embed!("console.js", JS, true),
    embed!("scoreboard.js", JS, true),
    // Served so the copies the binary hands out carry their licenses.
    embed!("LICENSE-htm.txt", TEXT, false),
    embed!("LICENSE-preact.txt", TEXT, false),
];

const CONSOLE: &str = include_str!("../../assets/pages/console.html");
/// Where the console page's sign-in settings go.
const SETTINGS_MARK: &str = "{{console-settings}}";
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
pub struct Page {
    body: String,
    etag: HeaderValue,
    csp: HeaderValue,
}

impl Page {
    fn new(body: String) -> Page {
        Page::with_csp(body, HeaderValue::from_static(CONTENT_SECURITY_POLICY))
    }

    fn with_csp(body: String, csp: HeaderValue) -> Page {
        let etag = etag(&short_hash(body.as_bytes()));
        Page { body, etag, csp }
    }
}

struct Site {
    /// The console page before and after its settings.
    console: (String, String),
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
        let (head, tail) = CONSOLE
            .split_once(SETTINGS_MARK)
            .expect("console.html has the settings mark");
        Site {
            console: (fill(head, &assets), fill(tail, &assets)),
            scoreboard: Page::new(fill(SCOREBOARD, &assets)),
            worker: Page::new(fill(&worker, &assets)),
            assets,
        }
    }
}

/// JSON for a `<script type="application/json">` element: `<`, `>` and `&` escaped, so that
/// no value can end the element (`</script>`) or open a comment.
fn script_json(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

/// The console page with `sign_in`'s settings and, with an OpenID provider, its `endpoints`.
fn console_page_for(sign_in: &ConsoleSignIn, endpoints: Option<&Endpoints>) -> Page {
    let (head, tail) = &SITE.console;
    let settings = script_json(&sign_in.page_settings(endpoints));
    let origins = endpoints
        .map(Endpoints::connect_origins)
        .unwrap_or_default();
    Page::with_csp(
        format!("{head}{settings}{tail}"),
        content_security_policy(&origins),
    )
}

/// The console page for this server's sign-in settings. With an OpenID provider, the page
/// needs the provider's endpoints, read from its discovery document on first use (`oidc`);
/// until they are known the page is served without them, and says sign-in is unavailable.
pub struct ConsolePage {
    sign_in: ConsoleSignIn,
    /// Without endpoints.
    plain: Page,
    provider: Option<Provider>,
}

struct Provider {
    discovery: Discovery,
    /// The page with the endpoints, once they are known.
    page: std::sync::OnceLock<Page>,
    /// The last attempt to read the document. Held across an attempt, so that concurrent
    /// requests wait for that one instead of each starting their own.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl ConsolePage {
    pub fn new(sign_in: ConsoleSignIn) -> anyhow::Result<ConsolePage> {
        let provider = sign_in
            .oidc
            .as_ref()
            .map(|oidc| -> anyhow::Result<Provider> {
                Ok(Provider {
                    discovery: Discovery::new(oidc)?,
                    page: std::sync::OnceLock::new(),
                    last_attempt: tokio::sync::Mutex::new(None),
                })
            })
            .transpose()?;
        Ok(ConsolePage {
            plain: console_page_for(&sign_in, None),
            sign_in,
            provider,
        })
    }

    /// The page to serve now: with the provider's endpoints when they are known or can be read
    /// now (at most one attempt per retry interval), else without.
    async fn current(&self) -> &Page {
        let Some(provider) = &self.provider else {
            return &self.plain;
        };
        if let Some(page) = provider.page.get() {
            return page;
        }
        let mut last_attempt = provider.last_attempt.lock().await;
        if let Some(page) = provider.page.get() {
            return page;
        }
        if !may_retry(*last_attempt) {
            return &self.plain;
        }
        *last_attempt = Some(Instant::now());
        match provider.discovery.fetch().await {
            Ok(endpoints) => {
                tracing::info!(
                    url = provider.discovery.url(),
                    token_endpoint = %endpoints.token,
                    "read the console's OpenID provider settings"
                );
                provider
                    .page
                    .get_or_init(|| console_page_for(&self.sign_in, Some(&endpoints)))
            }
            Err(error) => {
                tracing::warn!(
                    url = provider.discovery.url(),
                    error = format!("{error:#}"),
                    "could not read the console's OpenID provider settings: \
                     the console cannot sign in with it until they are read"
                );
                &self.plain
            }
        }
    }

    /// Reads the provider's settings now, so that a problem with them shows in the log at
    /// start-up rather than at the first sign-in.
    pub async fn prepare(&self) {
        self.current().await;
    }
}

fn serve(page: &Page, content_type: &'static str, headers: &HeaderMap) -> Response {
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
            (header::CONTENT_SECURITY_POLICY, page.csp.clone()),
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        page.body.clone(),
    )
        .into_response()
}

/// `GET /console`: match day for operators, and the admin forms.
pub async fn console_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    serve(state.console.current().await, HTML, &headers)
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
        let console_page = format!("{}{}", site.console.0, site.console.1);
        for page in [&console_page, &site.scoreboard.body] {
            assert!(!page.contains("{{"), "{page}");
            assert!(page.contains("htm@3"), "{page}");
        }
        assert!(console_page.contains(&console.file));
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

    #[test]
    fn the_console_settings_are_data_that_cannot_end_their_element() {
        let sign_in = ConsoleSignIn::parse(super::super::oidc::SignInConfig {
            issuer: Some("https://idp.example.com".into()),
            client_id: Some("console".into()),
            scopes: "openid".into(),
            name: Some("</script><script>alert(1)</script>".into()),
            ..Default::default()
        })
        .unwrap();
        let endpoints = Endpoints {
            authorization: "https://login.example.com/authorize".into(),
            token: "https://login.example.com/token".into(),
            end_session: None,
            revocation: Some("https://revoke.example.com/revoke".into()),
        };
        let page = console_page_for(&sign_in, Some(&endpoints));
        assert_eq!(page.body.matches("</script>").count(), 2, "{}", page.body);
        assert!(page
            .body
            .contains(r#"id="console-settings">{"tokenPaste":false,"#));
        assert!(page.body.contains(r"\u003c/script\u003e"));
        let csp = page.csp.to_str().unwrap();
        assert!(
            csp.contains(
                "connect-src 'self' https://login.example.com https://revoke.example.com;"
            ),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
    }
}
