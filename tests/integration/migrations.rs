//! Migrations: every one applies to an empty database, and the latest to a database that
//! holds data of the version before, which keeps working afterwards.

use std::path::Path;

use portcullis::api_keys::{KeyEnv, generate_key};
use portcullis::secrets::hash_secret;
use sqlx::migrate::Migrator;

use crate::common::flow::{PASSWORD, browser, hidden_field};
use crate::common::{Backend, Client, TestDb, TestEnv, cli};
use crate::on_both_databases;

on_both_databases!(
    every_migration_applies_to_an_empty_database,
    an_upgrade_keeps_the_previous_versions_data
);

/// A value for a TEXT or a BIGINT column.
enum Bind {
    Text(String),
    Number(i64),
}

async fn migrations() -> Migrator {
    Migrator::new(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/migrations"
    )))
    .await
    .unwrap()
}

/// The versions recorded as applied, in order.
async fn applied_versions(db: &TestDb) -> Vec<i64> {
    let pool = db.pool().await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    pool.close().await;
    versions
}

/// A SQLite database file must exist before a plain pool can open it.
fn create_file(db: &TestDb) {
    if let Some(path) = db.url.strip_prefix("sqlite://") {
        std::fs::File::create(path).unwrap();
    }
}

async fn every_migration_applies_to_an_empty_database(backend: Backend) {
    let db = TestDb::new(backend).await;
    let keys = tempfile::tempdir().unwrap();
    let all: Vec<i64> = migrations().await.iter().map(|m| m.version).collect();
    for _ in 0..2 {
        let out = cli(&db, keys.path(), &["migrate"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(applied_versions(&db).await, all, "once, and again: a no-op");
    }
}

async fn an_upgrade_keeps_the_previous_versions_data(backend: Backend) {
    let db = TestDb::new(backend).await;
    create_file(&db);
    let migrator = migrations().await;
    let all: Vec<i64> = migrator.iter().map(|m| m.version).collect();
    // The schema of the version before the latest migration. The rows below are written for
    // it: a new migration that changes a table they use updates them, which is the point.
    let previous = all[all.len() - 2];
    let pool = db.pool().await;
    migrator.run_to(previous, &pool).await.unwrap();

    let now = portcullis::clock::unix_now();
    let client_secret = "previous-version-client-secret";
    let api_key = generate_key("pc", KeyEnv::Live);
    let refresh_token = "previous-version-refresh-token";
    let password_hash = portcullis::passwords::hash_password(PASSWORD.into())
        .await
        .unwrap();
    let (t, n) = (Bind::Text, Bind::Number);
    let statements: Vec<(&str, Vec<Bind>)> = vec![
        (
            "INSERT INTO clients (id, name, secret_hash, token_endpoint_auth_method, redirect_uris, \
             grant_types, scope, resources, created_at, updated_at, skip_consent, resource_server) \
             VALUES ('oldbackend', 'Old backend', $1, 'client_secret_basic', '[]', \
             '[\"client_credentials\"]', 'read', '[]', $2, $2, 0, 0)",
            vec![t(hash_secret(client_secret)), n(now)],
        ),
        (
            "INSERT INTO clients (id, name, secret_hash, token_endpoint_auth_method, redirect_uris, \
             grant_types, scope, resources, created_at, updated_at, skip_consent, resource_server) \
             VALUES ('oldspa', 'Old SPA', NULL, 'none', '[\"http://localhost:3000/cb\"]', \
             '[\"authorization_code\",\"refresh_token\"]', 'read', '[]', $1, $1, 0, 0)",
            vec![n(now)],
        ),
        (
            "INSERT INTO users (id, username, email, password_hash, disabled_at, created_at, updated_at) \
             VALUES ('usr_old', 'olduser', NULL, $1, NULL, $2, $2)",
            vec![t(password_hash), n(now)],
        ),
        (
            "INSERT INTO api_keys (id, kind, name, key_hash, display_prefix, scope, created_at, \
             env, metadata, revoke_when_creator_leaves) \
             VALUES ('key_old', 'service', 'old job', $1, 'pc_live_old', 'read', $2, 'live', '{}', 0)",
            vec![t(api_key.hash()), n(now)],
        ),
        (
            "INSERT INTO grants (id, client_id, user_id, scope, created_at, expires_at) \
             VALUES ('grant_old', 'oldspa', 'usr_old', 'read', $1, $2)",
            vec![n(now), n(now + 86_400)],
        ),
        (
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, idle_expires_at) \
             VALUES ($1, 'grant_old', $2, $3)",
            vec![t(hash_secret(refresh_token)), n(now), n(now + 86_400)],
        ),
    ];
    for (sql, binds) in statements {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()));
        for bind in binds {
            query = match bind {
                Bind::Text(text) => query.bind(text),
                Bind::Number(number) => query.bind(number),
            };
        }
        query.execute(&pool).await.expect(sql);
    }
    pool.close().await;

    // The command an operator runs on upgrade applies what is missing.
    let keys = tempfile::tempdir().unwrap();
    let out = cli(&db, keys.path(), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(applied_versions(&db).await, all);

    // And what was there works: the client's secret, the API key, the refresh token and the
    // password.
    let env = TestEnv::start_on(db, &[]).await;
    let backend_client = Client {
        id: "oldbackend".into(),
        secret: client_secret.into(),
    };
    let grant = [("grant_type", "client_credentials")];
    assert_eq!(env.token(Some(&backend_client), &grant).await.status(), 200);
    let key = Client {
        id: api_key.expose().into(),
        secret: String::new(),
    };
    assert_eq!(env.token(Some(&key), &grant).await.status(), 200);
    let refreshed = env
        .token(
            None,
            &[
                ("grant_type", "refresh_token"),
                ("client_id", "oldspa"),
                ("refresh_token", refresh_token),
            ],
        )
        .await;
    assert_eq!(refreshed.status(), 200);

    let browser = browser();
    let page = env.page(&browser, "/login").await;
    browser
        .post(env.url("/login"))
        .form(&[
            ("username", "olduser"),
            ("password", PASSWORD),
            ("csrf", &hidden_field(&page, "csrf")),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        env.page(&browser, "/login")
            .await
            .contains("You are signed in")
    );
}
