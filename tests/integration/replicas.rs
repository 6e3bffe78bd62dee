//! Several `serve` processes on one database and keys directory act as one server.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{
    Backend, Client, Server, TestDb, TestEnv, cli, cli_json, kid_of, kids, verify_access_token,
};
use crate::on_both_databases;

on_both_databases!(
    replicas_share_clients_and_keys,
    replicas_started_together_on_no_keys_make_one,
);

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

/// Two replicas started at once on an empty keys directory (a new shared volume) make one
/// signing key between them: both publish it alone and sign with it.
async fn replicas_started_together_on_no_keys_make_one(backend: Backend) {
    let db = TestDb::new(backend).await;
    let keys = tempfile::tempdir().unwrap();
    // Migrated beforehand, so that neither waits for the other's migration and both come to
    // the empty keys directory at the same moment.
    let out = cli(&db, keys.path(), &["migrate"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| Server::start_process(&db, keys.path(), &[]));
        let b = s.spawn(|| Server::start_process(&db, keys.path(), &[]));
        (a.join().unwrap(), b.join().unwrap())
    });

    let http = reqwest::Client::new();
    let jwks = |server: &Server| {
        let url = server.url("/.well-known/jwks.json");
        let http = http.clone();
        async move {
            let jwks: Value = http.get(url).send().await.unwrap().json().await.unwrap();
            jwks
        }
    };
    let jwks_a = jwks(&a).await;
    assert_eq!(kids(&jwks_a).len(), 1, "one key published: {jwks_a}");
    assert_eq!(jwks(&b).await, jwks_a);
    let kid = kids(&jwks_a).remove(0);
    let pem_files = std::fs::read_dir(keys.path())
        .unwrap()
        .filter(|entry| entry.as_ref().unwrap().path().extension() == Some("pem".as_ref()))
        .count();
    assert_eq!(pem_files, 1, "one private key on disk");
    let made_by = [&a, &b]
        .iter()
        .filter(|server| server.logs().contains("generated a first signing key"))
        .count();
    assert_eq!(made_by, 1, "one replica made it");

    let client = Client::from_created(&cli_json(
        &db,
        keys.path(),
        &[
            "clients",
            "create",
            "--name",
            "backend",
            "--grant-type",
            "client_credentials",
            "--json",
        ],
    ));
    for server in [&a, &b] {
        let body: Value = http
            .post(server.url("/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = body["access_token"].as_str().expect("a token");
        assert_eq!(kid_of(token), kid);
        verify_access_token(token, &jwks_a, &server.issuer, &server.issuer);
    }
}
