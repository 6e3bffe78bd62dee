//! Webhook endpoints, their leases (which server delivers to each), and their outbox rows:
//! the oldest undelivered first, marked when acknowledged or rescheduled when not.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::audit::event_from_row;
use super::{Database, Store, StoreError};
use crate::audit::AuditEvent;
use crate::ids::WebhookId;
use crate::webhooks::signature::SigningSecret;
use crate::webhooks::{DeliveryStatus, PendingSummary, WebhookEndpoint};

/// An endpoint a server holds the lease of: where to send, and what to sign with.
pub struct LeasedEndpoint {
    pub id: WebhookId,
    pub url: String,
    pub secret: SigningSecret,
}

/// The next event to deliver to an endpoint.
pub struct PendingDelivery {
    pub event: AuditEvent,
    /// Attempts made so far.
    pub attempts: i64,
    /// Not before this (Unix ms, the recording server's clock, then the deliverer's).
    pub next_attempt_at_ms: i64,
}

const ENDPOINT_COLUMNS: &str = "id, url, actions, created_at, disabled_at";

impl Store {
    /// Milliseconds since the Unix epoch by the database's clock: leases are measured by one
    /// clock, whichever replica takes or checks them.
    fn database_now_ms(&self) -> &'static str {
        match self.database() {
            Database::Sqlite { .. } => {
                "CAST((julianday('now') - 2440587.5) * 86400000.0 AS BIGINT)"
            }
            Database::Postgres { .. } => "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT",
        }
    }

    /// Stores a new endpoint and `event`, which records it, in one transaction.
    pub async fn insert_webhook_endpoint(
        &self,
        endpoint: &WebhookEndpoint,
        secret: &SigningSecret,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let actions =
            serde_json::to_string(&endpoint.actions).expect("a list of strings serializes as JSON");
        let statement = sqlx::query(
            "INSERT INTO webhook_endpoints (id, url, actions, secret, created_at, disabled_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&endpoint.id)
        .bind(&endpoint.url)
        .bind(actions)
        .bind(secret.expose())
        .bind(endpoint.created_at)
        .bind(endpoint.disabled_at);
        self.execute_recorded(statement, event).await?;
        Ok(())
    }

    /// Up to `limit` endpoints after the one with id `after`, in id order.
    pub async fn list_webhook_endpoints(
        &self,
        after: Option<&str>,
        limit: i64,
    ) -> Result<Vec<WebhookEndpoint>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after.unwrap_or(""))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(endpoint_from_row).collect()
    }

    pub async fn find_webhook_endpoint(
        &self,
        id: &WebhookId,
    ) -> Result<Option<WebhookEndpoint>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(endpoint_from_row).transpose()
    }

    /// Deletes the endpoint and its queued deliveries and records `event`, in one
    /// transaction; false (and nothing recorded) when there is no such endpoint.
    pub async fn delete_webhook_endpoint(
        &self,
        id: &WebhookId,
        event: &AuditEvent,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let deleted = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        // After the delete: the endpoint is not sent the news of its own deletion.
        Self::record_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// How the endpoint's deliveries stand.
    pub async fn webhook_delivery_status(
        &self,
        id: &WebhookId,
    ) -> Result<DeliveryStatus, StoreError> {
        let (pending, delivered): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*) - COUNT(delivered_at_ms), COUNT(delivered_at_ms) \
             FROM webhook_deliveries WHERE endpoint_id = $1",
        )
        .bind(id)
        .fetch_one(self.pool())
        .await?;
        let next = sqlx::query(
            "SELECT event_id, attempts, last_error, next_attempt_at_ms FROM webhook_deliveries \
             WHERE endpoint_id = $1 AND delivered_at_ms IS NULL \
             ORDER BY at_ms, event_id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?
        .map(|row| -> Result<PendingSummary, StoreError> {
            Ok(PendingSummary {
                event_id: row.try_get("event_id")?,
                attempts: row.try_get("attempts")?,
                last_error: row.try_get("last_error")?,
                next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
            })
        })
        .transpose()?;
        Ok(DeliveryStatus {
            pending,
            delivered,
            next,
        })
    }

    /// Enabled endpoints with a delivery due by `now_ms` whose lease no live server but
    /// `owner` holds: those `owner` may take.
    pub(crate) async fn webhook_endpoints_to_take(
        &self,
        owner: &str,
        now_ms: i64,
    ) -> Result<Vec<WebhookId>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT e.id FROM webhook_endpoints e \
             WHERE e.disabled_at IS NULL \
             AND (e.lease_until_ms < {now} OR e.lease_owner = $1) \
             AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = e.id \
                 AND d.delivered_at_ms IS NULL AND d.next_attempt_at_ms <= $2) \
             ORDER BY e.id",
            now = self.database_now_ms()
        )))
        .bind(owner)
        .bind(now_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.into_iter().map(|(id,)| id.into()).collect())
    }

    /// Takes the endpoint's lease for `owner` for `lease_ms`, if it is free (ran out) or
    /// already `owner`'s: one conditional UPDATE, so of servers racing for it one wins.
    pub(crate) async fn take_webhook_lease(
        &self,
        id: &WebhookId,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<LeasedEndpoint>, StoreError> {
        let taken = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET lease_owner = $2, lease_until_ms = {now} + $3 \
             WHERE id = $1 AND disabled_at IS NULL \
             AND (lease_until_ms < {now} OR lease_owner = $2)",
            now = self.database_now_ms()
        )))
        .bind(id)
        .bind(owner)
        .bind(lease_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        if taken == 0 {
            return Ok(None);
        }
        let row: Option<(String, String)> =
            sqlx::query_as("SELECT url, secret FROM webhook_endpoints WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await?;
        Ok(row.map(|(url, secret)| LeasedEndpoint {
            id: id.clone(),
            url,
            secret: SigningSecret::from_stored(secret),
        }))
    }

    /// Extends `owner`'s lease on the endpoint by `lease_ms` from now; false when it is no
    /// longer `owner`'s (taken over after it ran out, released, disabled or deleted).
    pub(crate) async fn renew_webhook_lease(
        &self,
        id: &WebhookId,
        owner: &str,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE webhook_endpoints SET lease_until_ms = {now} + $3 \
             WHERE id = $1 AND lease_owner = $2 AND disabled_at IS NULL",
            now = self.database_now_ms()
        )))
        .bind(id)
        .bind(owner)
        .bind(lease_ms)
        .execute(self.pool())
        .await?
        .rows_affected();
        Ok(renewed == 1)
    }

    /// Gives up `owner`'s lease on the endpoint, so that another server may take it at once.
    pub(crate) async fn release_webhook_lease(
        &self,
        id: &WebhookId,
        owner: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_endpoints SET lease_owner = NULL, lease_until_ms = 0 \
             WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The endpoint's oldest undelivered event (by time, then id), with its delivery's state.
    pub(crate) async fn next_webhook_delivery(
        &self,
        id: &WebhookId,
    ) -> Result<Option<PendingDelivery>, StoreError> {
        let row = sqlx::query(
            "SELECT e.id, e.at_ms, e.action, e.actor, e.target, e.ip, e.user_agent, \
             e.request_id, e.details, d.attempts, d.next_attempt_at_ms \
             FROM webhook_deliveries d JOIN audit_events e ON e.id = d.event_id \
             WHERE d.endpoint_id = $1 AND d.delivered_at_ms IS NULL \
             ORDER BY d.at_ms, d.event_id LIMIT 1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.map(|row| {
            Ok(PendingDelivery {
                event: event_from_row(&row)?,
                attempts: row.try_get("attempts")?,
                next_attempt_at_ms: row.try_get("next_attempt_at_ms")?,
            })
        })
        .transpose()
    }

    /// The endpoint acknowledged the event.
    pub(crate) async fn mark_webhook_delivered(
        &self,
        id: &WebhookId,
        event_id: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET delivered_at_ms = $3, attempts = attempts + 1, \
             last_error = NULL WHERE endpoint_id = $1 AND event_id = $2",
        )
        .bind(id)
        .bind(event_id)
        .bind(now_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// An attempt failed: counts it, says why, and when to try again.
    pub(crate) async fn record_webhook_failure(
        &self,
        id: &WebhookId,
        event_id: &str,
        error: &str,
        next_attempt_at_ms: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, last_error = $3, \
             next_attempt_at_ms = $4 WHERE endpoint_id = $1 AND event_id = $2",
        )
        .bind(id)
        .bind(event_id)
        .bind(error)
        .bind(next_attempt_at_ms)
        .execute(self.pool())
        .await?;
        Ok(())
    }
}

fn endpoint_from_row(row: &AnyRow) -> Result<WebhookEndpoint, StoreError> {
    let actions: String = row.try_get("actions")?;
    Ok(WebhookEndpoint {
        id: row.try_get::<String, _>("id")?.into(),
        url: row.try_get("url")?,
        actions: serde_json::from_str(&actions).map_err(|_| {
            StoreError::Internal(sqlx::Error::Decode("webhook actions".to_owned().into()))
        })?,
        created_at: row.try_get("created_at")?,
        disabled_at: row.try_get("disabled_at")?,
    })
}
