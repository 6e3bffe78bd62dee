//! `/admin/clients`: create, list, show, update, delete clients and rotate their secrets.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::paging::Page;
use crate::clients::{ClientMetadata, MetadataError};
use crate::clock::unix_now;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminJson, AdminKey};
use crate::secrets::{SECRET_CHARS, Secret, random_base62};

fn invalid(e: MetadataError) -> AdminError {
    AdminError::invalid_input(e.message())
}

pub async fn create(
    _: AdminKey,
    State(state): State<AppState>,
    AdminJson(metadata): AdminJson<ClientMetadata>,
) -> Result<Response, AdminError> {
    let valid = metadata.validate().map_err(invalid)?;
    let (client, secret) = valid.into_new_client(unix_now());
    state.store.insert_client(&client).await?;
    tracing::info!(client_id = %client.id, "created a client");
    let mut body = client.metadata();
    if let Some(secret) = secret {
        body["client_secret"] = secret.expose().into();
    }
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let clients = state
        .store
        .list_clients(page.after.as_deref(), page.limit)
        .await?;
    Ok(page.respond("clients", &clients, |c| &c.id, |c| c.metadata()))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let client = state
        .store
        .find_client(&id)
        .await?
        .ok_or_else(|| no_client(&id))?;
    Ok(Json(client.metadata()))
}

/// Changes the given fields; the rest stay. The authentication method cannot change, since
/// that would mean inventing or dropping a secret: create a new client instead.
pub async fn update(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(patch): AdminJson<ClientMetadata>,
) -> Result<Json<Value>, AdminError> {
    let mut client = state
        .store
        .find_client(&id)
        .await?
        .ok_or_else(|| no_client(&id))?;
    if patch
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != client.auth_method.as_str())
    {
        return Err(AdminError::invalid_input(
            "token_endpoint_auth_method cannot be changed; create a new client instead",
        ));
    }
    let merged = ClientMetadata {
        client_name: patch.client_name.or(Some(client.name.clone())),
        redirect_uris: patch.redirect_uris.or(Some(client.redirect_uris.clone())),
        grant_types: patch.grant_types.or_else(|| {
            Some(
                client
                    .grant_types
                    .iter()
                    .map(|g| g.as_str().into())
                    .collect(),
            )
        }),
        response_types: patch.response_types,
        scope: patch.scope.or(Some(client.scope.to_string())),
        token_endpoint_auth_method: Some(client.auth_method.as_str().to_owned()),
        resources: patch.resources.or(Some(client.resources.clone())),
        skip_consent: patch.skip_consent.or(Some(client.skip_consent)),
        resource_server: patch.resource_server.or(Some(client.resource_server)),
    };
    let valid = merged.validate().map_err(invalid)?;
    client.name = valid.name;
    client.redirect_uris = valid.redirect_uris;
    client.grant_types = valid.grant_types;
    client.scope = valid.scope;
    client.resources = valid.resources;
    client.skip_consent = valid.skip_consent;
    client.resource_server = valid.resource_server;
    client.updated_at = unix_now();
    if !state.store.update_client(&client).await? {
        return Err(no_client(&id));
    }
    Ok(Json(client.metadata()))
}

pub async fn delete(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    if !state.store.delete_client(&id).await? {
        return Err(no_client(&id));
    }
    tracing::info!(client_id = %id, "deleted a client");
    Ok(StatusCode::NO_CONTENT)
}

/// A new secret for a confidential client, shown once; the old one stops working at once.
pub async fn rotate_secret(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let client = state
        .store
        .find_client(&id)
        .await?
        .ok_or_else(|| no_client(&id))?;
    if client.is_public() {
        return Err(AdminError::invalid_input("a public client has no secret"));
    }
    let secret = Secret::new(random_base62(SECRET_CHARS));
    if !state
        .store
        .set_client_secret_hash(&id, &secret.hash(), unix_now())
        .await?
    {
        return Err(no_client(&id));
    }
    tracing::info!(client_id = %id, "rotated a client secret");
    Ok(Json(
        json!({ "client_id": id, "client_secret": secret.expose() }),
    ))
}

fn no_client(id: &str) -> AdminError {
    AdminError::not_found(format!("no client {id:?}"))
}
