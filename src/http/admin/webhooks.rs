//! `/admin/webhooks`: register (the signing secret shown once), list, show and delete the
//! endpoints that audit events are delivered to.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::webhooks::{self, NewEndpoint};
use crate::audit::{Actor, Initiator};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminJson, authenticate_admin};
use crate::ids::WebhookId;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhook {
    url: String,
    actions: Vec<String>,
}

pub async fn create(
    AdminInitiator(by): AdminInitiator,
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
    AdminInitiator(_): AdminInitiator,
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
    AdminInitiator(_): AdminInitiator,
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
    AdminInitiator(by): AdminInitiator,
    State(state): State<AppState>,
    Path(id): Path<WebhookId>,
) -> Result<StatusCode, AdminError> {
    webhooks::delete_webhook(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The admin key a request presents, and where the request came from.
pub struct AdminInitiator(Initiator);

impl FromRequestParts<AppState> for AdminInitiator {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let admin = authenticate_admin(state, &parts.headers).await?;
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|text| text.chars().take(256).collect())
        };
        Ok(Self(Initiator {
            actor: Actor::AdminKey(admin.id),
            ip: parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip().to_string()),
            user_agent: header("user-agent"),
            request_id: header("x-request-id"),
        }))
    }
}
