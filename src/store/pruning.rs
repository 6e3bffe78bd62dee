//! Deleting rows that no longer decide anything, so that tables do not grow for ever: expired
//! authorization codes, access-token records, grants (with their refresh tokens), revoked or
//! expired API keys, sessions,
//! sign-in throttling windows, and the leases of servers that stopped without giving them up.
//!
//! Codes never redeemed go with their grants [`UNREDEEMED_CODE_GRACE_SECS`] after they expire.
//! Other rows are kept for [`PRUNE_GRACE_SECS`] after they stop mattering. That covers an access
//! token's longest lifetime, so a grant is never deleted while a token issued from it is still
//! live (its introspection would then answer differently), and clocks that disagree a little.
//! Rotated refresh tokens and redeemed codes stay as long as their grant: presented again, they
//! end it; what they sealed for a retry is forgotten once the longest retry window has passed.
//! Sessions go by their absolute end, which each row holds, not by inactivity, whose
//! limit is each server's own setting.

use super::{Store, StoreError};
use crate::config::{
    LOGIN_WINDOW_SECS, MAX_REFRESH_RETRY_WINDOW_SECS, PRUNE_GRACE_SECS, UNREDEEMED_CODE_GRACE_SECS,
};

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
            // A code never redeemed, with its grant (which nothing else refers to: tokens come
            // only from a redeemed code), minutes after it expired rather than days: a signed-in
            // browser can make one per /authorize. Redeemed codes stay with their grant: a
            // code presented again revokes it.
            Stale {
                table: "grants",
                key: "id",
                condition: "id IN (SELECT grant_id FROM authorization_codes \
                    WHERE redeemed_at IS NULL AND expires_at < $1)",
                before: now - UNREDEEMED_CODE_GRACE_SECS,
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
            // Revoked or expired API keys: no use to anyone (tokens made from them are refused
            // without them), and they count against a person's key limit until they go.
            Stale {
                table: "api_keys",
                key: "id",
                condition: "revoked_at < $1 OR expires_at < $1",
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
