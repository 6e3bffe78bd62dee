//! API keys: the admin API, exchange for JWTs, ownership rules, and introspection.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(
    keys_are_shown_once_and_listed_without_secrets,
    a_key_is_exchanged_for_a_jwt,
    revocation_and_expiry_take_effect_at_once_everywhere,
    keys_follow_their_owners,
    introspection_describes_keys_and_their_tokens,
    bad_key_input_is_refused_clearly,
    service_keys_mint_scoped_tenant_tokens,
    test_keys_are_told_from_live_ones,
);

/// Creates an organization through the admin API; returns its id.
async fn create_org(env: &TestEnv, name: &str) -> String {
    let response = env
        .admin(Method::POST, "/admin/orgs")
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let org: Value = response.json().await.unwrap();
    org["id"].as_str().unwrap().to_owned()
}

/// POST /token with the key as `-u KEY:`.
async fn exchange(env: &TestEnv, base: &str, key: &str, scope: Option<&str>) -> reqwest::Response {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    env.http
        .post(format!("{base}/token"))
        .basic_auth(key, Some(""))
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn keys_are_shown_once_and_listed_without_secrets(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env.create_api_key(json!({"name": "CI deploys", "scope": "deploy read", "env": "test", "metadata": {"team": "infra"}})).await;
    let key = created["key"].as_str().unwrap();
    assert!(key.starts_with("pc_test_"));
    assert!(portcullis::api_keys::is_well_formed(key));
    assert_eq!(created["kind"], "service");
    assert_eq!(created["display_prefix"], &key[..12]);
    let id = created["id"].as_str().unwrap();

    let listed = env
        .admin(Method::GET, "/admin/api-keys")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shown = env
        .admin(Method::GET, &format!("/admin/api-keys/{id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for body in [&listed, &shown] {
        assert!(body.contains(id));
        assert!(!body.contains(key), "the secret is never shown again");
        assert!(!body.contains(&portcullis::secrets::hash_secret(key)));
    }
    // The admin key that made it is recorded as its creator.
    let listed: Value = serde_json::from_str(&listed).unwrap();
    let admin_key = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kind"] == "admin")
        .expect("the test's admin key is listed");
    assert_eq!(created["created_by"], admin_key["id"]);
    let patched: Value = env
        .admin(Method::PATCH, &format!("/admin/api-keys/{id}"))
        .json(&json!({"metadata": {"team": "platform"}, "name": "CI"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(patched["metadata"], json!({"team": "platform"}));
    assert_eq!(patched["name"], "CI");
}

async fn a_key_is_exchanged_for_a_jwt(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env
        .create_api_key(json!({"name": "backend", "scope": "read write"}))
        .await;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();

    let response = exchange(&env, &env.server.base, key, Some("read")).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["client_id"], id);
    assert_eq!(claims["sub"], id, "a service key acts for itself");
    assert_eq!(claims["scope"], "read");

    // Bearer works too; no scope means the key's whole scope.
    let response = env
        .http
        .post(env.url("/token"))
        .bearer_auth(key)
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read write");

    // Wider scope, another grant type, a typo caught by the checksum, an admin key.
    let response = exchange(&env, &env.server.base, key, Some("read admin")).await;
    assert_eq!(response.status(), 400);
    let mut typo = key.to_owned().into_bytes();
    let i = typo.len() - 10;
    typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
    let response = exchange(
        &env,
        &env.server.base,
        std::str::from_utf8(&typo).unwrap(),
        None,
    )
    .await;
    assert_eq!(response.status(), 401);
    assert!(
        response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    let response = env
        .http
        .post(env.url("/token"))
        .bearer_auth(key)
        .form(&[("grant_type", "authorization_code"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = exchange(&env, &env.server.base, &env.admin_key, None).await;
    assert_eq!(response.status(), 400);

    assert!(!env.server.logs().contains(key), "no key in any log line");
}

async fn revocation_and_expiry_take_effect_at_once_everywhere(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let replica = env.start_replica();
    let created = env.create_api_key(json!({"name": "soon revoked"})).await;
    let key = created["key"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert_eq!(exchange(&env, &replica.base, key, None).await.status(), 200);
    env.revoke_api_key(id).await;
    assert_eq!(exchange(&env, &replica.base, key, None).await.status(), 401);
    assert_eq!(
        exchange(&env, &env.server.base, key, None).await.status(),
        401
    );
    assert_eq!(env.introspect(key).await, json!({"active": false}));

    // Expiry needs no write: a key both servers have just used is refused once its time is up.
    let expiring = env
        .create_api_key(json!({"name": "expiring", "expires_in": 2}))
        .await;
    let key = expiring["key"].as_str().unwrap();
    let expires_at = expiring["expires_at"].as_i64().unwrap();
    for base in [&env.server.base, &replica.base] {
        assert_eq!(exchange(&env, base, key, None).await.status(), 200);
    }
    let now = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    };
    while now() < expires_at {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for base in [&env.server.base, &replica.base] {
        assert_eq!(exchange(&env, base, key, None).await.status(), 401);
    }
}

async fn keys_follow_their_owners(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("yara").await;
    let creator_id = env.create_user("zed").await;
    let personal = env
        .create_api_key(
            json!({"name": "yara's laptop", "owner": {"user_id": user_id}, "scope": "read"}),
        )
        .await;
    assert_eq!(personal["kind"], "personal");
    let key = personal["key"].as_str().unwrap();
    let body: Value = exchange(&env, &env.server.base, key, None)
        .await
        .json()
        .await
        .unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], user_id.as_str());

    // Disabling the user blocks their keys; enabling unblocks; deleting removes them.
    let set_disabled = |disabled: bool| {
        env.admin(Method::PATCH, &format!("/admin/users/{user_id}"))
            .json(&json!({"disabled": disabled}))
            .send()
    };
    set_disabled(true).await.unwrap();
    assert_eq!(
        exchange(&env, &env.server.base, key, None).await.status(),
        401
    );
    set_disabled(false).await.unwrap();
    assert_eq!(
        exchange(&env, &env.server.base, key, None).await.status(),
        200
    );
    env.admin(Method::DELETE, &format!("/admin/users/{user_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        exchange(&env, &env.server.base, key, None).await.status(),
        401
    );

    // Organization keys: org_id in the token; gone with the organization; optionally with
    // their creator when the creator leaves.
    let org_id = create_org(&env, "Acme").await;
    let org_id = org_id.as_str();
    // Only a member can leave, so only a member may take a key with them.
    for creator in [json!(null), json!(creator_id)] {
        let response = env
            .admin(Method::POST, "/admin/api-keys")
            .json(&json!({"name": "early", "owner": {"org_id": org_id}, "created_by": creator, "revoke_when_creator_leaves": true}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "created_by {creator}");
    }
    let response = env
        .admin(Method::POST, &format!("/admin/orgs/{org_id}/members"))
        .json(&json!({"user_id": creator_id, "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let shown: Value = env
        .admin(Method::GET, &format!("/admin/orgs/{org_id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shown["members"][0]["username"], "zed");
    let org_key = env
        .create_api_key(json!({"name": "acme ci", "owner": {"org_id": org_id}}))
        .await;
    let leaving = env.create_api_key(
        json!({"name": "zed's", "owner": {"org_id": org_id}, "created_by": creator_id, "revoke_when_creator_leaves": true}),
    )
    .await;
    let body: Value = exchange(
        &env,
        &env.server.base,
        org_key["key"].as_str().unwrap(),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], org_id);
    assert_eq!(claims["org_id"], org_id);

    let response = env
        .admin(
            Method::DELETE,
            &format!("/admin/orgs/{org_id}/members/{creator_id}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert_eq!(
        exchange(
            &env,
            &env.server.base,
            leaving["key"].as_str().unwrap(),
            None
        )
        .await
        .status(),
        401
    );
    assert_eq!(
        exchange(
            &env,
            &env.server.base,
            org_key["key"].as_str().unwrap(),
            None
        )
        .await
        .status(),
        200
    );

    env.admin(Method::DELETE, &format!("/admin/orgs/{org_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        exchange(
            &env,
            &env.server.base,
            org_key["key"].as_str().unwrap(),
            None
        )
        .await
        .status(),
        401
    );
}

async fn introspection_describes_keys_and_their_tokens(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("ann").await;
    let org_id = create_org(&env, "Globex").await;
    let org_id = org_id.as_str();

    let service = env
        .create_api_key(json!({"name": "svc", "scope": "read", "metadata": {"plan": "pro"}}))
        .await;
    let answer = env.introspect(service["key"].as_str().unwrap()).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["token_type"], "api_key");
    assert_eq!(answer["scope"], "read");
    assert_eq!(answer["client_id"], service["id"]);
    assert_eq!(answer["metadata"], json!({"plan": "pro"}));
    assert!(answer["owner"].is_null());

    let personal = env
        .create_api_key(json!({"name": "p", "owner": {"user_id": user_id}}))
        .await;
    let answer = env.introspect(personal["key"].as_str().unwrap()).await;
    assert_eq!(
        answer["owner"],
        json!({"user_id": user_id, "username": "ann"})
    );
    let organization = env
        .create_api_key(json!({"name": "o", "owner": {"org_id": org_id}}))
        .await;
    let answer = env.introspect(organization["key"].as_str().unwrap()).await;
    assert_eq!(answer["owner"], json!({"org_id": org_id, "name": "Globex"}));

    // A resource server (a client registered as one) may introspect keys too.
    let rs = env.resource_server_client().await;
    let response = env
        .http
        .post(env.url("/introspect"))
        .basic_auth(&rs.id, Some(&rs.secret))
        .form(&[("token", service["key"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["active"], true);

    // A JWT exchanged from a key is active while the key is, and not after.
    let body: Value = exchange(
        &env,
        &env.server.base,
        service["key"].as_str().unwrap(),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let jwt = body["access_token"].as_str().unwrap();
    assert_eq!(env.introspect(jwt).await["active"], true);
    env.admin(
        Method::DELETE,
        &format!("/admin/api-keys/{}", service["id"].as_str().unwrap()),
    )
    .send()
    .await
    .unwrap();
    assert_eq!(env.introspect(jwt).await, json!({"active": false}));
    assert_eq!(
        env.introspect(service["key"].as_str().unwrap()).await,
        json!({"active": false})
    );
}

async fn bad_key_input_is_refused_clearly(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("bea").await;
    let cases = [
        json!({"name": ""}),
        json!({"name": "x", "owner": {"user_id": user_id, "org_id": "org_x"}}),
        json!({"name": "x", "owner": {"user_id": "usr_nobody"}}),
        json!({"name": "x", "owner": {"org_id": "org_nobody"}}),
        json!({"name": "x", "metadata": [1, 2]}),
        json!({"name": "x", "expires_in": 0}),
        json!({"name": "x", "expires_in": 60, "expires_at": 4_000_000_000i64}),
        json!({"name": "x", "expires_at": 1}),
        json!({"name": "x", "env": "prod"}),
        json!({"name": "x", "kind": "admin", "owner": {"user_id": user_id}}),
        json!({"name": "x", "scope": "bad\"scope"}),
        json!({"name": "x", "unknown": true}),
    ];
    for body in cases {
        let response = env
            .admin(Method::POST, "/admin/api-keys")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["code"].is_string(), "{body}");
    }
    let response = env
        .admin(Method::GET, "/admin/api-keys/key_nothing")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
}

async fn service_keys_mint_scoped_tenant_tokens(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--tenant-token-ttl-secs", "300"]).await;
    let service = env
        .create_api_key(json!({"name": "saas backend", "scope": "reports:read reports:write"}))
        .await;
    let key = service["key"].as_str().unwrap();
    let mint = |form: Vec<(&'static str, &'static str)>| {
        let mut form = form;
        form.push(("grant_type", "client_credentials"));
        env.http
            .post(env.url("/token"))
            .basic_auth(key, Some(""))
            .form(&form)
            .send()
    };
    let response = mint(vec![("tenant", "acme-42"), ("scope", "reports:read")])
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["expires_in"], 300);
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["tenant"], "acme-42");
    assert_eq!(claims["scope"], "reports:read");
    assert_eq!(claims["client_id"], service["id"]);
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        300
    );
    let answer = env.introspect(body["access_token"].as_str().unwrap()).await;
    assert_eq!(answer["tenant"], "acme-42");

    // Never more than the key's scopes; a well-formed tenant; service keys only.
    let response = mint(vec![("tenant", "acme-42"), ("scope", "admin")])
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let response = mint(vec![("tenant", "not a tenant")]).await.unwrap();
    assert_eq!(response.status(), 400);
    let user_id = env.create_user("cal").await;
    let personal = env
        .create_api_key(json!({"name": "p", "owner": {"user_id": user_id}}))
        .await;
    let response = env
        .http
        .post(env.url("/token"))
        .basic_auth(personal["key"].as_str().unwrap(), Some(""))
        .form(&[("grant_type", "client_credentials"), ("tenant", "acme-42")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"], "unauthorized_client");
}

/// Test keys are told from live ones: their tokens carry `"env":"test"` (live keys' tokens
/// `"env":"live"`), and introspection of a key or of its token shows it.
async fn test_keys_are_told_from_live_ones(backend: Backend) {
    let env = TestEnv::start(backend).await;
    for key_env in ["test", "live"] {
        let created = env
            .create_api_key(json!({"name": key_env, "scope": "read", "env": key_env}))
            .await;
        let key = created["key"].as_str().unwrap();
        assert!(key.starts_with(&format!("pc_{key_env}_")));
        let response = exchange(&env, &env.server.base, key, None).await;
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let token = body["access_token"].as_str().unwrap();
        let claims = verify_access_token(
            token,
            &env.jwks().await,
            &env.server.issuer,
            &env.server.issuer,
        );
        assert_eq!(claims["env"], key_env);
        assert_eq!(env.introspect(token).await["env"], key_env);
        assert_eq!(env.introspect(key).await["env"], key_env);
    }
}
