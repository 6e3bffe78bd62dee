//! POST /register (RFC 7591), authorized by an admin API key as initial access token.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    registration_needs_an_initial_access_token,
    registered_clients_get_tokens,
    bad_metadata_is_refused,
    registrar_keys_only_register_clients,
);

async fn register(env: &TestEnv, token: Option<&str>, body: Value) -> reqwest::Response {
    let mut request = env.http.post(env.url("/register")).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn registration_needs_an_initial_access_token(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let body = json!({"grant_types": ["client_credentials"]});
    for token in [None, Some("pc_live_notakey"), Some("garbage")] {
        let response = register(&env, token, body.clone()).await;
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Bearer")
        );
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], "invalid_token");
    }
    // A well-formed key that does not exist.
    let unknown = portcullis::api_keys::generate_key("pc", portcullis::api_keys::KeyEnv::Live);
    assert_eq!(
        register(&env, Some(unknown.expose()), body).await.status(),
        401
    );
}

async fn registered_clients_get_tokens(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let response = register(
        &env,
        Some(&env.admin_key),
        json!({
            "client_name": "Reporting backend",
            "grant_types": ["client_credentials"],
            "scope": "reports:read",
            "token_endpoint_auth_method": "client_secret_basic",
            "software_id": "ignored-unknown-metadata",
        }),
    )
    .await;
    assert_eq!(response.status(), 201);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let created: Value = response.json().await.unwrap();
    assert_eq!(created["client_name"], "Reporting backend");
    assert_eq!(created["client_secret_expires_at"], 0);
    assert!(created["client_id_issued_at"].as_i64().unwrap() > 1_700_000_000);
    assert_eq!(created["token_endpoint_auth_method"], "client_secret_basic");
    assert!(
        created["client_secret"].as_str().unwrap().len() >= 43,
        "at least 256 bits"
    );

    let client = Client::from_created(&created);
    let response = env
        .token(Some(&client), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);

    // A public client: no secret.
    let response = register(
        &env,
        Some(&env.admin_key),
        json!({"redirect_uris": ["com.example.app:/oauth"], "token_endpoint_auth_method": "none"}),
    )
    .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    assert!(created.get("client_secret").is_none());
    assert!(created.get("client_secret_expires_at").is_none());
    assert_eq!(created["response_types"], json!(["code"]));
}

async fn bad_metadata_is_refused(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let cases = [
        (
            json!({"redirect_uris": ["http://evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://a.example/cb#x"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["not a uri"]}),
            "invalid_redirect_uri",
        ),
        // An allowlist of schemes; no userinfo; only the normal form, which is where a browser
        // would really be sent.
        (
            json!({"redirect_uris": ["ftp://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["ws://app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["view-source:https://app.example/"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["myapp://callback"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https://u:p@app.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"redirect_uris": ["https:/\\evil.example/cb"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"grant_types": ["authorization_code"]}),
            "invalid_redirect_uri",
        ),
        (
            json!({"grant_types": ["implicit"]}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "private_key_jwt"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": "client_credentials"}),
            "invalid_client_metadata",
        ),
        (
            json!({"grant_types": ["client_credentials"], "scope": "bad\\scope"}),
            "invalid_client_metadata",
        ),
        (json!([1, 2, 3]), "invalid_client_metadata"),
    ];
    for (body, expected) in cases {
        let response = register(&env, Some(&env.admin_key), body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"], expected, "{body}");
    }
    // Not JSON at all.
    let response = env
        .admin(Method::POST, "/register")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A registrar key, for a partner, may register clients and nothing else: no first-party
/// flags, no admin API, no tokens.
async fn registrar_keys_only_register_clients(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created: Value = env
        .create_api_key(json!({"name": "partner", "kind": "registrar", "scope": "read"}))
        .await;
    assert_eq!(created["kind"], "registrar");
    let registrar = created["key"].as_str().unwrap();
    let from_cli = crate::common::cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "api-keys",
            "create",
            "--name",
            "p2",
            "--registrar",
            "--json",
        ],
    );
    assert_eq!(from_cli["kind"], "registrar");

    let app = json!({"client_name": "Partner app", "grant_types": ["client_credentials"], "scope": "read"});
    assert_eq!(register(&env, Some(registrar), app).await.status(), 201);
    // No more than the registrar was given: its scopes, no resources.
    for metadata in [
        json!({"grant_types": ["client_credentials"], "scope": "read admin"}),
        json!({"grant_types": ["client_credentials"], "scope": "read",
               "resources": ["https://payments.example"]}),
    ] {
        let response = register(&env, Some(registrar), metadata.clone()).await;
        assert_eq!(response.status(), 400, "{metadata}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");
    }
    for flag in ["skip_consent", "resource_server"] {
        let mut metadata = json!({"client_name": "Sneaky", "grant_types": ["client_credentials"], "scope": "read"});
        metadata[flag] = true.into();
        let response = register(&env, Some(registrar), metadata.clone()).await;
        assert_eq!(response.status(), 400, "{flag}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"], "invalid_client_metadata");
        // An admin key may.
        assert_eq!(
            register(&env, Some(&env.admin_key), metadata)
                .await
                .status(),
            201
        );
    }
    let admin_api = env
        .http
        .get(env.url("/admin/clients"))
        .bearer_auth(registrar)
        .send()
        .await
        .unwrap();
    assert_eq!(admin_api.status(), 403);
    let token = env
        .http
        .post(env.url("/token"))
        .basic_auth(registrar, Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(token.status(), 400);
    let body: Value = token.json().await.unwrap();
    assert_eq!(body["error"], "unauthorized_client");
}
