//! `/admin/users`: create, list, show, update (email, password, disabled) and delete users.

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
use crate::passwords;
use crate::users::{self, User, UserError};

impl From<UserError> for AdminError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::Invalid(message) => AdminError::invalid_input(message),
            UserError::Taken => AdminError::conflict("the username is already taken"),
            UserError::Store(e) => e.into(),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    username: String,
    email: Option<String>,
    password: String,
}

pub async fn create(
    _: AdminKey,
    State(state): State<AppState>,
    AdminJson(new): AdminJson<NewUser>,
) -> Result<(StatusCode, Json<User>), AdminError> {
    let user = users::create_user(
        &state.store,
        &new.username,
        new.email.as_deref(),
        new.password,
    )
    .await?;
    tracing::info!(user_id = %user.id, "created a user");
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
) -> Result<Json<Value>, AdminError> {
    let users = state
        .store
        .list_users(page.after.as_deref(), page.limit)
        .await?;
    Ok(page.respond("users", &users, |item| &item.id, |item| json!(item)))
}

pub async fn show(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<User>, AdminError> {
    Ok(Json(
        state
            .store
            .find_user(&id)
            .await?
            .ok_or_else(|| no_user(&id))?,
    ))
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
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
    AdminJson(patch): AdminJson<UserPatch>,
) -> Result<Json<User>, AdminError> {
    let mut user = state
        .store
        .find_user(&id)
        .await?
        .ok_or_else(|| no_user(&id))?;
    let now = unix_now();
    if let Some(email) = patch.email {
        let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
        if let Some(email) = &email {
            users::check_email(email).map_err(AdminError::invalid_input)?;
        }
        user.email = email;
    }
    if let Some(disabled) = patch.disabled {
        user.disabled_at = match (disabled, user.disabled_at) {
            (true, None) => Some(now),
            (true, since) => since,
            (false, _) => None,
        };
    }
    let new_password_hash = match patch.password {
        Some(password) => Some(
            passwords::hash_password(password)
                .await
                .map_err(|e| AdminError::invalid_input(e.to_string()))?,
        ),
        None => None,
    };
    user.updated_at = now;
    if !state
        .store
        .update_user(&user, new_password_hash.as_deref())
        .await?
    {
        return Err(no_user(&id));
    }
    Ok(Json(user))
}

pub async fn delete(
    _: AdminKey,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AdminError> {
    if !state.store.delete_user(&id).await? {
        return Err(no_user(&id));
    }
    tracing::info!(user_id = %id, "deleted a user");
    Ok(StatusCode::NO_CONTENT)
}

fn no_user(id: &str) -> AdminError {
    AdminError::not_found(format!("no user {id:?}"))
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
