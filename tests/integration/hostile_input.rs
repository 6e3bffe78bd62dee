//! Hostile input gets a 4xx of the endpoint's kind, never a 5xx: NUL and other control
//! characters in ids, tokens, usernames and paths (PostgreSQL refuses NUL in text, which once
//! surfaced as a 500).

use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::browser;
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(nul_bytes_are_refused_as_the_endpoints_own_4xx);

async fn status_and_body(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

async fn nul_bytes_are_refused_as_the_endpoints_own_4xx(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let oauth_error = |(status, body): (u16, String), expected: (u16, &str)| {
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert_eq!(
            (status, body["error"].as_str().unwrap()),
            expected,
            "{body}"
        );
    };
    let admin_error = |(status, body): (u16, String)| {
        assert!((400..500).contains(&status), "{status} {body}");
        let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("{body}"));
        assert!(body["error"]["code"].is_string(), "{body}");
    };

    // OAuth endpoints: RFC 6749 errors.
    let response = env
        .http
        .post(env.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("grant_type=client_credentials&client_id=a%00b&client_secret=x")
        .send()
        .await
        .unwrap();
    oauth_error(status_and_body(response).await, (400, "invalid_request"));
    let response = env
        .http
        .post(env.url("/token"))
        .basic_auth("a\0b", Some("secret"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    oauth_error(status_and_body(response).await, (401, "invalid_client"));
    let response = env
        .http
        .post(env.url("/introspect"))
        .bearer_auth(&env.admin_key)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=a%00b")
        .send()
        .await
        .unwrap();
    oauth_error(status_and_body(response).await, (400, "invalid_request"));

    // The admin API: its error envelope, for ids in the path, the query and the body.
    for path in [
        "/admin/clients/a%00b",
        "/admin/users/%00",
        "/admin/users?after=%00",
    ] {
        let response = env.admin(Method::GET, path).send().await.unwrap();
        admin_error(status_and_body(response).await);
    }
    for (path, body) in [
        (
            "/admin/api-keys",
            json!({"name": "k", "owner": {"user_id": "a\u{0}b"}}),
        ),
        (
            "/admin/api-keys",
            json!({"name": "k", "owner": {"org_id": "a\u{0}b"}}),
        ),
        (
            "/admin/users",
            json!({"username": "a\u{0}b", "password": "long enough password"}),
        ),
        ("/admin/orgs/a\u{0}b/members", json!({"user_id": "x"})),
    ] {
        let response = env
            .admin(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        admin_error(status_and_body(response).await);
    }

    // Pages: an HTML page, not a 500.
    let page = env
        .http
        .get(env.url("/authorize?response_type=code&client_id=a%00b"))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 400);
    let client = env.spa_client().await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    let signed_in = env.sign_in(&browser(), &url, "a\0b", "whatever").await;
    assert_eq!(signed_in.status(), 401);
}
