//! Per-key usage: one row per key and UTC day, to which every server adds what it counted
//! (`crate::usage`). Adding is one statement per batch of rows, so that servers adding to the
//! same row at once add up instead of overwriting each other.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::api_keys::DayUsage;
use crate::clock::UtcDay;
use crate::ids::{ApiKeyId, UserId};

/// Rows per INSERT: 7 parameters each, well under SQLite's and PostgreSQL's limits.
const ROWS_PER_STATEMENT: usize = 200;

/// What one server counted for one key on one day since it last wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageIncrement {
    pub api_key_id: ApiKeyId,
    pub day: UtcDay,
    pub exchanges: u64,
    pub introspections: u64,
    pub last_used_at: i64,
    pub last_exchange_at: Option<i64>,
    pub last_exchange_ip: Option<String>,
}

const COLUMNS: &str = "day, exchanges, introspections, last_used_at, last_exchange_at, \
                       last_exchange_ip";

impl Store {
    /// Adds `increments` to their days' rows, all or none (one transaction). Counts add up;
    /// the last use and the last exchange's address are the latest of the row's and the
    /// increment's, so that servers may write in any order.
    pub async fn add_api_key_usage(&self, increments: &[UsageIncrement]) -> Result<(), StoreError> {
        if increments.is_empty() {
            return Ok(());
        }
        // In one order on every server: PostgreSQL locks the rows as it goes, and two
        // servers taking the same rows in different orders could deadlock.
        let mut sorted: Vec<&UsageIncrement> = increments.iter().collect();
        sorted.sort_by(|a, b| (&a.api_key_id, a.day).cmp(&(&b.api_key_id, b.day)));
        let mut tx = self.begin_write().await?;
        for batch in sorted.chunks(ROWS_PER_STATEMENT) {
            let statement = add_statement(batch.len());
            let mut query = sqlx::query(sqlx::AssertSqlSafe(statement));
            for row in batch {
                query = query
                    .bind(&row.api_key_id)
                    .bind(row.day.0)
                    .bind(as_count(row.exchanges))
                    .bind(as_count(row.introspections))
                    .bind(row.last_used_at)
                    .bind(row.last_exchange_at)
                    .bind(&row.last_exchange_ip);
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await
    }

    /// The key's usage on the days from `first` to `last` that saw any, newest first.
    pub async fn api_key_usage(
        &self,
        id: &ApiKeyId,
        first: UtcDay,
        last: UtcDay,
    ) -> Result<Vec<DayUsage>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM api_key_usage \
             WHERE api_key_id = $1 AND day >= $2 AND day <= $3 ORDER BY day DESC"
        )))
        .bind(id)
        .bind(first.0)
        .bind(last.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(usage_from_row).collect()
    }

    /// The usage on `day` of each of the user's personal keys that was used that day.
    pub async fn personal_keys_usage_on(
        &self,
        user_id: &UserId,
        day: UtcDay,
    ) -> Result<Vec<(ApiKeyId, DayUsage)>, StoreError> {
        let rows = sqlx::query(
            "SELECT u.api_key_id, u.day, u.exchanges, u.introspections, u.last_used_at, \
             u.last_exchange_at, u.last_exchange_ip FROM api_key_usage u \
             JOIN api_keys k ON k.id = u.api_key_id \
             WHERE k.owner_user_id = $1 AND k.kind = 'personal' AND u.day = $2",
        )
        .bind(user_id)
        .bind(day.0)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("api_key_id")?, usage_from_row(row)?)))
            .collect()
    }

    /// Deletes the usage of days before `first_kept`, a day at a time (so that a backlog
    /// never holds SQLite's one writer long); returns how many rows.
    pub async fn prune_api_key_usage(&self, first_kept: UtcDay) -> Result<u64, StoreError> {
        let mut deleted = 0;
        loop {
            let result = sqlx::query(
                "DELETE FROM api_key_usage WHERE day < $1 \
                 AND day = (SELECT MIN(day) FROM api_key_usage)",
            )
            .bind(first_kept.0)
            .execute(self.pool())
            .await?;
            if result.rows_affected() == 0 {
                return Ok(deleted);
            }
            deleted += result.rows_affected();
        }
    }
}

/// `INSERT … VALUES (…), … ON CONFLICT DO UPDATE` for `rows` rows: an upsert that adds.
fn add_statement(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|row| {
            let params: Vec<String> = (1..=7).map(|n| format!("${}", row * 7 + n)).collect();
            format!("({})", params.join(", "))
        })
        .collect();
    // The latest exchange wins the address; on a tie, the row being written.
    let newer_exchange = "excluded.last_exchange_at IS NOT NULL AND \
         (api_key_usage.last_exchange_at IS NULL \
          OR excluded.last_exchange_at >= api_key_usage.last_exchange_at)";
    format!(
        "INSERT INTO api_key_usage (api_key_id, {COLUMNS}) VALUES {} \
         ON CONFLICT (api_key_id, day) DO UPDATE SET \
         exchanges = api_key_usage.exchanges + excluded.exchanges, \
         introspections = api_key_usage.introspections + excluded.introspections, \
         last_used_at = CASE WHEN excluded.last_used_at > api_key_usage.last_used_at \
           THEN excluded.last_used_at ELSE api_key_usage.last_used_at END, \
         last_exchange_at = CASE WHEN {newer_exchange} \
           THEN excluded.last_exchange_at ELSE api_key_usage.last_exchange_at END, \
         last_exchange_ip = CASE WHEN {newer_exchange} \
           THEN excluded.last_exchange_ip ELSE api_key_usage.last_exchange_ip END",
        values.join(", ")
    )
}

/// A count as the database holds it (BIGINT); no server counts past it.
fn as_count(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn usage_from_row(row: &AnyRow) -> Result<DayUsage, StoreError> {
    let count = |column: &str| -> Result<u64, StoreError> {
        Ok(u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0))
    };
    let (exchanges, introspections) = (count("exchanges")?, count("introspections")?);
    Ok(DayUsage {
        day: UtcDay(row.try_get("day")?),
        exchanges,
        introspections,
        total: exchanges.saturating_add(introspections),
        last_used_at: Some(row.try_get("last_used_at")?),
        last_exchange_at: row.try_get("last_exchange_at")?,
        last_exchange_ip: row.try_get("last_exchange_ip")?,
    })
}
