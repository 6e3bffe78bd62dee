//! `GET /healthz` and `GET /readyz`: cheap, unauthenticated probes for orchestrators and load
//! balancers. Liveness says the process answers; readiness says it can issue tokens.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::AppState;
use crate::config::READINESS_DATABASE_TIMEOUT_MS;

/// Always 200 while the process serves: restarting it would not help anything else.
pub async fn healthz() -> Response {
    probe_answer(StatusCode::OK, json!({ "status": "ok" }))
}

/// 200 when the database answers within a second and a key can sign; else 503 and why.
pub async fn readyz(State(state): State<AppState>) -> Response {
    if state.keys.active_key().is_err() {
        return unavailable("no signing key");
    }
    let within = Duration::from_millis(READINESS_DATABASE_TIMEOUT_MS);
    if let Err(e) = state.store.ping(within).await {
        tracing::warn!(error = %e, "readiness: the database does not answer");
        return unavailable("database unreachable");
    }
    probe_answer(StatusCode::OK, json!({ "status": "ready" }))
}

fn unavailable(reason: &str) -> Response {
    probe_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        json!({ "status": "unavailable", "reason": reason }),
    )
}

/// A probe's answer is about this moment: never cached.
fn probe_answer(status: StatusCode, body: serde_json::Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
