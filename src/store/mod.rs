//! All SQL lives here, behind async functions named for what they do.
//!
//! One schema serves SQLite (the embedded default) and PostgreSQL (scale-out) through sqlx's
//! Any driver: queries use `$N` placeholders and only TEXT and BIGINT columns, which both
//! databases accept. A write that must not race is a single conditional statement, or runs
//! in a `WriteTx` (see `transaction`).

pub mod api_key_usage;
pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod credential_changes;
pub mod grants;
pub mod health;
pub mod organizations;
mod pruning;
pub mod sessions;
mod tls;
pub mod transaction;
pub mod users;
pub mod webhooks;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::config::{
    DATABASE_ACQUIRE_TIMEOUT_MS, DATABASE_IDLE_CHECK_MS, POSTGRES_CONNECT_CHECK_TIMEOUT_SECS,
};
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection};

pub use transaction::WriteTx;

/// Embedded at compile time: the binary carries its own schema.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// See [`DATABASE_IDLE_CHECK_MS`].
const IDLE_BEFORE_CHECK: Duration = Duration::from_millis(DATABASE_IDLE_CHECK_MS);

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or is overloaded: worth retrying later (HTTP 503).
    #[error("database unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// A unique constraint refused the write.
    #[error("already exists")]
    Conflict,
    /// Text the database cannot hold (PostgreSQL refuses NUL): the request's input is wrong.
    /// Identifiers are checked for control characters before any query; this is the net
    /// under those checks.
    #[error("text the database cannot hold: {0}")]
    InvalidText(#[source] sqlx::Error),
    /// The database cannot be used at all: the message names the cause and the fix.
    #[error("{0}")]
    CannotConnect(String),
    #[error("unsupported database URL {0:?}: use sqlite://FILE or postgres://…")]
    UnsupportedUrl(String),
    #[error("migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    /// Anything else: a bug or a corrupt row (HTTP 500).
    #[error("database error: {0}")]
    Internal(#[source] sqlx::Error),
}

impl StoreError {
    /// The database cannot answer now, for a cause found outside sqlx (the credential
    /// freshness checks): worth retrying later, like any other `Unavailable`.
    pub fn unavailable_because(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(sqlx::Error::Io(std::io::Error::other(cause)))
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(e),
            sqlx::Error::Database(db) if db.is_unique_violation() => Self::Conflict,
            sqlx::Error::Database(db) if is_invalid_text(db.as_ref()) => Self::InvalidText(e),
            sqlx::Error::Database(db) if cannot_write_now(db.as_ref()) => Self::Unavailable(e),
            _ => Self::Internal(e),
        }
    }
}

/// Error codes that mean "the database cannot do this now, try again later" rather than "this
/// request is wrong": a 503, never a 500.
///
/// SQLite reports extended result codes, numbers whose low byte is the primary code: BUSY (5)
/// and LOCKED (6) after the busy timeout, READONLY (8), IOERR (10), FULL (13) and CANTOPEN (14).
/// PostgreSQL reports SQLSTATEs: classes 08 (connection exception), 53 (insufficient
/// resources, such as a full disk), 57 (operator intervention, such as a shutdown) and 58
/// (system error, such as an I/O error), a read-only transaction (25006, a standby), an
/// abandoned transaction ended by its idle timeout (25P03), and the retryable 40001
/// (serialization failure), 40003 (statement completion unknown), 40P01 (deadlock) and 55P03
/// (lock not available within the lock timeout).
fn cannot_write_now(error: &dyn sqlx::error::DatabaseError) -> bool {
    if let Some(postgres) = error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        return postgres_cannot_write_now(postgres.code());
    }
    error
        .code()
        .and_then(|code| code.parse::<i32>().ok())
        .is_some_and(sqlite_cannot_write_now)
}

/// PostgreSQL's 22021 (a NUL byte, or bytes not valid UTF-8) and 22P05.
fn is_invalid_text(error: &dyn sqlx::error::DatabaseError) -> bool {
    error
        .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
        .is_some_and(|postgres| matches!(postgres.code(), "22021" | "22P05"))
}

fn sqlite_cannot_write_now(extended_code: i32) -> bool {
    matches!(extended_code & 0xff, 5 | 6 | 8 | 10 | 13 | 14)
}

fn postgres_cannot_write_now(sqlstate: &str) -> bool {
    ["08", "53", "57", "58"]
        .iter()
        .any(|class| sqlstate.starts_with(class))
        || matches!(
            sqlstate,
            "25006" | "25P03" | "40001" | "40003" | "40P01" | "55P03"
        )
}

/// The database: a pool shared by every request.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    database: Database,
    /// SQLite has one writer: write transactions queue here, in order, so that at most one
    /// pooled connection waits in SQLite's busy handler and the rest stay free for reads.
    write_gate: Option<Arc<tokio::sync::Semaphore>>,
}

/// The database pool at one moment (see [`Store::pool_usage`]).
#[derive(Debug, Clone, Copy)]
pub struct PoolUsage {
    pub open: u32,
    pub idle: usize,
    pub max: u32,
}

/// Which database the pool talks to, for the few things done outside the pool.
#[derive(Clone)]
pub(crate) enum Database {
    /// The file, which the credential cache reads directly (see `crate::credentials::sqlite`).
    Sqlite { path: PathBuf },
    /// The URL, for the connection that listens for credential changes (see
    /// `credential_changes`).
    Postgres { url: String },
}

impl Store {
    /// Connects to `sqlite://FILE` (creating the file when missing) or `postgres://…`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, true).await
    }

    /// Connects to an existing database: a missing SQLite file is an error, not a new database.
    pub async fn connect_existing(url: &str) -> Result<Self, StoreError> {
        Self::open(url, false).await
    }

    async fn open(url: &str, create_if_missing: bool) -> Result<Self, StoreError> {
        install_default_drivers();
        let (database, max_connections) = if is_sqlite(url) {
            let path = prepare_sqlite_file(url, create_if_missing).await?;
            // SQLite has one writer at a time; a few connections serve concurrent readers.
            (Database::Sqlite { path }, 4)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            check_postgres(url).await?;
            (
                Database::Postgres {
                    url: url.to_owned(),
                },
                16,
            )
        } else {
            return Err(StoreError::UnsupportedUrl(redact_url(url)));
        };
        // sqlx checks every connection with a round trip as it goes back to the pool (and
        // closes it if that fails); another at every checkout would make a one-query request
        // three round trips. Only a connection idle long enough to have died unnoticed is
        // checked again before use.
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_millis(DATABASE_ACQUIRE_TIMEOUT_MS))
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for >= IDLE_BEFORE_CHECK {
                        // On failure the pool closes it and takes or opens another.
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .connect(url)
            .await?;
        let write_gate = matches!(database, Database::Sqlite { .. })
            .then(|| Arc::new(tokio::sync::Semaphore::new(1)));
        Ok(Self {
            pool,
            database,
            write_gate,
        })
    }

    /// Applies pending migrations; safe to run from several processes at once.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection of its own, outside the pool, for a task that queries all the time: a
    /// pooled connection costs a round trip each time it goes back to the pool.
    pub(crate) async fn dedicated_connection(&self) -> Result<AnyConnection, StoreError> {
        Ok(self.pool.acquire().await?.detach())
    }

    /// How many connections the pool has open, how many of them are idle, and how many it
    /// may open: for the metrics.
    pub fn pool_usage(&self) -> PoolUsage {
        PoolUsage {
            open: self.pool.size(),
            idle: self.pool.num_idle(),
            max: self.pool.options().get_max_connections(),
        }
    }

    pub(crate) fn database(&self) -> &Database {
        &self.database
    }

    pub(crate) fn write_gate(&self) -> Option<&Arc<tokio::sync::Semaphore>> {
        self.write_gate.as_ref()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Connects once, directly, so that a PostgreSQL that cannot be used is reported with its
/// cause and a fix (the pool would only say it timed out).
async fn check_postgres(url: &str) -> Result<(), StoreError> {
    use sqlx::postgres::PgConnectOptions;
    let options =
        PgConnectOptions::from_str(url).map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?;
    let (host, port) = (options.get_host(), options.get_port());
    let user = options.get_username();
    let database = options.get_database().unwrap_or(user);
    let error = match tokio::time::timeout(
        Duration::from_secs(POSTGRES_CONNECT_CHECK_TIMEOUT_SECS),
        options.connect(),
    )
    .await
    {
        Ok(Ok(connection)) => {
            let _ = sqlx::Connection::close(connection).await;
            return Ok(());
        }
        Ok(Err(error)) => error,
        Err(_) => {
            return Err(StoreError::CannotConnect(format!(
                "no answer from PostgreSQL at {host}:{port} within {} s: is the address right, \
                 and does a firewall let it through?",
                POSTGRES_CONNECT_CHECK_TIMEOUT_SECS
            )));
        }
    };
    let code = match &error {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    };
    if let Some(message) = tls::explain(&error, &options, url) {
        return Err(StoreError::CannotConnect(message));
    }
    let message = match (&error, code.as_deref()) {
        (sqlx::Error::Io(io), _) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            format!(
                "connection refused at {host}:{port}: is PostgreSQL running there? \
                 (`pg_isready -h {host} -p {port}` tells)"
            )
        }
        (_, Some("3D000")) => format!(
            "PostgreSQL at {host}:{port} has no database {database:?}: create it with \
             `createdb -h {host} -p {port} -U {user} {database}`"
        ),
        (_, Some("28P01" | "28000")) => format!(
            "PostgreSQL at {host}:{port} refused user {user:?} ({error}): check the user and \
             password in the URL"
        ),
        _ => format!("cannot connect to PostgreSQL at {host}:{port}: {error}"),
    };
    Err(StoreError::CannotConnect(message))
}

fn is_sqlite(url: &str) -> bool {
    url.starts_with("sqlite:")
}

/// The file a `sqlite:` URL names; None for other databases.
pub fn sqlite_path(url: &str) -> Option<PathBuf> {
    let options = SqliteConnectOptions::from_str(url)
        .ok()
        .filter(|_| is_sqlite(url))?;
    Some(options.get_filename().to_owned())
}

/// Creates the SQLite file when missing and switches it to WAL, which lets readers proceed
/// while a writer commits (and lets the CLI write while a server runs). WAL mode is stored
/// in the file, so every later connection uses it. Returns the file's path.
async fn prepare_sqlite_file(url: &str, create_if_missing: bool) -> Result<PathBuf, StoreError> {
    // Each connection would get a database of its own, and the CLI could never reach it.
    if url.contains(":memory:") || url.contains("mode=memory") {
        return Err(StoreError::UnsupportedUrl(redact_url(url)));
    }
    let options = SqliteConnectOptions::from_str(url)
        .map_err(|_| StoreError::UnsupportedUrl(redact_url(url)))?
        .create_if_missing(create_if_missing)
        .journal_mode(SqliteJournalMode::Wal);
    make_database_file_private(options.get_filename(), create_if_missing)?;
    let connection = options.connect().await?;
    sqlx::Connection::close(connection).await?;
    Ok(options.get_filename().to_owned())
}

/// Makes the database file readable by the server's user only: it holds password hashes and
/// secret digests. A missing file is created so (when `create`); an existing one that others may read is
/// tightened, with its `-wal` and `-shm` (which SQLite creates with the database's
/// permissions), and a warning.
fn make_database_file_private(path: &std::path::Path, create: bool) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if create {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(StoreError::Unavailable(sqlx::Error::Io(e))),
        }
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        let Ok(metadata) = std::fs::metadata(&file) else {
            continue;
        };
        let mode = metadata.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            let private = std::fs::Permissions::from_mode(mode & 0o700);
            match std::fs::set_permissions(&file, private) {
                Ok(()) => tracing::warn!(
                    file = %file.display(),
                    "the database file was readable by others (mode {mode:o}); it is now private"
                ),
                Err(e) => tracing::warn!(
                    file = %file.display(),
                    error = %e,
                    "the database file is readable by others (mode {mode:o}), and could not be made private"
                ),
            }
        }
    }
    Ok(())
}

/// A database URL fit for an error message or a log line: without its password.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{postgres_cannot_write_now, sqlite_cannot_write_now};

    #[test]
    fn write_failures_that_pass_are_told_from_wrong_requests() {
        // SQLite: primary and extended codes (SQLITE_BUSY_SNAPSHOT, SQLITE_IOERR_WRITE,
        // SQLITE_READONLY_DBMOVED), but not constraints (19) or a plain error (1).
        for code in [5, 517, 6, 8, 1032, 10, 778, 13, 14] {
            assert!(sqlite_cannot_write_now(code), "{code}");
        }
        for code in [1, 19, 2067, 1811] {
            assert!(!sqlite_cannot_write_now(code), "{code}");
        }
        // PostgreSQL: connection, resources, shutdown, read-only, retryable conflicts.
        for code in [
            "08006", "53100", "57P01", "58030", "25006", "25P03", "40001", "40003", "40P01",
            "55P03",
        ] {
            assert!(postgres_cannot_write_now(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02"] {
            assert!(!postgres_cannot_write_now(code), "{code}");
        }
    }
}
