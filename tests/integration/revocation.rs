//! POST /revoke (RFC 7009).

use serde_json::Value;

use crate::common::flow::REDIRECT_URI;
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    revoking_a_refresh_token_ends_its_family,
    revocation_answers_200_and_checks_the_client
);

async fn revoke(env: &TestEnv, client_id: &str, token: &str) -> reqwest::Response {
    env.token_at_path("/revoke", &[("client_id", client_id), ("token", token)])
        .await
}

async fn revoking_a_refresh_token_ends_its_family(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("rita").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "rita", "read").await;
    let first: Value = env
        .redeem(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let r1 = first["refresh_token"].as_str().unwrap();
    let second: Value = env.refresh(&client, r1, None).await.json().await.unwrap();
    let r2 = second["refresh_token"].as_str().unwrap();

    let response = revoke(&env, &client.id, r2).await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let refused = env.refresh(&client, r2, None).await;
    assert_eq!(refused.status(), 400);

    // An access token is revoked by jti: recorded, for introspection to honour.
    let (code, verifier) = env.authorization_code(&client, "rita", "read").await;
    let tokens: Value = env
        .redeem(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(revoke(&env, &client.id, access).await.status(), 200);
    let jti = crate::common::verify_access_token(
        access,
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    )["jti"]
        .as_str()
        .unwrap()
        .to_owned();
    let pool = env.db.pool().await;
    let revoked: Option<i64> =
        sqlx::query_scalar("SELECT revoked_at FROM access_tokens WHERE jti = $1")
            .bind(&jti)
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;
    assert!(revoked.is_some());
}

async fn revocation_answers_200_and_checks_the_client(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("sam").await;
    let client = env.spa_client().await;
    let other = env.spa_client().await;
    assert_eq!(
        revoke(&env, &client.id, "no-such-token").await.status(),
        200
    );

    // Another client's revocation is ignored: the token keeps working.
    let (code, verifier) = env.authorization_code(&client, "sam", "read").await;
    let tokens: Value = env
        .redeem(&client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    assert_eq!(revoke(&env, &other.id, refresh).await.status(), 200);
    assert_eq!(env.refresh(&client, refresh, None).await.status(), 200);

    // Missing token or client: RFC errors.
    let response = env
        .token_at_path("/revoke", &[("client_id", client.id.as_str())])
        .await;
    assert_eq!(response.status(), 400);
    let response = env.token_at_path("/revoke", &[("token", "x")]).await;
    assert_eq!(response.status(), 401);
    let _ = REDIRECT_URI;
}
