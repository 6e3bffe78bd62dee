//! RFC 8414 metadata and the JWKS.

use serde_json::{Value, json};

use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    metadata_describes_the_server,
    jwks_publishes_public_keys_only
);

async fn metadata_describes_the_server(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_client(json!({"grant_types": ["client_credentials"], "scope": "read write"}))
        .await;
    let response = env
        .http
        .get(env.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let m: Value = response.json().await.unwrap();
    let issuer = env.server.issuer.as_str();
    assert_eq!(m["issuer"], issuer);
    assert_eq!(m["token_endpoint"], format!("{issuer}/token"));
    assert_eq!(m["jwks_uri"], format!("{issuer}/.well-known/jwks.json"));
    assert_eq!(m["registration_endpoint"], format!("{issuer}/register"));
    assert_eq!(m["authorization_endpoint"], format!("{issuer}/authorize"));
    assert_eq!(m["revocation_endpoint"], format!("{issuer}/revoke"));
    assert_eq!(m["introspection_endpoint"], format!("{issuer}/introspect"));
    assert_eq!(
        m["grant_types_supported"],
        json!(["authorization_code", "refresh_token", "client_credentials"])
    );
    assert_eq!(m["response_types_supported"], json!(["code"]));
    assert_eq!(
        m["token_endpoint_auth_methods_supported"],
        json!(["client_secret_basic", "client_secret_post", "none"])
    );
    assert_eq!(m["code_challenge_methods_supported"], json!(["S256"]));
    assert_eq!(m["scopes_supported"], json!(["read", "write"]));
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
}

async fn jwks_publishes_public_keys_only(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--jwks-max-age-secs", "120"]).await;
    let response = env
        .http
        .get(env.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "public, max-age=120");
    let jwks: Value = response.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    let key = keys[0].as_object().unwrap();
    let mut members: Vec<&str> = key.keys().map(String::as_str).collect();
    members.sort();
    // Exactly the public members: no d, p, q, dp, dq, qi.
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["use"], "sig");
    assert_eq!(key["alg"], "RS256");
    // 2048-bit modulus: 256 bytes, 342 base64url characters.
    assert_eq!(key["n"].as_str().unwrap().len(), 342);
}
