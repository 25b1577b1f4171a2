//! `POST /internal/publish`: signed change batches from the stream-handler.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use scoreline_core::publish::{self, PublishError, Publisher};
use scoreline_core::ChangeBatch;

use super::plain;
use crate::startup::AppState;

/// Answers 204 only once the broker has accepted the batch, so a failure makes the sender
/// retry.
pub async fn publish(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let Some(secret) = state.publish_secret.as_ref().map(|s| s.expose()) else {
        return plain(
            StatusCode::NOT_FOUND,
            "publishing is not enabled: set PUBLISH_SECRET",
        );
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verified = publish::verify(
        secret,
        header(publish::TIMESTAMP_HEADER),
        header(publish::SIGNATURE_HEADER),
        &body,
        now,
    );
    if let Err(reason) = verified {
        tracing::warn!(%reason, "refused a publish request");
        return plain(StatusCode::UNAUTHORIZED, "invalid or missing signature");
    }
    let batch: ChangeBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(_) => return plain(StatusCode::BAD_REQUEST, "the body is not a change batch"),
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
