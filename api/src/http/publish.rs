//! `POST /internal/publish`: signed change batches from the stream-handler.
//!
//! A request is accepted once: it must be signed with the current secret or, during a
//! rotation, the previous one (`PUBLISH_SECRET_PREVIOUS`), within 300 s of the server's clock,
//! and not be a replay of one already received ([`ReplayGuard`]).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use scoreline_core::change::{decode_changes, WireError};
use scoreline_core::publish::{self, PublishError, Publisher};
use scoreline_core::Secret;

use super::plain;
use super::replay::{Admission, ReplayGuard};
use crate::metrics::Metrics;
use crate::startup::AppState;

/// The secrets publish requests are checked against, and the tags of those already received.
pub struct PublishAuth {
    /// The current secret first, then the previous one during a rotation.
    secrets: Vec<Secret>,
    replays: Mutex<ReplayGuard>,
}

impl PublishAuth {
    pub fn new(current: Secret, previous: Option<Secret>, replay_capacity: usize) -> Self {
        Self {
            secrets: std::iter::once(current).chain(previous).collect(),
            replays: Mutex::new(ReplayGuard::new(replay_capacity)),
        }
    }
}

/// Answers 204 only once the broker has accepted the batch, so a failure makes the sender
/// retry.
pub async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(auth) = state.publish.as_ref() else {
        return plain(
            StatusCode::NOT_FOUND,
            "publishing is not enabled: set PUBLISH_SECRET",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or_default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let secrets: Vec<&str> = auth.secrets.iter().map(Secret::expose).collect();
    let verified = match publish::verify_any(
        &secrets,
        header(publish::TIMESTAMP_HEADER),
        header(publish::SIGNATURE_HEADER),
        &body,
        now,
    ) {
        Ok(verified) => verified,
        Err(reason) => {
            tracing::warn!(%reason, "refused a publish request");
            return plain(StatusCode::UNAUTHORIZED, "invalid or missing signature");
        }
    };
    if let Some(refused) = admit(auth, &state.metrics, verified, now) {
        return refused;
    }
    if verified.secret_index > 0 {
        Metrics::inc(&state.metrics.publish_previous_secret);
    }
    let batch = match decode_changes(&body) {
        Ok(batch) => batch,
        Err(WireError::UnknownVersion(v)) => {
            tracing::warn!(version = v, "refused a batch of an unknown wire version");
            return plain(StatusCode::BAD_REQUEST, "the batch was refused");
        }
        Err(WireError::Malformed(_)) => {
            return plain(StatusCode::BAD_REQUEST, "the body is not a change batch")
        }
    };
    match state.intake.publish(batch, None).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(PublishError::Refused(_)) => plain(StatusCode::BAD_REQUEST, "the batch was refused"),
        Err(PublishError::Unavailable(e)) => {
            tracing::error!(error = %e, "publish failed");
            plain(StatusCode::SERVICE_UNAVAILABLE, "the broker is unavailable")
        }
    }
}

/// Records a verified request's tag; the answer when it is a replay or there is no room.
fn admit(
    auth: &PublishAuth,
    metrics: &Metrics,
    verified: publish::Verified,
    now: i64,
) -> Option<Response> {
    let (admission, held) = {
        let mut guard = auth.replays.lock().unwrap_or_else(PoisonError::into_inner);
        let admission = guard.admit(verified.tag, verified.timestamp, now);
        (admission, guard.len())
    };
    metrics
        .publish_replay_entries
        .store(held as i64, std::sync::atomic::Ordering::Relaxed);
    match admission {
        Admission::Fresh => None,
        Admission::Replay => {
            Metrics::inc(&metrics.publish_replays_refused);
            tracing::warn!("refused a replayed publish request");
            // 409 rather than 401: the signature is right, the request was simply received
            // before. The sink retries it signed anew, which a legitimate sender always does.
            Some(plain(
                StatusCode::CONFLICT,
                "this signed request was already received: sign every request anew",
            ))
        }
        Admission::Full { retry_after_secs } => {
            Metrics::inc(&metrics.publish_replay_full);
            tracing::warn!(
                held,
                "refused a publish request: the replay guard is full (PUBLISH_REPLAY_CAPACITY)"
            );
            let mut response = plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many publish requests within the signature window; retry later",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, retry_after_secs.into());
            Some(response)
        }
    }
}

/// Built once at start-up; `None` keeps the endpoint off.
pub fn publish_auth(
    current: Option<Secret>,
    previous: Option<Secret>,
    replay_capacity: usize,
) -> anyhow::Result<Option<Arc<PublishAuth>>> {
    for (name, secret) in [
        ("PUBLISH_SECRET", &current),
        ("PUBLISH_SECRET_PREVIOUS", &previous),
    ] {
        if secret.as_ref().is_some_and(|s| s.expose().is_empty()) {
            anyhow::bail!("{name} is set but empty");
        }
    }
    match (current, previous) {
        (Some(current), previous) => Ok(Some(Arc::new(PublishAuth::new(
            current,
            previous,
            replay_capacity.max(1),
        )))),
        (None, Some(_)) => anyhow::bail!(
            "PUBLISH_SECRET_PREVIOUS is set without PUBLISH_SECRET: set the new secret as \
             PUBLISH_SECRET and the old one as PUBLISH_SECRET_PREVIOUS"
        ),
        (None, None) => Ok(None),
    }
}
