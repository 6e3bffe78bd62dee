//! API key rows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::api_keys::{ApiKey, ApiKeyKind};

macro_rules! api_key_columns {
    () => {
        "id, kind, name, display_prefix, scope, created_at, expires_at, revoked_at, last_used_at"
    };
}

/// `last_used_at` is refreshed at most this often, so that using a key is not a write per request.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;

impl Store {
    pub async fn insert_api_key(&self, key: &ApiKey, key_hash: &str) -> Result<(), StoreError> {
        sqlx::query(concat!(
            "INSERT INTO api_keys (",
            api_key_columns!(),
            ", key_hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&key.id)
        .bind(key.kind.as_str())
        .bind(&key.name)
        .bind(&key.display_prefix)
        .bind(&key.scope)
        .bind(key.created_at)
        .bind(key.expires_at)
        .bind(key.revoked_at)
        .bind(key.last_used_at)
        .bind(key_hash)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    pub async fn find_api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            api_key_columns!(),
            " FROM api_keys WHERE key_hash = $1"
        ))
        .bind(key_hash)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| api_key_from_row(&r)).transpose()
    }

    /// Records a use of the key, unless one was recorded within the last minute.
    pub async fn touch_api_key(&self, key: &ApiKey, now: i64) -> Result<(), StoreError> {
        if key
            .last_used_at
            .is_some_and(|at| now - at < LAST_USED_RESOLUTION_SECS)
        {
            return Ok(());
        }
        sqlx::query(
            "UPDATE api_keys SET last_used_at = $2 \
             WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $3)",
        )
        .bind(&key.id)
        .bind(now)
        .bind(now - LAST_USED_RESOLUTION_SECS)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

fn api_key_from_row(row: &AnyRow) -> Result<ApiKey, StoreError> {
    let kind: String = row.try_get("kind")?;
    Ok(ApiKey {
        id: row.try_get("id")?,
        kind: ApiKeyKind::parse(&kind)
            .ok_or_else(|| StoreError::Internal(sqlx::Error::Decode("api key kind".into())))?,
        name: row.try_get("name")?,
        display_prefix: row.try_get("display_prefix")?,
        scope: row.try_get("scope")?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
        revoked_at: row.try_get("revoked_at")?,
        last_used_at: row.try_get("last_used_at")?,
    })
}
