//! POST /introspect (RFC 7662) for access and refresh tokens, honouring every revocation.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, Client, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    introspection_reports_active_tokens_and_honours_revocation,
    introspection_callers_must_authenticate,
    expired_access_tokens_are_inactive_at_once,
    only_resource_servers_introspect_other_clients_tokens,
);

async fn introspect(env: &TestEnv, caller: &Client, token: &str) -> Value {
    let response = env
        .http
        .post(env.url("/introspect"))
        .basic_auth(&caller.id, Some(&caller.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    response.json().await.unwrap()
}

async fn introspection_reports_active_tokens_and_honours_revocation(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("tess").await;
    let spa = env.spa_client().await;
    let resource_server = env.resource_server_client().await;
    let inactive = json!({"active": false});

    let (code, verifier) = env.authorization_code(&spa, "tess", "read").await;
    let tokens: Value = env
        .redeem(&spa, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();

    let answer = introspect(&env, &resource_server, access).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["sub"], user_id.as_str());
    assert_eq!(answer["username"], "tess");
    assert_eq!(answer["client_id"], spa.id.as_str());
    assert_eq!(answer["scope"], "read");
    assert_eq!(answer["token_type"], "Bearer");
    assert!(answer["exp"].as_i64().unwrap() > answer["iat"].as_i64().unwrap());

    // Refresh tokens: visible to their own client only (the SPA is public, so the admin key).
    assert_eq!(introspect(&env, &resource_server, refresh).await, inactive);
    let admin_view: Value = env
        .admin(Method::POST, "/introspect")
        .form(&[("token", refresh)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin_view["active"], true);
    assert_eq!(admin_view["token_type"], "refresh_token");

    // Revoking the access token: exactly {"active": false}.
    let revoked = env
        .token_at_path(
            "/revoke",
            &[("client_id", spa.id.as_str()), ("token", access)],
        )
        .await;
    assert_eq!(revoked.status(), 200);
    assert_eq!(introspect(&env, &resource_server, access).await, inactive);

    // Code reuse revokes what the code gave, access tokens included.
    let (code, verifier) = env.authorization_code(&spa, "tess", "read").await;
    let tokens: Value = env
        .redeem(&spa, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    assert_eq!(
        introspect(&env, &resource_server, access).await["active"],
        true
    );
    assert_eq!(env.redeem(&spa, &code, &verifier).await.status(), 400);
    assert_eq!(introspect(&env, &resource_server, access).await, inactive);

    // Deleting the user ends their access tokens.
    let (code, verifier) = env.authorization_code(&spa, "tess", "read").await;
    let tokens: Value = env
        .redeem(&spa, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    env.admin(Method::DELETE, &format!("/admin/users/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(introspect(&env, &resource_server, access).await, inactive);

    // Client-credentials tokens, and garbage.
    let cc: Value = env
        .token(
            Some(&resource_server),
            &[("grant_type", "client_credentials")],
        )
        .await
        .json()
        .await
        .unwrap();
    let answer = introspect(&env, &resource_server, cc["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["active"], true);
    assert!(answer.get("username").is_none());
    assert_eq!(
        introspect(&env, &resource_server, "garbage").await,
        inactive
    );
}

async fn introspection_callers_must_authenticate(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let spa = env.spa_client().await;
    let response = env.token_at_path("/introspect", &[("token", "x")]).await;
    assert_eq!(response.status(), 401);
    // A public client cannot authenticate, so it cannot introspect.
    let response = env
        .token_at_path(
            "/introspect",
            &[("token", "x"), ("client_id", spa.id.as_str())],
        )
        .await;
    assert_eq!(response.status(), 401);
    let response = env
        .http
        .post(env.url("/introspect"))
        .bearer_auth("pc_live_bogus")
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

/// An access token is inactive from its `exp` on, not a minute later (no leeway for tokens
/// this server signed itself).
async fn expired_access_tokens_are_inactive_at_once(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--access-token-ttl-secs", "60"]).await;
    let service = env.service_client().await;
    let response = env
        .token(Some(&service), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    let token: Value = response.json().await.unwrap();
    let token = token["access_token"].as_str().unwrap();
    assert_eq!(env.introspect(token).await["active"], true);
    // Its lifetime from now is at least its `exp`: a leeway of even a second would show.
    env.advance_clock(60);
    assert_eq!(env.introspect(token).await, json!({"active": false}));
}

/// Who may see what: a client its own tokens; a resource server other clients' access tokens
/// and API keys; nobody but their own client (or an admin) refresh tokens. Anyone else gets
/// exactly `{"active": false}`. Only servers call `/introspect`: no CORS.
async fn only_resource_servers_introspect_other_clients_tokens(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (spa, refresh) = env.first_refresh_token("uri").await;
    let user_token = crate::common::flow::tokens(env.refresh(&spa, &refresh, None).await).await;
    let user_access = user_token["access_token"].as_str().unwrap();
    let nosy = env.service_client().await;
    let resource_server = env.resource_server_client().await;
    let key: Value = env
        .create_api_key(json!({"name": "k", "scope": "read"}))
        .await;
    let key = key["key"].as_str().unwrap();
    let own: Value = env
        .token(Some(&nosy), &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    let own = own["access_token"].as_str().unwrap();
    let inactive = json!({"active": false});

    // An ordinary confidential client: its own token only.
    assert_eq!(introspect(&env, &nosy, own).await["active"], true);
    assert_eq!(introspect(&env, &nosy, user_access).await, inactive);
    assert_eq!(introspect(&env, &nosy, key).await, inactive);
    // A resource server: other clients' access tokens and API keys, not refresh tokens.
    assert_eq!(
        introspect(&env, &resource_server, user_access).await["active"],
        true
    );
    assert_eq!(
        introspect(&env, &resource_server, own).await["active"],
        true
    );
    assert_eq!(
        introspect(&env, &resource_server, key).await["active"],
        true
    );
    let next_refresh = user_token["refresh_token"].as_str().unwrap();
    assert_eq!(
        introspect(&env, &resource_server, next_refresh).await,
        inactive
    );
    assert_eq!(env.introspect(next_refresh).await["active"], true);

    // No CORS: a browser preflight gets no permission.
    let preflight = env
        .http
        .request(Method::OPTIONS, env.url("/introspect"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let token_preflight = env
        .http
        .request(Method::OPTIONS, env.url("/token"))
        .header("origin", "https://app.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(
        token_preflight
            .headers()
            .get("access-control-allow-origin")
            .is_some()
    );
}
