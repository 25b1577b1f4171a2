//! RS256 verification keys from a JWKS URL (e.g. a Cognito user pool's
//! `/.well-known/jwks.json`): fetched lazily, bounded in time and size, cached by `kid`, and
//! refetched on an unknown `kid` no more often than the refetch interval, so made-up key ids
//! cannot turn this server into a request amplifier against the IdP.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use jsonwebtoken::DecodingKey;
use serde::Deserialize;

use super::AuthError;

/// Upper bound for one JWKS request, so a slow IdP cannot hold requests for long.
const JWKS_TIMEOUT: Duration = Duration::from_secs(5);
/// Minimum time between two JWKS fetches (successful or not).
pub(super) const JWKS_MIN_REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// A JWKS document is a few KiB; anything far larger is not one.
const JWKS_MAX_BYTES: usize = 256 * 1024;

/// RS256 keys from a JWKS URL, fetched lazily and cached by `kid`.
pub(super) struct Jwks {
    pub(super) url: String,
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
    pub(super) fn new(url: String, min_refetch_interval: Duration) -> anyhow::Result<Self> {
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

    pub(super) async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, AuthError> {
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
        let body = get_document(&self.client, &self.url, JWKS_MAX_BYTES).await?;
        let document: JwksDocument =
            serde_json::from_slice(&body).context("the response is not a JWKS document")?;
        Ok(key_set(document))
    }
}

/// GETs a JSON document of at most `max_bytes` (a provider's JWKS or discovery document):
/// a larger one is refused before it is read whole.
pub(crate) async fn get_document(
    client: &reqwest::Client,
    url: &str,
    max_bytes: usize,
) -> anyhow::Result<Vec<u8>> {
    let mut response = client
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .context("request failed")?
        .error_for_status()
        .context("unexpected status")?;
    let too_large = || format!("the document is larger than {max_bytes} bytes");
    if response
        .content_length()
        .is_some_and(|len| len > max_bytes as u64)
    {
        bail!(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.context("reading the body failed")? {
        if body.len() + chunk.len() > max_bytes {
            bail!(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
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
