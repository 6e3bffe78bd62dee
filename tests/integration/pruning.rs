//! Every server deletes rows that stopped mattering days ago, and nothing that still matters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use sqlx::AnyPool;

use crate::common::flow::browser;
use crate::common::{Backend, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(expired_rows_are_pruned_and_live_ones_kept);

/// Long before any grace period: 1970.
const LONG_AGO: i64 = 1_000;
/// `--prune-interval-secs` of the server under test.
const PRUNE_INTERVAL: Duration = Duration::from_secs(1);

/// What is left, counted by these queries, and what should be.
const REMAINING: [(&str, i64); 8] = [
    // The live grant, the one that ended an hour ago, and the one whose code expired an hour ago.
    ("SELECT COUNT(*) FROM grants", 3),
    ("SELECT COUNT(*) FROM refresh_tokens", 2),
    // The two redeemed codes of the remaining grants, and the one that expired an hour ago.
    ("SELECT COUNT(*) FROM authorization_codes", 3),
    (
        "SELECT COUNT(*) FROM access_tokens WHERE grant_id IS NOT NULL",
        2,
    ),
    (
        "SELECT COUNT(*) FROM access_tokens WHERE jti LIKE 'test-%'",
        1,
    ),
    // Five sign-ins, one session long over.
    ("SELECT COUNT(*) FROM sessions", 4),
    ("SELECT COUNT(*) FROM login_failures", 1),
    (
        "SELECT COUNT(*) FROM credential_watchers WHERE id LIKE 'test-%'",
        1,
    ),
];

async fn expired_rows_are_pruned_and_live_ones_kept(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--prune-interval-secs", "1"]).await;
    env.create_user("olga").await;
    let client = env.spa_client().await;
    let jwks = env.jwks().await;
    // An authorization redeemed for tokens; returns them and the access token's jti.
    let redeemed = || async {
        let (code, verifier) = env.authorization_code(&client, "olga", "read").await;
        let response = env.redeem(&client, &code, &verifier).await;
        assert_eq!(response.status(), 200);
        let tokens: Value = response.json().await.unwrap();
        let claims = verify_access_token(
            tokens["access_token"].as_str().unwrap(),
            &jwks,
            &env.server.issuer,
            &env.server.issuer,
        );
        (tokens, claims["jti"].as_str().unwrap().to_owned())
    };
    let (ended_long_ago, ended_long_ago_jti) = redeemed().await;
    let (ended_recently, ended_recently_jti) = redeemed().await;
    let (live, _) = redeemed().await;
    // Two codes never redeemed, and a failed sign-in.
    env.authorization_code(&client, "olga", "read").await;
    env.authorization_code(&client, "olga", "read").await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    env.sign_in(&browser(), &url, "olga", "wrong password")
        .await;

    let pool = env.db.pool().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let hour_ago = now - 3600;
    let grant_of = "(SELECT grant_id FROM access_tokens WHERE jti = $2)";
    set(
        &pool,
        "grants",
        "expires_at",
        LONG_AGO,
        "id",
        grant_of,
        &ended_long_ago_jti,
    )
    .await;
    set(
        &pool,
        "grants",
        "expires_at",
        hour_ago,
        "id",
        grant_of,
        &ended_recently_jti,
    )
    .await;
    // Redeemed codes expired long ago too, but a code presented again must still end its grant.
    sqlx::query("UPDATE authorization_codes SET expires_at = $1 WHERE redeemed_at IS NOT NULL")
        .bind(LONG_AGO)
        .execute(&pool)
        .await
        .unwrap();
    let mut abandoned: Vec<String> =
        sqlx::query_scalar("SELECT code_hash FROM authorization_codes WHERE redeemed_at IS NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    abandoned.sort();
    let code_grant = "(SELECT grant_id FROM authorization_codes WHERE code_hash = $2)";
    for (code, expired_at) in abandoned.iter().zip([LONG_AGO, hour_ago]) {
        set(
            &pool,
            "grants",
            "created_at",
            LONG_AGO,
            "id",
            code_grant,
            code,
        )
        .await;
        set(
            &pool,
            "authorization_codes",
            "expires_at",
            expired_at,
            "code_hash",
            "$2",
            code,
        )
        .await;
    }
    let mut sessions: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    sessions.sort();
    assert_eq!(sessions.len(), 5);
    for (session, ended_at) in sessions.iter().zip([LONG_AGO, hour_ago]) {
        set(
            &pool,
            "sessions",
            "expires_at",
            ended_at,
            "id_hash",
            "$2",
            session,
        )
        .await;
    }
    let mut throttled: Vec<String> = sqlx::query_scalar("SELECT throttle_key FROM login_failures")
        .fetch_all(&pool)
        .await
        .unwrap();
    throttled.sort();
    assert_eq!(throttled.len(), 2, "by username and by address");
    // A window that began long ago, and one that ended an hour ago.
    let window_ended_recently = hour_ago - 15 * 60;
    for (key, began_at) in throttled.iter().zip([LONG_AGO, window_ended_recently]) {
        set(
            &pool,
            "login_failures",
            "window_start",
            began_at,
            "throttle_key",
            "$2",
            key,
        )
        .await;
    }
    for (jti, expired_at) in [("test-recent", hour_ago), ("test-old", LONG_AGO)] {
        sqlx::query(
            "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) \
             VALUES ($1, NULL, 'someone', $2, $2)",
        )
        .bind(jti)
        .bind(expired_at)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Leases of servers that stopped without giving them up.
    for (id, lapsed_at) in [("test-recent", hour_ago), ("test-gone", LONG_AGO)] {
        sqlx::query(
            "INSERT INTO credential_watchers (id, lease_expires_ms, acked_count) VALUES ($1, $2, 0)",
        )
        .bind(id)
        .bind(lapsed_at * 1000)
        .execute(&pool)
        .await
        .unwrap();
    }

    let expected: Vec<_> = REMAINING
        .iter()
        .map(|(sql, count)| (*sql, *count))
        .collect();
    let mut remaining = Vec::new();
    for _ in 0..100 {
        remaining = count_remaining(&pool).await;
        if remaining == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(remaining, expected);
    // Later passes leave what is left alone.
    tokio::time::sleep(PRUNE_INTERVAL * 3).await;
    assert_eq!(count_remaining(&pool).await, expected);
    pool.close().await;

    // What is left still works, as far as its own expiry allows.
    for (tokens, status) in [(&live, 200), (&ended_recently, 400), (&ended_long_ago, 400)] {
        let refresh_token = tokens["refresh_token"].as_str().unwrap();
        let response = env.refresh(&client, refresh_token, None).await;
        assert_eq!(response.status(), status);
    }
    assert!(env.server.logs().contains("pruned expired rows"));
}

/// `UPDATE table SET column = value WHERE key = (target, with $2 bound to id)`.
async fn set(
    pool: &AnyPool,
    table: &str,
    column: &str,
    value: i64,
    key: &str,
    target: &str,
    id: &str,
) {
    let sql = format!("UPDATE {table} SET {column} = $1 WHERE {key} = {target}");
    let result = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(result.rows_affected(), 1, "{table} {id}");
}

async fn count_remaining(pool: &AnyPool) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (sql, _) in REMAINING {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
        counts.push((sql, count));
    }
    counts
}
