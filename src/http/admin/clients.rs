//! `/admin/clients`: create, list, show, update, delete clients and rotate their secrets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::clients::{self, Registrant};
use crate::clients::ClientMetadata;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::ClientId;

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(metadata): AdminJson<ClientMetadata>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let (client, secret) = clients::register_client(
        &state.store,
        metadata,
        &Registrant::Operator,
        Some(state.rate_limiter.plans()),
        &by,
    )
    .await?;
    let mut body = client.metadata();
    if let Some(secret) = secret {
        body["client_secret"] = secret.expose().into();
    }
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let clients = clients::list_clients(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond("clients", &clients, |c| c.id.as_str(), |c| c.metadata()))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<ClientId>,
) -> Result<Json<Value>, AdminError> {
    Ok(Json(
        clients::find_client(&state.store, &id).await?.metadata(),
    ))
}

/// Changes the given fields; the rest stay.
pub async fn update(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<ClientId>,
    AdminJson(patch): AdminJson<ClientMetadata>,
) -> Result<Json<Value>, AdminError> {
    let client = clients::update_client(
        &state.store,
        &id,
        patch,
        Some(state.rate_limiter.plans()),
        &by,
    )
    .await?;
    Ok(Json(client.metadata()))
}

pub async fn delete(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<ClientId>,
) -> Result<StatusCode, AdminError> {
    clients::delete_client(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret for a confidential client, shown once; the old one stops working at once.
pub async fn rotate_secret(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<ClientId>,
) -> Result<Json<Value>, AdminError> {
    let secret = clients::rotate_client_secret(&state.store, &id, &by).await?;
    Ok(Json(
        json!({ "client_id": id, "client_secret": secret.expose() }),
    ))
}
