//! `/admin/signing-keys`: see the keys and rotate them.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{Action, AuditEvent};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminKey};

pub async fn list(_: AdminKey, State(state): State<AppState>) -> Json<Value> {
    Json(json!({ "keys": state.keys.statuses() }))
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    /// `"now"` to sign with the new key at once; by default it waits for the JWKS max-age.
    activate: Option<String>,
}

/// `POST /admin/signing-keys/rotate`, body optional: `{"activate":"now"}`.
pub async fn rotate(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let request: RotateRequest = if body.iter().all(u8::is_ascii_whitespace) {
        RotateRequest::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| AdminError::malformed(format!("invalid JSON body: {e}")))?
    };
    let delay = match request.activate.as_deref() {
        None => state.config.keys.jwks_max_age_secs,
        Some("now") => 0,
        Some(other) => {
            return Err(AdminError::invalid_input(format!(
                "activate must be \"now\", not {other:?}"
            )));
        }
    };
    let keys = state.keys.clone();
    let kid = tokio::task::spawn_blocking(move || keys.rotate(delay))
        .await
        .map_err(|_| AdminError::internal())??;
    tracing::info!(%kid, delay_secs = delay, "rotated the signing key");
    let event = AuditEvent::new(
        Action::SigningKeyRotated,
        &by,
        Some(&kid),
        json!({ "activates_in_secs": delay }),
    );
    state.store.record_event_alone(&event).await?;
    let status = state.keys.statuses().into_iter().find(|s| s.kid == kid);
    Ok((StatusCode::CREATED, Json(json!(status))))
}
