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

/// A request whose signature checked out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verified {
    /// The unix time the request was signed at.
    pub timestamp: i64,
    /// The HMAC tag: it names this exact signed request (timestamp and body), so a receiver
    /// can refuse a replay of it.
    pub tag: [u8; 32],
    /// Which of the accepted secrets signed it (0 is the current one), so an operator can
    /// see when a previous secret stops being used.
    pub secret_index: usize,
}

/// Verifies a signed request's headers against its body, at `now_unix`.
pub fn verify(
    secret: &str,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    verify_any(&[secret], timestamp, signature, body, now_unix).map(|_| ())
}

/// Verifies a signed request against any of `secrets` (the current one first, then the
/// previous one while a rotation is under way), at `now_unix`.
pub fn verify_any(
    secrets: &[&str],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<Verified, SignatureError> {
    use hmac::Mac;
    let timestamp = timestamp.ok_or(SignatureError::MissingTimestamp)?;
    let signature = signature.ok_or(SignatureError::MissingSignature)?;
    let ts: i64 = timestamp
        .parse()
        .map_err(|_| SignatureError::MalformedTimestamp)?;
    if !is_fresh(ts, now_unix) {
        return Err(SignatureError::Stale);
    }
    let hex_tag = signature
        .strip_prefix("v1=")
        .ok_or(SignatureError::UnsupportedVersion)?;
    let given = hex::decode(hex_tag).map_err(|_| SignatureError::MalformedSignature)?;
    let tag: [u8; 32] = given
        .as_slice()
        .try_into()
        .map_err(|_| SignatureError::MalformedSignature)?;
    // Constant-time comparison, against each secret in turn (a request signed with the
    // current one costs one HMAC).
    secrets
        .iter()
        .position(|secret| mac(secret, timestamp, body).verify_slice(&tag).is_ok())
        .map(|secret_index| Verified {
            timestamp: ts,
            tag,
            secret_index,
        })
        .ok_or(SignatureError::Wrong)
}

/// Whether a request signed at `timestamp` is within [`SIGNATURE_MAX_AGE_SECS`] of `now`,
/// either side. `abs_diff` cannot overflow, whatever the two values: `(now - ts).abs()`
/// wrapped for a timestamp near `i64::MIN` and let such a request through.
pub fn is_fresh(timestamp: i64, now_unix: i64) -> bool {
    now_unix.abs_diff(timestamp) <= SIGNATURE_MAX_AGE_SECS.unsigned_abs()
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
    fn a_timestamp_at_the_edges_of_the_window_is_fresh_and_one_second_more_is_not() {
        let now = 1_700_000_000;
        for ts in [
            now - SIGNATURE_MAX_AGE_SECS,
            now,
            now + SIGNATURE_MAX_AGE_SECS,
        ] {
            assert!(is_fresh(ts, now), "{ts}");
        }
        for ts in [
            now - SIGNATURE_MAX_AGE_SECS - 1,
            now + SIGNATURE_MAX_AGE_SECS + 1,
        ] {
            assert!(!is_fresh(ts, now), "{ts}");
        }
    }

    #[test]
    fn correctly_signed_timestamps_at_the_extremes_of_i64_are_stale_without_overflowing() {
        for now in [0, 1_700_000_000, -1, i64::MAX, i64::MIN] {
            // `now + i64::MIN` is the timestamp `(now - ts).abs()` wrapped to i64::MIN for.
            for ts in [
                i64::MIN,
                i64::MIN + 1,
                now.wrapping_add(i64::MIN),
                i64::MAX,
                i64::MAX - 1,
                now.wrapping_add(i64::MAX),
            ] {
                if now.abs_diff(ts) <= 300 {
                    continue;
                }
                let sig = sign("s3cret", ts, b"{}");
                assert_eq!(
                    verify("s3cret", Some(&ts.to_string()), Some(&sig), b"{}", now),
                    Err(SignatureError::Stale),
                    "signed at {ts}, checked at {now}"
                );
            }
        }
        // At the very edge of the range, a timestamp inside the window is still fresh.
        let sig = sign("s3cret", i64::MAX - 10, b"{}");
        let ts = (i64::MAX - 10).to_string();
        assert!(verify("s3cret", Some(&ts), Some(&sig), b"{}", i64::MAX).is_ok());
        let sig = sign("s3cret", i64::MIN, b"{}");
        let ts = i64::MIN.to_string();
        assert!(verify("s3cret", Some(&ts), Some(&sig), b"{}", i64::MIN + 300).is_ok());
    }

    #[test]
    fn a_timestamp_beyond_i64_is_malformed() {
        let ts = "9223372036854775808";
        let sig = format!("v1={}", "00".repeat(32));
        assert_eq!(
            verify("s3cret", Some(ts), Some(&sig), b"{}", 0),
            Err(SignatureError::MalformedTimestamp)
        );
    }

    #[test]
    fn the_previous_secret_verifies_too_and_is_reported_as_such() {
        let body = br#"{"v":1,"changes":[]}"#;
        let by_current = sign("new", 1_000, body);
        let by_previous = sign("old", 1_000, body);
        let check = |sig: &str| verify_any(&["new", "old"], Some("1000"), Some(sig), body, 1_000);
        let current = check(&by_current).unwrap();
        assert_eq!((current.timestamp, current.secret_index), (1_000, 0));
        assert_eq!(check(&by_previous).unwrap().secret_index, 1);
        assert_eq!(
            check(&sign("neither", 1_000, body)),
            Err(SignatureError::Wrong)
        );
        // Without the previous secret, its signatures are wrong.
        assert_eq!(
            verify_any(&["new"], Some("1000"), Some(&by_previous), body, 1_000),
            Err(SignatureError::Wrong)
        );
    }

    #[test]
    fn the_verified_tag_is_the_signatures_bytes_whatever_the_hex_case() {
        let sig = sign("s3cret", 1_000, b"{}");
        let upper = format!("v1={}", sig["v1=".len()..].to_uppercase());
        let a = verify_any(&["s3cret"], Some("1000"), Some(&sig), b"{}", 1_000).unwrap();
        let b = verify_any(&["s3cret"], Some("1000"), Some(&upper), b"{}", 1_000).unwrap();
        assert_eq!(a.tag, b.tag);
        assert_eq!(hex::encode(a.tag), &sig["v1=".len()..]);
    }

    #[test]
    fn a_tag_of_the_wrong_length_is_malformed() {
        let sig = sign("s3cret", 1_000, b"{}");
        for bad in [&sig[..sig.len() - 2], "v1=", "v1=zz"] {
            assert_eq!(
                verify("s3cret", Some("1000"), Some(bad), b"{}", 1_000),
                Err(SignatureError::MalformedSignature),
                "{bad}"
            );
        }
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
