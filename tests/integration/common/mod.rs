//! Test harness: a real server on a random port, on a fresh SQLite file or a fresh PostgreSQL
//! database, driven over HTTP like any client would. The server is built in the test process
//! (`in_process`), as `portcullis serve` builds it; a test of what only a process has
//! (signals, exit status, its environment, several processes on one database) starts
//! `portcullis serve` as a child process instead.

#![allow(dead_code)]

pub mod cluster;
pub mod flow;
mod in_process;
pub mod proxy;
pub mod webdriver;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::time::Duration;

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use portcullis::admin::Initiator;
use portcullis::admin::api_keys::{Expiry, KeyRequest, create_api_key};
use portcullis::api_keys::{ApiKeyKind, DEFAULT_PREFIX, KeyEnv, KeyOwner};
use portcullis::clock::ClockOffset;
use portcullis::keys::KeyStore;
use portcullis::store::Store;
use serde_json::{Value, json};
use sqlx::any::AnyPoolOptions;

pub const BIN: &str = env!("CARGO_BIN_EXE_portcullis");

/// Where the PostgreSQL tests create their databases. Override with PORTCULLIS_TEST_POSTGRES_URL.
const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates one `#[tokio::test]` per database for each named `async fn(Backend)`.
#[macro_export]
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $( #[tokio::test] async fn $name() { super::$name($crate::common::Backend::Sqlite).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $name() { super::$name($crate::common::Backend::Postgres).await } )*
        }
    };
}

/// A fresh database, removed when dropped.
pub struct TestDb {
    pub url: String,
    postgres_name: Option<String>,
    _dir: tempfile::TempDir,
}

pub fn postgres_admin_url() -> String {
    std::env::var("PORTCULLIS_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.into())
}

/// How long the first PostgreSQL test waits for the server to answer.
const POSTGRES_PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Whether PostgreSQL answered, asked once per test run: without it, each PostgreSQL test
/// fails at once with the same message, instead of each waiting out a pool's 30 s.
static POSTGRES_PROBE: tokio::sync::OnceCell<Result<(), String>> =
    tokio::sync::OnceCell::const_new();

/// Panics, naming the URL and what to do, unless PostgreSQL answers.
async fn require_postgres() {
    let url = postgres_admin_url();
    let probe = POSTGRES_PROBE
        .get_or_init(|| async {
            sqlx::any::install_default_drivers();
            let connecting = <sqlx::AnyConnection as sqlx::Connection>::connect(&url);
            match tokio::time::timeout(POSTGRES_PROBE_TIMEOUT, connecting).await {
                Ok(Ok(connection)) => {
                    let _ = sqlx::Connection::close(connection).await;
                    Ok(())
                }
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "no answer within {} s",
                    POSTGRES_PROBE_TIMEOUT.as_secs()
                )),
            }
        })
        .await;
    if let Err(reason) = probe {
        panic!(
            "PostgreSQL is not reachable at {} ({reason}). The PostgreSQL tests need one: start \
             PostgreSQL there (.ci/run starts the local cluster), or point them at another with \
             PORTCULLIS_TEST_POSTGRES_URL=postgres://USER@HOST:PORT/postgres",
            without_password(&url)
        );
    }
}

/// `url` with any password replaced, fit for a test's output.
fn without_password(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}

async fn postgres_admin_exec(sql: &str) {
    sqlx::any::install_default_drivers();
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .connect(&postgres_admin_url())
        .await
        .expect(
            "PostgreSQL must be reachable at PORTCULLIS_TEST_POSTGRES_URL (default 127.0.0.1:5432)",
        );
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&pool)
        .await
        .expect(sql);
    pool.close().await;
}

/// How many empty PostgreSQL databases wait, made ahead, for the tests that will need them.
const SPARE_DATABASES: usize = 2;

/// A new, empty PostgreSQL database, made ahead of need on a thread of its own: CREATE
/// DATABASE takes about 0.2 s, which each PostgreSQL test used to wait for.
///
/// The spares left when the tests end are dropped by the next run. Their names carry this
/// run's id (`pc_spare_<run>_…`), which the thread making them also gives its connection as
/// `application_name` for as long as the run lasts: a spare whose run has no session left on
/// the server is a leftover, whichever machine or process made it.
fn spare_postgres_database() -> String {
    static SPARES: OnceLock<Mutex<mpsc::Receiver<Result<String, String>>>> = OnceLock::new();
    let spares = SPARES.get_or_init(|| {
        let (made, spares) = mpsc::sync_channel(SPARE_DATABASES);
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(make_spare_databases(made))
        });
        Mutex::new(spares)
    });
    let spare = spares.lock().unwrap().recv();
    spare
        .expect("the thread making databases runs as long as the tests")
        .unwrap_or_else(|e| panic!("cannot create a PostgreSQL database: {e}"))
}

async fn make_spare_databases(made: mpsc::SyncSender<Result<String, String>>) {
    let run = portcullis::secrets::random_base62(10).to_lowercase();
    let mut url = url::Url::parse(&postgres_admin_url()).unwrap();
    url.query_pairs_mut()
        .append_pair("application_name", &format!("pc_spare_{run}"));
    sqlx::any::install_default_drivers();
    // One connection, kept for the whole run: it is what tells other runs this one is live.
    let pool = AnyPoolOptions::new()
        .max_connections(1)
        .min_connections(1)
        .idle_timeout(None)
        .max_lifetime(None)
        .connect_lazy(url.as_str())
        .unwrap();
    drop_leftover_spares(&pool).await;
    loop {
        let name = format!(
            "pc_spare_{run}_{}",
            portcullis::secrets::random_base62(8).to_lowercase()
        );
        let created = sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&pool)
            .await
            .map(|_| name)
            .map_err(|e| e.to_string());
        if made.send(created).is_err() {
            return;
        }
    }
}

/// Drops the spares of runs that have no session on the server any more.
async fn drop_leftover_spares(pool: &sqlx::AnyPool) {
    let live: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT application_name::text FROM pg_stat_activity \
         WHERE application_name IS NOT NULL",
    )
    .fetch_all(pool)
    .await
    .expect("the sessions on the server");
    let databases: Vec<String> = sqlx::query_scalar("SELECT datname::text FROM pg_database")
        .fetch_all(pool)
        .await
        .expect("the databases on the server");
    for name in databases {
        let Some((run, _)) = name
            .rsplit_once('_')
            .filter(|(run, _)| run.starts_with("pc_spare_"))
        else {
            continue;
        };
        if !live.iter().any(|session| session == run) {
            let drop = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
            let _ = sqlx::query(sqlx::AssertSqlSafe(drop)).execute(pool).await;
        }
    }
}

impl TestDb {
    pub async fn new(backend: Backend) -> Self {
        let dir = tempfile::tempdir().unwrap();
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("portcullis.db").display()),
                postgres_name: None,
                _dir: dir,
            },
            Backend::Postgres => {
                require_postgres().await;
                let name = spare_postgres_database();
                let mut url = url::Url::parse(&postgres_admin_url()).unwrap();
                url.set_path(&name);
                Self {
                    url: url.to_string(),
                    postgres_name: Some(name),
                    _dir: dir,
                }
            }
        }
    }

    /// A database someone else created and removes (e.g. the same one through a proxy).
    pub fn existing(url: String) -> Self {
        Self {
            url,
            postgres_name: None,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A direct connection, for tests that must set up what no API offers yet.
    pub async fn pool(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .unwrap()
    }

    pub fn postgres_name(&self) -> Option<&str> {
        self.postgres_name.as_deref()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(name) = self.postgres_name.take() {
            // Drop runs outside any runtime we may block: use a thread with its own.
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap()
                    .block_on(postgres_admin_exec(&format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
            })
            .join()
            .ok();
        }
    }
}

/// A running server: built in this process (the default) or a `portcullis serve` process.
pub struct Server {
    running: Running,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub issuer: String,
    logs: Arc<Mutex<String>>,
}

enum Running {
    InProcess(in_process::InProcess),
    Process(Child),
}

impl Server {
    /// Builds the server in this process, as `portcullis serve` would with these flags, and
    /// starts serving; its threads read the system clock.
    pub fn start(db: &TestDb, keys_dir: &Path, extra_args: &[&str]) -> Server {
        Self::start_in_process(db, keys_dir, extra_args, &ClockOffset::default())
    }

    /// [`Server::start`] on `clock`, which the test may advance.
    pub fn start_in_process(
        db: &TestDb,
        keys_dir: &Path,
        extra_args: &[&str],
        clock: &ClockOffset,
    ) -> Server {
        let logs = Arc::new(Mutex::new(String::new()));
        let server = in_process::start(&db.url, keys_dir, extra_args, clock, &logs);
        Server {
            base: format!("http://{}", server.address),
            issuer: server.issuer.clone(),
            running: Running::InProcess(server),
            logs,
        }
    }

    /// Starts `portcullis serve` as a child process and waits until it listens: for tests of
    /// what only a process has (signals, exit status, `kill -9`, its environment) or of
    /// several processes at once.
    pub fn start_process(db: &TestDb, keys_dir: &Path, extra_args: &[&str]) -> Server {
        Self::start_with_env(
            db,
            keys_dir,
            extra_args,
            &[("PORTCULLIS_LOG", Some("info"))],
        )
    }

    /// [`Server::start_process`] with these environment variables set (`Some`) or removed
    /// (`None`). The server must log at info level, which is how its address is learnt.
    pub fn start_with_env(
        db: &TestDb,
        keys_dir: &Path,
        extra_args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Server {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .args(["--bind", "127.0.0.1:0"])
            .args(extra_args)
            .env("PORTCULLIS_DATABASE_URL", &db.url)
            .env("PORTCULLIS_KEYS_DIR", keys_dir);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        let mut child = command
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the portcullis binary starts");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on ").nth(1) {
                    let addr = rest.split(',').next().unwrap().to_owned();
                    // Up to a quote too: the line may be a JSON object (`--log-format json`).
                    let issuer = rest.split("issuer ").nth(1).unwrap();
                    let issuer = issuer.split('"').next().unwrap().trim().to_owned();
                    let _ = tx.send((addr, issuer));
                }
                let mut logs = sink.lock().unwrap();
                logs.push_str(&line);
                logs.push('\n');
            }
        });
        let (addr, issuer) = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(found) => found,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start; logs:\n{}", logs.lock().unwrap());
            }
        };
        Server {
            running: Running::Process(child),
            base: format!("http://{addr}"),
            issuer,
            logs,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `http://ADDRESS/metrics` of a server started with `--metrics-bind`, as it logged it
    /// before it said it listens.
    pub fn metrics_url(&self) -> String {
        let logs = self.logs();
        let rest = logs
            .split("metrics at ")
            .nth(1)
            .unwrap_or_else(|| panic!("no metrics listener in the logs:\n{logs}"));
        rest.split(|c: char| c.is_whitespace() || c == '"')
            .next()
            .unwrap()
            .to_owned()
    }

    /// What the server has logged so far, at info level.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }

    pub fn is_in_process(&self) -> bool {
        matches!(self.running, Running::InProcess(_))
    }

    fn child(&mut self) -> &mut Child {
        match &mut self.running {
            Running::Process(child) => child,
            Running::InProcess(_) => not_a_process(),
        }
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        self.wait_for_exit(Duration::from_secs(10))
            .expect("server did not stop on SIGTERM")
    }

    /// A line of the process's /proc/PID/status (`VmRSS`, `VmHWM`, …), in KiB.
    pub fn memory_kib(&self, field: &str) -> u64 {
        let Running::Process(child) = &self.running else {
            not_a_process()
        };
        let status = std::fs::read_to_string(format!("/proc/{}/status", child.id())).unwrap();
        let line = status
            .lines()
            .find(|line| line.starts_with(&format!("{field}:")))
            .unwrap_or_else(|| panic!("no {field} in:\n{status}"));
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let Running::Process(child) = &self.running else {
            not_a_process()
        };
        let pid = child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    }

    /// The exit status, once the process has exited within `limit`.
    pub fn wait_for_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        let child = self.child();
        while std::time::Instant::now() < deadline {
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// `127.0.0.1:PORT`, for raw TCP.
    pub fn address(&self) -> &str {
        self.base.trim_start_matches("http://")
    }
}

fn not_a_process() -> ! {
    panic!(
        "signals and exit statuses are a process's: start this server with Server::start_process"
    )
}

impl Drop for Server {
    /// A process is killed (SIGKILL); an in-process server stops as on SIGTERM.
    fn drop(&mut self) {
        if let Running::Process(child) = &mut self.running {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An admin key made on `db` through the application layer, as `portcullis api-keys create
/// --admin` makes one, without starting a process.
async fn create_admin_key(db: &TestDb) -> String {
    let store = Store::connect_existing(&db.url).await.unwrap();
    let request = KeyRequest {
        kind: Some(ApiKeyKind::Admin),
        name: "test admin".into(),
        scope: String::new(),
        env: KeyEnv::Live,
        metadata: json!({}),
        owner: KeyOwner::Nobody,
        expiry: Expiry::Never,
        created_by: None,
        revoke_when_creator_leaves: false,
        rate_limit_plan: None,
    };
    let (_, secret) = create_api_key(&store, DEFAULT_PREFIX, request, &Initiator::cli(), None)
        .await
        .unwrap();
    store.close().await;
    secret.expose().to_owned()
}

/// A new keys directory holding the signing key that every test shares: generating an RSA key
/// costs a tenth of a second. Made once, with `KeyStore`; copied as `<kid>.pem` and
/// `<kid>.json` with their modes (0600, the directory 0700), as `serve` would have left them.
pub fn keys_dir_with_signing_key() -> tempfile::TempDir {
    static SHARED: OnceLock<Vec<(std::ffi::OsString, Vec<u8>)>> = OnceLock::new();
    let files = SHARED.get_or_init(|| {
        let made = tempfile::tempdir().unwrap();
        KeyStore::open(made.path(), 3600)
            .unwrap()
            .ensure_key()
            .unwrap();
        std::fs::read_dir(made.path())
            .unwrap()
            .map(|entry| entry.unwrap())
            // Not the lock the first key was made under: a fresh one is made when needed.
            .filter(|entry| entry.file_name() != portcullis::keys::FIRST_KEY_LOCK)
            .map(|entry| (entry.file_name(), std::fs::read(entry.path()).unwrap()))
            .collect()
    });
    assert_eq!(files.len(), 2, "a key and its schedule");
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(dir.path().join(name))
            .unwrap();
        file.write_all(contents).unwrap();
    }
    dir
}

/// Runs a `portcullis` CLI command on the given database and keys directory.
pub fn cli(db: &TestDb, keys_dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_KEYS_DIR", keys_dir)
        .output()
        .unwrap()
}

/// Runs a CLI command with `input` on its standard input (a password, say).
pub fn cli_with_input(db: &TestDb, keys_dir: &Path, args: &[&str], input: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_KEYS_DIR", keys_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs a CLI command that must succeed and print JSON.
pub fn cli_json(db: &TestDb, keys_dir: &Path, args: &[&str]) -> Value {
    let out = cli(db, keys_dir, args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// One database, one keys directory, one server, one admin key: the usual test setting.
/// Fields drop in order: the servers stop before their database is removed.
pub struct TestEnv {
    pub server: Server,
    pub keys_dir: PathBuf,
    pub admin_key: String,
    pub http: reqwest::Client,
    /// The time of the in-process servers started here (not of child processes).
    clock: ClockOffset,
    pub db: TestDb,
    _keys: tempfile::TempDir,
}

/// How a [`TestEnv`]'s server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Run {
    InProcess,
    Process,
}

impl TestEnv {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, &[]).await
    }

    pub async fn start_with(backend: Backend, server_args: &[&str]) -> Self {
        let db = TestDb::new(backend).await;
        let url = db.url.clone();
        Self::assemble(db, &TestDb::existing(url), server_args, Run::InProcess).await
    }

    /// [`TestEnv::start_with`], the server a child process: for tests of what only a process
    /// has (signals, exit status, its environment), or of a process-wide limit.
    pub async fn start_process_with(backend: Backend, server_args: &[&str]) -> Self {
        let db = TestDb::new(backend).await;
        let url = db.url.clone();
        Self::assemble(db, &TestDb::existing(url), server_args, Run::Process).await
    }

    /// A server on `db`, which the test prepared (e.g. a SQLite file on a small disk).
    pub async fn start_on(db: TestDb, server_args: &[&str]) -> Self {
        let url = db.url.clone();
        Self::assemble(db, &TestDb::existing(url), server_args, Run::InProcess).await
    }

    /// A server process on a fresh PostgreSQL database that it reaches only through `Proxy`,
    /// which the test can cut; `db` is the database itself, reached directly.
    pub async fn start_behind_proxy(server_args: &[&str]) -> (Self, proxy::Proxy) {
        let db = TestDb::new(Backend::Postgres).await;
        let (proxy, proxied) = proxy::Proxy::in_front_of(&db).await;
        let env = Self::assemble(db, &proxied, server_args, Run::Process).await;
        (env, proxy)
    }

    /// A server that reaches the database as `server_db` says, and an admin key made
    /// directly on `db`, as the CLI makes one.
    async fn assemble(db: TestDb, server_db: &TestDb, server_args: &[&str], run: Run) -> Self {
        let keys = keys_dir_with_signing_key();
        let keys_dir = keys.path().to_owned();
        let clock = ClockOffset::default();
        let server = match run {
            Run::InProcess => Server::start_in_process(server_db, &keys_dir, server_args, &clock),
            Run::Process => Server::start_process(server_db, &keys_dir, server_args),
        };
        Self {
            server,
            keys_dir,
            admin_key: create_admin_key(&db).await,
            http: reqwest::Client::new(),
            clock,
            db,
            _keys: keys,
        }
    }

    /// Moves the time of this environment's in-process servers `secs` forward.
    pub fn advance_clock(&self, secs: i64) {
        assert!(
            self.server.is_in_process(),
            "a child process keeps the system time"
        );
        self.clock.advance(secs);
    }

    pub fn url(&self, path: &str) -> String {
        self.server.url(path)
    }

    /// Another server process on the same database and keys directory. Replicas are
    /// processes: what they share (the database, the keys directory) is shared across
    /// processes in production.
    pub fn start_replica(&self) -> Server {
        self.start_replica_with(&[])
    }

    /// Another server process on the same database and keys directory, with `server_args`.
    pub fn start_replica_with(&self, server_args: &[&str]) -> Server {
        Server::start_process(&self.db, &self.keys_dir, server_args)
    }

    /// Creates a client through the admin API; returns its metadata with `client_secret`.
    pub async fn create_client(&self, metadata: Value) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/admin/clients")
            .json(&metadata)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// A confidential client_credentials client with scope "read write".
    pub async fn service_client(&self) -> Client {
        let created = self
            .create_client(json!({
                "client_name": "backend",
                "grant_types": ["client_credentials"],
                "scope": "read write",
                "resources": ["https://api.example.com", "https://billing.example.com"],
            }))
            .await;
        Client::from_created(&created)
    }

    /// A confidential client registered as a resource server: it may introspect other
    /// clients' access tokens and API keys.
    pub async fn resource_server_client(&self) -> Client {
        let created = self
            .create_client(json!({
                "client_name": "resource server",
                "grant_types": ["client_credentials"],
                "scope": "read write",
                "resource_server": true,
            }))
            .await;
        assert_eq!(created["resource_server"], true);
        Client::from_created(&created)
    }

    /// A request to this server authenticated with the admin key.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key)
    }

    /// `GET` on the admin API with the admin key; expects a 200 and returns its body.
    pub async fn admin_get(&self, path: &str) -> Value {
        let response = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// Introspects `token` with the admin key; expects a 200.
    pub async fn introspect(&self, token: &str) -> Value {
        introspect_at(&self.http, &self.server, &self.admin_key, token).await
    }

    /// Creates an API key through the admin API; expects a 201 and returns its body, with the
    /// key itself this once.
    pub async fn create_api_key(&self, body: Value) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/admin/api-keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        response.json().await.unwrap()
    }

    /// Revokes an API key through the admin API; expects a 204.
    pub async fn revoke_api_key(&self, id: &str) {
        let response = self
            .admin(reqwest::Method::DELETE, &format!("/admin/api-keys/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 204);
    }

    /// POST /token with a form body and optional Basic credentials.
    pub async fn token(&self, basic: Option<&Client>, form: &[(&str, &str)]) -> reqwest::Response {
        self.token_at(&self.server.base, basic, form).await
    }

    /// POST a form to `path` on this server, without client credentials in a header.
    pub async fn token_at_path(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .form(form)
            .send()
            .await
            .unwrap()
    }

    /// POST /token on the server at `base` (this one or a replica).
    pub async fn token_at(
        &self,
        base: &str,
        basic: Option<&Client>,
        form: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.http.post(format!("{base}/token")).form(form);
        if let Some(client) = basic {
            request = request.basic_auth(&client.id, Some(&client.secret));
        }
        request.send().await.unwrap()
    }

    /// Sends the same public-client `/token` request `times` times at once, alternating between
    /// this server and `replica`; returns the responses in order.
    pub async fn token_at_once(
        &self,
        replica: &Server,
        times: usize,
        form: &[(&str, &str)],
    ) -> Vec<reqwest::Response> {
        let attempts = (0..times).map(|i| {
            let base = if i % 2 == 0 {
                &self.server.base
            } else {
                &replica.base
            };
            self.token_at(base, None, form)
        });
        futures::future::join_all(attempts).await
    }

    pub async fn jwks(&self) -> Value {
        self.jwks_at(&self.server.base).await
    }

    /// The JWKS of the server at `base` (this one or a replica).
    pub async fn jwks_at(&self, base: &str) -> Value {
        let response = self
            .http
            .get(format!("{base}/.well-known/jwks.json"))
            .send()
            .await
            .unwrap();
        response.json().await.unwrap()
    }
}

/// A client's credentials.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: String,
    pub secret: String,
}

impl Client {
    pub fn from_created(created: &Value) -> Self {
        Self {
            id: created["client_id"].as_str().unwrap().to_owned(),
            secret: created["client_secret"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// Verifies an RS256 access token against a JWKS document as a resource server would:
/// signature by `kid`, `typ` at+jwt, issuer, audience and expiry. Returns the claims.
pub fn verify_access_token(token: &str, jwks: &Value, issuer: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::RS256);
    assert_eq!(header.typ.as_deref(), Some("at+jwt"), "RFC 9068 §2.1 typ");
    let kid = header.kid.expect("a kid");
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_value(jwks.clone()).unwrap();
    let jwk = set
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    jsonwebtoken::decode::<Value>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .expect("the token verifies against the JWKS")
        .claims
}

/// Introspects `token` at `server`, authenticated by `admin_key`; expects a 200.
pub async fn introspect_at(
    http: &reqwest::Client,
    server: &Server,
    admin_key: &str,
    token: &str,
) -> Value {
    let response = http
        .post(server.url("/introspect"))
        .bearer_auth(admin_key)
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json().await.unwrap()
}

/// The `kid` in a JWT's header.
pub fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

pub fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}
