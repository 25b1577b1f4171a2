//! `GET /` and `GET /graphiql/{file}`: GraphiQL from files compiled into the binary, so the page
//! works offline and behind firewalls (the async-graphql page it replaces loaded React and
//! GraphiQL from unpkg.com at floating versions, and was blank without internet).
//!
//! The files are in `api/assets/graphiql/`: GraphiQL's and React's UMD builds, vendored from npm
//! at the versions pinned in `versions` by `scripts/vendor-graphiql`, and our own page template,
//! stylesheet and start-up script. Each is served at a content-addressed URL
//! (`graphiql.min.<hash>.js`), so browsers may keep it for a year and a new build can never be
//! mixed with an old one's cached files; the page itself is revalidated on every load.
//!
//! The page's Content-Security-Policy allows this origin only. The one exception GraphiQL needs is
//! `'unsafe-inline'` styles: its components set `style` attributes and inject `<style>` elements.
//! Fonts and a few icons are `data:` URLs inside its stylesheet.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

/// Where the page's files are served (`startup::router` routes `/graphiql/{file}`).
const PREFIX: &str = "/graphiql/";

const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Content-addressed: the URL changes whenever the bytes do.
pub(super) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The page names the current files, so it is revalidated (its ETag makes that a 304).
pub(super) const REVALIDATE: &str = "no-cache";

pub(super) const JS: &str = "text/javascript; charset=utf-8";
pub(super) const CSS: &str = "text/css; charset=utf-8";
pub(super) const TEXT: &str = "text/plain; charset=utf-8";

/// A file compiled into the binary.
struct Embedded {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! embed {
    ($name:literal, $content_type:expr) => {
        Embedded {
            name: $name,
            content_type: $content_type,
            body: include_bytes!(concat!("../../assets/graphiql/", $name)),
        }
    };
}

const EMBEDDED: &[Embedded] = &[
    embed!("graphiql.min.js", JS),
    embed!("graphiql.min.css", CSS),
    embed!("react.production.min.js", JS),
    embed!("react-dom.production.min.js", JS),
    embed!("page.js", JS),
    embed!("page.css", CSS),
    // Served so the copies the binary hands out carry their licenses.
    embed!("LICENSE-graphiql.txt", TEXT),
    embed!("LICENSE-react.txt", TEXT),
    embed!("LICENSE-react-dom.txt", TEXT),
];

/// `{{file name}}` marks the files' URLs; `{{versions}}` the vendored packages.
const TEMPLATE: &str = include_str!("../../assets/graphiql/index.html");
const VERSIONS: &str = include_str!("../../assets/graphiql/versions");

/// An embedded file at its content-addressed name.
struct Asset {
    file: String,
    etag: HeaderValue,
    embedded: &'static Embedded,
}

/// The page and its files, addressed once per process.
struct Site {
    page: String,
    page_etag: HeaderValue,
    assets: Vec<Asset>,
}

static SITE: LazyLock<Site> = LazyLock::new(Site::build);

impl Site {
    fn build() -> Site {
        let assets: Vec<Asset> = EMBEDDED
            .iter()
            .map(|embedded| {
                let hash = short_hash(embedded.body);
                Asset {
                    file: addressed(embedded.name, &hash),
                    etag: etag(&hash),
                    embedded,
                }
            })
            .collect();
        let mut page = TEMPLATE.replace("{{versions}}", &versions(VERSIONS));
        for asset in &assets {
            let mark = format!("{{{{{}}}}}", asset.embedded.name);
            page = page.replace(&mark, &format!("{PREFIX}{}", asset.file));
        }
        // A mark left over is a file the template names but EMBEDDED lacks: fail at the first
        // request (and in this module's tests), not with a page that loads half its scripts.
        assert!(
            !page.contains("{{"),
            "the GraphiQL template names a file that is not embedded"
        );
        let page_etag = etag(&short_hash(page.as_bytes()));
        Site {
            page,
            page_etag,
            assets,
        }
    }
}

/// `GET /`: the GraphiQL page.
pub async fn graphiql_page(headers: HeaderMap) -> Response {
    let site: &'static Site = &SITE;
    let cache = [
        (header::ETAG, site.page_etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(REVALIDATE)),
    ];
    if not_modified(&headers, &site.page_etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
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
        site.page.as_str(),
    )
        .into_response()
}

/// `GET /graphiql/{file}`: one of the page's files; 404 for any other name, including a file's
/// name from another build.
pub async fn graphiql_asset(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = SITE.assets.iter().find(|a| a.file == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    immutable_file(
        &asset.etag,
        asset.embedded.content_type,
        asset.embedded.body,
        &headers,
    )
}

/// A file whose URL names its version: cached for a year, 304 to its ETag, never sniffed.
pub(super) fn immutable_file(
    etag: &HeaderValue,
    content_type: &'static str,
    body: impl Into<axum::body::Body>,
    headers: &HeaderMap,
) -> Response {
    let cache = [
        (header::ETAG, etag.clone()),
        (header::CACHE_CONTROL, HeaderValue::from_static(IMMUTABLE)),
    ];
    if not_modified(headers, etag) {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (
        cache,
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body.into(),
    )
        .into_response()
}

/// The first 64 bits of the SHA-256, in hex: plenty to tell a dozen files' versions apart.
pub(super) fn short_hash(bytes: &[u8]) -> String {
    hex::encode(&Sha256::digest(bytes)[..8])
}

pub(super) fn etag(hash: &str) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{hash}\"")).expect("hex is a valid header value")
}

/// `graphiql.min.js` → `graphiql.min.<hash>.js`: the extension stays last for tools that look.
pub(super) fn addressed(name: &str, hash: &str) -> String {
    match name.rsplit_once('.') {
        Some((stem, extension)) => format!("{stem}.{hash}.{extension}"),
        None => format!("{name}.{hash}"),
    }
}

/// `graphiql@4.1.2 react@18.3.1 ...` from the pins file (its comments and integrities left out).
pub(super) fn versions(pins: &str) -> String {
    pins.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_whitespace().next())
        .collect::<Vec<_>>()
        .join(" ")
}

/// `If-None-Match` lists `etag` (weak comparison, as RFC 9110 asks for this header) or is `*`.
pub(super) fn not_modified(headers: &HeaderMap, etag: &HeaderValue) -> bool {
    let Ok(etag) = etag.to_str() else {
        return false;
    };
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim())
        .any(|tag| tag == "*" || tag.trim_start_matches("W/") == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_every_file_by_its_content_addressed_url() {
        let site = Site::build();
        for asset in &site.assets {
            assert!(
                site.page.contains(&format!("{PREFIX}{}", asset.file)),
                "{} is not on the page",
                asset.file
            );
        }
        assert!(site.page.contains("graphiql@4"), "{}", site.page);
    }

    #[test]
    fn an_addressed_name_keeps_its_extension_last() {
        assert_eq!(
            addressed("graphiql.min.js", "0123abcd"),
            "graphiql.min.0123abcd.js"
        );
        assert_eq!(addressed("LICENSE", "0123abcd"), "LICENSE.0123abcd");
    }

    #[test]
    fn versions_are_the_pins_without_comments_or_integrities() {
        let pins = "# a comment\n\na@1.2.3 sha512-xyz\nb@4.5.6 sha512-abc\n";
        assert_eq!(versions(pins), "a@1.2.3 b@4.5.6");
    }

    #[test]
    fn if_none_match_matches_strong_weak_listed_and_any() {
        let tag = etag("0123abcd");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            headers
        };
        assert!(not_modified(&with("\"0123abcd\""), &tag));
        assert!(not_modified(&with("W/\"0123abcd\""), &tag));
        assert!(not_modified(&with("\"other\", \"0123abcd\""), &tag));
        assert!(not_modified(&with("*"), &tag));
        assert!(!not_modified(&with("\"other\""), &tag));
        assert!(!not_modified(&HeaderMap::new(), &tag));
    }
}
