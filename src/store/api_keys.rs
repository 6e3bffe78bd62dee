//! API key rows. Whether a key may be used is decided in the query itself (not revoked, not
//! expired, owner not disabled). Every change that can stop a key from being usable bumps the
//! credential generation, which is what lets servers cache usable keys (`crate::credentials`).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::api_keys::{ApiKey, ApiKeyKind, KeyEnv, KeyOwner};
use crate::audit::AuditEvent;
use crate::config::LAST_USED_RESOLUTION_SECS;
use crate::ids::{ApiKeyId, OrgId, UserId};
use crate::names::DisplayName;
use crate::oauth::scope::Scope;
use crate::rate_limit::plan::PlanName;

macro_rules! api_key_columns {
    () => {
        "k.id, k.kind, k.name, k.display_prefix, k.scope, k.env, k.metadata, k.owner_user_id, \
         k.owner_org_id, k.created_by, k.revoke_when_creator_leaves, k.created_at, k.expires_at, \
         k.revoked_at, k.last_used_at, k.rate_limit_plan"
    };
}

/// The rows of keys that may be used at `$2` (now): not revoked, not expired, and not owned by
/// a disabled user. (An organization's keys go with the organization.)
macro_rules! usable_keys {
    () => {
        " FROM api_keys k LEFT JOIN users u ON u.id = k.owner_user_id \
         LEFT JOIN organizations o ON o.id = k.owner_org_id \
         WHERE k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $2) \
         AND (k.owner_user_id IS NULL OR u.disabled_at IS NULL)"
    };
}

impl Store {
    pub async fn insert_api_key(
        &self,
        key: &ApiKey,
        key_hash: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (owner_user, owner_org) = owner_columns(&key.owner);
        let statement = sqlx::query(
            "INSERT INTO api_keys (id, kind, name, display_prefix, scope, env, metadata, owner_user_id, \
             owner_org_id, created_by, revoke_when_creator_leaves, created_at, expires_at, revoked_at, \
             last_used_at, key_hash, rate_limit_plan) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(&key.id)
        .bind(key.kind.as_str())
        .bind(key.name.as_str())
        .bind(&key.display_prefix)
        .bind(key.scope.to_string())
        .bind(key.env.as_str())
        .bind(key.metadata.to_string())
        .bind(owner_user)
        .bind(owner_org)
        .bind(&key.created_by)
        .bind(i64::from(key.revoke_when_creator_leaves))
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .bind(key.last_used_at)
        .bind(key_hash)
        .bind(key.rate_limit_plan.as_ref().map(PlanName::as_str));
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    /// The key with this hash if it may be used at `now`: not revoked, not expired, and not
    /// owned by a disabled user (an organization's keys go with the organization), with its
    /// owner's name.
    pub async fn find_usable_api_key(
        &self,
        key_hash: &str,
        now: i64,
    ) -> Result<Option<UsableApiKey>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            ", COALESCE(u.username, o.name) AS owner_name",
            usable_keys!(),
            " AND k.key_hash = $1"
        ))
        .bind(key_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        Ok(Some(UsableApiKey {
            key: api_key_from_row(&row)?,
            owner_name: row.try_get("owner_name")?,
        }))
    }

    /// The key with this id if it may be used at `now` (same rules as by hash).
    pub async fn find_usable_api_key_by_id(
        &self,
        id: &str,
        now: i64,
    ) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            usable_keys!(),
            " AND k.id = $1"
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| api_key_from_row(&r)).transpose()
    }

    pub async fn find_api_key(&self, id: &ApiKeyId) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys k WHERE k.id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| api_key_from_row(&r)).transpose()
    }

    /// Keys in id order, `limit` at a time, after the key `after`.
    pub async fn list_api_keys(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys k WHERE k.id > $1 ORDER BY k.id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// A user's personal keys, newest first.
    pub async fn list_user_api_keys(&self, user_id: &UserId) -> Result<Vec<ApiKey>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys k WHERE k.owner_user_id = $1 AND k.kind = 'personal' ORDER BY k.created_at DESC, k.id"
        ))
        .bind(user_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(api_key_from_row).collect()
    }

    /// Revokes one of `user_id`'s personal keys; false when they have no such key.
    pub async fn revoke_user_api_key(
        &self,
        id: &ApiKeyId,
        user_id: &UserId,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $3) \
             WHERE id = $1 AND owner_user_id = $2 AND kind = 'personal'",
        )
        .bind(id)
        .bind(user_id)
        .bind(now);
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Saves name, scope, metadata and rate-limit plan. Returns false when there is no such key.
    pub async fn update_api_key(
        &self,
        key: &ApiKey,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let result = self
            .execute_credential_change(
                sqlx::query(
                    "UPDATE api_keys SET name = $2, scope = $3, metadata = $4, rate_limit_plan = $5 \
                     WHERE id = $1",
                )
                .bind(&key.id)
                .bind(key.name.as_str())
                .bind(key.scope.to_string())
                .bind(key.metadata.to_string())
                .bind(key.rate_limit_plan.as_ref().map(PlanName::as_str)),
                event,
            )
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes a key at once. Returns false when there is no such key.
    pub async fn revoke_api_key(
        &self,
        id: &ApiKeyId,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let result = self
            .execute_credential_change(
                sqlx::query(
                    "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1",
                )
                .bind(id)
                .bind(now),
                event,
            )
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a use of the key, unless one was recorded within the last minute (perhaps by
    /// another replica). Not a credential change: what a key may do stays the same.
    pub async fn record_api_key_use(&self, id: &ApiKeyId, now: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(id)
        .bind(now)
        .bind(now - LAST_USED_RESOLUTION_SECS)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

/// A key that may be used, with its owner's username or organization name (None for keys
/// without an owner).
#[derive(Debug, Clone)]
pub struct UsableApiKey {
    pub key: ApiKey,
    pub owner_name: Option<String>,
}

fn owner_columns(owner: &KeyOwner) -> (Option<&str>, Option<&str>) {
    match owner {
        KeyOwner::User { user_id } => (Some(user_id.as_str()), None),
        KeyOwner::Org { org_id } => (None, Some(org_id.as_str())),
        KeyOwner::Nobody => (None, None),
    }
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    let corrupt = |what: &str| StoreError::Internal(sqlx::Error::Decode(what.to_owned().into()));
    let kind: String = row.try_get("kind")?;
    let env: String = row.try_get("env")?;
    let metadata: String = row.try_get("metadata")?;
    let owner_user: Option<String> = row.try_get("owner_user_id")?;
    let owner_org: Option<String> = row.try_get("owner_org_id")?;
    let owner = match (owner_user, owner_org) {
        (Some(user_id), _) => KeyOwner::User {
            user_id: UserId::from(user_id),
        },
        (None, Some(org_id)) => KeyOwner::Org {
            org_id: OrgId::from(org_id),
        },
        (None, None) => KeyOwner::Nobody,
    };
    Ok(ApiKey {
        id: row.try_get("id")?,
        kind: ApiKeyKind::parse(&kind).ok_or_else(|| corrupt("api key kind"))?,
        name: DisplayName::from_stored(row.try_get("name")?),
        display_prefix: row.try_get("display_prefix")?,
        scope: Scope::parse(&row.try_get::<String, _>("scope")?)
            .map_err(|_| corrupt("api key scope"))?,
        env: KeyEnv::parse(&env).ok_or_else(|| corrupt("api key env"))?,
        metadata: serde_json::from_str(&metadata).map_err(|_| corrupt("api key metadata"))?,
        owner,
        created_by: row.try_get("created_by")?,
        revoke_when_creator_leaves: row.try_get::<i64, _>("revoke_when_creator_leaves")? != 0,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
        rate_limit_plan: super::clients::stored_plan(row)?,
    })
}
