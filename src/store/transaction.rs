//! Write transactions that a failure leaves as if they never began.
//!
//! A transaction ends in one of three ways: a COMMIT that succeeded (the only outcome that may
//! be acknowledged), a ROLLBACK that succeeded (the connection is clean and goes back to the
//! pool), or anything else: an error, a failed COMMIT or ROLLBACK, or the request being
//! dropped mid-way. In that last case nobody knows what state the connection is in (SQLite
//! may still hold its write lock after a full disk; a PostgreSQL transaction may be aborted),
//! so the connection is closed, never reused: the database rolls back whatever was open, and
//! the next request gets a fresh connection. sqlx's own `Transaction` would return such a
//! connection to the pool, where later writes could run inside the stranded transaction and
//! be acknowledged without ever committing.

use std::ops::{Deref, DerefMut};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection};
use tokio::sync::OwnedSemaphorePermit;

use super::{Database, Store, StoreError};
use crate::config::SQLITE_WRITE_QUEUE_TIMEOUT_SECS;

/// On PostgreSQL, a write transaction waits at most `lock_timeout` for a row another holds,
/// and is ended by the server if it sits idle (its client gone without a word) longer than
/// `idle_in_transaction_session_timeout`: a stranded transaction cannot hold a refresh token's
/// row, and every retry of it, for as long as TCP takes to notice.
const POSTGRES_BEGIN: &str = "BEGIN; SET LOCAL lock_timeout = '1s'; \
     SET LOCAL idle_in_transaction_session_timeout = '5s'";

/// An open write transaction on a connection of its own.
pub struct WriteTx {
    connection: PoolConnection<Any>,
    is_open: bool,
    /// SQLite: this process's turn to write, held until the transaction ends.
    _turn: Option<OwnedSemaphorePermit>,
}

impl Store {
    /// Begins a write transaction. On SQLite, `BEGIN IMMEDIATE` takes the write lock at once
    /// (waiting up to the busy timeout), so a transaction never fails half-way for want of it;
    /// on PostgreSQL, conditional UPDATEs decide races row by row.
    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let turn = match self.write_gate() {
            Some(gate) => {
                let queued = tokio::time::timeout(
                    Duration::from_secs(SQLITE_WRITE_QUEUE_TIMEOUT_SECS),
                    gate.clone().acquire_owned(),
                );
                match queued.await {
                    Ok(Ok(turn)) => Some(turn),
                    _ => return Err(StoreError::Unavailable(sqlx::Error::PoolTimedOut)),
                }
            }
            None => None,
        };
        let mut connection = self.pool().acquire().await?;
        let begun = match self.database() {
            Database::Sqlite { .. } => sqlx::query("BEGIN IMMEDIATE")
                .execute(&mut *connection)
                .await
                .map(drop),
            Database::Postgres { .. } => sqlx::raw_sql(POSTGRES_BEGIN)
                .execute(&mut *connection)
                .await
                .map(drop),
        };
        if let Err(e) = begun {
            connection.close_on_drop();
            return Err(e.into());
        }
        Ok(WriteTx {
            connection,
            is_open: true,
            _turn: turn,
        })
    }
}

impl WriteTx {
    /// Commits. Only after this returns `Ok` may the change be reported done.
    pub async fn commit(self) -> Result<(), StoreError> {
        self.end("COMMIT").await
    }

    /// Undoes everything; for a request refused after reading.
    pub async fn rollback(self) -> Result<(), StoreError> {
        self.end("ROLLBACK").await
    }

    async fn end(mut self, statement: &'static str) -> Result<(), StoreError> {
        sqlx::query(statement)
            .execute(&mut *self.connection)
            .await?;
        self.is_open = false;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if self.is_open {
            // In doubt: see the module comment.
            self.connection.close_on_drop();
        }
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        &self.connection
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.connection
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use rusqlite::Connection;

    use crate::store::Store;

    /// A transaction dropped mid-way (a request cancelled, an error) leaves no lock behind:
    /// another process can write at once, and the abandoned write never shows.
    #[tokio::test]
    async fn an_abandoned_transaction_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abandoned.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();

        let mut tx = store.begin_write().await.unwrap();
        sqlx::query("UPDATE credential_generation SET generation = 7 WHERE id = 1")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);

        // Another process, as the CLI would be; off the runtime, which must keep running.
        let other_write = tokio::task::spawn_blocking(move || {
            let other = Connection::open(&path).unwrap();
            other.busy_timeout(Duration::from_secs(3)).unwrap();
            other.execute(
                "UPDATE credential_generation SET change_count = 1 WHERE id = 1",
                [],
            )
        });
        other_write
            .await
            .unwrap()
            .expect("the abandoned transaction's write lock is gone");
        let generation = store.credential_generation().await.unwrap().generation;
        assert_ne!(generation, 7, "the abandoned write was rolled back");
        // The pool carries on with fresh connections.
        let tx = store.begin_write().await.unwrap();
        tx.commit().await.unwrap();
    }
}
