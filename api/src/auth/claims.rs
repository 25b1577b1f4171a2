//! Token contents: the header peeked at before a key is chosen, the claims read once the
//! signature is checked, the claims a minted token carries, and the mapping of `jsonwebtoken`'s
//! errors to client-safe [`AuthError`]s. Kept apart from the `Authenticator` so the shapes of
//! what goes in and out of a token can be read in one place.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use serde::{Deserialize, Serialize};

use super::AuthError;

/// Real tokens are 1–2 KiB; refuse absurd input before decoding anything.
const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// The part of a JOSE header we inspect before choosing a key.
#[derive(Deserialize)]
pub(super) struct PeekedHeader {
    pub(super) alg: String,
    #[serde(default)]
    pub(super) kid: Option<String>,
    /// RFC 7515 §4.1.11: unknown critical extensions must be refused, and we know none.
    #[serde(default)]
    crit: Option<serde_json::Value>,
}

pub(super) fn peek_header(token: &str) -> Result<PeekedHeader, AuthError> {
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

pub(super) fn map_jwt_error(error: jsonwebtoken::errors::Error) -> AuthError {
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
pub(super) struct Claims {
    #[serde(default)]
    pub(super) sub: Option<String>,
    #[serde(default)]
    pub(super) username: Option<String>,
    #[serde(default, rename = "cognito:username")]
    pub(super) cognito_username: Option<String>,
    #[serde(default)]
    pub(super) aud: Option<OneOrMany>,
    #[serde(default)]
    pub(super) client_id: Option<String>,
    #[serde(default, rename = "cognito:groups")]
    pub(super) groups: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    pub(super) fn contains(&self, value: &str) -> bool {
        match self {
            OneOrMany::One(one) => one == value,
            OneOrMany::Many(many) => many.iter().any(|v| v == value),
        }
    }
}

#[derive(Serialize)]
pub(super) struct MintClaims<'a> {
    pub(super) sub: &'a str,
    #[serde(rename = "cognito:groups")]
    pub(super) groups: [&'static str; 1],
    pub(super) iat: u64,
    pub(super) exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) aud: Option<&'a str>,
}

pub(super) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
