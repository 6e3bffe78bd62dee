//! Signing keys over time: restarts, rotation through the API and the CLI.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Server, TestEnv, cli, kid_of, kids, verify_access_token};
use crate::on_both_databases;

on_both_databases!(
    restart_keeps_keys_and_clients,
    rotation_keeps_old_tokens_verifiable,
    scheduled_rotation_publishes_before_signing,
    cli_rotation_reaches_a_running_server,
);

async fn access_token(env: &TestEnv, client: &crate::common::Client) -> String {
    let body: Value = env
        .token(Some(client), &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    body["access_token"].as_str().expect("a token").to_owned()
}

/// Processes: a restart is a new process, and the old one exits 0 on SIGTERM.
async fn restart_keeps_keys_and_clients(backend: Backend) {
    // A fixed issuer: the restarted server listens on another port but is the same issuer.
    const ISSUER: [&str; 2] = ["--issuer", "https://auth.example.test"];
    let mut env = TestEnv::start_process_with(backend, &ISSUER).await;
    let client = env.service_client().await;
    let token = access_token(&env, &client).await;
    let jwks_before = env.jwks().await;

    let restarted = Server::start_process(&env.db, &env.keys_dir, &ISSUER);
    let old = std::mem::replace(&mut env.server, restarted);
    let status = old.stop();
    assert!(
        status.success(),
        "graceful shutdown on SIGTERM exits 0, got {status}"
    );
    assert_eq!(env.server.issuer, "https://auth.example.test");

    assert_eq!(env.jwks().await, jwks_before);
    verify_access_token(
        &token,
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    let again = access_token(&env, &client).await;
    assert_eq!(kid_of(&again), kid_of(&token));
}

async fn rotation_keeps_old_tokens_verifiable(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let old_token = access_token(&env, &client).await;

    let response = env
        .admin(Method::POST, "/admin/signing-keys/rotate")
        .json(&json!({"activate": "now"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let rotated: Value = response.json().await.unwrap();
    assert_eq!(rotated["state"], "active");
    let new_kid = rotated["kid"].as_str().unwrap();

    let new_token = access_token(&env, &client).await;
    assert_eq!(kid_of(&new_token), new_kid);
    let jwks = env.jwks().await;
    assert_eq!(kids(&jwks).len(), 2);
    verify_access_token(&old_token, &jwks, &env.server.issuer, &env.server.issuer);
    verify_access_token(&new_token, &jwks, &env.server.issuer, &env.server.issuer);

    let list: Value = env
        .admin(Method::GET, "/admin/signing-keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let states: Vec<&str> = list["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["retiring", "active"]);
    // The retiring key stays published at least as long as the tokens it signed live.
    let unpublish_at = list["keys"][0]["unpublish_at"].as_i64().unwrap();
    let old_claims = verify_access_token(&old_token, &jwks, &env.server.issuer, &env.server.issuer);
    assert!(unpublish_at >= old_claims["exp"].as_i64().unwrap());

    for bad in [json!({"activate": "later"}), json!({"unknown": 1})] {
        let response = env
            .admin(Method::POST, "/admin/signing-keys/rotate")
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert!(matches!(response.status().as_u16(), 400 | 422), "{bad}");
    }
}

async fn scheduled_rotation_publishes_before_signing(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let before = access_token(&env, &client).await;
    let response = env
        .admin(Method::POST, "/admin/signing-keys/rotate")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let pending: Value = response.json().await.unwrap();
    assert_eq!(pending["state"], "pending");
    let pending_kid = pending["kid"].as_str().unwrap();
    // Published at once, but the old key still signs until the JWKS caches have expired.
    assert!(kids(&env.jwks().await).iter().any(|k| k == pending_kid));
    let after = access_token(&env, &client).await;
    assert_eq!(kid_of(&after), kid_of(&before));
}

async fn cli_rotation_reaches_a_running_server(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let first = kid_of(&access_token(&env, &client).await);
    let out = cli(&env.db, &env.keys_dir, &["signing-keys", "rotate", "--now"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The server rescans the keys directory every few seconds; no restart.
    let mut signed_with = first.clone();
    for _ in 0..40 {
        signed_with = kid_of(&access_token(&env, &client).await);
        if signed_with != first {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_ne!(
        signed_with, first,
        "the server picked up the key made by the CLI"
    );
    assert!(kids(&env.jwks().await).contains(&first));

    let listed = cli(&env.db, &env.keys_dir, &["signing-keys", "list", "--json"]);
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["keys"].as_array().unwrap().len(), 2);

    // The rotation is in the audit log, made by the CLI, naming the new key.
    let events = cli(
        &env.db,
        &env.keys_dir,
        &["audit", "list", "--action", "signing_key.rotated", "--json"],
    );
    let events: Value = serde_json::from_slice(&events.stdout).unwrap();
    let events = events["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["actor"], "cli");
    assert_eq!(events[0]["target"], signed_with.as_str());
    assert_eq!(events[0]["details"]["activates_in_secs"], 0);
}
