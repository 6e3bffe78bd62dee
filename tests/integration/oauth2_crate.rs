//! The Rust `oauth2` crate (5.x), a strictly typed client, against the server: client
//! credentials, an API key, the code flow with PKCE, refresh, introspection, and RFC 6749 error
//! responses it must be able to parse. (The crate refuses to revoke over plain http, as RFC
//! 7009 §2 asks, so revocation is tried by the other tests and the interop scripts.)

use oauth2::basic::{BasicClient, BasicErrorResponseType, BasicTokenType};
use oauth2::{
    AccessToken, AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IntrospectionUrl,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, RequestTokenError, Scope,
    TokenIntrospectionResponse, TokenResponse, TokenUrl,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::{PASSWORD, REDIRECT_URI, browser, location_param};
use crate::common::{Backend, Client, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    client_credentials_and_api_keys_with_the_oauth2_crate,
    the_code_flow_with_the_oauth2_crate,
);

/// The crate's HTTP client; it must not follow redirects (the crate's own advice).
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn scopes(names: &[&str]) -> Option<Vec<Scope>> {
    Some(
        names
            .iter()
            .map(|name| Scope::new((*name).into()))
            .collect(),
    )
}

/// The error code of a refused token request, as the crate parsed it.
fn error_code<T: std::fmt::Debug>(
    result: Result<
        T,
        RequestTokenError<
            oauth2::HttpClientError<reqwest::Error>,
            oauth2::basic::BasicErrorResponse,
        >,
    >,
) -> BasicErrorResponseType {
    match result {
        Err(RequestTokenError::ServerResponse(response)) => response.error().clone(),
        other => panic!("expected an RFC 6749 error response, got {other:?}"),
    }
}

async fn client_credentials_and_api_keys_with_the_oauth2_crate(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let created = env
        .create_client(
            json!({"grant_types": ["client_credentials"], "scope": "read write",
                              "resource_server": true}),
        )
        .await;
    let registered = Client::from_created(&created);
    let client = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new(registered.secret.clone()))
        .set_token_uri(TokenUrl::new(env.url("/token")).unwrap())
        .set_introspection_url(IntrospectionUrl::new(env.url("/introspect")).unwrap());

    let token = client
        .exchange_client_credentials()
        .add_scope(Scope::new("read".into()))
        .request_async(&http())
        .await
        .expect("a token");
    assert_eq!(*token.token_type(), BasicTokenType::Bearer);
    assert_eq!(token.scopes().cloned(), scopes(&["read"]));
    assert!(token.expires_in().is_some());

    let answer = client
        .introspect(token.access_token())
        .request_async(&http())
        .await
        .expect("an introspection answer");
    assert!(answer.active());
    assert_eq!(
        answer.client_id(),
        Some(&ClientId::new(registered.id.clone()))
    );
    assert_eq!(answer.scopes().cloned(), scopes(&["read"]));
    assert!(answer.exp().is_some() && answer.iat().is_some());

    // Errors the crate must recognise.
    let asks_too_much = client
        .exchange_client_credentials()
        .add_scope(Scope::new("admin".into()))
        .request_async(&http())
        .await;
    assert_eq!(
        error_code(asks_too_much),
        BasicErrorResponseType::InvalidScope
    );
    let wrong_secret = BasicClient::new(ClientId::new(registered.id.clone()))
        .set_client_secret(ClientSecret::new("not the secret".into()))
        .set_token_uri(TokenUrl::new(env.url("/token")).unwrap());
    let refused = wrong_secret
        .exchange_client_credentials()
        .request_async(&http())
        .await;
    assert_eq!(error_code(refused), BasicErrorResponseType::InvalidClient);

    // An API key is a client id with an empty secret: the crate sends it as Basic `KEY:`.
    let response = env
        .admin(Method::POST, "/admin/api-keys")
        .json(&json!({"name": "crate", "scope": "read write", "metadata": {"plan": "pro"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let key: Value = response.json().await.unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let with_key = BasicClient::new(ClientId::new(key.clone()))
        .set_client_secret(ClientSecret::new(String::new()))
        .set_token_uri(TokenUrl::new(env.url("/token")).unwrap());
    let token = with_key
        .exchange_client_credentials()
        .add_scope(Scope::new("write".into()))
        .request_async(&http())
        .await
        .expect("a token for the key");
    assert_eq!(token.scopes().cloned(), scopes(&["write"]));

    // The key itself introspects as active, with its own token type.
    let answer = client
        .introspect(&AccessToken::new(key))
        .request_async(&http())
        .await
        .expect("an introspection answer for the key");
    assert!(answer.active());
    assert_eq!(
        answer.token_type(),
        Some(&BasicTokenType::Extension("api_key".into()))
    );
    assert_eq!(answer.scopes().cloned(), scopes(&["read", "write"]));
}

async fn the_code_flow_with_the_oauth2_crate(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("olga").await;
    let spa = env.spa_client().await;
    let client = BasicClient::new(ClientId::new(spa.id.clone()))
        .set_auth_uri(AuthUrl::new(env.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(env.url("/token")).unwrap())
        .set_redirect_uri(RedirectUrl::new(REDIRECT_URI.into()).unwrap());

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let signed_in = env.sign_in(&browser, url.as_str(), "olga", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    let redirect = env.consent(&browser, url.as_str(), "allow").await;
    assert_eq!(
        location_param(&redirect, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(
        location_param(&redirect, "iss").as_deref(),
        Some(env.server.issuer.as_str())
    );
    let code = location_param(&redirect, "code").expect("a code");

    let verifier_secret = verifier.secret().clone();
    let tokens = client
        .exchange_code(AuthorizationCode::new(code.clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("tokens for the code");
    assert_eq!(*tokens.token_type(), BasicTokenType::Bearer);
    assert_eq!(tokens.scopes().cloned(), scopes(&["read"]));
    let refresh = tokens.refresh_token().expect("a refresh token").clone();

    // The code is single use: replayed with its verifier, it is refused and its grant revoked.
    let again = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(verifier_secret))
        .request_async(&http())
        .await;
    assert_eq!(error_code(again), BasicErrorResponseType::InvalidGrant);

    // Refreshing rotates; the used refresh token is refused. (The code's reuse above revoked
    // the grant, so this takes a second authorization.)
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, _) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new("read".into()))
        .set_pkce_challenge(challenge)
        .url();
    let redirect = browser.get(url.as_str()).send().await.unwrap();
    assert!(redirect.status().is_redirection(), "consent is remembered");
    let code = location_param(&redirect, "code").expect("a code");
    let tokens = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("tokens for the second code");
    let first = tokens.refresh_token().expect("a refresh token").clone();
    let refreshed = client
        .exchange_refresh_token(&first)
        .request_async(&http())
        .await
        .expect("a refresh");
    let second = refreshed.refresh_token().expect("a rotated refresh token");
    assert_ne!(second.secret(), first.secret());
    // A retry within the window gets the same successor; once that is used, it is reuse.
    let retried = client
        .exchange_refresh_token(&first)
        .request_async(&http())
        .await
        .expect("a retried refresh");
    assert_eq!(
        retried.refresh_token().map(|t| t.secret()),
        Some(second.secret())
    );
    client
        .exchange_refresh_token(second)
        .request_async(&http())
        .await
        .expect("the successor refreshes");
    let reused = client
        .exchange_refresh_token(&first)
        .request_async(&http())
        .await;
    assert_eq!(error_code(reused), BasicErrorResponseType::InvalidGrant);
    let revoked_grant = client
        .exchange_refresh_token(&refresh)
        .request_async(&http())
        .await;
    assert_eq!(
        error_code(revoked_grant),
        BasicErrorResponseType::InvalidGrant
    );
}
