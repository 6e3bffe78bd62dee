//! `GET /healthz` and `GET /readyz`: cheap, unauthenticated probes for orchestrators and load
//! balancers. Liveness says the process answers; readiness says it can issue tokens.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::AppState;
use crate::config::READINESS_DATABASE_TIMEOUT_MS;

/// Always 200 while the process serves: restarting it would not help anything else.
/// Probes' answers are about this moment: never cached (`Cache-Control` is set by the router).
pub async fn healthz() -> (StatusCode, Json<Value>) {
    (StatusCode::OK, Json(json!({ "status": "ok" })))
}

/// 200 when the database answers within a second and a key can sign; else 503 and why.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let within = Duration::from_millis(READINESS_DATABASE_TIMEOUT_MS);
    match state.readiness(within).await {
        Ok(()) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "unavailable", "reason": reason.as_str() })),
        ),
    }
}
