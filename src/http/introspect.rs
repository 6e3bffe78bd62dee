//! `POST /introspect` (RFC 7662): `oauth::introspection` for an authenticated caller, a
//! confidential client (a resource server) or an admin API key.

use axum::Json;
use axum::extract::State;
use serde_json::Value;

use super::AppState;
use super::client_auth::Introspector;
use crate::error::OAuthError;
use crate::oauth::introspection::{self, Caller};

/// Its answers are never cached (`Cache-Control` is set by the router).
pub async fn introspect(
    State(state): State<AppState>,
    introspector: Introspector,
) -> Result<Json<Value>, OAuthError> {
    let (caller, form) = match introspector {
        Introspector::Admin { form } => (Caller::Admin, form),
        Introspector::Client { client, form } => (
            Caller::Client {
                is_resource_server: client.resource_server,
                id: client.id.to_string(),
            },
            form,
        ),
    };
    let token = form
        .get("token")
        .ok_or_else(|| OAuthError::invalid_request("token is required"))?;
    Ok(Json(
        introspection::introspect(&state, &caller, token).await?,
    ))
}
