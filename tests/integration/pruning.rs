//! Every server deletes rows that stopped mattering days ago, and nothing that still matters.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::common::flow::browser;
use crate::common::{Backend, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(expired_rows_are_pruned_and_live_ones_kept);

/// Long before any grace period: 1970.
const LONG_AGO: i64 = 1_000;

/// Rows per kind that should remain, by the queries that count them.
const REMAINING: [&str; 8] = [
    "SELECT COUNT(*) FROM grants",
    "SELECT COUNT(*) FROM refresh_tokens",
    "SELECT COUNT(*) FROM authorization_codes",
    "SELECT COUNT(*) FROM access_tokens WHERE grant_id IS NOT NULL",
    "SELECT COUNT(*) FROM access_tokens WHERE jti LIKE 'test-%'",
    "SELECT COUNT(*) FROM sessions",
    "SELECT COUNT(*) FROM login_failures",
    "SELECT COUNT(*) FROM credential_watchers WHERE id LIKE 'test-%'",
];

async fn expired_rows_are_pruned_and_live_ones_kept(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--prune-interval-secs", "1"]).await;
    env.create_user("olga").await;
    let client = env.spa_client().await;
    let redeem = |(code, verifier): (String, String)| {
        let client = &client;
        let env = &env;
        async move {
            let response = env.redeem(client, &code, &verifier).await;
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.unwrap()
        }
    };
    // Two authorizations, each with a refresh token and an access token on record, one code
    // never redeemed, three sessions (one per sign-in) and a failed sign-in.
    let expired = redeem(env.authorization_code(&client, "olga", "read").await).await;
    let live = redeem(env.authorization_code(&client, "olga", "read").await).await;
    env.authorization_code(&client, "olga", "read").await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    env.sign_in(&browser(), &url, "olga", "wrong password")
        .await;

    let pool = env.db.pool().await;
    let run = |sql: &'static str, bind: Option<String>| {
        let pool = pool.clone();
        async move {
            let query = sqlx::query(sql);
            let query = match bind {
                Some(value) => query.bind(value),
                None => query,
            };
            query.execute(&pool).await.unwrap();
        }
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let jwks = env.jwks().await;
    let expired_jti = verify_access_token(
        expired["access_token"].as_str().unwrap(),
        &jwks,
        &env.server.issuer,
        &env.server.issuer,
    )["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    run(
        "UPDATE grants SET expires_at = 1000 WHERE id = \
         (SELECT grant_id FROM access_tokens WHERE jti = $1)",
        Some(expired_jti),
    )
    .await;
    run(
        "UPDATE grants SET created_at = 1000 WHERE id IN \
         (SELECT grant_id FROM authorization_codes WHERE redeemed_at IS NULL)",
        None,
    )
    .await;
    run(
        "UPDATE authorization_codes SET expires_at = 1000 WHERE redeemed_at IS NULL",
        None,
    )
    .await;
    let mut sessions: Vec<String> = sqlx::query_scalar("SELECT id_hash FROM sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    sessions.sort();
    assert_eq!(sessions.len(), 3);
    run(
        "UPDATE sessions SET expires_at = 1000 WHERE id_hash = $1",
        Some(sessions[0].clone()),
    )
    .await;
    run(
        "UPDATE sessions SET last_seen_at = 1000 WHERE id_hash = $1",
        Some(sessions[1].clone()),
    )
    .await;
    run(
        "UPDATE login_failures SET window_start = 1000 WHERE throttle_key LIKE 'user:%'",
        None,
    )
    .await;
    // Expired within the grace period, and expired long ago; the first is written first, so
    // that any pruning that removes the second has seen the first.
    let hour_ago = now - 3600;
    for (jti, expires_at) in [("test-recent", hour_ago), ("test-old", LONG_AGO)] {
        sqlx::query(
            "INSERT INTO access_tokens (jti, grant_id, client_id, expires_at, revoked_at) \
             VALUES ($1, NULL, 'someone', $2, $2)",
        )
        .bind(jti)
        .bind(expires_at)
        .execute(&pool)
        .await
        .unwrap();
    }
    // Likewise leases of servers that stopped without giving them up.
    for (id, expires_ms) in [
        ("test-recent", hour_ago * 1000),
        ("test-gone", LONG_AGO * 1000),
    ] {
        sqlx::query(
            "INSERT INTO credential_watchers (id, lease_expires_ms, acked_count) VALUES ($1, $2, 0)",
        )
        .bind(id)
        .bind(expires_ms)
        .execute(&pool)
        .await
        .unwrap();
    }

    // The live grant with its refresh token, its redeemed code and its access token; the
    // recent revocation record; one session; the address's throttling window; the recent lease.
    let expected = vec![1, 1, 1, 1, 1, 1, 1, 1];
    let mut remaining = Vec::new();
    for _ in 0..100 {
        remaining.clear();
        for sql in REMAINING {
            let count: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
            remaining.push(count);
        }
        if remaining == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        REMAINING.iter().zip(&remaining).collect::<Vec<_>>(),
        REMAINING.iter().zip(&expected).collect::<Vec<_>>()
    );
    pool.close().await;

    // What is left still works.
    let refreshed = env
        .refresh(&client, live["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(refreshed.status(), 200);
    let pruned = env
        .refresh(&client, expired["refresh_token"].as_str().unwrap(), None)
        .await;
    assert_eq!(pruned.status(), 400);
    assert!(env.server.logs().contains("pruned expired rows"));
}
