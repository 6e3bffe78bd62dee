//! On SQLite, the credential generation is read straight from the file, on the asking thread,
//! and only when the database may have changed since the last read.
//!
//! A synchronous read of one row takes microseconds, where a query through sqlx's connection
//! worker costs about a hundred in thread hand-offs. Cheaper still is not reading at all:
//! SQLite rewrites its [`WalIndex`] header on every commit, by any process, before the commit
//! returns. So when the header is what it was just before the last read, nothing has committed
//! since, and that read's generation is still current. Freshness is exactly that of a read per
//! question: a change committed before a question was asked is always seen.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::generation::{Generation, Observed, READ_GENERATION};
use super::wal_index::{WalIndex, WalIndexHeader};

/// How long a read waits on a lock before giving up. WAL readers wait only in rare moments
/// (recovering the log after a crash), and this one blocks the thread it runs on.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

pub struct SqliteGenerationReader {
    reader: Mutex<Reader>,
    /// The last read, and the header as it was just before it; None while no read is known
    /// to be current (none yet, or the header was being written).
    latest: Mutex<Option<(WalIndexHeader, Observed)>>,
    /// Mapped while `reader`'s connection is open; None when the database has no WAL index,
    /// and then every question reads.
    wal_index: Option<WalIndex>,
}

struct Reader {
    connection: Connection,
    /// Reads made so far; the lock orders them, so a higher number is a later view.
    reads: u64,
}

impl SqliteGenerationReader {
    /// Opens the database file read-only; it must exist and be migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // No SQLite mutex: the Mutex below already keeps the connection to one thread at a time.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(unavailable)?;
        connection.busy_timeout(BUSY_TIMEOUT).map_err(unavailable)?;
        let mut reader = Reader {
            connection,
            reads: 0,
        };
        reader.read()?;
        // SAFETY: the connection has just read, and it lives in `reader`, next to the index,
        // until both are dropped.
        let wal_index = unsafe { WalIndex::of(&reader.connection) };
        if wal_index.is_none() {
            tracing::warn!("no WAL index: the credential generation is read for every request");
        }
        Ok(Self {
            reader: Mutex::new(reader),
            latest: Mutex::new(None),
            wal_index,
        })
    }

    /// The generation, as current as a read made now.
    pub fn observe(&self) -> Result<Observed, StoreError> {
        if let Some(header) = self.header()
            && let Some((read_at, observed)) = *self.latest()
            && read_at == header
        {
            return Ok(observed);
        }
        let mut reader = self.reader.lock().expect("generation reader lock poisoned");
        // The header before the read: the read sees at least every commit this header shows.
        let header = self.header();
        let observed = reader.read()?;
        // Under the reader's lock, so that the latest read is the one kept.
        *self.latest() = header.map(|header| (header, observed));
        Ok(observed)
    }

    /// The WAL index's header now, if there is an index and no commit is writing it.
    fn header(&self) -> Option<WalIndexHeader> {
        self.wal_index.as_ref().and_then(WalIndex::header)
    }

    fn latest(&self) -> MutexGuard<'_, Option<(WalIndexHeader, Observed)>> {
        self.latest.lock().expect("generation reader lock poisoned")
    }
}

impl Reader {
    fn read(&mut self) -> Result<Observed, StoreError> {
        self.reads += 1;
        let seen = self
            .connection
            .prepare_cached(READ_GENERATION)
            .and_then(|mut statement| {
                statement.query_row([], |row| {
                    Ok(Generation {
                        generation: row.get(0)?,
                        change_count: row.get(1)?,
                    })
                })
            })
            .map_err(unavailable)?;
        Ok(Observed::new(self.reads, seen))
    }
}

/// The file cannot be read right now (locked, gone, unreadable): the request is worth retrying.
fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;

    /// A question asked after a commit, by this process's pool or by another connection, sees
    /// it; while nothing commits, questions are answered without a read.
    #[tokio::test]
    async fn reads_only_after_a_commit_and_sees_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generation.db");
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let reader = SqliteGenerationReader::open(&path).unwrap();
        assert!(reader.wal_index.is_some(), "a WAL database has an index");
        let other = Connection::open(&path).unwrap();

        for round in 0..40 {
            let before = reader.observe().unwrap();
            for _ in 0..100 {
                assert_eq!(reader.observe().unwrap(), before, "answered without a read");
            }
            if round % 2 == 0 {
                let tx = store.begin_write().await.unwrap();
                store.commit_credential_change(tx).await.unwrap();
            } else {
                other
                    .execute(
                        "UPDATE credential_generation SET generation = ?1 WHERE id = 1",
                        [round],
                    )
                    .unwrap();
            }
            let committed = store.credential_generation().await.unwrap().generation;
            let after = reader.observe().unwrap();
            assert_eq!(after.generation, committed, "round {round}");
            assert!(after.read > before.read);
        }
    }
}
