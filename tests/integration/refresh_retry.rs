//! The refresh retry window: presenting a rotated refresh token again within the window gets
//! the same successor, as long as that successor is unused; anything else is reuse and ends
//! the family.

use std::time::Duration;

use serde_json::Value;

use crate::common::flow::{error, tokens};
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    a_lost_response_is_retried_and_gets_the_same_successor,
    reuse_after_the_successor_was_used_revokes_the_family,
    reuse_after_the_window_revokes_the_family,
    concurrent_refreshes_share_one_successor_across_replicas,
    seals_past_the_longest_window_are_forgotten,
);

fn refresh_token_of(tokens: &Value) -> String {
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// Refresh tokens of every family in the database that could still be exchanged.
async fn live_refresh_tokens(env: &TestEnv) -> i64 {
    let pool = env.db.pool().await;
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id \
         WHERE r.rotated_at IS NULL AND g.revoked_at IS NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    count
}

async fn a_lost_response_is_retried_and_gets_the_same_successor(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (client, r1) = env.first_refresh_token("lena").await;

    let first = tokens(env.refresh(&client, &r1, None).await).await;
    // The response was lost; the client sends the same request again.
    let retried = tokens(env.refresh(&client, &r1, Some("read")).await).await;
    assert_eq!(refresh_token_of(&retried), refresh_token_of(&first));
    assert_ne!(retried["access_token"], first["access_token"]);
    assert_eq!(retried["scope"], "read");
    for response in [&first, &retried] {
        let introspected = env
            .introspect(response["access_token"].as_str().unwrap())
            .await;
        assert_eq!(introspected["active"], true);
    }
    assert_eq!(live_refresh_tokens(&env).await, 1);

    // Another client presenting it is refused, without harm to the family.
    let other = env.spa_client().await;
    assert_eq!(
        error(env.refresh(&other, &r1, None).await).await,
        (400, "invalid_grant".into())
    );
    // The successor carries on the family.
    assert_eq!(sealed_successors(&env).await, 1);
    let next = tokens(env.refresh(&client, &refresh_token_of(&first), None).await).await;
    assert_eq!(next["scope"], "read write");
    assert_eq!(live_refresh_tokens(&env).await, 1);
    // Only the newest rotation keeps its sealed successor: no chain of seals leads from an
    // old token to the live one.
    assert_eq!(sealed_successors(&env).await, 1);
}

/// Rotated refresh tokens that still hold their successor, sealed, for a retry.
async fn sealed_successors(env: &TestEnv) -> i64 {
    let pool = env.db.pool().await;
    let count = sqlx::query_scalar(
        "SELECT COUNT(*) FROM refresh_tokens WHERE successor_sealed IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    pool.close().await;
    count
}

async fn reuse_after_the_successor_was_used_revokes_the_family(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (client, r1) = env.first_refresh_token("mona").await;
    let second = tokens(env.refresh(&client, &r1, None).await).await;
    let third = tokens(env.refresh(&client, &refresh_token_of(&second), None).await).await;
    let access_token = third["access_token"].as_str().unwrap().to_owned();

    // r1's successor has been used: r1 again, even within the window, is reuse.
    assert_eq!(
        error(env.refresh(&client, &r1, None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error(env.refresh(&client, &refresh_token_of(&third), None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(env.introspect(&access_token).await["active"], false);
    assert_eq!(live_refresh_tokens(&env).await, 0);
}

async fn reuse_after_the_window_revokes_the_family(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--refresh-retry-window-secs", "10"]).await;
    let (client, r1) = env.first_refresh_token("nils").await;
    let second = tokens(env.refresh(&client, &r1, None).await).await;
    // From now, the window's length is at least its end: the window has passed.
    env.advance_clock(10);
    assert_eq!(
        error(env.refresh(&client, &r1, None).await).await,
        (400, "invalid_grant".into())
    );
    // The unused successor went with its family.
    assert_eq!(
        error(env.refresh(&client, &refresh_token_of(&second), None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(live_refresh_tokens(&env).await, 0);
}

async fn concurrent_refreshes_share_one_successor_across_replicas(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let replica = env.start_replica();
    let (client, r1) = env.first_refresh_token("olga").await;
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client.id.as_str()),
        ("refresh_token", r1.as_str()),
    ];
    let responses = env.token_at_once(&replica, 50, &form).await;
    let mut successors = Vec::new();
    for response in responses {
        successors.push(refresh_token_of(&tokens(response).await));
    }
    successors.dedup();
    assert_eq!(successors.len(), 1, "one successor for every refresh");
    assert_eq!(live_refresh_tokens(&env).await, 1);
    tokens(env.refresh(&client, &successors[0], None).await).await;
}

async fn seals_past_the_longest_window_are_forgotten(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--prune-interval-secs", "1"]).await;
    let (client, r1) = env.first_refresh_token("pete").await;
    tokens(env.refresh(&client, &r1, None).await).await;
    assert_eq!(sealed_successors(&env).await, 1);
    let pool = env.db.pool().await;
    sqlx::query("UPDATE refresh_tokens SET rotated_at = 1000 WHERE rotated_at IS NOT NULL")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    for _ in 0..50 {
        if sealed_successors(&env).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the pruner did not forget a seal far past the retry window");
}
