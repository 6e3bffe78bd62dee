//! Audit events, written inside the transaction of the change they record, with the webhook
//! deliveries they call for (the outbox), and read back page by page.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::transaction::WriteTx;
use super::{Store, StoreError};
use crate::audit::{Action, AuditEvent, wants};

/// Which events to list.
#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub action: Option<Action>,
    pub actor: Option<String>,
    pub target: Option<String>,
    /// From this time on (ms, inclusive).
    pub since_ms: Option<i64>,
    /// Before this time (ms, exclusive).
    pub until_ms: Option<i64>,
    /// Older than this event (time in ms, id): where the previous page ended.
    pub before: Option<(i64, String)>,
}

impl Store {
    /// Writes `event` in `tx`, and queues it for every webhook endpoint that wants it: both
    /// commit or roll back with the change.
    pub async fn record_event(tx: &mut WriteTx, event: &AuditEvent) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO audit_events (id, at_ms, action, actor, target, ip, user_agent, \
             request_id, details) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&event.id)
        .bind(event.at_ms)
        .bind(event.action.as_str())
        .bind(&event.actor)
        .bind(&event.target)
        .bind(&event.ip)
        .bind(&event.user_agent)
        .bind(&event.request_id)
        .bind(event.details.to_string())
        .execute(&mut **tx)
        .await?;
        let endpoints: Vec<(String, String)> =
            sqlx::query_as("SELECT id, actions FROM webhook_endpoints WHERE disabled_at IS NULL")
                .fetch_all(&mut **tx)
                .await?;
        for (endpoint_id, actions) in endpoints {
            let patterns: Vec<String> = serde_json::from_str(&actions).unwrap_or_default();
            if !wants(&patterns, event.action) {
                continue;
            }
            sqlx::query(
                "INSERT INTO webhook_deliveries (endpoint_id, event_id, at_ms, next_attempt_at_ms) \
                 VALUES ($1, $2, $3, $3)",
            )
            .bind(&endpoint_id)
            .bind(&event.id)
            .bind(event.at_ms)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }

    /// Records an event that goes with no other change (a failed sign-in), in a transaction
    /// of its own.
    pub async fn record_event_alone(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        Self::record_event(&mut tx, event).await?;
        tx.commit().await
    }

    /// Up to `limit` events matching `filter`, newest first.
    pub async fn list_events(
        &self,
        filter: &EventFilter,
        limit: i64,
    ) -> Result<Vec<AuditEvent>, StoreError> {
        let (before_ms, before_id) = filter.before.clone().unwrap_or((i64::MAX, String::new()));
        // `$n IS NULL OR …` keeps one statement for every combination of filters.
        let rows = sqlx::query(
            "SELECT id, at_ms, action, actor, target, ip, user_agent, request_id, details \
             FROM audit_events \
             WHERE ($1 IS NULL OR action = $1) AND ($2 IS NULL OR actor = $2) \
             AND ($3 IS NULL OR target = $3) AND at_ms >= $4 AND at_ms < $5 \
             AND (at_ms < $6 OR (at_ms = $6 AND ($7 = '' OR id < $7))) \
             ORDER BY at_ms DESC, id DESC LIMIT $8",
        )
        .bind(filter.action.map(Action::as_str))
        .bind(&filter.actor)
        .bind(&filter.target)
        .bind(filter.since_ms.unwrap_or(0))
        .bind(filter.until_ms.unwrap_or(i64::MAX))
        .bind(before_ms)
        .bind(before_id)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(event_from_row).collect()
    }

    /// Deletes events older than `before_ms` (with their deliveries); returns how many.
    pub async fn prune_events(&self, before_ms: i64) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM webhook_deliveries WHERE event_id IN \
             (SELECT id FROM audit_events WHERE at_ms < $1)",
        )
        .bind(before_ms)
        .execute(&mut *tx)
        .await?;
        let deleted = sqlx::query("DELETE FROM audit_events WHERE at_ms < $1")
            .bind(before_ms)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(deleted)
    }
}

pub(super) fn event_from_row(row: &AnyRow) -> Result<AuditEvent, StoreError> {
    let corrupt = |what: &str| StoreError::Internal(sqlx::Error::Decode(what.to_owned().into()));
    let action: String = row.try_get("action")?;
    let details: String = row.try_get("details")?;
    Ok(AuditEvent {
        id: row.try_get::<String, _>("id")?.into(),
        at_ms: row.try_get("at_ms")?,
        action: Action::parse(&action).ok_or_else(|| corrupt("audit action"))?,
        actor: row.try_get("actor")?,
        target: row.try_get("target")?,
        ip: row.try_get("ip")?,
        user_agent: row.try_get("user_agent")?,
        request_id: row.try_get("request_id")?,
        details: serde_json::from_str(&details).map_err(|_| corrupt("audit details"))?,
    })
}
