//! User rows, and what disabling or deleting a user does to their sessions and tokens.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError, WriteTx};
use crate::audit::AuditEvent;
use crate::ids::UserId;
use crate::users::{User, Username};

macro_rules! user_columns {
    () => {
        "id, username, email, disabled_at, created_at, updated_at"
    };
}

impl Store {
    pub async fn insert_user(
        &self,
        user: &User,
        password_hash: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let statement = sqlx::query(concat!(
            "INSERT INTO users (",
            user_columns!(),
            ", password_hash) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        ))
        .bind(&user.id)
        .bind(user.username.as_str())
        .bind(&user.email)
        .bind(user.disabled_at)
        .bind(user.created_at)
        .bind(user.updated_at)
        .bind(password_hash);
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    pub async fn find_user(&self, id: &UserId) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| user_from_row(&r)).transpose()
    }

    /// The user and their password hash, for signing in.
    pub async fn find_user_for_login(
        &self,
        username: &str,
    ) -> Result<Option<(User, String)>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            ", password_hash FROM users WHERE username = $1"
        ))
        .bind(username)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| Ok((user_from_row(&r)?, r.try_get("password_hash")?)))
            .transpose()
    }

    pub async fn find_user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
        Ok(self
            .find_user_for_login(username)
            .await?
            .map(|(user, _)| user))
    }

    /// Users in id order, `limit` at a time, after the user `after`.
    pub async fn list_users(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<User>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            user_columns!(),
            " FROM users WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(user_from_row).collect()
    }

    /// Saves email and disabled state, and a new password hash when given, in one transaction.
    /// Disabling, or a new password (the first step after an account takeover), also ends the
    /// user's sessions and revokes every grant they gave; a new password also revokes the keys
    /// they made themselves on the account page and forgets their consents, so that nothing a
    /// taker set up outlives the reset. Returns false when there is no such user.
    pub async fn update_user(
        &self,
        user: &User,
        new_password_hash: Option<&str>,
        events: &[AuditEvent],
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = sqlx::query(
            "UPDATE users SET email = $2, disabled_at = $3, updated_at = $4 WHERE id = $1",
        )
        .bind(&user.id)
        .bind(&user.email)
        .bind(user.disabled_at)
        .bind(user.updated_at)
        .execute(&mut *tx)
        .await?;
        if let Some(hash) = new_password_hash {
            sqlx::query("UPDATE users SET password_hash = $2 WHERE id = $1")
                .bind(&user.id)
                .bind(hash)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE api_keys SET revoked_at = $2 \
                 WHERE owner_user_id = $1 AND created_by = $1 AND revoked_at IS NULL",
            )
            .bind(&user.id)
            .bind(user.updated_at)
            .execute(&mut *tx)
            .await?;
            sqlx::query("DELETE FROM consents WHERE user_id = $1")
                .bind(&user.id)
                .execute(&mut *tx)
                .await?;
        }
        if user.disabled_at.is_some() || new_password_hash.is_some() {
            end_sessions_and_grants(&mut tx, &user.id, user.updated_at).await?;
        }
        if result.rows_affected() == 1 {
            for event in events {
                Self::record_event(&mut tx, event).await?;
            }
        }
        // Whether a user is disabled decides whether their API keys may be used.
        self.commit_credential_change(tx).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the user with their sessions, consents, grants, tokens and API keys (by cascade).
    pub async fn delete_user(&self, id: &UserId, event: &AuditEvent) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM users WHERE id = $1").bind(id);
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }
}

/// Signs the user out everywhere and revokes every grant they gave (so every refresh token,
/// and every access token introspection would vouch for).
async fn end_sessions_and_grants(
    tx: &mut WriteTx,
    user_id: &UserId,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE grants SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
        .bind(user_id)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub(super) fn user_from_row(row: &AnyRow) -> Result<User, StoreError> {
    Ok(User {
        id: row.try_get("id")?,
        username: Username::from_stored(row.try_get("username")?),
        email: row.try_get("email")?,
        disabled_at: row.try_get("disabled_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}
