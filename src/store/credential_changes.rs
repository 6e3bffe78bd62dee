//! Credential changes as the database records them: the generation row that every change to a
//! client, an API key, or a key's owner replaces in the same transaction as the change
//! (migration 0004), and on PostgreSQL the notification of each change and the leases of the
//! servers that must acknowledge it before it is reported done.
//!
//! Only "has it changed?" matters, so each change writes a fresh random value: a database
//! restored from a backup can never bring back a value that servers still have cached entries
//! under. How servers use all this is `crate::credentials`' business; this is its SQL.

use std::time::{Duration, Instant};

use sqlx::any::{AnyArguments, AnyQueryResult};
use sqlx::postgres::PgListener;
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, Executor};

use super::transaction::WriteTx;
use super::{Database, Store, StoreError};
use crate::audit::AuditEvent;
use crate::config::CREDENTIAL_LEASE_MS;

/// The generation and change count, in this order; also read by the SQLite reader in
/// `crate::credentials`, which runs it on a connection of its own.
pub(crate) const READ_GENERATION: &str =
    "SELECT generation, change_count FROM credential_generation WHERE id = 1";

/// The PostgreSQL channel that credential changes notify.
const CHANNEL: &str = "portcullis_credential_changes";

/// Milliseconds since the Unix epoch by the database's clock, which all leases are measured by.
const DATABASE_NOW_MS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// How long a change waits for acknowledgements before it gives up with a warning. Leases run
/// out well before this, so it is reached only when a server renews without catching up.
const ACKNOWLEDGEMENT_WAIT_MAX: Duration = Duration::from_millis(2 * CREDENTIAL_LEASE_MS as u64);

/// The generation and change count as one read saw them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Generation {
    pub generation: i64,
    /// How many changes have been committed: what a PostgreSQL server acknowledges.
    pub change_count: i64,
}

impl Store {
    /// The current credential generation.
    pub async fn credential_generation(&self) -> Result<Generation, StoreError> {
        read_generation(self.pool()).await
    }

    /// Runs one statement that changes credentials, marking them changed in the same
    /// transaction, with its audit event if it changed anything.
    pub(super) async fn execute_credential_change(
        &self,
        statement: Query<'_, Any, AnyArguments>,
        event: &AuditEvent,
    ) -> Result<AnyQueryResult, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = execute_with_event(&mut tx, statement, event).await?;
        self.commit_credential_change(tx).await?;
        Ok(result)
    }

    /// Runs one statement that changes no credential, with its audit event if it changed
    /// anything.
    pub(super) async fn execute_recorded(
        &self,
        statement: Query<'_, Any, AnyArguments>,
        event: &AuditEvent,
    ) -> Result<AnyQueryResult, StoreError> {
        let mut tx = self.begin_write().await?;
        let result = execute_with_event(&mut tx, statement, event).await?;
        tx.commit().await?;
        Ok(result)
    }

    /// Marks credentials as changed, commits, and on PostgreSQL returns only once every server
    /// with a live lease has acknowledged the change. Every change takes the generation row's
    /// lock last, so concurrent changes cannot deadlock on it.
    pub(super) async fn commit_credential_change(&self, mut tx: WriteTx) -> Result<(), StoreError> {
        let mut bytes = [0u8; 8];
        aws_lc_rs::rand::fill(&mut bytes)
            .expect("the operating system's random source is available");
        let change_count: i64 = sqlx::query_scalar(
            "UPDATE credential_generation SET generation = $1, change_count = change_count + 1 \
             WHERE id = 1 RETURNING change_count",
        )
        .bind(i64::from_le_bytes(bytes))
        .fetch_one(&mut *tx)
        .await?;
        let is_postgres = matches!(self.database(), Database::Postgres { .. });
        if is_postgres {
            announce(&mut tx, change_count).await?;
        }
        tx.commit().await?;
        if is_postgres {
            self.await_acknowledgements(change_count).await;
        }
        Ok(())
    }

    /// For tests: a credential change that changes nothing else.
    #[cfg(test)]
    pub(crate) async fn mark_credentials_changed(&self) -> Result<(), StoreError> {
        let tx = self.begin_write().await?;
        self.commit_credential_change(tx).await
    }

    /// Returns once every server with a live lease has acknowledged change number
    /// `change_count`. The change is committed already, so this never fails: it logs.
    async fn await_acknowledgements(&self, change_count: i64) {
        // Locking every row first makes the check wait for renewals still committing, so that a
        // lease renewed just before it ran out is not taken for one that ran out.
        let behind_query = format!(
            "WITH watchers AS (SELECT acked_count, lease_expires_ms FROM credential_watchers \
             FOR SHARE) SELECT COUNT(*) FROM watchers \
             WHERE acked_count < $1 AND lease_expires_ms > {DATABASE_NOW_MS}"
        );
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        let mut behind = None;
        loop {
            let remaining = ACKNOWLEDGEMENT_WAIT_MAX.saturating_sub(started.elapsed());
            let check = sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(behind_query.as_str()))
                .bind(change_count)
                .fetch_one(self.pool());
            match tokio::time::timeout(remaining, check).await {
                Ok(Ok(0)) => return,
                Ok(Ok(count)) => behind = Some(count),
                // Leases cannot be renewed without the database either: waiting is still right.
                Ok(Err(e)) => tracing::debug!(error = %e, "cannot check acknowledgements yet"),
                Err(_) => {}
            }
            if started.elapsed() >= ACKNOWLEDGEMENT_WAIT_MAX {
                tracing::warn!(
                    change_count,
                    ?behind,
                    "servers did not acknowledge a credential change in time; some may briefly \
                     keep using what it changed"
                );
                return;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// PostgreSQL: a connection of its own that hears of every credential change committed
    /// after this returns.
    pub(crate) async fn listen_for_credential_changes(&self) -> Result<PgListener, StoreError> {
        let Database::Postgres { url } = self.database() else {
            let refusal = "only PostgreSQL announces credential changes";
            return Err(StoreError::Internal(sqlx::Error::Configuration(
                refusal.into(),
            )));
        };
        let mut listener = PgListener::connect(url).await?;
        listener.listen(CHANNEL).await?;
        Ok(listener)
    }

    /// PostgreSQL: takes (or takes again) the lease of server `id` for [`CREDENTIAL_LEASE_MS`],
    /// acknowledging every change so far. The server must read the generation after this
    /// before it trusts anything, so that nothing committed before can reach it late.
    pub(crate) async fn take_credential_lease(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO credential_watchers (id, lease_expires_ms, acked_count) \
             VALUES ($1, {DATABASE_NOW_MS} + $2, \
                     (SELECT change_count FROM credential_generation WHERE id = 1)) \
             ON CONFLICT (id) DO UPDATE SET lease_expires_ms = EXCLUDED.lease_expires_ms, \
                     acked_count = EXCLUDED.acked_count"
        )))
        .bind(id)
        .bind(CREDENTIAL_LEASE_MS)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// PostgreSQL: acknowledges `change_count` for server `id` and renews its lease, if the
    /// lease is still live; false when it ran out, since then a change may have gone by
    /// unacknowledged.
    pub(crate) async fn renew_credential_lease(
        &self,
        id: &str,
        change_count: i64,
    ) -> Result<bool, StoreError> {
        let renewed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE credential_watchers SET lease_expires_ms = {DATABASE_NOW_MS} + $2, \
             acked_count = GREATEST(acked_count, $3) \
             WHERE id = $1 AND lease_expires_ms > {DATABASE_NOW_MS}"
        )))
        .bind(id)
        .bind(CREDENTIAL_LEASE_MS)
        .bind(change_count)
        .execute(self.pool())
        .await?;
        Ok(renewed.rows_affected() == 1)
    }

    /// PostgreSQL: gives up the lease of server `id`, so that changes no longer wait for it.
    pub(crate) async fn release_credential_lease(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM credential_watchers WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

/// The current credential generation, read on `connection` (one of
/// [`Store::dedicated_connection`]'s).
pub async fn credential_generation_on(
    connection: &mut AnyConnection,
) -> Result<Generation, StoreError> {
    read_generation(connection).await
}

async fn read_generation<'e, E: Executor<'e, Database = Any>>(
    executor: E,
) -> Result<Generation, StoreError> {
    let (generation, change_count) = sqlx::query_as(READ_GENERATION).fetch_one(executor).await?;
    Ok(Generation {
        generation,
        change_count,
    })
}

/// Notifies the servers of change number `change_count` when `tx` commits.
async fn announce(tx: &mut WriteTx, change_count: i64) -> Result<(), StoreError> {
    // pg_notify returns void, which sqlx's Any driver cannot describe: select a number instead.
    sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, $2)) AS notified")
        .bind(CHANNEL)
        .bind(change_count.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Runs `statement` in `tx`, and records `event` there too if the statement changed a row.
async fn execute_with_event(
    tx: &mut WriteTx,
    statement: Query<'_, Any, AnyArguments>,
    event: &AuditEvent,
) -> Result<AnyQueryResult, StoreError> {
    let result = statement.execute(&mut **tx).await?;
    if result.rows_affected() > 0 {
        Store::record_event(tx, event).await?;
    }
    Ok(result)
}
