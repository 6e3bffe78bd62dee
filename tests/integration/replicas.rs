//! Several `serve` processes on one database and keys directory act as one server.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestEnv, kid_of, kids, verify_access_token};
use crate::on_both_databases;

on_both_databases!(replicas_share_clients_and_keys);

async fn replicas_share_clients_and_keys(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let replica = env.start_replica();

    // Same JWKS from both.
    let jwks_a = env.jwks().await;
    let jwks_b: Value = env.jwks_at(&replica.base).await;
    assert_eq!(jwks_a, jwks_b);

    // A client created through one is served by the other, and tokens verify across them.
    let client = Client::from_created(
        &env.create_client(json!({"grant_types": ["client_credentials"]}))
            .await,
    );
    let token_from_replica = || {
        env.token_at(
            &replica.base,
            Some(&client),
            &[("grant_type", "client_credentials")],
        )
    };
    let response = token_from_replica().await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let token = body["access_token"].as_str().unwrap();
    verify_access_token(token, &jwks_a, &replica.issuer, &replica.issuer);

    // A rotation through one reaches the other within its rescan interval.
    let rotated: Value = env
        .admin(Method::POST, "/admin/signing-keys/rotate")
        .json(&json!({"activate": "now"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let new_kid = rotated["kid"].as_str().unwrap().to_owned();
    let mut replica_jwks = Value::Null;
    for _ in 0..40 {
        replica_jwks = env.jwks_at(&replica.base).await;
        if kids(&replica_jwks).contains(&new_kid) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(replica_jwks, env.jwks().await);
    let response = token_from_replica().await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(kid_of(body["access_token"].as_str().unwrap()), new_kid);

    // A client deleted through one is refused by the other's very next request, although the
    // other has just used (and cached) it.
    let response = env
        .admin(Method::DELETE, &format!("/admin/clients/{}", client.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = token_from_replica().await;
    assert_eq!(response.status(), 401);
}
