//! The publisher port: where decoded change batches go. The API's intake (dedupe, then fan out
//! through the broker) implements it in process; the pipeline's HTTP and Redis sinks implement
//! it across the network.

use std::time::Instant;

use async_trait::async_trait;

use crate::change::ChangeBatch;
use crate::error::BoxError;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// Passing (a timeout, a 503, Redis down): the same batch may be offered again.
    #[error("the publish target is unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The target will never take this batch as it is (a wrong secret, an unknown format).
    #[error("the publish target refused the batch: {0}")]
    Refused(#[source] BoxError),
}

#[async_trait]
pub trait Publisher: Send + Sync + 'static {
    /// Delivers a batch; returns only once the target has accepted it. With a `deadline` (a
    /// Lambda invocation's end, less a margin), no attempt runs past it: the batch is then
    /// `Unavailable` and the caller offers it again later.
    async fn publish(
        &self,
        batch: ChangeBatch,
        deadline: Option<Instant>,
    ) -> Result<(), PublishError>;
}

/// Header carrying the unix time (seconds) a publish request was signed at.
pub const TIMESTAMP_HEADER: &str = "x-scoreline-timestamp";
/// Header carrying `v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
pub const SIGNATURE_HEADER: &str = "x-scoreline-signature";
/// Signed requests older (or further in the future) than this are refused as replays.
pub const SIGNATURE_MAX_AGE_SECS: i64 = 300;

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

fn mac(secret: &str, timestamp: &str, body: &[u8]) -> HmacSha256 {
    use hmac::Mac;
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The signature header value for a body signed at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::Mac;
    let tag = mac(secret, &timestamp.to_string(), body)
        .finalize()
        .into_bytes();
    format!("v1={}", hex::encode(tag))
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing timestamp")]
    MissingTimestamp,
    #[error("missing signature")]
    MissingSignature,
    #[error("malformed timestamp")]
    MalformedTimestamp,
    #[error("stale timestamp")]
    Stale,
    #[error("unsupported signature version")]
    UnsupportedVersion,
    #[error("malformed signature")]
    MalformedSignature,
    #[error("wrong signature")]
    Wrong,
}

/// Verifies a signed request's headers against its body, at `now_unix`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    use hmac::Mac;
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if (now_unix - ts).abs() > SIGNATURE_MAX_AGE_SECS {
        return Err(SignatureError::Stale);
    }
    let hex_tag = signature
        .strip_prefix("v1=")
        .ok_or(SignatureError::UnsupportedVersion)?;
    let given = hex::decode(hex_tag).map_err(|_| SignatureError::MalformedSignature)?;
    // Constant-time comparison.
    mac(secret, timestamp, body)
        .verify_slice(&given)
        .map_err(|_| SignatureError::Wrong)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_correct_signature_verifies() {
        let sig = sign("s3cret", 1_000, b"{}");
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{}", 1_010),
            Ok(())
        );
    }

    #[test]
    fn another_secret_or_body_is_a_wrong_signature() {
        let sig = sign("other", 1_000, b"{}");
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{}", 1_000),
            Err(SignatureError::Wrong)
        );
        let sig = sign("s3cret", 1_000, b"{}");
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{ }", 1_000),
            Err(SignatureError::Wrong)
        );
    }

    #[test]
    fn a_stale_or_missing_timestamp_is_refused() {
        let sig = sign("s3cret", 1_000, b"{}");
        assert_eq!(
            verify(
                "s3cret",
                Some("1000"),
                Some(&sig),
                b"{}",
                1_000 + SIGNATURE_MAX_AGE_SECS + 1
            ),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify("s3cret", None, Some(&sig), b"{}", 1_000),
            Err(SignatureError::MissingTimestamp)
        );
        assert_eq!(
            verify("s3cret", Some("1000"), None, b"{}", 1_000),
            Err(SignatureError::MissingSignature)
        );
    }

    #[test]
    fn a_signature_of_another_version_is_refused() {
        let sig = sign("s3cret", 1_000, b"{}").replace("v1=", "v2=");
        assert_eq!(
            verify("s3cret", Some("1000"), Some(&sig), b"{}", 1_000),
            Err(SignatureError::UnsupportedVersion)
        );
    }
}
