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
//!
//! # Layout
//! - here: roles, principals, configuration, errors, and the [`Authenticator`] that
//!   verifies and mints tokens; the helper for token lifetimes.
//! - `claims`: what is read from a token before and after its signature is checked (the
//!   peeked header, the claims), what a minted token carries, and how `jsonwebtoken`'s
//!   errors become [`AuthError`]s.
//! - `jwks`: RS256 keys from a JWKS URL: fetching, size and time limits, caching by `kid`,
//!   and the refetch interval.
//! - `init`: the credential of a WebSocket `connection_init` payload, refusing ambiguous ones.

mod claims;
mod init;
mod jwks;

pub(crate) use jwks::get_document;
#[cfg(test)]
mod tests;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::RngCore as _;
use scoreline_core::Secret;

use claims::{map_jwt_error, peek_header, unix_now, Claims, MintClaims};
pub use init::{token_from_init_message, token_from_init_payload};
use jwks::{Jwks, JWKS_MIN_REFETCH_INTERVAL};

/// Clock skew tolerated on `exp` and `nbf`. Kept small: it is the time a stolen, expired
/// token stays usable, and the servers and the IdP are NTP-synchronised anyway.
const LEEWAY_SECS: u64 = 30;
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

/// Authentication settings, usually from the environment. `Debug` never shows the secret.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    /// `AUTH_JWT_SECRET`: HS256 secret (its UTF-8 bytes are the HMAC key).
    pub jwt_secret: Option<Secret>,
    /// `AUTH_JWKS_URL`: where RS256 verification keys are published.
    pub jwks_url: Option<String>,
    /// `AUTH_ISSUER`: when set, tokens must carry exactly this `iss`.
    pub issuer: Option<String>,
    /// `AUTH_AUDIENCE`: when set, the token's `aud` or `client_id` must be this value
    /// (Cognito ID tokens carry `aud`, access tokens `client_id`).
    pub audience: Option<String>,
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
    /// More than one credential, e.g. `Authorization` and `authorization` in one
    /// `connection_init` payload: refused rather than guessed at.
    #[error("more than one authorization value was sent: send exactly one")]
    AmbiguousCredentials,
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
        let jwt_secret = jwt_secret.map(|s| s.expose().to_string());
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
