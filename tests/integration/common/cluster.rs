//! A throwaway PostgreSQL cluster of the test's own, for what the shared server cannot be made
//! to do: serve TLS with a certificate the test made, or stop offering it. Made with the
//! server binaries of the machine (`initdb`, `pg_ctl`; Debian keeps them in
//! /usr/lib/postgresql/VERSION/bin, PORTCULLIS_TEST_POSTGRES_BIN names another directory), run
//! as the `postgres` user when the tests run as root (initdb refuses root), stopped and removed
//! when dropped.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use sqlx::Connection;

/// The loopback addresses the cluster listens on. Its certificate names only the first (and
/// `localhost`): the second is there to be a name the certificate does not vouch for.
pub const CERTIFIED_HOST: &str = "127.0.0.1";
pub const UNCERTIFIED_HOST: &str = "127.0.0.2";

pub struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    pub port: u16,
}

impl Cluster {
    /// A new cluster with `ssl = on`, serving a certificate for `localhost` and 127.0.0.1
    /// signed by a CA of its own ([`Cluster::ca_path`]); trust authentication on loopback.
    pub fn start_with_tls() -> Self {
        let bin = server_binaries();
        let dir = tempfile::tempdir().unwrap();
        let cluster = Self {
            dir,
            bin,
            port: free_port(),
        };
        cluster.hand_to_server_user(cluster.dir.path());
        cluster.make_certificates();
        let data = cluster.data_dir();
        cluster.run_checked(
            &cluster.bin.join("initdb"),
            &[
                "-D",
                path(&data),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--no-locale",
                "--no-sync",
            ],
        );
        // In postgresql.conf rather than on pg_ctl's command line, which would outrank the
        // ALTER SYSTEM that `set_ssl` uses.
        let dir = cluster.dir.path();
        let settings = format!(
            "\nport = {port}\nlisten_addresses = '{CERTIFIED_HOST},{UNCERTIFIED_HOST}'\n\
             unix_socket_directories = '{socket}'\nfsync = off\nssl = on\n\
             ssl_cert_file = '{cert}'\nssl_key_file = '{key}'\n",
            port = cluster.port,
            socket = dir.display(),
            cert = dir.join("server.crt").display(),
            key = dir.join("server.key").display(),
        );
        append(&data.join("postgresql.conf"), &settings);
        append(
            &data.join("pg_hba.conf"),
            "\nhost all all 127.0.0.0/8 trust\n",
        );
        let log = dir.join("server.log");
        cluster.run_checked(
            &cluster.bin.join("pg_ctl"),
            &[
                "-D",
                path(&data),
                "-l",
                path(&log),
                "-w",
                "-t",
                "30",
                "start",
            ],
        );
        cluster
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The CA that signed the server's certificate, for `sslrootcert=`.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Another CA, which signed nothing the server presents.
    pub fn other_ca_path(&self) -> PathBuf {
        self.dir.path().join("other-ca.crt")
    }

    /// `postgres://postgres@HOST:PORT/DATABASE?QUERY`.
    pub fn url(&self, host: &str, database: &str, query: &str) -> String {
        format!(
            "postgres://postgres@{host}:{port}/{database}?{query}",
            port = self.port
        )
    }

    /// A plain connection to the `postgres` database, for the test's own statements.
    pub async fn admin(&self) -> sqlx::postgres::PgConnection {
        let url = self.url(CERTIFIED_HOST, "postgres", "sslmode=disable");
        sqlx::postgres::PgConnection::connect(&url).await.unwrap()
    }

    /// Turns TLS on or off, and waits until new connections see it.
    pub async fn set_ssl(&self, on: bool) {
        let mut admin = self.admin().await;
        let value = if on { "on" } else { "off" };
        // ALTER SYSTEM refuses to run in a transaction, which several statements at once are.
        for statement in [
            format!("ALTER SYSTEM SET ssl = {value}"),
            "SELECT pg_reload_conf()".to_owned(),
        ] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(statement))
                .execute(&mut admin)
                .await
                .unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut fresh = self.admin().await;
            let now: String = sqlx::query_scalar("SHOW ssl")
                .fetch_one(&mut fresh)
                .await
                .unwrap();
            if now == value {
                return;
            }
            assert!(Instant::now() < deadline, "ssl is still {now}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A CA, a server key and certificate signed by it (for `localhost` and 127.0.0.1 only),
    /// and a second CA that signed nothing here; EC P-256, valid for two days.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        append(
            &dir.join("server.ext"),
            &format!(
                "subjectAltName = DNS:localhost, IP:{CERTIFIED_HOST}\n\
                 basicConstraints = CA:FALSE\nkeyUsage = digitalSignature\n\
                 extendedKeyUsage = serverAuth\n"
            ),
        );
        let openssl = Path::new("openssl");
        let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        for (name, subject) in [
            ("ca", "/CN=Portcullis test CA"),
            ("other-ca", "/CN=Someone else's CA"),
        ] {
            let (key, cert) = (
                dir.join(format!("{name}.key")),
                dir.join(format!("{name}.crt")),
            );
            let mut args = vec!["req", "-x509", "-new", "-nodes", "-days", "2"];
            args.extend(new_key);
            args.extend(["-subj", subject, "-keyout", path(&key), "-out", path(&cert)]);
            self.run_checked(openssl, &args);
        }
        let csr = dir.join("server.csr");
        let mut args = vec!["req", "-new", "-nodes", "-subj", "/CN=localhost"];
        args.extend(new_key);
        let key = dir.join("server.key");
        args.extend(["-keyout", path(&key), "-out", path(&csr)]);
        self.run_checked(openssl, &args);
        // PostgreSQL refuses a key that its group or others may read.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let (ca_cert, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
        let (ext, cert) = (dir.join("server.ext"), dir.join("server.crt"));
        self.run_checked(
            openssl,
            &[
                "x509",
                "-req",
                "-in",
                path(&csr),
                "-CA",
                path(&ca_cert),
                "-CAkey",
                path(&ca_key),
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                path(&ext),
                "-out",
                path(&cert),
            ],
        );
    }

    /// Runs `program` as the user the server runs as; fails the test, with its output, unless
    /// it succeeds.
    fn run_checked(&self, program: &Path, args: &[&str]) -> Output {
        let mut command = if running_as_root() {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(program);
            command
        } else {
            Command::new(program)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
        assert!(
            output.status.success(),
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// As root, gives `dir` to the `postgres` user, which the server and initdb run as.
    fn hand_to_server_user(&self, dir: &Path) {
        if running_as_root() {
            let status = Command::new("chown")
                .args(["postgres:postgres", path(dir)])
                .status()
                .unwrap();
            assert!(status.success(), "chown postgres {}", dir.display());
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.data_dir();
        if data.join("postmaster.pid").exists() {
            let pg_ctl = self.bin.join("pg_ctl");
            let mut command = if running_as_root() {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&pg_ctl);
                command
            } else {
                Command::new(&pg_ctl)
            };
            let _ = command
                .args(["-D", path(&data), "-m", "immediate", "-w", "stop"])
                .output();
        }
    }
}

fn running_as_root() -> bool {
    rustix::process::geteuid().is_root()
}

fn path(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 temporary path")
}

fn append(file: &Path, text: &str) {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(file)
        .unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

/// The directory holding `initdb` and `pg_ctl`: PORTCULLIS_TEST_POSTGRES_BIN, or the newest of
/// Debian's /usr/lib/postgresql/*/bin.
fn server_binaries() -> PathBuf {
    if let Ok(dir) = std::env::var("PORTCULLIS_TEST_POSTGRES_BIN") {
        return PathBuf::from(dir);
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version: u32 = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .max();
    match newest {
        Some((_, bin)) => bin,
        None => panic!(
            "this test starts a PostgreSQL cluster of its own and needs the server binaries \
             (initdb, pg_ctl): none in /usr/lib/postgresql/*/bin; install PostgreSQL's server \
             package or name their directory in PORTCULLIS_TEST_POSTGRES_BIN"
        ),
    }
}

/// A port free on both loopback addresses the cluster listens on, below Linux's ephemeral
/// range (so that no test's outgoing connection takes it before the cluster binds it) and
/// below the range `proxy` uses.
fn free_port() -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let start = (std::process::id() % 5_000) as u16;
    loop {
        let port = 15_000 + (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 5_000;
        let free = [CERTIFIED_HOST, UNCERTIFIED_HOST]
            .iter()
            .all(|host| TcpListener::bind((*host, port)).is_ok());
        if free {
            return port;
        }
    }
}
