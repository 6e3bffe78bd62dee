//! On SQLite, the credential generation is read straight from the file, on the asking thread.
//! A synchronous read of one row takes microseconds, where a query through sqlx's connection
//! worker costs about a hundred in thread hand-offs: for a lone client, that was most of what
//! checking an API key cost. Every question still gets its own read, made after it was asked,
//! so freshness is exactly what the shared reads of the [`GenerationFence`] give.
//!
//! [`GenerationFence`]: super::generation::GenerationFence

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;
use super::generation::{Generation, Observed, READ_GENERATION};

/// How long a read waits on a lock before giving up. WAL readers wait only in rare moments
/// (recovering the log after a crash), and this one blocks the thread it runs on.
const BUSY_TIMEOUT: Duration = Duration::from_millis(500);

pub struct SqliteGenerationReader {
    reader: Mutex<Reader>,
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
        Ok(Self {
            reader: Mutex::new(Reader {
                connection,
                reads: 0,
            }),
        })
    }

    /// The generation, as seen by a read made now.
    pub fn observe(&self) -> Result<Observed, StoreError> {
        let mut reader = self.reader.lock().expect("generation reader lock poisoned");
        reader.reads += 1;
        let seen = reader
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
        Ok(Observed::new(reader.reads, seen))
    }
}

/// The file cannot be read right now (locked, gone, unreadable): the request is worth retrying.
fn unavailable(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(sqlx::Error::Io(std::io::Error::other(e)))
}
