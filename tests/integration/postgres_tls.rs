//! PostgreSQL over TLS: `sslmode=require`, and `verify-full` against the CA in `sslrootcert`,
//! on a cluster the test starts with a certificate it made (the shared server's is not the
//! test's to choose, nor to turn off). PostgreSQL only.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::cluster::{CERTIFIED_HOST, Cluster, UNCERTIFIED_HOST};
use crate::common::flow::tokens;
use crate::common::{BIN, TestDb, TestEnv, cli, keys_dir_with_signing_key};

/// The server serves tokens over either mode, and every connection it holds is encrypted; the
/// CLI connects with `verify-full` too.
#[tokio::test]
async fn the_server_runs_on_postgresql_over_tls() {
    let cluster = Cluster::start_with_tls();
    let mut admin = cluster.admin().await;
    sqlx::raw_sql("CREATE DATABASE portcullis")
        .execute(&mut admin)
        .await
        .unwrap();
    let verify_full = format!(
        "sslmode=verify-full&sslrootcert={}",
        cluster.ca_path().display()
    );
    for query in ["sslmode=require", verify_full.as_str()] {
        let url = cluster.url(CERTIFIED_HOST, "portcullis", query);
        let env = TestEnv::start_on(TestDb::existing(url.clone()), &[]).await;
        let client = env.service_client().await;
        let response = env
            .token(Some(&client), &[("grant_type", "client_credentials")])
            .await;
        let answer = tokens(response).await;
        assert!(answer["access_token"].is_string(), "{query}: {answer}");

        let (encrypted, connections): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.datname = 'portcullis'",
        )
        .fetch_one(&mut admin)
        .await
        .unwrap();
        assert!(connections > 0, "{query}: the server holds connections");
        assert_eq!(encrypted, connections, "{query}: every one over TLS");

        let listed = cli(&env.db, &env.keys_dir, &["clients", "list", "--json"]);
        assert!(
            listed.status.success(),
            "{query}: {}",
            String::from_utf8_lossy(&listed.stderr)
        );
        assert!(String::from_utf8_lossy(&listed.stdout).contains(&client.id));
    }
}

/// What goes wrong with TLS is said in words an operator can act on: a certificate from
/// another CA, a certificate for another host, a missing `sslrootcert`, and a server that
/// does not offer TLS at all (which `serve` reports at start, and exits).
#[tokio::test]
async fn tls_failures_are_reported_plainly() {
    let cluster = Cluster::start_with_tls();
    let keys = keys_dir_with_signing_key();
    let migrate_fails = |url: String| {
        let out = cli(&TestDb::existing(url.clone()), keys.path(), &["migrate"]);
        assert!(!out.status.success(), "{url} should fail");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let verify_full = |host: &str, ca: &Path| {
        let query = format!("sslmode=verify-full&sslrootcert={}", ca.display());
        cluster.url(host, "postgres", &query)
    };

    let error = migrate_fails(verify_full(CERTIFIED_HOST, &cluster.other_ca_path()));
    assert!(
        error.contains("not signed by a CA in sslrootcert"),
        "another CA: {error}"
    );
    let error = migrate_fails(verify_full(UNCERTIFIED_HOST, &cluster.ca_path()));
    assert!(
        error.contains(&format!("not valid for {UNCERTIFIED_HOST}")),
        "another host: {error}"
    );
    let missing = cluster.ca_path().with_file_name("missing.crt");
    let error = migrate_fails(verify_full(CERTIFIED_HOST, &missing));
    assert!(
        error.contains("cannot read sslrootcert") && error.contains("missing.crt"),
        "a missing CA file: {error}"
    );

    cluster.set_ssl(false).await;
    let url = cluster.url(CERTIFIED_HOST, "postgres", "sslmode=require");
    let error = serve_fails(&url, keys.path());
    assert!(
        error.contains("does not offer TLS") && error.contains("sslmode=require"),
        "no TLS on the server: {error}"
    );
}

/// Starts `portcullis serve` on `url`, which must make it exit with a failure within 30 s;
/// returns what it wrote to standard error.
fn serve_fails(url: &str, keys_dir: &Path) -> String {
    let mut child = Command::new(BIN)
        .args(["serve", "--bind", "127.0.0.1:0"])
        .env("PORTCULLIS_DATABASE_URL", url)
        .env("PORTCULLIS_KEYS_DIR", keys_dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("serve kept running on {url}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}
