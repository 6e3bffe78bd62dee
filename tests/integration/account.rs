//! /account/api-keys: a signed-in user manages their personal keys.

use reqwest::Method;
use serde_json::Value;

use crate::common::flow::{browser, hidden_field};
use crate::common::{Backend, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(people_manage_their_own_keys);

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
    let page = browser
        .get(env.url("/account/api-keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
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
    let page = browser
        .get(env.url("/account/api-keys"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("revoked"));
}
