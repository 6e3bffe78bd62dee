//! SQLite on a full disk, or locked by another process: every write is a 503 that changes nothing, no write is acknowledged
//! that did not commit, and once space is freed writes work again, from the server and the
//! CLI, without a restart. Runs on a small tmpfs, which needs root (as CI has); elsewhere it
//! says it skipped.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestDb, TestEnv, cli};

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        mounted.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file until the disk is full; returns it, for `free`.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = std::fs::File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        let _ = file.flush();
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test]
async fn sqlite_on_a_full_disk_refuses_writes_cleanly_and_recovers() {
    let Some(disk) = SmallDisk::mount("8m") else {
        eprintln!("SKIPPED sqlite_on_a_full_disk…: cannot mount a tmpfs here (needs root)");
        return;
    };
    let url = format!("sqlite://{}", disk.path().join("portcullis.db").display());
    let env = TestEnv::start_on(TestDb::existing(url), &[]).await;
    let (spa, refresh_token) = env.first_refresh_token("vera").await;
    let created: Value = env
        .create_api_key(json!({"name": "doomed", "scope": "read"}))
        .await;
    let (key_id, key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );

    let filler = disk.fill();
    // Writes until one needs space the disk no longer has (SQLite may still have room in its
    // write-ahead log for a few).
    let mut refused = None;
    for i in 0..200 {
        let response = env
            .admin(Method::POST, "/admin/clients")
            .json(
                &json!({"client_name": format!("filler {i}"), "grant_types": ["client_credentials"],
                          "scope": "read ".repeat(200).trim()}),
            )
            .send()
            .await
            .unwrap();
        if response.status() != 201 {
            refused = Some(response);
            break;
        }
    }
    let refused = refused.expect("the disk fills up");
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    assert_eq!(
        refused.json::<Value>().await.unwrap()["error"]["code"],
        "UNAVAILABLE"
    );

    // While full: a revocation is refused, not acknowledged; a refresh uses nothing up.
    let revoke = || {
        env.admin(Method::DELETE, &format!("/admin/api-keys/{key_id}"))
            .send()
    };
    assert_eq!(revoke().await.unwrap().status(), 503);
    let response = env.refresh(&spa, &refresh_token, None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    assert_eq!(env.introspect(key).await["active"], true);

    // Space again: writes work without a restart, and what is acknowledged is committed.
    std::fs::remove_file(filler).unwrap();
    assert_eq!(revoke().await.unwrap().status(), 204);
    assert_eq!(env.introspect(key).await["active"], false);
    let refreshed = env.refresh(&spa, &refresh_token, None).await;
    assert_eq!(refreshed.status(), 200);
    let pool = env.db.pool().await;
    let revoked_at: Option<i64> =
        sqlx::query_scalar("SELECT revoked_at FROM api_keys WHERE id = $1")
            .bind(key_id)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(
        revoked_at.is_some(),
        "the acknowledged revocation is in the file"
    );
    // The CLI, another process, is not locked out.
    let out = cli(
        &env.db,
        &env.keys_dir,
        &[
            "clients",
            "create",
            "--name",
            "after",
            "--grant-type",
            "client_credentials",
            "--json",
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(env);
}

/// Another process holding SQLite's write lock past the busy timeout (5 s) makes writes 503s,
/// not 500s; once it lets go, the same request succeeds, nothing used up. The server is a
/// process, so that the lock is held by another one (this test's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_locked_by_another_process_is_temporarily_unavailable() {
    let env = TestEnv::start_process_with(crate::common::Backend::Sqlite, &[]).await;
    let (spa, refresh_token) = env.first_refresh_token("walt").await;

    let path = env.db.url.trim_start_matches("sqlite://").to_owned();
    let (locked_tx, locked_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection.execute_batch("BEGIN IMMEDIATE").unwrap();
        locked_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        connection.execute_batch("ROLLBACK").unwrap();
    });
    locked_rx.recv().unwrap();
    let response = env.refresh(&spa, &refresh_token, None).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"],
        "temporarily_unavailable"
    );
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(env.refresh(&spa, &refresh_token, None).await.status(), 200);
}
