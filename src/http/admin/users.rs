//! `/admin/users`: create, list, show, update (email, password, disabled) and delete users.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::users::{self, NewUser, UserChange};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::{AdminActor, AdminJson, AdminKey};
use crate::ids::UserId;
use crate::users::User;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserInput {
    username: String,
    email: Option<String>,
    password: String,
}

pub async fn create(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    AdminJson(input): AdminJson<NewUserInput>,
) -> Result<(StatusCode, Json<User>), AdminError> {
    let new = NewUser {
        username: input.username,
        email: input.email,
        password: input.password,
    };
    let user = users::create_user(&state.store, new, &by).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let users = users::list_users(&state.store, page.after.as_deref(), page.limit).await?;
    Ok(page.respond("users", &users, |item| item.id.as_str(), |item| json!(item)))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
) -> Result<Json<User>, AdminError> {
    Ok(Json(users::find_user(&state.store, &id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserPatch {
    /// `null` removes the email; absent leaves it.
    #[serde(default, with = "double_option")]
    email: Option<Option<String>>,
    password: Option<String>,
    disabled: Option<bool>,
}

/// Changes the given fields. Disabling a user ends their sessions and revokes their grants.
pub async fn update(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    AdminJson(patch): AdminJson<UserPatch>,
) -> Result<Json<User>, AdminError> {
    let change = UserChange {
        email: patch.email,
        password: patch.password,
        disabled: patch.disabled,
    };
    Ok(Json(
        users::update_user(&state.store, &id, change, &by).await?,
    ))
}

pub async fn delete(
    AdminActor(by): AdminActor,
    State(state): State<AppState>,
    Path(id): Path<UserId>,
) -> Result<StatusCode, AdminError> {
    users::delete_user(&state.store, &id, &by).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}
