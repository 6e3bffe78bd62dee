//! `/admin/orgs`: organizations and their members.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::clock::unix_now;
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminJson, AdminKey};
use crate::names::check_display_name;
use crate::organizations::{Organization, Role};
use crate::secrets::random_id;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewOrganization {
    name: String,
}

pub async fn create(
    _: AdminKey,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<NewOrganization>,
) -> Result<(StatusCode, Json<Organization>), AdminError> {
    check_display_name(&input.name).map_err(AdminError::invalid_input)?;
    let org = Organization {
        id: random_id("org_"),
        name: input.name.trim().to_owned(),
        created_at: unix_now(),
    };
    state.store.insert_organization(&org).await?;
    Ok((StatusCode::CREATED, Json(org)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let orgs = state
        .store
        .list_organizations(page.after.as_deref(), page.limit)
        .await?;
    Ok(page.respond("organizations", &orgs, |item| &item.id, |item| json!(item)))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Value>, AdminError> {
    let org = state
        .store
        .find_organization(&id)
        .await?
        .ok_or_else(|| no_org(&id))?;
    let members = state.store.list_members(&id).await?;
    let mut body = json!(org);
    body["members"] = json!(members);
    Ok(Json(body))
}

/// Deletes the organization; its API keys go with it.
pub async fn delete(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    if !state.store.delete_organization(&id).await? {
        return Err(no_org(&id));
    }
    tracing::info!(org_id = %id, "deleted an organization");
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberInput {
    user_id: String,
    role: String,
}

/// Adds a member, or changes their role.
pub async fn set_member(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(input): AdminJson<MemberInput>,
) -> Result<StatusCode, AdminError> {
    let role = Role::parse(&input.role)
        .ok_or_else(|| AdminError::invalid_input("role must be owner or member"))?;
    state
        .store
        .find_organization(&id)
        .await?
        .ok_or_else(|| no_org(&id))?;
    if state.store.find_user(&input.user_id).await?.is_none() {
        return Err(AdminError::invalid_input("no such user"));
    }
    state
        .store
        .set_member(&id, &input.user_id, role, unix_now())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member; the organization's keys they made with `revoke_when_creator_leaves` are revoked.
pub async fn remove_member(
    _: AdminKey,
    State(state): State<AppState>,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<StatusCode, AdminError> {
    if !state.store.remove_member(&id, &user_id, unix_now()).await? {
        return Err(AdminError::not_found("no such member"));
    }
    Ok(StatusCode::NO_CONTENT)
}

fn no_org(id: &str) -> AdminError {
    AdminError::not_found(format!("no organization {id:?}"))
}
