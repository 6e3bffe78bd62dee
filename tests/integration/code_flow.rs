//! The authorization-code flow with PKCE, refresh-token rotation and reuse detection.

use portcullis::config::CODE_TTL_SECS;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::{PASSWORD, REDIRECT_URI, browser, error, location_param, tokens};
use crate::common::{Backend, Client, TestEnv, verify_access_token};
use crate::on_both_databases;

on_both_databases!(
    spa_signs_in_consents_and_gets_tokens,
    confidential_web_app_authenticates_at_the_token_endpoint,
    authorization_errors_follow_rfc_6749,
    codes_are_single_use_and_bound,
    concurrent_code_redemption_has_one_winner,
    refresh_rotates_and_reuse_revokes_the_family,
    concurrent_refresh_has_one_winner_across_processes,
    disabled_and_deleted_users_lose_access,
    consent_is_remembered_and_first_party_skips_it,
    refresh_tokens_expire_when_idle_and_at_the_family_end,
    a_blank_scope_still_asks_for_consent,
    narrowing_a_client_narrows_its_refresh_tokens,
    a_redirect_uri_the_rules_no_longer_allow_is_never_used,
    narrowing_a_client_narrows_its_codes,
    a_native_app_on_loopback_may_use_any_port,
);

async fn spa_signs_in_consents_and_gets_tokens(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("alice").await;
    let client = env.spa_client().await;

    let browser = browser();
    let (url, verifier) = env.authorize_url(&client, "read", "s-123");
    let login = browser.get(&url).send().await.unwrap();
    assert_eq!(login.status(), 200);
    let login = login.text().await.unwrap();
    assert!(login.contains(r#"<label for="username">Username</label>"#));
    assert!(login.contains(r#"<label for="password">Password</label>"#));
    assert!(login.contains("Sign in"));
    assert!(login.contains("Photo App"));

    assert_eq!(
        env.sign_in(&browser, &url, "alice", PASSWORD)
            .await
            .status(),
        303
    );
    let consent = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(consent.contains("Photo App"));
    assert!(consent.contains("Allow") && consent.contains("Deny"));
    assert!(consent.contains("read"));

    let redirect = env.consent(&browser, &url, "allow").await;
    assert_eq!(redirect.status(), 303);
    let location = redirect.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(REDIRECT_URI));
    assert_eq!(location_param(&redirect, "state").as_deref(), Some("s-123"));
    assert_eq!(
        location_param(&redirect, "iss").as_deref(),
        Some(env.server.issuer.as_str())
    );
    let code = location_param(&redirect, "code").unwrap();

    let body = tokens(env.redeem(&client, &code, &verifier).await).await;
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "read");
    assert!(body["refresh_token"].as_str().unwrap().len() >= 43);
    let claims = verify_access_token(
        body["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], user_id.as_str());
    assert_eq!(claims["client_id"], client.id.as_str());
    assert_eq!(claims["scope"], "read");
}

async fn confidential_web_app_authenticates_at_the_token_endpoint(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("bob").await;
    let web = Client::from_created(
        &env.create_client(json!({
            "client_name": "Web App",
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code"],
            "scope": "read",
        }))
        .await,
    );
    let (code, verifier) = env.authorization_code(&web, "bob", "read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    // Without its secret, a confidential client is not authenticated.
    let mut public_form = form.to_vec();
    public_form.push(("client_id", web.id.as_str()));
    assert_eq!(
        error(env.token(None, &public_form).await).await,
        (401, "invalid_client".into())
    );
    let body = tokens(env.token(Some(&web), &form).await).await;
    // Not allowed refresh tokens: none issued.
    assert!(body.get("refresh_token").is_none());
}

async fn authorization_errors_follow_rfc_6749(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("carol").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (good, _) = env.authorize_url(&client, "read", "st");

    // The client or redirect URI cannot be trusted: an error page, never a redirect.
    for bad in [
        good.replace(&client.id, "unknown-client"),
        good.replace("localhost%3A3000", "evil.example"),
        good.replace("%2Fcallback", "%2Fcallback%2Fextra"),
    ] {
        let response = browser.get(&bad).send().await.unwrap();
        assert_eq!(response.status(), 400, "{bad}");
        assert!(response.headers().get("location").is_none());
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    // Everything else: back to the client with error, state and iss.
    let cases = [
        (
            good.replace("&code_challenge_method=S256", ""),
            "invalid_request",
        ),
        (
            good.replace("code_challenge_method=S256", "code_challenge_method=plain"),
            "invalid_request",
        ),
        (good.replace("&code_challenge=", "&x="), "invalid_request"),
        (good.replace("scope=read", "scope=admin"), "invalid_scope"),
        (
            good.replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
    ];
    for (url, expected) in cases {
        let response = browser.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 302, "{url}");
        assert_eq!(
            location_param(&response, "error").as_deref(),
            Some(expected),
            "{url}"
        );
        assert_eq!(location_param(&response, "state").as_deref(), Some("st"));
        assert_eq!(
            location_param(&response, "iss").as_deref(),
            Some(env.server.issuer.as_str())
        );
        assert!(location_param(&response, "error_description").is_some());
    }

    // Deny: access_denied.
    env.sign_in(&browser, &good, "carol", PASSWORD).await;
    let denied = env.consent(&browser, &good, "deny").await;
    assert_eq!(denied.status(), 303);
    assert_eq!(
        location_param(&denied, "error").as_deref(),
        Some("access_denied")
    );
    assert_eq!(location_param(&denied, "state").as_deref(), Some("st"));
    assert!(location_param(&denied, "code").is_none());
}

async fn codes_are_single_use_and_bound(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("dave").await;
    let client = env.spa_client().await;

    // Wrong verifier, wrong redirect URI, missing verifier, another client: refused.
    let (code, verifier) = env.authorization_code(&client, "dave", "read").await;
    let other = env.spa_client().await;
    // The last character changed, to one it is not already.
    let (kept, last) = verifier.split_at(verifier.len() - 1);
    let wrong_verifier = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    assert_ne!(wrong_verifier, verifier);
    assert_eq!(
        error(env.redeem(&client, &code, &wrong_verifier).await).await,
        (400, "invalid_grant".into())
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.id.as_str()),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", "http://localhost:3000/other"),
    ];
    assert_eq!(
        error(env.token(None, &form).await).await,
        (400, "invalid_grant".into())
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.id.as_str()),
        ("code", code.as_str()),
    ];
    assert_eq!(
        error(env.token(None, &form).await).await,
        (400, "invalid_request".into())
    );
    assert_eq!(
        error(env.redeem(&other, &code, &verifier).await).await,
        (400, "invalid_grant".into())
    );

    // Redeemed once; the second time fails and revokes what the first gave.
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    assert_eq!(
        error(env.redeem(&client, &code, &verifier).await).await,
        (400, "invalid_grant".into())
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    assert_eq!(
        error(env.refresh(&client, refresh, None).await).await,
        (400, "invalid_grant".into())
    );

    // An expired code: codes live 60 seconds.
    let (code, verifier) = env.authorization_code(&client, "dave", "read").await;
    env.advance_clock(CODE_TTL_SECS);
    assert_eq!(
        error(env.redeem(&client, &code, &verifier).await).await,
        (400, "invalid_grant".into())
    );
}

async fn concurrent_code_redemption_has_one_winner(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("erin").await;
    let client = env.spa_client().await;
    let replica = env.start_replica();
    let (code, verifier) = env.authorization_code(&client, "erin", "read").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.id.as_str()),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", REDIRECT_URI),
    ];
    let responses = env.token_at_once(&replica, 12, &form).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

async fn refresh_rotates_and_reuse_revokes_the_family(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("frank").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "frank", "read write").await;
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();

    // Narrower scope is allowed; wider is not (and does not use up the token).
    assert_eq!(
        error(env.refresh(&client, &r1, Some("read admin")).await).await,
        (400, "invalid_scope".into())
    );
    let second = tokens(env.refresh(&client, &r1, Some("read")).await).await;
    assert_eq!(second["scope"], "read");
    let r2 = second["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);

    // The family keeps its original scope: the next refresh may ask for all of it again.
    let third = tokens(env.refresh(&client, &r2, None).await).await;
    assert_eq!(third["scope"], "read write");
    let r3 = third["refresh_token"].as_str().unwrap().to_owned();

    // r1 again: reuse. Refused, and the whole family (r3 included) is revoked.
    assert_eq!(
        error(env.refresh(&client, &r1, None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error(env.refresh(&client, &r3, None).await).await,
        (400, "invalid_grant".into())
    );

    // Another client cannot use this client's tokens, and garbage is invalid_grant.
    let (code, verifier) = env.authorization_code(&client, "frank", "read").await;
    let fresh = tokens(env.redeem(&client, &code, &verifier).await).await;
    let other = env.spa_client().await;
    let token = fresh["refresh_token"].as_str().unwrap();
    assert_eq!(
        error(env.refresh(&other, token, None).await).await,
        (400, "invalid_grant".into())
    );
    assert_eq!(
        error(env.refresh(&client, "garbage", None).await).await,
        (400, "invalid_grant".into())
    );
    // ... and the failed attempt by the other client did not use the token up.
    tokens(env.refresh(&client, token, None).await).await;
}

/// Without a retry window (see refresh_retry.rs for the window), exactly one wins.
async fn concurrent_refresh_has_one_winner_across_processes(backend: Backend) {
    let strict = ["--refresh-retry-window-secs", "0"];
    let env = TestEnv::start_with(backend, &strict).await;
    env.create_user("gina").await;
    let client = env.spa_client().await;
    let replica = env.start_replica_with(&strict);
    let (code, verifier) = env.authorization_code(&client, "gina", "read").await;
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    let refresh = first["refresh_token"].as_str().unwrap();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", client.id.as_str()),
        ("refresh_token", refresh),
    ];
    let responses = env.token_at_once(&replica, 12, &form).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 400),
        "{statuses:?}"
    );
}

async fn disabled_and_deleted_users_lose_access(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let henry = env.create_user("henry").await;
    let ivy = env.create_user("ivy").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "henry", "read").await;
    let henry_tokens = tokens(env.redeem(&client, &code, &verifier).await).await;
    let (code, verifier) = env.authorization_code(&client, "ivy", "read").await;
    let ivy_tokens = tokens(env.redeem(&client, &code, &verifier).await).await;

    let response = env
        .admin(Method::PATCH, &format!("/admin/users/{henry}"))
        .json(&json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let refresh = henry_tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error(env.refresh(&client, refresh, None).await).await,
        (400, "invalid_grant".into())
    );
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "x");
    assert_eq!(
        env.sign_in(&browser, &url, "henry", PASSWORD)
            .await
            .status(),
        401
    );

    let response = env
        .admin(Method::DELETE, &format!("/admin/users/{ivy}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let refresh = ivy_tokens["refresh_token"].as_str().unwrap();
    assert_eq!(
        error(env.refresh(&client, refresh, None).await).await,
        (400, "invalid_grant".into())
    );
}

async fn consent_is_remembered_and_first_party_skips_it(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("jack").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "a");
    env.sign_in(&browser, &url, "jack", PASSWORD).await;
    env.consent(&browser, &url, "allow").await;

    // Same scope again: straight back with a code.
    let (again, _) = env.authorize_url(&client, "read", "b");
    let response = browser.get(&again).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(location_param(&response, "code").is_some());
    // More scope: asked again.
    let (more, _) = env.authorize_url(&client, "read write", "c");
    assert_eq!(browser.get(&more).send().await.unwrap().status(), 200);

    let first_party = Client::from_created(
        &env.create_client(json!({
            "client_name": "Our Dashboard",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "scope": "read",
            "skip_consent": true,
        }))
        .await,
    );
    let (url, _) = env.authorize_url(&first_party, "read", "d");
    let response = browser.get(&url).send().await.unwrap();
    assert_eq!(response.status(), 302);
    assert!(location_param(&response, "code").is_some());
}

async fn refresh_tokens_expire_when_idle_and_at_the_family_end(backend: Backend) {
    let lifetimes = [
        "--refresh-token-idle-secs",
        "100",
        "--refresh-token-absolute-secs",
        "150",
    ];
    let env = TestEnv::start_with(backend, &lifetimes).await;
    env.create_user("wendy").await;
    let client = env.spa_client().await;
    let refresh_token_of = |body: &Value| body["refresh_token"].as_str().unwrap().to_owned();

    // Unused for its idle lifetime: expired.
    let (code, verifier) = env.authorization_code(&client, "wendy", "read").await;
    let idle = refresh_token_of(&tokens(env.redeem(&client, &code, &verifier).await).await);
    env.advance_clock(100);
    assert_eq!(
        error(env.refresh(&client, &idle, None).await).await,
        (400, "invalid_grant".into()),
        "idle"
    );

    // Used within its idle lifetime, the family still ends at its absolute end.
    let (code, verifier) = env.authorization_code(&client, "wendy", "read").await;
    let first = refresh_token_of(&tokens(env.redeem(&client, &code, &verifier).await).await);
    env.advance_clock(90);
    let second = refresh_token_of(&tokens(env.refresh(&client, &first, None).await).await);
    env.advance_clock(60);
    assert_eq!(
        error(env.refresh(&client, &second, None).await).await,
        (400, "invalid_grant".into()),
        "the family's end"
    );
}

/// An empty or blank scope is no reason to skip consent: the client still learns who the
/// person is and gets a refresh token. Asked once; remembered after.
async fn a_blank_scope_still_asks_for_consent(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("kate").await;
    let browser = browser();
    let scopeless = Client::from_created(
        &env.create_client(json!({
            "client_name": "No Scopes",
            "redirect_uris": [REDIRECT_URI],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "scope": "",
        }))
        .await,
    );
    let scoped = env.spa_client().await;
    for (client, scope) in [(&scoped, " "), (&scopeless, "")] {
        let (url, _) = env.authorize_url(client, scope, "a");
        if client.id == scoped.id {
            env.sign_in(&browser, &url, "kate", PASSWORD).await;
        }
        let page = browser.get(&url).send().await.unwrap();
        assert_eq!(page.status(), 200, "consent is asked for {scope:?}");
        let redirect = env.consent(&browser, &url, "allow").await;
        assert!(location_param(&redirect, "code").is_some());
        // Remembered: straight back the next time, blank or not.
        for scope in ["", " "] {
            let (again, _) = env.authorize_url(client, scope, "b");
            assert_eq!(browser.get(&again).send().await.unwrap().status(), 302);
        }
    }
}

/// Narrowing a client's scope narrows the refresh tokens it already holds.
async fn narrowing_a_client_narrows_its_refresh_tokens(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (client, refresh) = env.first_refresh_token("lars").await;
    let response = env
        .admin(Method::PATCH, &format!("/admin/clients/{}", client.id))
        .json(&json!({"scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // Introspection says what a refresh would give now.
    assert_eq!(env.introspect(&refresh).await["scope"], "read");
    let refreshed = tokens(env.refresh(&client, &refresh, None).await).await;
    assert_eq!(refreshed["scope"], "read");
    let next = refreshed["refresh_token"].as_str().unwrap();
    assert_eq!(
        error(env.refresh(&client, next, Some("write")).await).await,
        (400, "invalid_scope".into())
    );
}

/// A redirect URI stored before today's rules (written here straight into the database) is
/// never redirected to: the person sees an error page.
async fn a_redirect_uri_the_rules_no_longer_allow_is_never_used(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("mona").await;
    let client = env.spa_client().await;
    let legacy = "https:/\\evil.example/cb";
    let pool = env.db.pool().await;
    sqlx::query("UPDATE clients SET redirect_uris = $1 WHERE id = $2")
        .bind(serde_json::to_string(&[legacy]).unwrap())
        .bind(&client.id)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (registered_url, _) = env.authorize_url(&client, "read", "s");
    let url = registered_url.replace(
        &url::form_urlencoded::byte_serialize(REDIRECT_URI.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(legacy.as_bytes()).collect::<String>(),
    );
    assert!(url.contains("evil.example"), "{url}");
    let response = browser().get(&url).send().await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
}

/// Narrowing a client's scope narrows the codes it already has.
async fn narrowing_a_client_narrows_its_codes(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("nina").await;
    let client = env.spa_client().await;
    let (code, verifier) = env.authorization_code(&client, "nina", "read write").await;
    let response = env
        .admin(Method::PATCH, &format!("/admin/clients/{}", client.id))
        .json(&json!({"scope": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let first = tokens(env.redeem(&client, &code, &verifier).await).await;
    assert_eq!(first["scope"], "read");
}

/// RFC 8252 §7.3: a native app's loopback redirect URI matches with any port, since the app
/// listens on whatever port it is given; the code is bound to the port it was sent to.
async fn a_native_app_on_loopback_may_use_any_port(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("omar").await;
    let app = Client::from_created(
        &env.create_client(json!({
            "client_name": "Desktop App",
            "redirect_uris": ["http://127.0.0.1/callback"],
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code"],
            "scope": "read",
        }))
        .await,
    );
    let on_port = "http://127.0.0.1:53123/callback";
    let encode =
        |uri: &str| url::form_urlencoded::byte_serialize(uri.as_bytes()).collect::<String>();
    let (registered_url, verifier) = env.authorize_url(&app, "read", "s");
    let url = registered_url.replace(&encode(REDIRECT_URI), &encode(on_port));
    let browser = browser();
    assert_eq!(
        env.sign_in(&browser, &url, "omar", PASSWORD).await.status(),
        303
    );
    let redirect = env.consent(&browser, &url, "allow").await;
    let location = redirect.headers()["location"].to_str().unwrap().to_owned();
    assert!(location.starts_with(on_port), "{location}");
    let code = location_param(&redirect, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", app.id.as_str()),
        ("code", code.as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", on_port),
    ];
    tokens(env.token(None, &form).await).await;

    // Another path, or a name rather than the loopback address, is not the registered URI.
    for other in [
        "http://127.0.0.1:53123/other",
        "http://localhost:53123/callback",
    ] {
        let url = registered_url.replace(&encode(REDIRECT_URI), &encode(other));
        assert_eq!(
            browser.get(&url).send().await.unwrap().status(),
            400,
            "{other}"
        );
    }
}
