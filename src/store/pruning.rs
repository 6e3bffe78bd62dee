//! Deleting rows that no longer decide anything, so that tables do not grow for ever: expired
//! authorization codes, access-token records, grants (with their refresh tokens), sessions,
//! sign-in throttling windows, and the leases of servers that stopped without giving them up.
//!
//! Rows are kept for [`PRUNE_GRACE_SECS`] after they stop mattering. That covers an access
//! token's longest lifetime, so a grant is never deleted while a token issued from it is still
//! live (its introspection would then answer differently), and clocks that disagree a little.
//! Rotated refresh tokens and redeemed codes stay as long as their grant: presented again, they
//! end it; what they sealed for a retry is forgotten once the longest retry window has passed.
//! Sessions go by their absolute end, which each row holds, not by inactivity, whose
//! limit is each server's own setting.

use super::{Store, StoreError};
use crate::config::{LOGIN_WINDOW_SECS, MAX_REFRESH_RETRY_WINDOW_SECS, PRUNE_GRACE_SECS};

/// Rows deleted per statement, so that a large backlog never holds SQLite's one writer long.
const BATCH_ROWS: u64 = 500;

/// One kind of stale row: those of `table` that meet `condition`, given the cutoff `$1`.
struct Stale {
    table: &'static str,
    key: &'static str,
    condition: &'static str,
    before: i64,
}

impl Store {
    /// Deletes the rows that stopped mattering more than [`PRUNE_GRACE_SECS`] before `now`;
    /// returns how many (not counting those a deleted grant took with it). Safe to run on
    /// several servers at once.
    pub async fn prune_expired(&self, now: i64) -> Result<u64, StoreError> {
        let cutoff = now - PRUNE_GRACE_SECS;
        let stale = [
            // Redeemed codes stay with their grant: a code presented again revokes it.
            Stale {
                table: "authorization_codes",
                key: "code_hash",
                condition: "expires_at < $1 AND redeemed_at IS NULL",
                before: cutoff,
            },
            Stale {
                table: "access_tokens",
                key: "jti",
                condition: "expires_at < $1",
                before: cutoff,
            },
            // Its codes, refresh tokens and access-token records go with it.
            Stale {
                table: "grants",
                key: "id",
                condition: "expires_at < $1",
                before: cutoff,
            },
            // A grant nothing refers to any more: its code expired unredeemed.
            Stale {
                table: "grants",
                key: "id",
                condition: "created_at < $1 \
                    AND NOT EXISTS (SELECT 1 FROM authorization_codes c WHERE c.grant_id = grants.id) \
                    AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id) \
                    AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)",
                before: cutoff,
            },
            Stale {
                table: "sessions",
                key: "id_hash",
                condition: "expires_at < $1",
                before: cutoff,
            },
            Stale {
                table: "login_failures",
                key: "throttle_key",
                condition: "window_start < $1",
                before: cutoff - LOGIN_WINDOW_SECS,
            },
            // Leases are in milliseconds, by the database's clock; this one is days behind.
            Stale {
                table: "credential_watchers",
                key: "id",
                condition: "lease_expires_ms < $1",
                before: cutoff * 1000,
            },
        ];
        // A rotated token's sealed successor serves retries within the window only.
        sqlx::query(
            "UPDATE refresh_tokens SET successor_sealed = NULL \
             WHERE successor_sealed IS NOT NULL AND rotated_at < $1",
        )
        .bind(now - MAX_REFRESH_RETRY_WINDOW_SECS)
        .execute(self.pool())
        .await?;
        let mut deleted = 0;
        for Stale {
            table,
            key,
            condition,
            before,
        } in stale
        {
            let statement = format!(
                "DELETE FROM {table} WHERE {key} IN \
                 (SELECT {key} FROM {table} WHERE {condition} LIMIT {BATCH_ROWS})"
            );
            loop {
                let result = sqlx::query(sqlx::AssertSqlSafe(statement.as_str()))
                    .bind(before)
                    .execute(self.pool())
                    .await?;
                deleted += result.rows_affected();
                if result.rows_affected() < BATCH_ROWS {
                    break;
                }
            }
        }
        Ok(deleted)
    }
}
