//! Files on disk: the SQLite database (password hashes, secret digests) is readable by the
//! server's user only, and a keys directory anyone else could write to is refused.

use std::os::unix::fs::PermissionsExt;

use crate::common::{Backend, TestDb, TestEnv, cli};

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test]
async fn the_sqlite_database_and_its_companions_are_private() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let client = env.service_client().await;
    let token = env
        .token(Some(&client), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(token.status(), 200);
    let path = std::path::PathBuf::from(env.db.url.trim_start_matches("sqlite://"));
    for suffix in ["", "-wal", "-shm"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    for entry in std::fs::read_dir(&env.keys_dir).unwrap() {
        let file = entry.unwrap().path();
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[tokio::test]
async fn a_keys_directory_others_can_write_to_is_refused() {
    let db = TestDb::new(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = cli(&db, keys.path(), &["signing-keys", "list"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("writable by its group or by others"),
        "{stderr}"
    );
    assert!(stderr.contains("chmod go-w"), "{stderr}");

    // Made private, it is used.
    std::fs::set_permissions(keys.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let out = cli(&db, keys.path(), &["signing-keys", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A database made before files were private (or by hand) is made private at start.
#[tokio::test]
async fn an_existing_database_others_can_read_is_made_private() {
    let db = TestDb::new(Backend::Sqlite).await;
    let path = std::path::PathBuf::from(db.url.trim_start_matches("sqlite://"));
    std::fs::write(&path, b"").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let keys = tempfile::tempdir().unwrap();
    let out = cli(&db, &keys.path().join("keys"), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode(&path), 0o600);
    assert!(String::from_utf8_lossy(&out.stderr).contains("it is now private"));
}
