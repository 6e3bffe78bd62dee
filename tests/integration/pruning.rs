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
const REMAINING: [(&str, i64); 9] = [
    // The admin key, and the key revoked an hour ago; not the one revoked long ago.
    ("SELECT COUNT(*) FROM api_keys", 2),
    // The live grant, the one that ended an hour ago, and the one whose code expired a minute ago.
    ("SELECT COUNT(*) FROM grants", 3),
    ("SELECT COUNT(*) FROM refresh_tokens", 2),
    // The two redeemed codes of the remaining grants, and the one that expired a minute ago.
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

    let mut revoked_keys = Vec::new();
    for name in ["revoked long ago", "revoked an hour ago"] {
        let created: Value = env.create_api_key(serde_json::json!({"name": name})).await;
        revoked_keys.push(created["id"].as_str().unwrap().to_owned());
    }

    let pool = env.db.pool().await;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let hour_ago = now - 3600;
    for (jti, ended_at) in [
        (&ended_long_ago_jti, LONG_AGO),
        (&ended_recently_jti, hour_ago),
    ] {
        let sql = "UPDATE grants SET expires_at = $1 \
                   WHERE id = (SELECT grant_id FROM access_tokens WHERE jti = $2)";
        set(&pool, sql, ended_at, jti).await;
    }
    // Redeemed codes expired long ago too, but a code presented again must still end its grant.
    sqlx::query("UPDATE authorization_codes SET expires_at = $1 WHERE redeemed_at IS NOT NULL")
        .bind(LONG_AGO)
        .execute(&pool)
        .await
        .unwrap();
    let abandoned = sorted(
        &pool,
        "SELECT code_hash FROM authorization_codes WHERE redeemed_at IS NULL",
    )
    .await;
    // Codes never redeemed go with their grants minutes after they expire, not days: one that
    // expired an hour ago goes, one that expired a minute ago stays for now.
    for (code, expired_at) in abandoned.iter().zip([hour_ago, now - 60]) {
        let sql = "UPDATE grants SET created_at = $1 \
                   WHERE id = (SELECT grant_id FROM authorization_codes WHERE code_hash = $2)";
        set(&pool, sql, LONG_AGO, code).await;
        set(
            &pool,
            "UPDATE authorization_codes SET expires_at = $1 WHERE code_hash = $2",
            expired_at,
            code,
        )
        .await;
    }
    for (id, revoked_at) in revoked_keys.iter().zip([LONG_AGO, hour_ago]) {
        set(
            &pool,
            "UPDATE api_keys SET revoked_at = $1 WHERE id = $2",
            revoked_at,
            id,
        )
        .await;
    }
    let sessions = sorted(&pool, "SELECT id_hash FROM sessions").await;
    assert_eq!(sessions.len(), 5);
    for (session, ended_at) in sessions.iter().zip([LONG_AGO, hour_ago]) {
        set(
            &pool,
            "UPDATE sessions SET expires_at = $1 WHERE id_hash = $2",
            ended_at,
            session,
        )
        .await;
    }
    let throttled = sorted(&pool, "SELECT throttle_key FROM login_failures").await;
    assert_eq!(throttled.len(), 2, "by username and by address");
    // A window that began long ago, and one that ended an hour ago.
    let window_ended_recently = hour_ago - 15 * 60;
    for (key, began_at) in throttled.iter().zip([LONG_AGO, window_ended_recently]) {
        set(
            &pool,
            "UPDATE login_failures SET window_start = $1 WHERE throttle_key = $2",
            began_at,
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

/// Runs `sql` (an UPDATE of one row) with `$1` bound to `value` and `$2` to `id`.
async fn set(pool: &AnyPool, sql: &'static str, value: i64, id: &str) {
    let result = sqlx::query(sql)
        .bind(value)
        .bind(id)
        .execute(pool)
        .await
        .unwrap();
    assert_eq!(result.rows_affected(), 1, "{sql} {id}");
}

/// The strings a query selects, in order.
async fn sorted(pool: &AnyPool, sql: &'static str) -> Vec<String> {
    let mut found: Vec<String> = sqlx::query_scalar(sql).fetch_all(pool).await.unwrap();
    found.sort();
    found
}

async fn count_remaining(pool: &AnyPool) -> Vec<(&'static str, i64)> {
    let mut counts = Vec::new();
    for (sql, _) in REMAINING {
        let count: i64 = sqlx::query_scalar(sql).fetch_one(pool).await.unwrap();
        counts.push((sql, count));
    }
    counts
}
