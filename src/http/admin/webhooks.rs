//! `/admin/webhooks`: register (the signing secret shown once), list, show and delete the
//! endpoints that audit events are delivered to.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::webhooks::{self, NewEndpoint};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::WebhookId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    actions: Vec<String>,
}

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<CreateWebhook>,
) -> Result<(StatusCode, Json<Value>), AdminError> {
    let new = NewEndpoint {
        url: input.url,
        actions: input.actions,
    };
    let (endpoint, secret) = webhooks::create_webhook(&state.store, new, &by).await?;
    let mut body = json!(endpoint);
    body["secret"] = secret.expose().into();
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let endpoints =
        webhooks::list_webhooks(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond(
        "webhooks",
        &endpoints,
        |item| item.id.as_str(),
        |item| json!(item),
    ))
}

/// The endpoint, and how its deliveries stand (`deliveries`).
pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
) -> Result<Json<Value>, AdminError> {
    let (endpoint, status) = webhooks::find_webhook(&state.store, &id).await?;
    let mut body = json!(endpoint);
    body["deliveries"] = json!(status);
    Ok(Json(body))
}

/// Deletes the endpoint; what was queued for it is dropped.
pub async fn delete(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
) -> Result<StatusCode, AdminError> {
    webhooks::delete_webhook(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}
