//! How operators sign in to the console: by pasting a token (development), and through an
//! OpenID provider (Amazon Cognito's managed login, or any other) with the authorization-code
//! flow and PKCE, for a public client (no secret).
//!
//! The flow runs in the page (`assets/pages/oidc.js`). The server's part is here: the settings
//! (`CONSOLE_OIDC_*`, `CONSOLE_TOKEN_PASTE`), checked at start-up, and the provider's discovery
//! document (`<issuer>/.well-known/openid-configuration`). The server reads that document rather
//! than the page because the page's Content-Security-Policy has to name every origin the page
//! posts to, and a provider's token endpoint need not be on its issuer's origin: Cognito's issuer
//! is `https://cognito-idp.<region>.amazonaws.com/<pool id>`, its token endpoint on the user
//! pool's own domain. The page then gets the endpoints with the settings, and its CSP allows the
//! token and revocation endpoints' origins, nothing more.
//!
//! The document is read lazily, so the server starts while the provider is unreachable, within
//! a time and size bound, and kept once read (a restart reads it again). While it cannot be read,
//! the page is served without the endpoints (it says sign-in is unavailable) and the document
//! is tried again at most every [`DISCOVERY_RETRY_INTERVAL`].

use std::net::IpAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use reqwest::Url;
use serde::{Deserialize, Serialize};

use crate::auth::get_document;

/// Upper bound for reading the discovery document.
const DISCOVERY_TIMEOUT: Duration = Duration::from_secs(5);
/// A discovery document is a few KiB.
const DISCOVERY_MAX_BYTES: usize = 64 * 1024;
/// Least time between two attempts to read the document while it fails.
pub(crate) const DISCOVERY_RETRY_INTERVAL: Duration = Duration::from_secs(10);

/// Which of the provider's tokens the console sends to the API as its bearer token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ConsoleToken {
    /// The access token (Cognito's carries `cognito:groups`).
    #[default]
    Access,
    /// The ID token (its `aud` is the console's client id).
    Id,
}

impl ConsoleToken {
    fn as_str(self) -> &'static str {
        match self {
            ConsoleToken::Access => "access",
            ConsoleToken::Id => "id",
        }
    }
}

/// The console's sign-in settings as configured, before they are checked.
#[derive(Clone, Debug, Default)]
pub struct SignInConfig {
    pub issuer: Option<String>,
    pub client_id: Option<String>,
    pub scopes: String,
    pub redirect_uri: Option<String>,
    pub token: ConsoleToken,
    pub name: Option<String>,
    pub token_paste: Option<bool>,
}

/// How operators sign in to the console: checked settings.
#[derive(Clone, Debug)]
pub struct ConsoleSignIn {
    /// Whether the console offers to paste a token.
    pub token_paste: bool,
    /// The OpenID provider, when one is configured.
    pub oidc: Option<OidcSettings>,
}

/// An OpenID provider the console signs in with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcSettings {
    /// Exactly as configured: it is compared with the discovery document's `issuer` and the
    /// tokens' `iss` as a string.
    pub issuer: String,
    pub client_id: String,
    /// Space-separated, `openid` among them.
    pub scopes: String,
    /// `None`: the console's own URL, as the browser sees it.
    pub redirect_uri: Option<String>,
    pub token: ConsoleToken,
    /// Shown on the button: "Sign in with <name>".
    pub name: String,
}

impl ConsoleSignIn {
    /// Checks the settings. Without an issuer the console signs in by pasting a token only;
    /// with one, pasting is off unless `token_paste` says otherwise.
    pub fn parse(config: SignInConfig) -> anyhow::Result<ConsoleSignIn> {
        for (name, value) in [
            ("CONSOLE_OIDC_ISSUER", &config.issuer),
            ("CONSOLE_OIDC_CLIENT_ID", &config.client_id),
            ("CONSOLE_OIDC_REDIRECT_URI", &config.redirect_uri),
            ("CONSOLE_OIDC_NAME", &config.name),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                bail!("{name} is set but empty");
            }
        }
        let Some(issuer) = config.issuer else {
            if config.client_id.is_some() || config.redirect_uri.is_some() {
                bail!(
                    "CONSOLE_OIDC_CLIENT_ID and CONSOLE_OIDC_REDIRECT_URI need CONSOLE_OIDC_ISSUER"
                );
            }
            if config.token_paste == Some(false) {
                bail!(
                    "CONSOLE_TOKEN_PASTE=false needs CONSOLE_OIDC_ISSUER: \
                     the console would have no way to sign in"
                );
            }
            return Ok(ConsoleSignIn {
                token_paste: true,
                oidc: None,
            });
        };
        let issuer_url = provider_url(&issuer).context("CONSOLE_OIDC_ISSUER")?;
        ensure!(
            issuer_url.query().is_none(),
            "CONSOLE_OIDC_ISSUER has a query: an issuer is a URL without one"
        );
        let client_id = config.client_id.context(
            "CONSOLE_OIDC_ISSUER needs CONSOLE_OIDC_CLIENT_ID (the console's app client, a \
             public client without a secret)",
        )?;
        ensure!(
            !client_id.contains(|c: char| c.is_whitespace() || c.is_control()),
            "CONSOLE_OIDC_CLIENT_ID has spaces or control characters"
        );
        let scopes: Vec<&str> = config.scopes.split_whitespace().collect();
        ensure!(
            scopes.contains(&"openid"),
            "CONSOLE_OIDC_SCOPES must include openid (it is {:?})",
            config.scopes
        );
        ensure!(
            scopes.iter().all(|scope| is_scope_token(scope)),
            "CONSOLE_OIDC_SCOPES has a character a scope cannot have"
        );
        if let Some(uri) = &config.redirect_uri {
            provider_url(uri).context("CONSOLE_OIDC_REDIRECT_URI")?;
        }
        let name = config
            .name
            .map(|n| n.trim().to_string())
            .unwrap_or_else(|| default_name(&issuer_url));
        Ok(ConsoleSignIn {
            token_paste: config.token_paste.unwrap_or(false),
            oidc: Some(OidcSettings {
                issuer,
                client_id,
                scopes: scopes.join(" "),
                redirect_uri: config.redirect_uri,
                token: config.token,
                name,
            }),
        })
    }

    /// What the console page gets, as JSON: the settings and, once known, the endpoints.
    pub(crate) fn page_settings(&self, endpoints: Option<&Endpoints>) -> String {
        let settings = PageSettings {
            token_paste: self.token_paste,
            oidc: self.oidc.as_ref().map(|oidc| PageOidc {
                name: &oidc.name,
                issuer: &oidc.issuer,
                client_id: &oidc.client_id,
                scopes: &oidc.scopes,
                redirect_uri: oidc.redirect_uri.as_deref(),
                token: oidc.token.as_str(),
                endpoints,
            }),
        };
        serde_json::to_string(&settings).expect("the settings serialize")
    }
}

/// RFC 6749 section 3.3: a scope token is printable ASCII without `"` and `\`.
fn is_scope_token(scope: &str) -> bool {
    scope
        .bytes()
        .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\')
}

/// "Amazon Cognito" for a Cognito user pool, else the issuer's host.
fn default_name(issuer: &Url) -> String {
    let host = issuer.host_str().unwrap_or_default();
    if host.starts_with("cognito-idp.") && host.ends_with(".amazonaws.com") {
        "Amazon Cognito".to_string()
    } else {
        host.to_string()
    }
}

/// An absolute URL a browser may be sent to or post to: `https`, or `http` on a loopback
/// address (a provider on the same machine, in development and tests); no fragment.
fn provider_url(raw: &str) -> anyhow::Result<Url> {
    let url = Url::parse(raw).with_context(|| format!("{raw:?} is not an absolute URL"))?;
    let host = url.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => bail!("{raw:?} must be an https URL (http only on a loopback address)"),
    }
    ensure!(url.fragment().is_none(), "{raw:?} has a fragment");
    ensure!(
        url.username().is_empty() && url.password().is_none(),
        "{raw:?} has credentials"
    );
    Ok(url)
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageSettings<'a> {
    token_paste: bool,
    oidc: Option<PageOidc<'a>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PageOidc<'a> {
    name: &'a str,
    issuer: &'a str,
    client_id: &'a str,
    scopes: &'a str,
    redirect_uri: Option<&'a str>,
    token: &'static str,
    /// `null` while the discovery document could not be read.
    endpoints: Option<&'a Endpoints>,
}

/// The provider's endpoints the console uses, from its discovery document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Endpoints {
    pub authorization: String,
    pub token: String,
    pub end_session: Option<String>,
    pub revocation: Option<String>,
}

impl Endpoints {
    /// The origins the page sends requests to (the token endpoint; the revocation endpoint, at
    /// sign-out), for the CSP's `connect-src`. The others are navigated to, which the CSP does
    /// not govern.
    pub(crate) fn connect_origins(&self) -> Vec<String> {
        let mut origins: Vec<String> = Vec::new();
        for url in std::iter::once(&self.token).chain(&self.revocation) {
            if let Ok(url) = Url::parse(url) {
                let origin = url.origin().ascii_serialization();
                if !origins.contains(&origin) {
                    origins.push(origin);
                }
            }
        }
        origins
    }
}

/// The fields of an OpenID Provider Metadata document the console needs.
#[derive(Deserialize)]
struct DiscoveryDocument {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    #[serde(default)]
    end_session_endpoint: Option<String>,
    #[serde(default)]
    revocation_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

/// Checks a discovery document against the configured issuer (OpenID Connect Discovery 1.0,
/// section 4.3: they must be the same string) and keeps its endpoints.
fn endpoints_of(body: &[u8], issuer: &str) -> anyhow::Result<Endpoints> {
    let document: DiscoveryDocument =
        serde_json::from_slice(body).context("the response is not a discovery document")?;
    ensure!(
        document.issuer == issuer,
        "the document's issuer is {:?}, not CONSOLE_OIDC_ISSUER {issuer:?}",
        document.issuer
    );
    if let Some(methods) = &document.code_challenge_methods_supported {
        ensure!(
            methods.iter().any(|m| m == "S256"),
            "the provider does not support PKCE with S256 (code_challenge_methods_supported)"
        );
    }
    let endpoint = |name: &str, url: &str| -> anyhow::Result<String> {
        provider_url(url).context(name.to_string())?;
        Ok(url.to_string())
    };
    Ok(Endpoints {
        authorization: endpoint("authorization_endpoint", &document.authorization_endpoint)?,
        token: endpoint("token_endpoint", &document.token_endpoint)?,
        end_session: document
            .end_session_endpoint
            .as_deref()
            .map(|url| endpoint("end_session_endpoint", url))
            .transpose()?,
        revocation: document
            .revocation_endpoint
            .as_deref()
            .map(|url| endpoint("revocation_endpoint", url))
            .transpose()?,
    })
}

/// Reads a provider's discovery document.
pub(crate) struct Discovery {
    url: String,
    issuer: String,
    client: reqwest::Client,
}

impl Discovery {
    pub(crate) fn new(settings: &OidcSettings) -> anyhow::Result<Discovery> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            settings.issuer.trim_end_matches('/')
        );
        let client = reqwest::Client::builder()
            .timeout(DISCOVERY_TIMEOUT)
            .connect_timeout(DISCOVERY_TIMEOUT)
            .build()
            .context("could not build the discovery HTTP client")?;
        Ok(Discovery {
            url,
            issuer: settings.issuer.clone(),
            client,
        })
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) async fn fetch(&self) -> anyhow::Result<Endpoints> {
        let body = get_document(&self.client, &self.url, DISCOVERY_MAX_BYTES).await?;
        endpoints_of(&body, &self.issuer)
    }
}

/// When the next attempt to read the document may be made, after a failed one.
pub(crate) fn may_retry(last_attempt: Option<Instant>) -> bool {
    last_attempt.is_none_or(|at| at.elapsed() >= DISCOVERY_RETRY_INTERVAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ISSUER: &str = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123";

    fn config() -> SignInConfig {
        SignInConfig {
            issuer: Some(ISSUER.into()),
            client_id: Some("console-client".into()),
            scopes: "openid profile email".into(),
            ..SignInConfig::default()
        }
    }

    #[test]
    fn without_an_issuer_the_console_signs_in_by_pasting_a_token() {
        let sign_in = ConsoleSignIn::parse(SignInConfig {
            scopes: "openid".into(),
            ..SignInConfig::default()
        })
        .unwrap();
        assert!(sign_in.token_paste);
        assert!(sign_in.oidc.is_none());
        assert_eq!(
            sign_in.page_settings(None),
            r#"{"tokenPaste":true,"oidc":null}"#
        );
    }

    #[test]
    fn with_an_issuer_pasting_is_off_unless_asked_for() {
        let sign_in = ConsoleSignIn::parse(config()).unwrap();
        assert!(!sign_in.token_paste);
        let oidc = sign_in.oidc.unwrap();
        assert_eq!(oidc.name, "Amazon Cognito");
        assert_eq!(oidc.token, ConsoleToken::Access);
        let both = ConsoleSignIn::parse(SignInConfig {
            token_paste: Some(true),
            ..config()
        })
        .unwrap();
        assert!(both.token_paste);
    }

    #[test]
    fn incomplete_or_unsafe_settings_are_refused_at_start_up() {
        let refused =
            |config: SignInConfig| format!("{:#}", ConsoleSignIn::parse(config).unwrap_err());
        assert!(refused(SignInConfig {
            client_id: None,
            ..config()
        })
        .contains("CONSOLE_OIDC_CLIENT_ID"));
        assert!(refused(SignInConfig {
            issuer: Some("http://idp.example.com".into()),
            ..config()
        })
        .contains("https"));
        assert!(refused(SignInConfig {
            scopes: "profile email".into(),
            ..config()
        })
        .contains("openid"));
        assert!(refused(SignInConfig {
            redirect_uri: Some("/console".into()),
            ..config()
        })
        .contains("CONSOLE_OIDC_REDIRECT_URI"));
        assert!(refused(SignInConfig {
            issuer: None,
            client_id: None,
            token_paste: Some(false),
            ..config()
        })
        .contains("no way to sign in"));
        assert!(refused(SignInConfig {
            issuer: None,
            ..config()
        })
        .contains("need CONSOLE_OIDC_ISSUER"));
        assert!(refused(SignInConfig {
            issuer: Some(" ".into()),
            ..config()
        })
        .contains("set but empty"));
    }

    #[test]
    fn a_loopback_provider_may_use_http() {
        let sign_in = ConsoleSignIn::parse(SignInConfig {
            issuer: Some("http://127.0.0.1:9000".into()),
            name: Some("Dev IdP".into()),
            ..config()
        })
        .unwrap();
        assert_eq!(sign_in.oidc.unwrap().name, "Dev IdP");
    }

    fn cognito_document() -> serde_json::Value {
        serde_json::json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://scores.auth.eu-west-1.amazoncognito.com/oauth2/authorize",
            "token_endpoint": "https://scores.auth.eu-west-1.amazoncognito.com/oauth2/token",
            "end_session_endpoint": "https://scores.auth.eu-west-1.amazoncognito.com/logout",
            "revocation_endpoint": "https://scores.auth.eu-west-1.amazoncognito.com/oauth2/revoke",
            "jwks_uri": format!("{ISSUER}/.well-known/jwks.json"),
            "response_types_supported": ["code", "token"],
        })
    }

    #[test]
    fn the_page_may_post_to_the_token_endpoint_on_another_origin_than_the_issuer() {
        let body = serde_json::to_vec(&cognito_document()).unwrap();
        let endpoints = endpoints_of(&body, ISSUER).unwrap();
        assert_eq!(
            endpoints.connect_origins(),
            ["https://scores.auth.eu-west-1.amazoncognito.com"]
        );
        let settings = ConsoleSignIn::parse(config())
            .unwrap()
            .page_settings(Some(&endpoints));
        let value: serde_json::Value = serde_json::from_str(&settings).unwrap();
        assert_eq!(value["oidc"]["clientId"], "console-client");
        assert_eq!(value["oidc"]["token"], "access");
        assert_eq!(
            value["oidc"]["endpoints"]["endSession"],
            "https://scores.auth.eu-west-1.amazoncognito.com/logout"
        );
    }

    #[test]
    fn a_document_for_another_issuer_or_without_s256_is_refused() {
        let mut other = cognito_document();
        other["issuer"] = "https://cognito-idp.eu-west-1.amazonaws.com/another".into();
        let error = endpoints_of(&serde_json::to_vec(&other).unwrap(), ISSUER).unwrap_err();
        assert!(format!("{error:#}").contains("issuer"), "{error:#}");

        let mut plain = cognito_document();
        plain["code_challenge_methods_supported"] = serde_json::json!(["plain"]);
        let error = endpoints_of(&serde_json::to_vec(&plain).unwrap(), ISSUER).unwrap_err();
        assert!(format!("{error:#}").contains("S256"), "{error:#}");

        let mut insecure = cognito_document();
        insecure["token_endpoint"] = "http://scores.example.com/token".into();
        let error = endpoints_of(&serde_json::to_vec(&insecure).unwrap(), ISSUER).unwrap_err();
        assert!(format!("{error:#}").contains("token_endpoint"), "{error:#}");
    }
}
