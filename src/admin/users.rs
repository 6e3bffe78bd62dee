//! Creating, changing and deleting the people who sign in.

use serde_json::json;

use super::{Error, Initiator};
use crate::audit::{Action, AuditEvent};
use crate::clock::unix_now;
use crate::ids::{ClientId, UserId};
use crate::oauth::scope::Scope;
use crate::passwords;
use crate::store::{Store, StoreError};
use crate::users::{User, Username, check_email};

/// A user to create.
pub struct NewUser {
    pub username: String,
    pub email: Option<String>,
    pub password: String,
}

/// What to change about a user; `None` leaves a field as it is.
#[derive(Default)]
pub struct UserChange {
    /// `Some(None)` removes the email.
    pub email: Option<Option<String>>,
    /// A new password: ends every session, grant and personal key the user has.
    pub password: Option<String>,
    /// Disabling ends the user's sessions and stops their refresh tokens; enabling does not
    /// bring them back.
    pub disabled: Option<bool>,
}

/// Creates a user with an argon2id hash of the password.
pub async fn create_user(store: &Store, new: NewUser, by: &Initiator) -> Result<User, Error> {
    let username = Username::parse(&new.username).map_err(Error::Invalid)?;
    let email = normalise_email(new.email)?;
    let hash = hash_password(new.password).await?;
    let now = unix_now();
    let user = User {
        id: UserId::generate(),
        username: username.clone(),
        email,
        disabled_at: None,
        created_at: now,
        updated_at: now,
    };
    let event = AuditEvent::new(
        Action::UserCreated,
        by,
        Some(user.id.as_str()),
        json!({ "username": user.username.as_str() }),
    );
    store
        .insert_user(&user, &hash, &event)
        .await
        .map_err(|e| match e {
            StoreError::Conflict => {
                Error::Conflict(format!("the username \"{username}\" is already taken"))
            }
            other => other.into(),
        })?;
    tracing::info!(user_id = %user.id, "created a user");
    Ok(user)
}

/// Up to `limit` users after the one with id `after`, in id order.
pub async fn list_users(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<User>, Error> {
    Ok(store.list_users(after, limit).await?)
}

pub async fn find_user(store: &Store, id: &UserId) -> Result<User, Error> {
    store.find_user(id).await?.ok_or_else(|| no_user(id))
}

pub async fn find_user_by_username(store: &Store, username: &str) -> Result<User, Error> {
    store
        .find_user_by_username(username)
        .await?
        .ok_or_else(|| Error::NotFound(format!("no user named \"{username}\"")))
}

/// Applies `change` in one transaction with everything it ends (see [`UserChange`]).
pub async fn update_user(
    store: &Store,
    id: &UserId,
    change: UserChange,
    by: &Initiator,
) -> Result<User, Error> {
    let mut user = find_user(store, id).await?;
    let was_disabled = user.is_disabled();
    let now = unix_now();
    let mut events = Vec::new();
    let event = |action| AuditEvent::new(action, by, Some(id.as_str()), json!({}));
    if let Some(email) = change.email {
        user.email = normalise_email(email)?;
        events.push(AuditEvent::new(
            Action::UserUpdated,
            by,
            Some(id.as_str()),
            json!({ "changed": ["email"] }),
        ));
    }
    if let Some(disabled) = change.disabled {
        user.disabled_at = match (disabled, user.disabled_at) {
            (true, None) => Some(now),
            (true, since) => since,
            (false, _) => None,
        };
    }
    match (was_disabled, user.is_disabled()) {
        (false, true) => events.push(event(Action::UserDisabled)),
        (true, false) => events.push(event(Action::UserEnabled)),
        _ => {}
    }
    let new_password_hash = match change.password {
        Some(password) => Some(hash_password(password).await?),
        None => None,
    };
    if new_password_hash.is_some() {
        events.push(event(Action::UserPasswordReset));
    }
    user.updated_at = now;
    if !store
        .update_user(&user, new_password_hash.as_deref(), &events)
        .await?
    {
        return Err(no_user(id));
    }
    tracing::info!(user_id = %id, "updated a user");
    Ok(user)
}

/// Deletes the user with their sessions, grants, consents, memberships and personal keys.
pub async fn delete_user(store: &Store, id: &UserId, by: &Initiator) -> Result<(), Error> {
    let event = AuditEvent::new(Action::UserDeleted, by, Some(id.as_str()), json!({}));
    if !store.delete_user(id, &event).await? {
        return Err(no_user(id));
    }
    tracing::info!(user_id = %id, "deleted a user");
    Ok(())
}

/// The clients a user has consented to: `(client id, scope, when it last changed)`.
pub async fn list_consents(
    store: &Store,
    id: &UserId,
) -> Result<Vec<(ClientId, Scope, i64)>, Error> {
    find_user(store, id).await?;
    Ok(store.list_consents(id).await?)
}

/// Withdraws a user's consent to a client: they will be asked again, and every grant they
/// gave it is revoked at once.
pub async fn withdraw_consent(
    store: &Store,
    id: &UserId,
    client_id: &ClientId,
    by: &Initiator,
) -> Result<(), Error> {
    let event = AuditEvent::new(
        Action::ConsentWithdrawn,
        by,
        Some(client_id.as_str()),
        json!({ "user_id": id }),
    );
    if !store
        .withdraw_consent(id, client_id, unix_now(), &event)
        .await?
    {
        return Err(Error::NotFound(format!(
            "user \"{id}\" has not consented to client \"{client_id}\""
        )));
    }
    tracing::info!(user_id = %id, %client_id, "withdrew a consent");
    Ok(())
}

fn no_user(id: &UserId) -> Error {
    Error::NotFound(format!("no user \"{id}\""))
}

/// Trimmed, empty as none, and plausible.
fn normalise_email(email: Option<String>) -> Result<Option<String>, Error> {
    let email = email.map(|e| e.trim().to_owned()).filter(|e| !e.is_empty());
    if let Some(email) = &email {
        check_email(email).map_err(Error::Invalid)?;
    }
    Ok(email)
}

async fn hash_password(password: String) -> Result<String, Error> {
    passwords::hash_password(password)
        .await
        .map_err(|e| Error::Invalid(e.to_string()))
}
