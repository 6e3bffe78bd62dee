//! On SQLite, the credential generation is read straight from the file, on the asking thread,
//! and only when another connection has committed since the last read.
//!
//! A synchronous read of one row takes microseconds, where a query through sqlx's connection
//! worker costs about a hundred in thread hand-offs. Cheaper still is not reading the row:
//! `PRAGMA data_version` (<https://sqlite.org/pragma.html#pragma_data_version>) on this
//! connection changes whenever any other connection, in any process, has committed between two
//! of its runs, and this connection only reads. So each question first asks for the data
//! version; while it is the one asked for just before the last read of the row, nothing has
//! committed since that read began, and its generation is still current.
//!
//! Why no commit can slip through: each statement here runs in a read transaction of its own,
//! begun when the statement runs. The data version is asked after the question arrived, so it
//! sees every commit that returned before the question; a row read starts after the data
//! version it is filed with was asked, so a commit between the two shows as a new data version
//! next time and never as an old one. Freshness is exactly that of a read per question: a
//! change committed before a question was asked is always seen.

use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::observed::Observed;
use crate::config::SQLITE_GENERATION_BUSY_TIMEOUT_MS;
use crate::store::StoreError;
use crate::store::credential_changes::{Generation, READ_GENERATION};

const DATA_VERSION: &str = "PRAGMA data_version";

pub struct SqliteGenerationReader {
    reader: Mutex<Reader>,
}

struct Reader {
    connection: Connection,
    /// Reads of the row made so far; the lock orders them, so a higher number is a later view.
    reads: u64,
    /// The last read of the row, and the data version asked just before it; None until a read
    /// succeeds.
    latest: Option<(i64, Observed)>,
}

impl SqliteGenerationReader {
    /// Opens the database file read-only; it must exist and be migrated.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        // No SQLite mutex: the Mutex below already keeps the connection to one thread at a time.
        // Read-only: a commit of its own would not change its data version.
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let connection = Connection::open_with_flags(path, flags).map_err(unavailable)?;
        connection
            .busy_timeout(Duration::from_millis(SQLITE_GENERATION_BUSY_TIMEOUT_MS))
            .map_err(unavailable)?;
        let mut reader = Reader {
            connection,
            reads: 0,
            latest: None,
        };
        reader.observe()?;
        Ok(Self {
            reader: Mutex::new(reader),
        })
    }

    /// The generation, as current as a read begun now.
    pub fn observe(&self) -> Result<Observed, StoreError> {
        self.reader
            .lock()
            .expect("generation reader lock poisoned")
            .observe()
    }
}

impl Reader {
    fn observe(&mut self) -> Result<Observed, StoreError> {
        // First, and in a read transaction begun after the question arrived (see the module
        // comment for why this order matters).
        let data_version = self.data_version()?;
        if let Some((read_at, observed)) = self.latest
            && read_at == data_version
        {
            return Ok(observed);
        }
        let observed = self.read()?;
        self.latest = Some((data_version, observed));
        Ok(observed)
    }

    /// Changes whenever another connection has committed since this connection last asked.
    /// Each statement is reset as soon as its row is read, so this connection never holds a
    /// read transaction (and its snapshot) open between questions.
    fn data_version(&mut self) -> Result<i64, StoreError> {
        self.connection
            .prepare_cached(DATA_VERSION)
            .and_then(|mut statement| statement.query_row([], |row| row.get(0)))
            .map_err(unavailable)
    }

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
    StoreError::unavailable_because(e)
}

#[cfg(test)]
pub(super) mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::store::Store;

    /// A new database file at `path`, migrated.
    pub(in crate::credentials) async fn migrated(path: &Path) -> Store {
        let store = Store::connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        store.migrate().await.unwrap();
        store
    }

    /// A question asked after a commit, by this process's pool or by another connection, sees
    /// it; while nothing commits, questions are answered without a read.
    #[tokio::test]
    async fn reads_only_after_a_commit_and_sees_every_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("generation.db");
        let store = migrated(&path).await;
        let reader = SqliteGenerationReader::open(&path).unwrap();
        let other = Connection::open(&path).unwrap();

        for round in 0..40 {
            let before = reader.observe().unwrap();
            for _ in 0..100 {
                assert_eq!(reader.observe().unwrap(), before, "answered without a read");
            }
            if round % 2 == 0 {
                store.mark_credentials_changed().await.unwrap();
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

    /// While another connection commits at random moments (as the CLI or another server
    /// would), every answer includes every change committed before the question was asked.
    #[tokio::test]
    async fn no_answer_predates_the_question_while_another_connection_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("racing.db");
        migrated(&path).await;
        let reader = SqliteGenerationReader::open(&path).unwrap();
        let checker = Connection::open(&path).unwrap();
        let committed = || -> i64 {
            checker
                .query_row(
                    "SELECT change_count FROM credential_generation WHERE id = 1",
                    [],
                    |row| row.get(0),
                )
                .unwrap()
        };

        let stop = Arc::new(AtomicBool::new(false));
        let writer = commit_until(&path, Arc::clone(&stop));
        let (mut questions, mut unchanged) = (0, 0);
        let mut previous = None;
        while questions < 20_000 {
            let before_question = committed();
            let answer = reader.observe().unwrap();
            assert!(
                answer.change_count >= before_question,
                "change {before_question} was committed before the question, the answer is {answer:?}"
            );
            unchanged += usize::from(previous == Some(answer));
            previous = Some(answer);
            questions += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let commits = writer.join().unwrap();
        assert!(commits > 1000, "{commits} commits");
        assert!(
            unchanged > 100,
            "{unchanged} questions answered without a read"
        );
    }

    /// Another connection (as the CLI or another server would be) changing the generation
    /// until `stop`, with pauses of varying length so that questions also find nothing
    /// changed; returns how many commits it made.
    pub(in crate::credentials) fn commit_until(
        path: &Path,
        stop: Arc<AtomicBool>,
    ) -> std::thread::JoinHandle<u64> {
        let path = path.to_owned();
        std::thread::spawn(move || {
            let other = Connection::open(&path).unwrap();
            other.busy_timeout(Duration::from_secs(5)).unwrap();
            other.pragma_update(None, "synchronous", "OFF").unwrap();
            let mut commits = 0u64;
            while !stop.load(Ordering::Relaxed) {
                other
                    .execute(
                        "UPDATE credential_generation SET generation = generation + 1, \
                         change_count = change_count + 1 WHERE id = 1",
                        [],
                    )
                    .unwrap();
                commits += 1;
                if commits.is_multiple_of(3) {
                    std::thread::sleep(Duration::from_micros(commits % 50));
                }
            }
            commits
        })
    }
}
