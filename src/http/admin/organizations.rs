//! `/admin/orgs`: organizations and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::organizations::{self, parse_role};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::{OrgId, UserId};
use crate::organizations::Organization;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    name: String,
}

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<NewOrganization>,
) -> Result<(StatusCode, Json<Organization>), AdminError> {
    let org = organizations::create_organization(&state.store, &input.name, &by).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let orgs =
        organizations::list_organizations(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond(
        "organizations",
        &orgs,
        |item| item.id.as_str(),
        |item| json!(item),
    ))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<OrgId>,
) -> Result<Json<Value>, AdminError> {
    let (org, members) = organizations::find_organization(&state.store, &id).await?;
    let mut body = json!(org);
    body["members"] = json!(members);
    Ok(Json(body))
}

/// Deletes the organization; its API keys go with it.
pub async fn delete(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<OrgId>,
) -> Result<StatusCode, AdminError> {
    organizations::delete_organization(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    user_id: UserId,
    role: String,
}

/// Adds a member, or changes their role.
pub async fn set_member(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<OrgId>,
    AdminJson(input): AdminJson<MemberInput>,
) -> Result<StatusCode, AdminError> {
    let role = parse_role(&input.role)?;
    organizations::add_member(&state.store, &id, &input.user_id, role, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member; the organization's keys they made with `revoke_when_creator_leaves` are revoked.
pub async fn remove_member(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(OrgId, UserId)>,
) -> Result<StatusCode, AdminError> {
    organizations::remove_member(&state.store, &id, &user_id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}
