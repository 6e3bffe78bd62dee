//! /account/api-keys: a signed-in user manages their personal keys.

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::{browser, hidden_field};
use crate::common::{Backend, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(
    people_manage_their_own_keys,
    a_password_reset_ends_sessions_and_grants,
    personal_keys_live_no_longer_than_the_limit,
    personal_keys_are_capped,
);

/// The new key shown on the page after creating one.
pub fn shown_key(page: &str) -> Option<String> {
    let start = page.find("<code id=\"new-key\" class=\"uri\">")?
        + "<code id=\"new-key\" class=\"uri\">".len();
    let end = start + page[start..].find('<')?;
    Some(page[start..end].to_owned())
}

async fn people_manage_their_own_keys(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--personal-key-scopes", "read write"]).await;
    let user_id = env.create_user("gus").await;
    env.create_user("hal").await;
    let browser = browser();

    let response = browser
        .get(env.url("/account/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/login?continue=/account/api-keys"
    );
    let (response, csrf) = env
        .login_directly(&browser, "gus", "/account/api-keys")
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/account/api-keys");

    let page = browser
        .get(env.url("/account/api-keys"))
        .send()
        .await
        .unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = page.text().await.unwrap();
    assert!(page.contains("You have no API keys."));
    assert_eq!(hidden_field(&page, "csrf"), csrf);

    let create = |fields: Vec<(&'static str, &'static str)>, csrf: String| {
        let mut form: Vec<(&str, String)> =
            fields.into_iter().map(|(k, v)| (k, v.to_owned())).collect();
        form.push(("csrf", csrf));
        browser
            .post(env.url("/account/api-keys"))
            .form(&form)
            .send()
    };
    let response = create(
        vec![
            ("name", "laptop"),
            ("scope", "read"),
            ("expires_in_days", "30"),
        ],
        csrf.clone(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 201);
    let page = response.text().await.unwrap();
    let key = shown_key(&page).expect("the new key is shown");
    assert!(key.starts_with("pc_live_"));

    // The key works for its owner, with the scope chosen.
    let response = env
        .http
        .post(env.url("/token"))
        .basic_auth(&key, Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["scope"], "read");

    // Listed afterwards, never shown again.
    let page = env.page(&browser, "/account/api-keys").await;
    assert!(page.contains("laptop") && page.contains(&key[..12]));
    assert!(!page.contains(&key));

    // Only permissions and expiries from the lists; a name is required; CSRF is checked.
    let response = create(vec![("name", "x"), ("scope", "admin")], csrf.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = create(vec![("name", "x"), ("expires_in_days", "7")], csrf.clone())
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = create(vec![("name", " ")], csrf.clone()).await.unwrap();
    assert_eq!(response.status(), 422);
    let response = create(vec![("name", "x")], "forged".into()).await.unwrap();
    assert_eq!(response.status(), 403);

    // Another user cannot revoke it; its owner can.
    let listed: Value = env
        .admin(Method::GET, "/admin/api-keys")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key_id = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "personal")
        .expect("the personal key")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = crate::common::flow::browser();
    let (_, other_csrf) = env.login_directly(&other, "hal", "").await;
    let response = other
        .post(env.url(&format!("/account/api-keys/{key_id}/revoke")))
        .form(&[("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let response = browser
        .post(env.url(&format!("/account/api-keys/{key_id}/revoke")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let response = env
        .http
        .post(env.url("/token"))
        .basic_auth(&key, Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let page = env.page(&browser, "/account/api-keys").await;
    assert!(page.contains("revoked"));
}

/// A password reset, the first step after an account takeover, shuts the taker out: their
/// session ends (so no more keys from it), and their refresh and access tokens stop working.
async fn a_password_reset_ends_sessions_and_grants(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--personal-key-scopes", "read"]).await;
    let (client, refresh_token) = env.first_refresh_token("ida").await;
    let refreshed =
        crate::common::flow::tokens(env.refresh(&client, &refresh_token, None).await).await;
    let access_token = refreshed["access_token"].as_str().unwrap();
    let taker = browser();
    let (_, csrf) = env.login_directly(&taker, "ida", "/account/api-keys").await;
    let user_id = env.introspect(access_token).await["sub"]
        .as_str()
        .unwrap()
        .to_owned();
    // The taker's foothold: a key made from the stolen session.
    let backdoor = taker
        .post(env.url("/account/api-keys"))
        .form(&[
            ("name", "backdoor"),
            ("expires_in_days", "365"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(backdoor.status(), 201);
    let backdoor = shown_key(&backdoor.text().await.unwrap()).unwrap();
    assert_eq!(env.introspect(&backdoor).await["active"], true);

    let response = env
        .admin(Method::PATCH, &format!("/admin/users/{user_id}"))
        .json(&json!({"password": "a brand new password", "email": "ida@example.org"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let page = taker
        .get(env.url("/account/api-keys"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 303, "the old session has ended");
    let minted = taker
        .post(env.url("/account/api-keys"))
        .form(&[
            ("name", "backdoor"),
            ("expires_in_days", "30"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_ne!(minted.status(), 201, "no key from the old session");
    let next = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(
        crate::common::flow::error(env.refresh(&client, next, None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(env.introspect(access_token).await["active"], false);
    assert_eq!(
        env.introspect(&backdoor).await["active"],
        false,
        "the key made from the session"
    );
    // The owner signs in with the new password, and is asked to consent again: consents given
    // before the reset, perhaps by the taker, are gone.
    let owner = browser();
    let (url, _) = env.authorize_url(&client, "read", "s");
    let signed_in = env
        .sign_in(&owner, &url, "ida", "a brand new password")
        .await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(owner.get(&url).send().await.unwrap().status(), 200);
}

/// Keys people make themselves live at most `--personal-key-max-lifetime-days`.
async fn personal_keys_live_no_longer_than_the_limit(backend: Backend) {
    let env = TestEnv::start_with(
        backend,
        &[
            "--personal-key-scopes",
            "read",
            "--personal-key-max-lifetime-days",
            "60",
        ],
    )
    .await;
    env.create_user("jon").await;
    let browser = browser();
    let (_, csrf) = env
        .login_directly(&browser, "jon", "/account/api-keys")
        .await;
    let page = env.page(&browser, "/account/api-keys").await;
    assert!(
        page.contains("in 60 days") && !page.contains(">never<"),
        "{page}"
    );
    for (days, status) in [
        ("", 422),
        ("90", 422),
        ("365", 422),
        ("60", 201),
        ("30", 201),
    ] {
        let response = browser
            .post(env.url("/account/api-keys"))
            .form(&[("name", "k"), ("expires_in_days", days), ("csrf", &csrf)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "expires_in_days={days:?}");
    }
}

/// A person holds at most `--personal-key-limit` live keys from the account page.
async fn personal_keys_are_capped(backend: Backend) {
    let env = TestEnv::start_with(
        backend,
        &["--personal-key-scopes", "read", "--personal-key-limit", "2"],
    )
    .await;
    env.create_user("kit").await;
    let browser = browser();
    let (_, csrf) = env
        .login_directly(&browser, "kit", "/account/api-keys")
        .await;
    let create = || {
        browser
            .post(env.url("/account/api-keys"))
            .form(&[("name", "k"), ("expires_in_days", "30"), ("csrf", &csrf)])
            .send()
    };
    assert_eq!(create().await.unwrap().status(), 201);
    assert_eq!(create().await.unwrap().status(), 201);
    let refused = create().await.unwrap();
    assert_eq!(refused.status(), 422);
    assert!(refused.text().await.unwrap().contains("the most allowed"));
}
