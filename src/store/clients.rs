//! Client rows.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::audit::AuditEvent;
use crate::clients::{AuthMethod, Client};
use crate::ids::ClientId;
use crate::oauth::scope::Scope;
use crate::rate_limit::plan::PlanName;

macro_rules! client_columns {
    () => {
        "id, name, secret_hash, token_endpoint_auth_method, redirect_uris, \
                       grant_types, scope, resources, skip_consent, resource_server, created_at, updated_at, rate_limit_plan"
    };
}

impl Store {
    pub async fn insert_client(
        &self,
        client: &Client,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let statement = sqlx::query(concat!(
            "INSERT INTO clients (",
            client_columns!(),
            ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(&client.id)
        .bind(&client.name)
        .bind(&client.secret_hash)
        .bind(client.auth_method.as_str())
        .bind(to_json(&client.redirect_uris))
        .bind(to_json(&client.grant_types))
        .bind(client.scope.to_string())
        .bind(to_json(&client.resources))
        .bind(i64::from(client.skip_consent))
        .bind(i64::from(client.resource_server))
        .bind(client.created_at)
        .bind(client.updated_at)
        .bind(client.rate_limit_plan.as_ref().map(PlanName::as_str));
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    pub async fn find_client(&self, id: &ClientId) -> Result<Option<Client>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| client_from_row(&r)).transpose()
    }

    /// Clients in id order, `limit` at a time, after the client `after` (keyset paging).
    pub async fn list_clients(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<Client>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            client_columns!(),
            " FROM clients WHERE id > $1 ORDER BY id LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(client_from_row).collect()
    }

    /// Replaces a client's metadata (not its id, secret or authentication method).
    /// Returns false when there is no such client.
    pub async fn update_client(
        &self,
        client: &Client,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE clients SET name = $2, redirect_uris = $3, grant_types = $4, scope = $5, \
             resources = $6, skip_consent = $7, resource_server = $8, updated_at = $9, \
             rate_limit_plan = $10 WHERE id = $1",
        )
        .bind(&client.id)
        .bind(&client.name)
        .bind(to_json(&client.redirect_uris))
        .bind(to_json(&client.grant_types))
        .bind(client.scope.to_string())
        .bind(to_json(&client.resources))
        .bind(i64::from(client.skip_consent))
        .bind(i64::from(client.resource_server))
        .bind(client.updated_at)
        .bind(client.rate_limit_plan.as_ref().map(PlanName::as_str));
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces a confidential client's secret hash. Returns false when there is no such client.
    pub async fn set_client_secret_hash(
        &self,
        id: &ClientId,
        secret_hash: &str,
        now: i64,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query(
            "UPDATE clients SET secret_hash = $2, updated_at = $3 WHERE id = $1 AND secret_hash IS NOT NULL",
        )
        .bind(id)
        .bind(secret_hash)
        .bind(now);
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Returns false when there was no such client.
    pub async fn delete_client(
        &self,
        id: &ClientId,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let statement = sqlx::query("DELETE FROM clients WHERE id = $1").bind(id);
        let result = self.execute_credential_change(statement, event).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Every scope some client may ask for: the server's `scopes_supported`.
    pub async fn scopes_in_use(&self) -> Result<Scope, StoreError> {
        let scopes: Vec<String> =
            sqlx::query_scalar("SELECT DISTINCT scope FROM clients WHERE scope <> ''")
                .fetch_all(self.pool())
                .await?;
        Ok(Scope::parse(&scopes.join(" ")).unwrap_or_default())
    }
}

fn to_json<T: serde::Serialize>(list: &[T]) -> String {
    serde_json::to_string(list).expect("a list of strings serializes")
}

fn from_json<T: serde::de::DeserializeOwned>(text: &str) -> Result<Vec<T>, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Internal(sqlx::Error::Decode(e.into())))
}

fn client_from_row(row: &AnyRow) -> Result<Client, StoreError> {
    let corrupt = |what: &str| StoreError::Internal(sqlx::Error::Decode(what.to_owned().into()));
    let method: String = row.try_get("token_endpoint_auth_method")?;
    let scope: String = row.try_get("scope")?;
    Ok(Client {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        secret_hash: row.try_get("secret_hash")?,
        auth_method: AuthMethod::parse(&method).ok_or_else(|| corrupt("auth method"))?,
        redirect_uris: from_json(&row.try_get::<String, _>("redirect_uris")?)?,
        grant_types: from_json(&row.try_get::<String, _>("grant_types")?)?,
        scope: Scope::parse(&scope).map_err(|_| corrupt("scope"))?,
        resources: from_json(&row.try_get::<String, _>("resources")?)?,
        skip_consent: row.try_get::<i64, _>("skip_consent")? != 0,
        resource_server: row.try_get::<i64, _>("resource_server")? != 0,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        rate_limit_plan: stored_plan(row)?,
    })
}

/// A stored plan name; a name that is not one any more (edited by hand) reads as none.
pub(super) fn stored_plan(row: &AnyRow) -> Result<Option<PlanName>, StoreError> {
    let name: Option<String> = row.try_get("rate_limit_plan")?;
    Ok(name.and_then(|name| name.parse().ok()))
}
