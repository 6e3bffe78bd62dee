//! POST /token with the client_credentials grant.

use serde_json::{Value, json};

use crate::common::{Backend, Client, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(
    issues_a_verifiable_rfc_9068_token,
    client_secret_post_works_and_methods_are_not_mixed,
    bad_credentials_are_invalid_client,
    another_method_than_the_registered_one_is_told_which,
    scope_is_checked_and_defaulted,
    resource_becomes_the_audience,
    protocol_errors_use_rfc_6749_codes,
    malformed_input_is_a_4xx_never_a_5xx,
    concurrent_token_requests_all_succeed,
);

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (status, response.json().await.unwrap())
}

async fn issues_a_verifiable_rfc_9068_token(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let response = env
        .token(Some(&client), &[("grant_type", "client_credentials")])
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    assert_eq!(response.headers()["pragma"], "no-cache");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "read write");

    let token = body["access_token"].as_str().unwrap();
    let claims = verify_access_token(
        token,
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], client.id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "read write");
    assert_eq!(
        claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap(),
        3600
    );
    assert!(claims["jti"].as_str().unwrap().len() >= 16);
}

async fn client_secret_post_works_and_methods_are_not_mixed(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await;
    let post = Client::from_created(&created);
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", post.id.as_str()),
        ("client_secret", post.secret.as_str()),
    ];
    assert_eq!(env.token(None, &form).await.status(), 200);

    // Registered for post: Basic is refused, as is post for a Basic client.
    let (status, body) = error_of(
        env.token(Some(&post), &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    let basic = env.service_client().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", basic.id.as_str()),
        ("client_secret", basic.secret.as_str()),
    ];
    let (status, body) = error_of(env.token(None, &form).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    // Both methods at once is invalid_request (RFC 6749 §2.3).
    let form = [
        ("grant_type", "client_credentials"),
        ("client_secret", basic.secret.as_str()),
    ];
    let (status, body) = error_of(env.token(Some(&basic), &form).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request"))
    );
}

/// `invalid_client` from `path`: its description, and whether it carried a challenge.
async fn refused(
    env: &TestEnv,
    path: &str,
    basic: Option<(&str, &str)>,
    body: &[(&str, &str)],
) -> (String, bool) {
    let mut form = vec![("grant_type", "client_credentials"), ("token", "anything")];
    form.extend_from_slice(body);
    let mut request = env.http.post(env.url(path)).form(&form);
    if let Some((id, secret)) = basic {
        request = request.basic_auth(id, Some(secret));
    }
    let response = request.send().await.unwrap();
    let challenged = response.headers().contains_key("www-authenticate");
    let (status, body) = error_of(response).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client")),
        "{path}: {body}"
    );
    let description = body["error_description"].as_str().unwrap().to_owned();
    (description, challenged)
}

/// A client that authenticates by another method than its registered one is told that
/// method (it is in its own metadata), the same whether its secret was right or not.
async fn another_method_than_the_registered_one_is_told_which(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let basic = env.service_client().await;
    let post = Client::from_created(
        &env.create_client(json!({
            "grant_types": ["client_credentials"],
            "token_endpoint_auth_method": "client_secret_post",
        }))
        .await,
    );
    let public = env.spa_client().await;
    let for_basic = "this client is registered for client_secret_basic: send client_id and \
                     client_secret in an HTTP Basic Authorization header, not in the body";
    let for_post = "this client is registered for client_secret_post: send client_id and \
                    client_secret in the form body, without an Authorization header";
    let for_public = "this client is public (registered for none): send its client_id in the \
                      form body, with no secret and no Authorization header";

    for path in ["/token", "/introspect", "/revoke"] {
        // Registered for Basic, sent in the body: right secret, wrong secret, no secret.
        for secret in [Some(basic.secret.as_str()), Some("wrong"), None] {
            let mut body = vec![("client_id", basic.id.as_str())];
            body.extend(secret.map(|s| ("client_secret", s)));
            let told = refused(&env, path, None, &body).await;
            assert_eq!(told, (for_basic.to_owned(), false), "{path} {secret:?}");
        }
        // Registered for the body, sent with Basic: a Basic challenge, as RFC 6749 §5.2 asks.
        for secret in [post.secret.as_str(), "wrong"] {
            let told = refused(&env, path, Some((&post.id, secret)), &[]).await;
            assert_eq!(told, (for_post.to_owned(), true), "{path} {secret}");
        }
        // A public client that sends a secret, with Basic or in the body.
        let told = refused(&env, path, Some((&public.id, "x")), &[]).await;
        assert_eq!(told.0, for_public, "{path}");
        let body = [("client_id", public.id.as_str()), ("client_secret", "x")];
        assert_eq!(
            refused(&env, path, None, &body).await.0,
            for_public,
            "{path}"
        );
        // The registered method with a wrong secret, or an unknown client: nothing more.
        for id in [basic.id.as_str(), "no-such-client"] {
            let told = refused(&env, path, Some((id, "wrong")), &[]).await;
            assert_eq!(
                told,
                ("client authentication failed".to_owned(), true),
                "{path}"
            );
        }
    }
    // A public client that authenticates as it should still may not introspect.
    let body = [("client_id", public.id.as_str())];
    assert_eq!(
        refused(&env, "/introspect", None, &body).await.0,
        "a public client cannot introspect: the caller must authenticate (RFC 7662 §2.1)"
    );
}

async fn bad_credentials_are_invalid_client(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let cases = [
        Client {
            id: client.id.clone(),
            secret: "wrong".into(),
        },
        Client {
            id: client.id.clone(),
            secret: String::new(),
        },
        Client {
            id: "no-such-client".into(),
            secret: client.secret.clone(),
        },
    ];
    for bad in &cases {
        let response = env
            .token(Some(bad), &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), 401);
        assert!(
            response.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        let (_, body) = error_of(response).await;
        assert_eq!(body["error"], "invalid_client");
    }
    // Without Basic: 401, and no Basic challenge.
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client.id.as_str()),
        ("client_secret", "x"),
    ];
    let response = env.token(None, &form).await;
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("www-authenticate").is_none());
    // No credentials at all.
    let (status, body) = error_of(
        env.token(None, &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );
    // A malformed Authorization header.
    let response = env
        .http
        .post(env.url("/token"))
        .header("authorization", "Basic %%%not-base64")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().contains_key("www-authenticate"));
}

async fn scope_is_checked_and_defaulted(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let body: Value = env
        .token(
            Some(&client),
            &[("grant_type", "client_credentials"), ("scope", "read")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["scope"], "read");

    for scope in ["read admin", "admin", "read \"x\""] {
        let form = [("grant_type", "client_credentials"), ("scope", scope)];
        let (status, body) = error_of(env.token(Some(&client), &form).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_scope")),
            "scope {scope:?}"
        );
    }

    // A client without scopes gets tokens without a scope claim.
    let bare = Client::from_created(
        &env.create_client(json!({"grant_types": ["client_credentials"]}))
            .await,
    );
    let body: Value = env
        .token(Some(&bare), &[("grant_type", "client_credentials")])
        .await
        .json()
        .await
        .unwrap();
    assert!(body.get("scope").is_none());
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert!(claims.get("scope").is_none());
}

async fn resource_becomes_the_audience(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let jwks = env.jwks().await;
    let form = [
        ("grant_type", "client_credentials"),
        ("resource", "https://api.example.com"),
    ];
    let body: Value = env.token(Some(&client), &form).await.json().await.unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &jwks,
        &env.server.issuer,
        "https://api.example.com",
    );
    assert_eq!(claims["aud"], "https://api.example.com");

    let form = [
        ("grant_type", "client_credentials"),
        ("resource", "https://api.example.com"),
        ("resource", "https://billing.example.com"),
    ];
    let body: Value = env.token(Some(&client), &form).await.json().await.unwrap();
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &jwks,
        &env.server.issuer,
        "https://billing.example.com",
    );
    assert_eq!(
        claims["aud"],
        json!(["https://api.example.com", "https://billing.example.com"])
    );

    for resource in [
        "https://other.example.com",
        "relative/path",
        "https://api.example.com#frag",
    ] {
        let form = [("grant_type", "client_credentials"), ("resource", resource)];
        let (status, body) = error_of(env.token(Some(&client), &form).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_target")),
            "{resource}"
        );
    }
}

async fn protocol_errors_use_rfc_6749_codes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    type Form<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Form, u16, &str); 4] = [
        (&[], 400, "invalid_request"),
        (&[("grant_type", "password")], 400, "unsupported_grant_type"),
        (
            &[
                ("grant_type", "client_credentials"),
                ("scope", "a"),
                ("scope", "b"),
            ],
            400,
            "invalid_request",
        ),
        (
            &[
                ("grant_type", "client_credentials"),
                ("grant_type", "client_credentials"),
            ],
            400,
            "invalid_request",
        ),
    ];
    for (form, expected_status, expected_error) in cases {
        let (status, body) = error_of(env.token(Some(&client), form).await).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (expected_status, Some(expected_error)),
            "{form:?}"
        );
        assert!(body["error_description"].is_string());
    }

    // A client not allowed client_credentials.
    let web = Client::from_created(
        &env.create_client(json!({"redirect_uris": ["https://app.example.com/cb"]}))
            .await,
    );
    let (status, body) = error_of(
        env.token(Some(&web), &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );

    // A public client cannot use client_credentials, even by claiming its id.
    let spa = env
        .create_client(json!({"redirect_uris": ["http://localhost:3000/cb"], "token_endpoint_auth_method": "none"}))
        .await;
    assert!(spa.get("client_secret").is_none());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", spa["client_id"].as_str().unwrap()),
    ];
    let (status, body) = error_of(env.token(None, &form).await).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client"))
    );
}

async fn malformed_input_is_a_4xx_never_a_5xx(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        (
            "application/x-www-form-urlencoded",
            b"grant_type=%ZZ%%".to_vec(),
        ),
        (
            "application/x-www-form-urlencoded",
            vec![0xff, 0xfe, 0x00, 0x3d, 0x26],
        ),
        ("application/x-www-form-urlencoded", b"&&&===&".to_vec()),
        (
            "application/json",
            br#"{"grant_type":"client_credentials"}"#.to_vec(),
        ),
        ("text/plain", b"grant_type=client_credentials".to_vec()),
        (
            "application/x-www-form-urlencoded",
            format!("grant_type=client_credentials&scope={}", "a".repeat(70_000)).into_bytes(),
        ),
        (
            "application/x-www-form-urlencoded",
            b"grant_type=client_credentials&resource=%00".to_vec(),
        ),
    ];
    for (content_type, body) in bodies {
        let response = env
            .http
            .post(env.url("/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        assert!((400..500).contains(&status), "{content_type}: got {status}");
    }
    // No Content-Type at all, a GET, and an Authorization header that is not UTF-8.
    let status = env
        .http
        .post(env.url("/token"))
        .body("grant_type=client_credentials")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 400);
    let status = env
        .http
        .get(env.url("/token"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 405);
    let response = env
        .http
        .post(env.url("/token"))
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap(),
        )
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

async fn concurrent_token_requests_all_succeed(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.service_client().await;
    let requests =
        (0..64).map(|_| env.token(Some(&client), &[("grant_type", "client_credentials")]));
    let responses = futures::future::join_all(requests).await;
    let mut jtis = std::collections::HashSet::new();
    let jwks = env.jwks().await;
    for response in responses {
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        let claims = verify_access_token(
            body["access_token"].as_str().unwrap(),
            &jwks,
            &env.server.issuer,
            &env.server.issuer,
        );
        assert!(
            jtis.insert(claims["jti"].as_str().unwrap().to_owned()),
            "jti must be unique"
        );
    }
    assert_eq!(jtis.len(), 64);
}
