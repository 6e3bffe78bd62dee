//! A real browser signs in, consents, and lands on the app's redirect URI, which the test
//! serves; the "app" then redeems the code with PKCE. Optionally saves screenshots of the pages.

use std::path::PathBuf;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::common::flow::{PASSWORD, pkce_pair};
use crate::common::webdriver::Browser;
use crate::common::{Backend, Client, TestEnv, verify_access_token};

/// The app's redirect URI: a one-route server that hands the query to the test.
async fn serve_callback() -> (String, mpsc::UnboundedReceiver<String>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = axum::Router::new().route(
        "/callback",
        axum::routing::get(
            move |axum::extract::RawQuery(query): axum::extract::RawQuery| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(query.unwrap_or_default());
                    axum::response::Html("<h1>Back in the app</h1>")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://127.0.0.1:{}/callback", address.port()), rx)
}

/// Where screenshots go when PORTCULLIS_SCREENSHOTS_DIR is set (e.g. docs/screenshots).
fn screenshots_dir() -> Option<PathBuf> {
    std::env::var_os("PORTCULLIS_SCREENSHOTS_DIR").map(PathBuf::from)
}

async fn shoot(browser: &Browser, name: &str) {
    let Some(dir) = screenshots_dir() else { return };
    std::fs::create_dir_all(&dir).unwrap();
    for (suffix, width, height) in [("desktop", 1280, 800), ("phone", 390, 844)] {
        browser.set_window_size(width, height).await;
        std::fs::write(
            dir.join(format!("{name}-{suffix}.png")),
            browser.screenshot().await,
        )
        .unwrap();
    }
    browser.set_window_size(1280, 800).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    portcullis_no_browser,
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver"
)]
async fn a_person_signs_in_and_consents_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let env = TestEnv::start(Backend::Sqlite).await;
    let user_id = env.create_user("alice").await;
    let (redirect_uri, mut callbacks) = serve_callback().await;
    let client = Client::from_created(
        &env.create_client(json!({
            "client_name": "Photo Printer",
            "redirect_uris": [redirect_uri],
            "token_endpoint_auth_method": "none",
            "scope": "photos:read profile",
        }))
        .await,
    );

    let (verifier, challenge) = pkce_pair();
    let mut authorize = url::Url::parse(&env.url("/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.id)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("scope", "photos:read profile")
        .append_pair("state", "browser-state")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    browser.goto(authorize.as_str()).await;
    browser.wait_for_text("Photo Printer").await;
    shoot(&browser, "login").await;

    // A wrong password first: a clear message, and the form again.
    browser.fill_labelled("Username", "alice").await;
    browser.fill_labelled("Password", "not my password").await;
    browser.click_button("Sign in").await;
    browser
        .wait_for_text("The username or password is incorrect.")
        .await;

    browser.fill_labelled("Password", PASSWORD).await;
    browser.click_button("Sign in").await;
    let consent = browser
        .wait_for_text("Photo Printer wants to access your account")
        .await;
    assert!(consent.contains("See your basic profile"));
    shoot(&browser, "consent").await;

    browser.click_button("Allow").await;
    browser.wait_for_url(&redirect_uri).await;
    let query = callbacks
        .recv()
        .await
        .expect("the app's redirect URI was called");
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
    assert_eq!(params["state"], "browser-state");
    assert_eq!(params["iss"], env.server.issuer);

    // The app redeems the code with its PKCE verifier.
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", client.id.as_str()),
        ("code", params["code"].as_str()),
        ("code_verifier", verifier.as_str()),
        ("redirect_uri", redirect_uri.as_str()),
    ];
    let response = env.token(None, &form).await;
    assert_eq!(response.status(), 200);
    let tokens: Value = response.json().await.unwrap();
    let claims = verify_access_token(
        tokens["access_token"].as_str().unwrap(),
        &env.jwks().await,
        &env.server.issuer,
        &env.server.issuer,
    );
    assert_eq!(claims["sub"], user_id.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    portcullis_no_browser,
    ignore = "needs chromium and chromedriver: apt-get install chromium chromium-driver"
)]
async fn a_person_manages_api_keys_in_a_real_browser() {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let env = TestEnv::start_with(Backend::Sqlite, &["--personal-key-scopes", "read"]).await;
    env.create_user("alice").await;

    browser.goto(&env.url("/account/api-keys")).await;
    browser.wait_for_text("Sign in").await;
    browser.fill_labelled("Username", "alice").await;
    browser.fill_labelled("Password", PASSWORD).await;
    browser.click_button("Sign in").await;
    browser.wait_for_text("You have no API keys.").await;

    browser.fill_labelled("Name", "CI").await;
    browser.click_button("Create key").await;
    browser.wait_for_text("Copy it now").await;
    let key = browser.element_text("#new-key").await;
    assert!(portcullis::api_keys::is_well_formed(&key), "{key:?}");
    shoot(&browser, "account-api-keys").await;
    // The copy button runs (the page's CSP allows its own script); headless Chromium may
    // refuse clipboard access, in which case the button says how to copy by hand.
    browser.click_button("Copy").await;
    let mut label = String::new();
    for _ in 0..50 {
        label = browser.element_text(".new-key button").await;
        if label != "Copy" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        label == "Copied" || label == "Select the key and copy it",
        "{label:?}"
    );

    let exchange = || {
        env.http
            .post(env.url("/token"))
            .basic_auth(&key, Some(""))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(exchange().await.unwrap().status(), 200);

    browser.click_button("Revoke CI").await;
    browser.wait_for_text("revoked").await;
    assert_eq!(exchange().await.unwrap().status(), 401);
}
