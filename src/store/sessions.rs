//! Browser sessions, remembered consents and sign-in throttling: the state behind the pages,
//! kept in the database so that any replica can serve any request.

use sqlx::Row;

use super::users::user_from_row;
use super::{Store, StoreError};
use crate::audit::AuditEvent;
use crate::config::SESSION_TOUCH_SECS;
use crate::ids::{ClientId, UserId};
use crate::oauth::scope::Scope;
use crate::users::User;

impl Store {
    pub async fn insert_session(
        &self,
        id_hash: &str,
        user_id: &UserId,
        now: i64,
        expires_at: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, user_id, created_at, last_seen_at, expires_at) \
             VALUES ($1, $2, $3, $3, $4)",
        )
        .bind(id_hash)
        .bind(user_id)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The user signed in by this session, if the session has neither expired (absolute) nor
    /// been idle longer than `idle_secs`, and the user is enabled. One query reads both.
    pub async fn find_session_user(
        &self,
        id_hash: &str,
        now: i64,
        idle_secs: i64,
    ) -> Result<Option<User>, StoreError> {
        let row = sqlx::query(
            "SELECT u.id, u.username, u.email, u.disabled_at, u.created_at, u.updated_at, s.last_seen_at \
             FROM sessions s JOIN users u ON u.id = s.user_id \
             WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3 AND u.disabled_at IS NULL",
        )
        .bind(id_hash)
        .bind(now)
        .bind(now - idle_secs)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else { return Ok(None) };
        let last_seen_at: i64 = row.try_get("last_seen_at")?;
        if now - last_seen_at >= SESSION_TOUCH_SECS {
            sqlx::query("UPDATE sessions SET last_seen_at = $2 WHERE id_hash = $1")
                .bind(id_hash)
                .bind(now)
                .execute(self.pool())
                .await?;
        }
        Ok(Some(user_from_row(&row)?))
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// What `user_id` has consented to for `client_id`; None when they never have (which is
    /// not the same as having consented to an empty scope).
    pub async fn find_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
    ) -> Result<Option<Scope>, StoreError> {
        let scope: Option<String> =
            sqlx::query_scalar("SELECT scope FROM consents WHERE user_id = $1 AND client_id = $2")
                .bind(user_id)
                .bind(client_id)
                .fetch_optional(self.pool())
                .await?;
        Ok(scope.map(|s| Scope::parse(&s).unwrap_or_default()))
    }

    pub async fn save_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        scope: &Scope,
        now: i64,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let statement = sqlx::query(
            "INSERT INTO consents (user_id, client_id, scope, updated_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, updated_at = excluded.updated_at",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(scope.to_string())
        .bind(now);
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    /// The clients `user_id` has consented to, with the scope and when it last changed.
    pub async fn list_consents(
        &self,
        user_id: &UserId,
    ) -> Result<Vec<(ClientId, Scope, i64)>, StoreError> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT client_id, scope, updated_at FROM consents WHERE user_id = $1 ORDER BY client_id",
        )
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(client_id, scope, at)| {
                (
                    client_id.into(),
                    Scope::parse(&scope).unwrap_or_default(),
                    at,
                )
            })
            .collect())
    }

    /// Forgets `user_id`'s consent to `client_id` and revokes every grant they gave it (its
    /// refresh tokens stop at once, its access tokens at introspection), with `event`, in one
    /// transaction. False when there was no such consent.
    pub async fn withdraw_consent(
        &self,
        user_id: &UserId,
        client_id: &ClientId,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE grants SET revoked_at = $3 \
             WHERE user_id = $1 AND client_id = $2 AND revoked_at IS NULL",
        )
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        Self::record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Counts one sign-in attempt for `key` in its window (a new window when the old one is
    /// over) and returns the count, in one statement: of concurrent attempts each gets its own
    /// number, so no more than the limit are ever checked. An attempt that turns out right gives
    /// its place back (`release_login_attempt`); a wrong one stays counted as a failure.
    pub async fn reserve_login_attempt(
        &self,
        key: &str,
        now: i64,
        window_secs: i64,
    ) -> Result<i64, StoreError> {
        let attempts = sqlx::query_scalar(
            "INSERT INTO login_failures (throttle_key, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (throttle_key) DO UPDATE SET \
               failures = CASE WHEN login_failures.window_start > $3 THEN login_failures.failures + 1 ELSE 1 END, \
               window_start = CASE WHEN login_failures.window_start > $3 THEN login_failures.window_start ELSE $2 END \
             RETURNING failures",
        )
        .bind(key)
        .bind(now)
        .bind(now - window_secs)
        .fetch_one(self.pool())
        .await?;
        Ok(attempts)
    }

    /// Gives back an attempt that was right.
    pub async fn release_login_attempt(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE login_failures SET failures = failures - 1 WHERE throttle_key = $1 AND failures > 0",
        )
        .bind(key)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}
