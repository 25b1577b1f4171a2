//! Authentication: Cognito-compatible JWT bearer tokens.
//!
//! Callers present `Authorization: Bearer <jwt>` over HTTP, or put the same value in the
//! WebSocket `connection_init` payload. [`Authenticator`] turns that value into a
//! [`Principal`] (subject and [`Role`]s from the `cognito:groups` claim) or a client-safe
//! [`AuthError`]. No value at all means an anonymous caller; a present but invalid value is
//! always an error, never a silent downgrade to anonymous.
//!
//! Two kinds of keys are supported and the signing algorithm is pinned to each:
//! - HS256 with a shared secret (`AUTH_JWT_SECRET`). With no configuration at all, a random
//!   per-process secret is generated so a development server can print an admin token.
//! - RS256 with keys published as a JWKS (`AUTH_JWKS_URL`, e.g. a Cognito user pool's
//!   `/.well-known/jwks.json`). Keys are fetched lazily on first use, cached by `kid`, and
//!   refetched on an unknown `kid` at most once per 30 s, so a flood
//!   of made-up key ids cannot turn this server into a request amplifier against the IdP.
//!
//! The token's header only ever selects *which configured key* is tried, never what kind of
//! key: an HS256 token is checked against the secret alone and an RS256 token against JWKS
//! keys alone, so a public RSA key can never be (ab)used as an HMAC secret. `alg: none` and
//! every other algorithm are refused. Tokens themselves are never logged.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use serde::{Deserialize, Serialize};

/// Clock skew tolerated on `exp` and `nbf`. Kept small: it is the time a stolen, expired
/// token stays usable, and the servers and the IdP are NTP-synchronised anyway.
const LEEWAY_SECS: u64 = 30;
/// Upper bound for one JWKS request, so a slow IdP cannot hold requests for long.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Minimum time between two JWKS fetches (successful or not).
const JWKS_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// A JWKS document is a few KiB; anything far larger is not one.
const JWKS_MAX_BYTES: usize = 256 * 1024;
/// Real tokens are 1–2 KiB; refuse absurd input before decoding anything.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Below this, an HMAC secret is guessable offline from any token.
const MIN_SECRET_BYTES: usize = 32;

/// What a caller may do, from the `cognito:groups` claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// Everything, including creating competitions, teams and matches.
    Admin,
    /// The match-day mutations.
    Operator,
}

impl Role {
    /// The group name as it appears in `cognito:groups`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
        }
    }

    /// Parses a group name; group names are case-sensitive in Cognito, so this is too.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "operator" => Some(Role::Operator),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// `sub`, or `username` / `cognito:username` when a token has no `sub`.
    pub subject: String,
    /// Known roles, without duplicates, in claim order; unknown groups are dropped.
    pub roles: Vec<Role>,
}

impl Principal {
    pub fn is_admin(&self) -> bool {
        self.roles.contains(&Role::Admin)
    }

    /// Operators and admins may run the match-day mutations.
    pub fn can_operate(&self) -> bool {
        self.roles
            .iter()
            .any(|role| matches!(role, Role::Admin | Role::Operator))
    }
}

/// Authentication settings, usually from the environment.
#[derive(Clone, Default)]
pub struct AuthConfig {
    /// `AUTH_JWT_SECRET`: HS256 secret (its UTF-8 bytes are the HMAC key).
    pub jwt_secret: Option<String>,
    /// `AUTH_JWKS_URL`: where RS256 verification keys are published.
    pub jwks_url: Option<String>,
    /// `AUTH_ISSUER`: when set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// `AUTH_AUDIENCE`: when set, the token's `aud` or `client_id` must be this value
    /// (Cognito ID tokens carry `aud`, access tokens `client_id`).
    pub audience: Option<String>,
}

// Written by hand so that logging the configuration never prints the secret.
impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish()
    }
}

/// Why a credential was refused. The messages are meant for clients: short, and free of
/// internals (no key ids, URLs or library errors).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum AuthError {
    #[error("the authorization value must be `Bearer <token>`")]
    MalformedHeader,
    #[error("the token is malformed")]
    MalformedToken,
    #[error("the token's signing algorithm is not accepted")]
    UnsupportedAlgorithm,
    #[error("the token's signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token lacks the `{0}` claim")]
    MissingClaim(&'static str),
    #[error("the token was issued by an unexpected issuer")]
    WrongIssuer,
    #[error("the token is meant for another audience")]
    WrongAudience,
    #[error("the token's signing key is unknown")]
    UnknownKey,
    #[error("the token's signing keys are unavailable right now")]
    JwksUnavailable,
}

/// Verifies tokens (and mints HS256 ones). Cheap to clone: everything is behind an `Arc`.
#[derive(Clone)]
pub struct Authenticator {
    inner: Arc<Inner>,
}

struct Inner {
    hmac: Option<HmacKeys>,
    jwks: Option<Jwks>,
    issuer: Option<String>,
    audience: Option<String>,
    generated: bool,
}

struct HmacKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

impl fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &self.inner;
        f.debug_struct("Authenticator")
            .field("hs256", &inner.hmac.is_some())
            .field("secret_was_generated", &inner.generated)
            .field("jwks_url", &inner.jwks.as_ref().map(|jwks| &jwks.url))
            .field("issuer", &inner.issuer)
            .field("audience", &inner.audience)
            .finish()
    }
}

impl Authenticator {
    /// Builds from config. With neither a secret nor a JWKS URL, generates a random
    /// per-process HS256 secret (32 random bytes, hex) and reports it through
    /// [`Authenticator::secret_was_generated`] so the server can print an admin token.
    ///
    /// Nothing is fetched here: the JWKS is loaded on first use, so the server starts even
    /// while the identity provider is briefly unreachable.
    pub fn new(config: AuthConfig) -> anyhow::Result<Self> {
        Self::build(config, JWKS_MIN_REFETCH_INTERVAL)
    }

    fn build(config: AuthConfig, min_refetch_interval: Duration) -> anyhow::Result<Self> {
        let AuthConfig {
            jwt_secret,
            jwks_url,
            issuer,
            audience,
        } = config;
        // An empty value is almost always a broken deployment template; silently treating it
        // as unset could disable a check (issuer, audience) or swap the key source.
        for (name, value) in [
            ("AUTH_JWT_SECRET", &jwt_secret),
            ("AUTH_JWKS_URL", &jwks_url),
            ("AUTH_ISSUER", &issuer),
            ("AUTH_AUDIENCE", &audience),
        ] {
            if value.as_deref().is_some_and(|v| v.trim().is_empty()) {
                bail!("{name} is set but empty");
            }
        }

        let jwks = jwks_url
            .map(|url| Jwks::new(url, min_refetch_interval))
            .transpose()?;

        let (secret, generated) = match jwt_secret {
            Some(secret) => (Some(secret), false),
            None if jwks.is_none() => {
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                (Some(hex::encode(bytes)), true)
            }
            None => (None, false),
        };
        if let Some(secret) = &secret {
            if secret.len() < MIN_SECRET_BYTES {
                tracing::warn!(
                    "AUTH_JWT_SECRET is shorter than {MIN_SECRET_BYTES} bytes; \
                     tokens signed with it can be brute-forced"
                );
            }
        }
        let hmac = secret.map(|secret| HmacKeys {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
        });

        Ok(Self {
            inner: Arc::new(Inner {
                hmac,
                jwks,
                issuer,
                audience,
                generated,
            }),
        })
    }

    /// True when no auth was configured and a per-process secret was generated.
    pub fn secret_was_generated(&self) -> bool {
        self.inner.generated
    }

    /// Verifies a raw JWT (without `Bearer `) and returns its principal.
    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        let header = peek_header(token)?;

        // The algorithm is pinned to the kind of key: the header chooses between the
        // configured key sources, and only ever the one matching its algorithm.
        let (algorithm, key) = match header.alg.as_str() {
            "HS256" => {
                let hmac = inner.hmac.as_ref().ok_or(AuthError::UnsupportedAlgorithm)?;
                (Algorithm::HS256, hmac.decoding.clone())
            }
            "RS256" => {
                let jwks = inner.jwks.as_ref().ok_or(AuthError::UnsupportedAlgorithm)?;
                (Algorithm::RS256, jwks.key_for(header.kid.as_deref()).await?)
            }
            _ => return Err(AuthError::UnsupportedAlgorithm),
        };

        let claims = jsonwebtoken::decode::<Claims>(token, &key, &inner.validation(algorithm))
            .map_err(map_jwt_error)?
            .claims;

        if let Some(expected) = &inner.audience {
            let in_aud = claims
                .aud
                .as_ref()
                .is_some_and(|aud| aud.contains(expected));
            let is_client = claims.client_id.as_deref() == Some(expected.as_str());
            if !in_aud && !is_client {
                return Err(AuthError::WrongAudience);
            }
        }

        let subject = [claims.sub, claims.username, claims.cognito_username]
            .into_iter()
            .flatten()
            .find(|s| !s.is_empty())
            .ok_or(AuthError::MissingClaim("sub"))?;
        let mut roles = Vec::new();
        for role in claims.groups.iter().filter_map(|g| Role::parse(g)) {
            if !roles.contains(&role) {
                roles.push(role);
            }
        }
        Ok(Principal { subject, roles })
    }

    /// Authenticates an `Authorization` header value or a WebSocket `connection_init` value:
    /// `None` is an anonymous caller (`Ok(None)`), `Bearer <jwt>` (scheme case-insensitive) is
    /// verified, and anything else, including an empty value, is
    /// [`AuthError::MalformedHeader`].
    pub async fn authenticate(
        &self,
        header_value: Option<&str>,
    ) -> Result<Option<Principal>, AuthError> {
        let Some(value) = header_value else {
            return Ok(None);
        };
        let (scheme, token) = value
            .trim()
            .split_once(|c: char| c.is_ascii_whitespace())
            .ok_or(AuthError::MalformedHeader)?;
        let token = token.trim();
        if !scheme.eq_ignore_ascii_case("bearer")
            || token.is_empty()
            || token.contains(|c: char| c.is_ascii_whitespace())
        {
            return Err(AuthError::MalformedHeader);
        }
        self.verify(token).await.map(Some)
    }

    /// Mints an HS256 token with the configured (or generated) secret. Claims: `sub`,
    /// `cognito:groups: [role]`, `iat`, `exp = now + ttl`, and `iss` / `aud` when configured.
    /// Fails when only a JWKS is configured: there is no secret to sign with.
    pub fn mint(&self, role: Role, subject: &str, ttl: Duration) -> anyhow::Result<String> {
        let inner = &self.inner;
        let Some(hmac) = &inner.hmac else {
            bail!("cannot mint a token: no AUTH_JWT_SECRET is configured (only AUTH_JWKS_URL)");
        };
        if subject.is_empty() {
            bail!("cannot mint a token for an empty subject");
        }
        let iat = unix_now();
        let exp = iat
            .checked_add(ttl.as_secs())
            .context("the token lifetime is too long")?;
        let claims = MintClaims {
            sub: subject,
            groups: [role.as_str()],
            iat,
            exp,
            iss: inner.issuer.as_deref(),
            aud: inner.audience.as_deref(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &hmac.encoding)
            .context("could not sign the token")
    }
}

impl Inner {
    fn validation(&self, algorithm: Algorithm) -> Validation {
        // `Validation::new` accepts exactly this one algorithm.
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECS;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        // The audience is checked by hand: Cognito access tokens carry `client_id`, not `aud`.
        validation.validate_aud = false;
        match &self.issuer {
            Some(issuer) => {
                validation.set_issuer(&[issuer]);
                validation.set_required_spec_claims(&["exp", "iss"]);
            }
            None => validation.set_required_spec_claims(&["exp"]),
        }
        validation
    }
}

/// The part of a JOSE header we inspect before choosing a key.
#[derive(Deserialize)]
struct PeekedHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    /// RFC 7515 §4.1.11: unknown critical extensions must be refused, and we know none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(AuthError::MalformedToken);
    }
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::MalformedToken);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::MalformedToken)?;
    let header: PeekedHeader =
        serde_json::from_slice(&bytes).map_err(|_| AuthError::MalformedToken)?;
    if header.crit.is_some() {
        return Err(AuthError::MalformedToken);
    }
    Ok(header)
}

fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
    match error.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingClaim("exp"),
            "iss" => AuthError::WrongIssuer,
            _ => AuthError::MalformedToken,
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            AuthError::UnsupportedAlgorithm
        }
        _ => AuthError::MalformedToken,
    }
}

/// The claims we read; `exp`, `nbf` and `iss` are checked by `jsonwebtoken` itself.
#[derive(Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default, rename = "cognito:username")]
    cognito_username: Option<String>,
    #[serde(default)]
    aud: Option<OneOrMany>,
    #[serde(default)]
    client_id: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn contains(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(one) => one == value,
            OneOrMany::Many(many) => many.iter().any(|v| v == value),
        }
    }
}

#[derive(Serialize)]
struct MintClaims<'a> {
    sub: &'a str,
    #[serde(rename = "cognito:groups")]
    groups: [&'static str; 1],
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// RS256 keys from a JWKS URL, fetched lazily and cached by `kid`.
struct Jwks {
    url: String,
    client: reqwest::Client,
    min_refetch_interval: Duration,
    keys: RwLock<KeySet>,
    /// When the last fetch was attempted. Held across a fetch, so concurrent misses wait for
    /// that one fetch instead of each starting their own.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

#[derive(Default)]
struct KeySet {
    loaded: bool,
    by_kid: HashMap<String, DecodingKey>,
    /// The key for tokens without `kid`: set only when the JWKS has exactly one usable key.
    sole: Option<DecodingKey>,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Option<DecodingKey> {
        match kid {
            Some(kid) => self.by_kid.get(kid).cloned(),
            None => self.sole.clone(),
        }
    }
}

#[derive(Deserialize)]
struct JwksDocument {
    keys: Vec<serde_json::Value>,
}

#[derive(Deserialize)]
struct RawJwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    key_ops: Option<Vec<String>>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

impl Jwks {
    fn new(url: String, min_refetch_interval: Duration) -> anyhow::Result<Self> {
        let parsed = reqwest::Url::parse(&url).context("AUTH_JWKS_URL is not a valid URL")?;
        if !matches!(parsed.scheme(), "https" | "http") {
            bail!("AUTH_JWKS_URL must be an http(s) URL");
        }
        let client = reqwest::Client::builder()
            .timeout(JWKS_TIMEOUT)
            .connect_timeout(JWKS_TIMEOUT)
            .build()
            .context("could not build the JWKS HTTP client")?;
        Ok(Self {
            url,
            client,
            min_refetch_interval,
            keys: RwLock::new(KeySet::default()),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    fn cached(&self, kid: Option<&str>) -> (Option<DecodingKey>, bool) {
        // Nothing panics while the lock is held, so a poisoned lock still holds good data.
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        (keys.find(kid), keys.loaded)
    }

    async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
        if let (Some(key), _) = self.cached(kid) {
            return Ok(key);
        }
        let mut last_attempt = self.last_attempt.lock().await;
        // Another task may have refreshed the keys while this one waited for the lock.
        let (key, loaded) = self.cached(kid);
        if let Some(key) = key {
            return Ok(key);
        }
        let may_fetch = last_attempt.is_none_or(|at| at.elapsed() >= self.min_refetch_interval);
        if !may_fetch {
            return Err(if loaded {
                AuthError::UnknownKey
            } else {
                AuthError::JwksUnavailable
            });
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(set) => {
                let key = set.find(kid);
                *self.keys.write().unwrap_or_else(|e| e.into_inner()) = set;
                key.ok_or(AuthError::UnknownKey)
            }
            Err(error) => {
                tracing::warn!(url = %self.url, error = format!("{error:#}"), "could not fetch the JWKS");
                Err(AuthError::JwksUnavailable)
            }
        }
    }

    async fn fetch(&self) -> anyhow::Result<KeySet> {
        let mut response = self
            .client
            .get(&self.url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .context("request failed")?
            .error_for_status()
            .context("unexpected status")?;
        if response
            .content_length()
            .is_some_and(|len| len > JWKS_MAX_BYTES as u64)
        {
            bail!("the JWKS document is larger than {JWKS_MAX_BYTES} bytes");
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.context("reading the body failed")? {
            if body.len() + chunk.len() > JWKS_MAX_BYTES {
                bail!("the JWKS document is larger than {JWKS_MAX_BYTES} bytes");
            }
            body.extend_from_slice(&chunk);
        }
        let document: JwksDocument =
            serde_json::from_slice(&body).context("the response is not a JWKS document")?;
        Ok(key_set(document))
    }
}

/// Keeps the RSA signature keys usable with RS256; others (EC, encryption keys, keys for
/// other algorithms, malformed entries) are skipped rather than failing the whole set.
fn key_set(document: JwksDocument) -> KeySet {
    let mut usable = Vec::new();
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<RawJwk>(value) else {
            continue;
        };
        let for_signatures = jwk.use_.as_deref().is_none_or(|u| u == "sig")
            && jwk
                .key_ops
                .as_ref()
                .is_none_or(|ops| ops.iter().any(|op| op == "verify"));
        if jwk.kty != "RSA" || !for_signatures || jwk.alg.as_deref().is_some_and(|a| a != "RS256") {
            continue;
        }
        let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
            continue;
        };
        let Ok(key) = DecodingKey::from_rsa_components(n, e) else {
            continue;
        };
        usable.push((jwk.kid, key));
    }

    let mut set = KeySet {
        loaded: true,
        ..KeySet::default()
    };
    if usable.len() == 1 {
        set.sole = Some(usable[0].1.clone());
    }
    for (kid, key) in usable {
        if let Some(kid) = kid {
            // On a duplicated kid, the first entry wins: the document order is the IdP's.
            set.by_kid.entry(kid).or_insert(key);
        }
    }
    set
}

/// Parses a token lifetime: a positive whole number followed by `s`, `m`, `h` or `d`
/// ("90s", "15m", "1h", "2d").
pub fn parse_ttl(raw: &str) -> anyhow::Result<Duration> {
    const EXPECTED: &str =
        "expected a positive number followed by s, m, h or d (e.g. 90s, 15m, 1h, 2d)";
    let trimmed = raw.trim();
    let Some(unit) = trimmed.chars().last() else {
        bail!("empty token lifetime: {EXPECTED}");
    };
    let seconds_per_unit: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 60 * 60,
        'd' => 24 * 60 * 60,
        _ => bail!("invalid token lifetime {raw:?}: {EXPECTED}"),
    };
    let digits = &trimmed[..trimmed.len() - unit.len_utf8()];
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        bail!("invalid token lifetime {raw:?}: {EXPECTED}");
    }
    let count: u64 = digits
        .parse()
        .with_context(|| format!("invalid token lifetime {raw:?}: the number is too large"))?;
    if count == 0 {
        bail!("invalid token lifetime {raw:?}: it must be longer than zero");
    }
    let seconds = count
        .checked_mul(seconds_per_unit)
        .with_context(|| format!("invalid token lifetime {raw:?}: the number is too large"))?;
    Ok(Duration::from_secs(seconds))
}

/// Finds the authorization value in a WebSocket `connection_init` payload: an
/// `Authorization` key (any case) at the top level, or inside a `headers` object
/// (`{"headers": {"Authorization": ...}}`). `None` when absent or `null`.
///
/// A present value that is not a string is returned as its JSON text, so that it fails
/// [`Authenticator::authenticate`] as malformed instead of silently meaning anonymous.
pub fn token_from_init_payload(payload: &serde_json::Value) -> Option<String> {
    fn authorization(object: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
        let (_, value) = object
            .iter()
            .find(|(key, value)| key.eq_ignore_ascii_case("authorization") && !value.is_null())?;
        Some(match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
    }

    let object = payload.as_object()?;
    authorization(object).or_else(|| {
        object
            .iter()
            .filter(|(key, _)| key.eq_ignore_ascii_case("headers"))
            .find_map(|(_, headers)| headers.as_object().and_then(authorization))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::{Mutex, OnceLock};

    use axum::extract::State;
    use axum::http::StatusCode;
    use axum::routing::get;
    use axum::{Json, Router};
    use jsonwebtoken::encode;
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::pkcs8::{EncodePublicKey, LineEnding};
    use rsa::traits::PublicKeyParts;
    use rsa::RsaPrivateKey;
    use serde_json::{json, Value};

    const SECRET: &str = "a-test-secret-that-is-at-least-32-bytes-long";
    const HOUR: Duration = Duration::from_secs(3600);

    fn hs_only() -> Authenticator {
        Authenticator::new(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        })
        .unwrap()
    }

    fn with_claims_checks() -> Authenticator {
        Authenticator::new(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            issuer: Some("https://idp.example".into()),
            audience: Some("scoreline-app".into()),
            ..AuthConfig::default()
        })
        .unwrap()
    }

    fn now() -> i64 {
        unix_now() as i64
    }

    fn hs256(secret: &str, claims: &Value) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn b64(value: &Value) -> String {
        URL_SAFE_NO_PAD.encode(value.to_string())
    }

    fn valid_claims() -> Value {
        json!({"sub": "user-1", "cognito:groups": ["operator"], "iat": now(), "exp": now() + 600})
    }

    // --- HS256 ---

    #[tokio::test]
    async fn a_minted_operator_token_verifies_as_an_operator() {
        let auth = hs_only();
        let token = auth.mint(Role::Operator, "desk-1", HOUR).unwrap();
        let principal = auth.verify(&token).await.unwrap();
        assert_eq!(principal.subject, "desk-1");
        assert_eq!(principal.roles, vec![Role::Operator]);
        assert!(principal.can_operate());
        assert!(!principal.is_admin());
    }

    #[tokio::test]
    async fn a_minted_admin_token_verifies_as_an_admin_who_can_operate() {
        let auth = hs_only();
        let token = auth.mint(Role::Admin, "root", HOUR).unwrap();
        let principal = auth.verify(&token).await.unwrap();
        assert_eq!(principal.roles, vec![Role::Admin]);
        assert!(principal.is_admin());
        assert!(principal.can_operate());
    }

    #[tokio::test]
    async fn a_token_without_known_groups_has_no_roles() {
        let auth = hs_only();
        let claims = json!({"sub": "fan", "cognito:groups": ["fans", "Admin"], "exp": now() + 60});
        let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
        assert!(principal.roles.is_empty());
        assert!(!principal.can_operate());
        assert!(!principal.is_admin());
    }

    #[tokio::test]
    async fn repeated_groups_give_each_role_once() {
        let auth = hs_only();
        let claims = json!({"sub": "u", "cognito:groups": ["operator", "admin", "operator"], "exp": now() + 60});
        let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
        assert_eq!(principal.roles, vec![Role::Operator, Role::Admin]);
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let auth = hs_only();
        for ago in [120, 45] {
            let claims = json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() - ago});
            assert_eq!(
                auth.verify(&hs256(SECRET, &claims)).await,
                Err(AuthError::Expired),
                "expired {ago}s ago"
            );
        }
    }

    #[tokio::test]
    async fn a_token_expired_within_the_leeway_is_still_accepted() {
        let auth = hs_only();
        let claims = json!({"sub": "u", "exp": now() - 5});
        assert!(auth.verify(&hs256(SECRET, &claims)).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_used_before_its_nbf_is_refused() {
        let auth = hs_only();
        let claims = json!({"sub": "u", "nbf": now() + 300, "exp": now() + 600});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::NotYetValid)
        );
    }

    #[tokio::test]
    async fn a_token_signed_with_another_secret_is_refused() {
        let auth = hs_only();
        let forged = hs256("another-secret-that-is-also-32-bytes-long", &valid_claims());
        assert_eq!(auth.verify(&forged).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn a_token_with_a_tampered_payload_is_refused() {
        let auth = hs_only();
        let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
        let mut parts: Vec<&str> = token.split('.').collect();
        let escalated = b64(&json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() + 600}));
        parts[1] = &escalated;
        assert_eq!(
            auth.verify(&parts.join(".")).await,
            Err(AuthError::BadSignature)
        );
    }

    #[tokio::test]
    async fn an_alg_none_token_is_refused() {
        let auth = hs_only();
        let header = b64(&json!({"alg": "none", "typ": "JWT"}));
        let payload = b64(&json!({"sub": "u", "cognito:groups": ["admin"], "exp": now() + 600}));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
        ] {
            assert!(auth.verify(&token).await.is_err());
        }
        assert_eq!(
            auth.verify(&format!("{header}.{payload}.")).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
        for alg in ["None", "NONE", "HS512", "RS512", "ES256"] {
            let header = b64(&json!({"alg": alg, "typ": "JWT"}));
            assert_eq!(
                auth.verify(&format!("{header}.{payload}.")).await,
                Err(AuthError::UnsupportedAlgorithm),
                "{alg}"
            );
        }
    }

    #[tokio::test]
    async fn an_rs256_token_is_refused_when_only_a_secret_is_configured() {
        let auth = hs_only();
        let token = rs256(&keys().primary, Some("k1"), &valid_claims());
        assert_eq!(
            auth.verify(&token).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
    }

    #[tokio::test]
    async fn a_token_without_exp_is_refused() {
        let auth = hs_only();
        let claims = json!({"sub": "u", "cognito:groups": ["admin"]});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::MissingClaim("exp"))
        );
        let claims = json!({"sub": "u", "exp": "tomorrow"});
        assert!(auth.verify(&hs256(SECRET, &claims)).await.is_err());
    }

    #[tokio::test]
    async fn a_token_without_any_subject_is_refused() {
        let auth = hs_only();
        let claims = json!({"sub": "", "cognito:groups": ["admin"], "exp": now() + 60});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::MissingClaim("sub"))
        );
    }

    #[tokio::test]
    async fn the_subject_falls_back_to_the_username_claims() {
        let auth = hs_only();
        let claims = json!({"username": "alice", "exp": now() + 60});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await.unwrap().subject,
            "alice"
        );
        let claims = json!({"cognito:username": "bob", "exp": now() + 60});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await.unwrap().subject,
            "bob"
        );
    }

    #[tokio::test]
    async fn a_token_from_another_issuer_is_refused() {
        let auth = with_claims_checks();
        let claims = json!({"sub": "u", "iss": "https://evil.example", "aud": "scoreline-app", "exp": now() + 60});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::WrongIssuer)
        );
    }

    #[tokio::test]
    async fn a_token_without_an_issuer_is_refused_when_one_is_configured() {
        let auth = with_claims_checks();
        let claims = json!({"sub": "u", "aud": "scoreline-app", "exp": now() + 60});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::WrongIssuer)
        );
    }

    #[tokio::test]
    async fn a_token_for_another_audience_is_refused() {
        let auth = with_claims_checks();
        for claims in [
            json!({"sub": "u", "iss": "https://idp.example", "aud": "other-app", "exp": now() + 60}),
            json!({"sub": "u", "iss": "https://idp.example", "aud": ["a", "b"], "exp": now() + 60}),
            json!({"sub": "u", "iss": "https://idp.example", "client_id": "other-app", "exp": now() + 60}),
            json!({"sub": "u", "iss": "https://idp.example", "exp": now() + 60}),
        ] {
            assert_eq!(
                auth.verify(&hs256(SECRET, &claims)).await,
                Err(AuthError::WrongAudience),
                "{claims}"
            );
        }
    }

    #[tokio::test]
    async fn a_matching_aud_is_accepted_as_a_string_or_in_a_list() {
        let auth = with_claims_checks();
        for aud in [json!("scoreline-app"), json!(["other", "scoreline-app"])] {
            let claims =
                json!({"sub": "u", "iss": "https://idp.example", "aud": aud, "exp": now() + 60});
            assert!(auth.verify(&hs256(SECRET, &claims)).await.is_ok(), "{aud}");
        }
    }

    #[tokio::test]
    async fn a_client_id_is_accepted_as_the_audience() {
        let auth = with_claims_checks();
        let claims = json!({
            "sub": "u", "iss": "https://idp.example", "client_id": "scoreline-app",
            "token_use": "access", "cognito:groups": ["operator"], "exp": now() + 60,
        });
        let principal = auth.verify(&hs256(SECRET, &claims)).await.unwrap();
        assert_eq!(principal.roles, vec![Role::Operator]);
    }

    #[tokio::test]
    async fn minted_tokens_carry_the_configured_issuer_and_audience() {
        let auth = with_claims_checks();
        let token = auth.mint(Role::Admin, "root", HOUR).unwrap();
        assert!(auth.verify(&token).await.unwrap().is_admin());
        // The same secret without those claims configured still sees them in the payload.
        let payload = token.split('.').nth(1).unwrap();
        let claims: Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        assert_eq!(claims["iss"], "https://idp.example");
        assert_eq!(claims["aud"], "scoreline-app");
        assert_eq!(claims["cognito:groups"], json!(["admin"]));
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 3600);
    }

    #[tokio::test]
    async fn garbage_tokens_are_malformed() {
        let auth = hs_only();
        for token in ["", "abc", "a.b", "a.b.c", "a.b.c.d", "!!!.e30."] {
            assert_eq!(
                auth.verify(token).await,
                Err(AuthError::MalformedToken),
                "{token:.20}"
            );
        }
    }

    #[tokio::test]
    async fn an_oversized_token_is_refused_even_when_signed() {
        let auth = hs_only();
        let claims = json!({"sub": "u", "exp": now() + 60, "padding": "x".repeat(20_000)});
        assert_eq!(
            auth.verify(&hs256(SECRET, &claims)).await,
            Err(AuthError::MalformedToken)
        );
    }

    #[tokio::test]
    async fn a_token_with_critical_header_extensions_is_refused() {
        let auth = hs_only();
        let signed_part = format!(
            "{}.{}",
            b64(&json!({"alg": "HS256", "typ": "JWT", "crit": ["x-custom"], "x-custom": 1})),
            b64(&valid_claims())
        );
        let signature = jsonwebtoken::crypto::sign(
            signed_part.as_bytes(),
            &EncodingKey::from_secret(SECRET.as_bytes()),
            Algorithm::HS256,
        )
        .unwrap();
        assert_eq!(
            auth.verify(&format!("{signed_part}.{signature}")).await,
            Err(AuthError::MalformedToken)
        );
    }

    #[test]
    fn without_any_configuration_a_secret_is_generated() {
        let auth = Authenticator::new(AuthConfig::default()).unwrap();
        assert!(auth.secret_was_generated());
        assert!(!hs_only().secret_was_generated());
        assert!(auth.mint(Role::Admin, "admin", HOUR).is_ok());
    }

    #[tokio::test]
    async fn generated_secrets_differ_between_authenticators() {
        let first = Authenticator::new(AuthConfig::default()).unwrap();
        let second = Authenticator::new(AuthConfig::default()).unwrap();
        let token = first.mint(Role::Admin, "admin", HOUR).unwrap();
        assert!(first.verify(&token).await.is_ok());
        assert_eq!(second.verify(&token).await, Err(AuthError::BadSignature));
    }

    #[test]
    fn minting_without_a_secret_fails() {
        let auth = Authenticator::new(AuthConfig {
            jwks_url: Some("http://127.0.0.1:9/jwks.json".into()),
            ..AuthConfig::default()
        })
        .unwrap();
        assert!(!auth.secret_was_generated());
        assert!(auth.mint(Role::Admin, "root", HOUR).is_err());
    }

    #[test]
    fn empty_or_invalid_settings_are_rejected() {
        for config in [
            AuthConfig {
                jwt_secret: Some(String::new()),
                ..AuthConfig::default()
            },
            AuthConfig {
                jwks_url: Some(" ".into()),
                ..AuthConfig::default()
            },
            AuthConfig {
                jwks_url: Some("not a url".into()),
                ..AuthConfig::default()
            },
            AuthConfig {
                jwks_url: Some("ftp://idp.example/jwks".into()),
                ..AuthConfig::default()
            },
            AuthConfig {
                jwt_secret: Some(SECRET.into()),
                issuer: Some(String::new()),
                ..AuthConfig::default()
            },
        ] {
            assert!(Authenticator::new(config.clone()).is_err(), "{config:?}");
        }
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let config = AuthConfig {
            jwt_secret: Some(SECRET.into()),
            ..AuthConfig::default()
        };
        assert!(!format!("{config:?}").contains(SECRET));
        let auth = Authenticator::new(config).unwrap();
        assert!(!format!("{auth:?}").contains(SECRET));
    }

    // --- authenticate ---

    #[tokio::test]
    async fn no_authorization_value_means_anonymous() {
        assert_eq!(hs_only().authenticate(None).await, Ok(None));
    }

    #[tokio::test]
    async fn the_bearer_scheme_is_case_insensitive() {
        let auth = hs_only();
        let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
        for value in [
            format!("Bearer {token}"),
            format!("bearer {token}"),
            format!("BEARER   {token} "),
        ] {
            let principal = auth.authenticate(Some(&value)).await.unwrap().unwrap();
            assert_eq!(principal.subject, "u");
        }
    }

    #[tokio::test]
    async fn a_value_without_the_bearer_scheme_is_malformed() {
        let auth = hs_only();
        let token = auth.mint(Role::Operator, "u", HOUR).unwrap();
        for value in [
            token.clone(),
            format!("Basic {token}"),
            format!("Bearer{token}"),
            "Bearer".into(),
            "Bearer ".into(),
            String::new(),
            format!("Bearer {token} extra"),
        ] {
            assert_eq!(
                auth.authenticate(Some(&value)).await,
                Err(AuthError::MalformedHeader),
                "{value:.12}"
            );
        }
    }

    #[tokio::test]
    async fn an_invalid_bearer_token_is_an_error_not_anonymous() {
        let auth = hs_only();
        assert_eq!(
            auth.authenticate(Some("Bearer not.a.jwt")).await,
            Err(AuthError::MalformedToken)
        );
    }

    // --- parse_ttl ---

    #[test]
    fn ttls_with_a_unit_are_parsed() {
        assert_eq!(parse_ttl("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_ttl("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_ttl("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_ttl("2d").unwrap(), Duration::from_secs(172_800));
        assert_eq!(parse_ttl(" 1h ").unwrap(), Duration::from_secs(3600));
    }

    #[test]
    fn malformed_ttls_are_rejected_with_a_clear_error() {
        for raw in [
            "",
            "h",
            "1",
            "60",
            "1x",
            "1H",
            "-1h",
            "+1h",
            "1.5h",
            "0s",
            "1h30m",
            "1 h",
            "ä",
            "99999999999999999999s",
            "999999999999999999d",
        ] {
            let error = parse_ttl(raw).expect_err(raw);
            assert!(error.to_string().contains("lifetime"), "{raw}: {error}");
        }
    }

    // --- token_from_init_payload ---

    #[test]
    fn the_authorization_key_is_found_in_any_case() {
        for key in ["Authorization", "authorization", "AUTHORIZATION"] {
            let payload = json!({ key: "Bearer abc" });
            assert_eq!(
                token_from_init_payload(&payload).as_deref(),
                Some("Bearer abc")
            );
        }
    }

    #[test]
    fn the_authorization_key_is_found_inside_headers() {
        let payload = json!({"headers": {"authorization": "Bearer abc"}});
        assert_eq!(
            token_from_init_payload(&payload).as_deref(),
            Some("Bearer abc")
        );
        let payload =
            json!({"Authorization": "Bearer top", "headers": {"Authorization": "Bearer nested"}});
        assert_eq!(
            token_from_init_payload(&payload).as_deref(),
            Some("Bearer top")
        );
    }

    #[test]
    fn an_absent_authorization_gives_none() {
        for payload in [
            json!({}),
            json!(null),
            json!("Bearer abc"),
            json!({"token": "Bearer abc"}),
            json!({"Authorization": null}),
            json!({"headers": "Authorization"}),
            json!({"headers": {"X-Other": "1"}}),
        ] {
            assert_eq!(token_from_init_payload(&payload), None, "{payload}");
        }
    }

    #[tokio::test]
    async fn a_non_string_authorization_is_malformed_rather_than_anonymous() {
        let payload = json!({"Authorization": {"token": "abc"}});
        let value = token_from_init_payload(&payload);
        assert!(value.is_some());
        assert_eq!(
            hs_only().authenticate(value.as_deref()).await,
            Err(AuthError::MalformedHeader)
        );
    }

    // --- RS256 via JWKS ---

    struct TestKeys {
        primary: RsaPrivateKey,
        other: RsaPrivateKey,
    }

    /// RSA key generation is slow, so the tests share two keys.
    fn keys() -> &'static TestKeys {
        static KEYS: OnceLock<TestKeys> = OnceLock::new();
        KEYS.get_or_init(|| {
            let mut rng = rand::thread_rng();
            TestKeys {
                primary: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
                other: RsaPrivateKey::new(&mut rng, 2048).unwrap(),
            }
        })
    }

    fn rs256(key: &RsaPrivateKey, kid: Option<&str>, claims: &Value) -> String {
        let pem = key.to_pkcs1_pem(LineEnding::LF).unwrap();
        let mut header = Header::new(Algorithm::RS256);
        header.kid = kid.map(str::to_owned);
        encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        )
        .unwrap()
    }

    fn jwk(key: &RsaPrivateKey, kid: Option<&str>) -> Value {
        let public = key.to_public_key();
        let mut jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256",
            "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
            "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
        });
        if let Some(kid) = kid {
            jwk["kid"] = json!(kid);
        }
        jwk
    }

    #[derive(Clone)]
    struct JwksServer {
        url: String,
        document: Arc<Mutex<Value>>,
        hits: Arc<AtomicUsize>,
        down: Arc<AtomicBool>,
    }

    impl JwksServer {
        async fn start(keys: Vec<Value>) -> Self {
            let server = JwksServer {
                url: String::new(),
                document: Arc::new(Mutex::new(json!({ "keys": keys }))),
                hits: Arc::new(AtomicUsize::new(0)),
                down: Arc::new(AtomicBool::new(false)),
            };
            async fn serve(State(server): State<JwksServer>) -> Result<Json<Value>, StatusCode> {
                server.hits.fetch_add(1, Ordering::SeqCst);
                if server.down.load(Ordering::SeqCst) {
                    return Err(StatusCode::SERVICE_UNAVAILABLE);
                }
                Ok(Json(server.document.lock().unwrap().clone()))
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let url = format!(
                "http://{}/.well-known/jwks.json",
                listener.local_addr().unwrap()
            );
            let app = Router::new()
                .route("/.well-known/jwks.json", get(serve))
                .with_state(server.clone());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            JwksServer { url, ..server }
        }

        fn set_keys(&self, keys: Vec<Value>) {
            *self.document.lock().unwrap() = json!({ "keys": keys });
        }

        fn set_down(&self, down: bool) {
            self.down.store(down, Ordering::SeqCst);
        }

        fn hits(&self) -> usize {
            self.hits.load(Ordering::SeqCst)
        }

        fn authenticator(&self) -> Authenticator {
            Authenticator::new(AuthConfig {
                jwks_url: Some(self.url.clone()),
                ..AuthConfig::default()
            })
            .unwrap()
        }
    }

    #[tokio::test]
    async fn a_valid_rs256_token_is_accepted_with_its_roles() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let auth = server.authenticator();
        assert!(!auth.secret_was_generated());
        assert_eq!(server.hits(), 0, "the JWKS is fetched lazily");

        let claims =
            json!({"sub": "u-1", "cognito:groups": ["admin", "viewers"], "exp": now() + 60});
        let principal = auth
            .verify(&rs256(&keys().primary, Some("k1"), &claims))
            .await
            .unwrap();
        assert_eq!(principal.subject, "u-1");
        assert_eq!(principal.roles, vec![Role::Admin]);

        // Cached: a second verification does not fetch again.
        auth.verify(&rs256(&keys().primary, Some("k1"), &claims))
            .await
            .unwrap();
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn an_expired_rs256_token_is_refused() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let claims = json!({"sub": "u", "exp": now() - 120});
        assert_eq!(
            server
                .authenticator()
                .verify(&rs256(&keys().primary, Some("k1"), &claims))
                .await,
            Err(AuthError::Expired)
        );
    }

    #[tokio::test]
    async fn an_rs256_token_with_an_unknown_kid_is_refused() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let token = rs256(&keys().primary, Some("k-unknown"), &valid_claims());
        assert_eq!(
            server.authenticator().verify(&token).await,
            Err(AuthError::UnknownKey)
        );
    }

    #[tokio::test]
    async fn an_rs256_token_signed_by_another_key_with_a_known_kid_is_refused() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let token = rs256(&keys().other, Some("k1"), &valid_claims());
        assert_eq!(
            server.authenticator().verify(&token).await,
            Err(AuthError::BadSignature)
        );
    }

    #[tokio::test]
    async fn an_hs256_token_signed_with_the_public_key_is_refused() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let public_pem = keys()
            .primary
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some("k1".into());
        let confused = encode(
            &header,
            &valid_claims(),
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap();

        // JWKS only: HS256 is not an accepted algorithm at all.
        let auth = server.authenticator();
        assert_eq!(
            auth.verify(&confused).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
        // Secret and JWKS: HS256 is checked against the secret only, never the RSA key.
        let both = Authenticator::new(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .unwrap();
        assert_eq!(both.verify(&confused).await, Err(AuthError::BadSignature));
    }

    #[tokio::test]
    async fn an_hs256_token_is_refused_when_only_jwks_is_configured() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let token = hs256(SECRET, &valid_claims());
        assert_eq!(
            server.authenticator().verify(&token).await,
            Err(AuthError::UnsupportedAlgorithm)
        );
        assert_eq!(server.hits(), 0);
    }

    #[tokio::test]
    async fn with_a_secret_and_a_jwks_both_algorithms_verify() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let auth = Authenticator::new(AuthConfig {
            jwt_secret: Some(SECRET.into()),
            jwks_url: Some(server.url.clone()),
            ..AuthConfig::default()
        })
        .unwrap();
        let minted = auth.mint(Role::Operator, "desk", HOUR).unwrap();
        assert_eq!(auth.verify(&minted).await.unwrap().subject, "desk");
        let signed = rs256(&keys().primary, Some("k1"), &valid_claims());
        assert_eq!(auth.verify(&signed).await.unwrap().subject, "user-1");
    }

    #[tokio::test]
    async fn unknown_kids_refetch_the_jwks_at_most_once_per_interval() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let auth = server.authenticator();
        auth.verify(&rs256(&keys().primary, Some("k1"), &valid_claims()))
            .await
            .unwrap();
        assert_eq!(server.hits(), 1);
        for i in 0..5 {
            let token = rs256(
                &keys().primary,
                Some(&format!("made-up-{i}")),
                &valid_claims(),
            );
            assert_eq!(auth.verify(&token).await, Err(AuthError::UnknownKey));
        }
        assert_eq!(server.hits(), 1, "the refetch is rate limited");
    }

    #[tokio::test]
    async fn a_rotated_key_is_picked_up_by_a_refetch() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let auth = Authenticator::build(
            AuthConfig {
                jwks_url: Some(server.url.clone()),
                ..AuthConfig::default()
            },
            Duration::ZERO,
        )
        .unwrap();
        let old = rs256(&keys().primary, Some("k1"), &valid_claims());
        auth.verify(&old).await.unwrap();

        server.set_keys(vec![jwk(&keys().other, Some("k2"))]);
        let new = rs256(&keys().other, Some("k2"), &valid_claims());
        auth.verify(&new).await.unwrap();
        assert_eq!(server.hits(), 2);
        // The retired key is gone with the refetch.
        auth.verify(&new).await.unwrap();
        assert_eq!(auth.verify(&old).await, Err(AuthError::UnknownKey));
    }

    #[tokio::test]
    async fn a_token_without_kid_uses_the_only_key_of_the_jwks() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        let token = rs256(&keys().primary, None, &valid_claims());
        assert!(server.authenticator().verify(&token).await.is_ok());
    }

    #[tokio::test]
    async fn a_token_without_kid_is_refused_when_the_jwks_has_several_keys() {
        let server = JwksServer::start(vec![
            jwk(&keys().primary, Some("k1")),
            jwk(&keys().other, Some("k2")),
        ])
        .await;
        let auth = server.authenticator();
        let token = rs256(&keys().primary, None, &valid_claims());
        assert_eq!(auth.verify(&token).await, Err(AuthError::UnknownKey));
        // Both keys are usable by kid.
        for (key, kid) in [(&keys().primary, "k1"), (&keys().other, "k2")] {
            assert!(auth
                .verify(&rs256(key, Some(kid), &valid_claims()))
                .await
                .is_ok());
        }
    }

    #[tokio::test]
    async fn keys_not_meant_for_rs256_signatures_are_ignored() {
        let mut encryption = jwk(&keys().primary, Some("enc"));
        encryption["use"] = json!("enc");
        let mut other_alg = jwk(&keys().primary, Some("ps"));
        other_alg["alg"] = json!("PS256");
        let mut wrong_ops = jwk(&keys().primary, Some("ops"));
        wrong_ops["key_ops"] = json!(["encrypt"]);
        let mut no_use = jwk(&keys().primary, Some("plain"));
        no_use.as_object_mut().unwrap().remove("use");
        let server = JwksServer::start(vec![
            encryption,
            other_alg,
            wrong_ops,
            json!({"kty": "EC", "kid": "ec", "crv": "P-256", "x": "AA", "y": "AA"}),
            json!({"kty": "RSA", "kid": "broken"}),
            json!("not an object"),
            no_use,
        ])
        .await;
        let auth = server.authenticator();
        for kid in ["enc", "ps", "ops", "ec", "broken"] {
            let token = rs256(&keys().primary, Some(kid), &valid_claims());
            assert_eq!(
                auth.verify(&token).await,
                Err(AuthError::UnknownKey),
                "{kid}"
            );
        }
        let token = rs256(&keys().primary, Some("plain"), &valid_claims());
        assert!(
            auth.verify(&token).await.is_ok(),
            "a key without `use` is accepted"
        );
    }

    #[tokio::test]
    async fn an_unreachable_jwks_makes_the_keys_unavailable() {
        // A port that was just free: connections are refused.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        drop(listener);
        let auth = Authenticator::new(AuthConfig {
            jwks_url: Some(url),
            ..AuthConfig::default()
        })
        .unwrap();
        let token = rs256(&keys().primary, Some("k1"), &valid_claims());
        assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
    }

    #[tokio::test]
    async fn a_failing_jwks_is_not_retried_before_the_interval() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        server.set_down(true);
        let auth = server.authenticator();
        let token = rs256(&keys().primary, Some("k1"), &valid_claims());
        for _ in 0..3 {
            assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
        }
        assert_eq!(server.hits(), 1);
    }

    #[tokio::test]
    async fn a_jwks_that_recovers_is_used_after_the_interval() {
        let server = JwksServer::start(vec![jwk(&keys().primary, Some("k1"))]).await;
        server.set_down(true);
        let auth = Authenticator::build(
            AuthConfig {
                jwks_url: Some(server.url.clone()),
                ..AuthConfig::default()
            },
            Duration::ZERO,
        )
        .unwrap();
        let token = rs256(&keys().primary, Some("k1"), &valid_claims());
        assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
        server.set_down(false);
        assert!(auth.verify(&token).await.is_ok());
        assert_eq!(server.hits(), 2);
    }

    #[tokio::test]
    async fn a_non_jwks_response_makes_the_keys_unavailable() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/jwks.json", listener.local_addr().unwrap());
        let app = Router::new().route("/jwks.json", get(|| async { "<html>oops</html>" }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let auth = Authenticator::new(AuthConfig {
            jwks_url: Some(url),
            ..AuthConfig::default()
        })
        .unwrap();
        let token = rs256(&keys().primary, Some("k1"), &valid_claims());
        assert_eq!(auth.verify(&token).await, Err(AuthError::JwksUnavailable));
    }
}
