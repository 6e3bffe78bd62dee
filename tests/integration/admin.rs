//! The admin API: authentication, client management, and its error shape.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    admin_api_requires_an_admin_key,
    clients_can_be_managed,
    invalid_admin_input_gets_the_admin_error_shape,
    client_secrets_can_be_rotated,
    every_admin_response_is_never_cached,
);

fn assert_admin_error(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

async fn admin_api_requires_an_admin_key(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for token in [
        None,
        Some("garbage"),
        Some("pc_live_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
    ] {
        let mut request = env.http.get(env.url("/admin/clients"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_admin_error(&response.json().await.unwrap(), "UNAUTHORIZED");
    }

    // A valid key of another kind is authenticated but not allowed. No API creates one yet
    // (API keys are their own issue), so it is written straight to the database.
    let key = portcullis::api_keys::generate_key("pc", portcullis::api_keys::KeyEnv::Live);
    let pool = env.db.pool().await;
    sqlx::query(
        "INSERT INTO api_keys (id, kind, name, key_hash, display_prefix, scope, created_at) \
         VALUES ('key_service', 'service', 'svc', $1, 'pc_live_x', '', 0)",
    )
    .bind(key.hash())
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let response = env
        .http
        .get(env.url("/admin/clients"))
        .bearer_auth(key.expose())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert_admin_error(&response.json().await.unwrap(), "FORBIDDEN");
    let response = env
        .http
        .post(env.url("/register"))
        .bearer_auth(key.expose())
        .json(&json!({"grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    let response = env
        .admin(Method::GET, "/admin/nothing-here")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_admin_error(&response.json().await.unwrap(), "NOT_FOUND");
}

async fn clients_can_be_managed(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env
        .create_client(json!({
            "client_name": "Web app",
            "redirect_uris": ["https://app.example.com/callback"],
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "profile",
        }))
        .await;
    let id = created["client_id"].as_str().unwrap().to_owned();
    let secret = created["client_secret"].as_str().unwrap().to_owned();
    assert_eq!(created["response_types"], json!(["code"]));

    // Listing and reading never show the secret or its hash.
    let list: Value = env
        .admin(Method::GET, "/admin/clients")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = list.to_string();
    assert!(listed.contains(&id));
    assert!(!listed.contains(&secret));
    assert!(!listed.contains(&portcullis::secrets::hash_secret(&secret)));
    assert!(
        list["clients"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c.get("client_secret").is_none())
    );
    let shown: Value = env
        .admin(Method::GET, &format!("/admin/clients/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["client_name"], "Web app");
    assert!(shown.get("client_secret").is_none());

    // Patch changes what is given and keeps the rest.
    let response = env
        .admin(Method::PATCH, &format!("/admin/clients/{id}"))
        .json(&json!({"client_name": "Web app 2", "scope": "profile email"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["client_name"], "Web app 2");
    assert_eq!(patched["scope"], "email profile");
    assert_eq!(
        patched["redirect_uris"],
        json!(["https://app.example.com/callback"])
    );

    // Paging.
    for _ in 0..2 {
        env.create_client(json!({"grant_types": ["client_credentials"]}))
            .await;
    }
    let page: Value = env
        .admin(Method::GET, "/admin/clients?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["clients"].as_array().unwrap().len(), 2);
    let after = page["next_after"].as_str().unwrap();
    let rest: Value = env
        .admin(
            Method::GET,
            &format!("/admin/clients?limit=2&after={after}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rest["clients"].as_array().unwrap().len(), 1);
    assert!(rest["next_after"].is_null());

    // Delete: 204, then 404, and its credentials stop working.
    let cc = Client::from_created(
        &env.create_client(json!({"grant_types": ["client_credentials"]}))
            .await,
    );
    let response = env
        .admin(Method::DELETE, &format!("/admin/clients/{}", cc.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = env
        .admin(Method::DELETE, &format!("/admin/clients/{}", cc.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    assert_admin_error(&response.json().await.unwrap(), "NOT_FOUND");
    let response = env
        .token(Some(&cc), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 401);
}

async fn invalid_admin_input_gets_the_admin_error_shape(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let post = |body: &'static str, content_type: &'static str| {
        env.admin(Method::POST, "/admin/clients")
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let cases = [
        (
            r#"{"redirect_uris": ["http://evil.example/cb"]}"#,
            "application/json",
            422,
            "INVALID_INPUT",
        ),
        (
            r#"{"grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"}"#,
            "application/json",
            422,
            "INVALID_INPUT",
        ),
        (
            r#"{"grant_types": 5}"#,
            "application/json",
            422,
            "INVALID_INPUT",
        ),
        ("{not json", "application/json", 400, "MALFORMED_REQUEST"),
        (
            "client_name=x",
            "application/x-www-form-urlencoded",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
    ];
    for (body, content_type, status, code) in cases {
        let response = post(body, content_type).await.unwrap();
        assert_eq!(response.status(), status, "{body}");
        assert_admin_error(&response.json().await.unwrap(), code);
    }
    let created = env
        .create_client(json!({"grant_types": ["client_credentials"]}))
        .await;
    let id = created["client_id"].as_str().unwrap();
    let response = env
        .admin(Method::PATCH, &format!("/admin/clients/{id}"))
        .json(&json!({"token_endpoint_auth_method": "none"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_admin_error(&response.json().await.unwrap(), "INVALID_INPUT");
    let response = env
        .admin(Method::GET, "/admin/clients?limit=100000")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = env
        .admin(Method::GET, "/admin/clients?limit=abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    assert_admin_error(&response.json().await.unwrap(), "INVALID_INPUT");
}

async fn client_secrets_can_be_rotated(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let old = env.service_client().await;
    // Used once first, so that the server has the old secret cached.
    assert_eq!(
        env.token(Some(&old), &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
    let response = env
        .admin(Method::POST, &format!("/admin/clients/{}/secret", old.id))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let new = Client {
        id: old.id.clone(),
        secret: body["client_secret"].as_str().unwrap().to_owned(),
    };
    assert_ne!(new.secret, old.secret);
    assert_eq!(
        env.token(Some(&old), &[("grant_type", "client_credentials")])
            .await
            .status(),
        401
    );
    assert_eq!(
        env.token(Some(&new), &[("grant_type", "client_credentials")])
            .await
            .status(),
        200
    );
}

/// Admin responses carry secrets and private data: none may be cached, successes included.
async fn every_admin_response_is_never_cached(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env
        .admin(Method::POST, "/admin/clients")
        .json(&json!({"client_name": "c", "grant_types": ["client_credentials"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["cache-control"], "no-store");
    let client: Value = created.json().await.unwrap();
    let id = client["client_id"].as_str().unwrap();
    let requests = [
        (Method::POST, format!("/admin/clients/{id}/secret"), None),
        (
            Method::POST,
            "/admin/api-keys".to_owned(),
            Some(json!({"name": "k"})),
        ),
        (Method::GET, "/admin/clients".to_owned(), None),
        (Method::GET, "/admin/users".to_owned(), None),
        (Method::GET, "/admin/signing-keys".to_owned(), None),
        (Method::DELETE, format!("/admin/clients/{id}"), None),
    ];
    for (method, path, body) in requests {
        let mut request = env.admin(method.clone(), &path);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert!(response.status().is_success(), "{method} {path}");
        assert_eq!(
            response.headers()["cache-control"],
            "no-store",
            "{method} {path}"
        );
    }
}
