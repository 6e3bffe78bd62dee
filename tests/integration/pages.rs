//! The HTML pages: security headers, cookies, CSRF, sign-out and sign-in throttling.

use crate::common::flow::{PASSWORD, browser, hidden_field};
use crate::common::{Backend, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    pages_carry_security_headers_and_safe_cookies,
    forms_need_their_csrf_token,
    sign_out_ends_the_session,
    failed_sign_ins_are_throttled,
    sign_in_cannot_be_used_to_redirect_elsewhere,
    sessions_expire_when_idle_and_at_their_absolute_end,
    cookies_are_secure_behind_an_https_issuer,
    failed_sign_ins_are_throttled_per_address,
    attempted_usernames_cannot_forge_log_lines,
    a_burst_of_guesses_checks_no_more_than_the_limit,
    csrf_tokens_are_bound_to_the_session,
);

/// The server's address, opened in a browser, says what it is and where its documents are.
#[tokio::test]
async fn the_home_page_names_the_issuer_and_links_the_documents() {
    let env = TestEnv::start(Backend::Sqlite).await;
    let response = env.http.get(env.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let page = response.text().await.unwrap();
    assert!(page.contains(&env.server.issuer), "{page}");
    for link in [
        "/.well-known/oauth-authorization-server",
        "/.well-known/jwks.json",
        "/account/api-keys",
    ] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
    }
    // Elsewhere, an unknown path is still a JSON 404.
    let missing = env.http.get(env.url("/nothing-here")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.json::<serde_json::Value>().await.unwrap(),
        serde_json::json!({"error": "not_found"})
    );
}

async fn pages_carry_security_headers_and_safe_cookies(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("kim").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "s");
    let page = browser.get(&url).send().await.unwrap();
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    // The form may lead back to the app's redirect URI, and nowhere else.
    assert!(
        csp.contains("form-action 'self' http://localhost:3000;"),
        "{csp}"
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // An http issuer (a developer's machine) gets no HSTS, which would stick to localhost.
    assert!(headers.get("strict-transport-security").is_none());
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");
    let csrf_cookie = headers["set-cookie"].to_str().unwrap();
    assert!(
        csrf_cookie.contains("HttpOnly")
            && csrf_cookie.contains("SameSite=Lax")
            && csrf_cookie.contains("Path=/")
    );
    assert!(
        !csrf_cookie.contains("Secure"),
        "plain http issuer: no Secure"
    );

    let signed_in = env.sign_in(&browser, &url, "kim", PASSWORD).await;
    let session_cookie = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("portcullis_session="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }

    // The stylesheet is served, and the pages need no script.
    let css = browser
        .get(env.url("/static/style.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    assert!(
        css.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    let consent = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!consent.contains("<script"));
}

async fn forms_need_their_csrf_token(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("lee").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "s");
    let page = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let continue_to = hidden_field(&page, "continue");
    for csrf in ["", "wrong-token"] {
        let response = browser
            .post(env.url("/login"))
            .form(&[
                ("username", "lee"),
                ("password", PASSWORD),
                ("csrf", csrf),
                ("continue", continue_to.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403);
    }
    // Another browser (no CSRF cookie) replaying a real token is refused as well.
    let response = reqwest::Client::new()
        .post(env.url("/login"))
        .form(&[
            ("username", "lee"),
            ("password", PASSWORD),
            ("csrf", hidden_field(&page, "csrf").as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // The consent decision too.
    env.sign_in(&browser, &url, "lee", PASSWORD).await;
    let consent = browser
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let response = browser
        .post(env.url("/authorize"))
        .form(&[
            ("request", hidden_field(&consent, "request").as_str()),
            ("csrf", "forged"),
            ("decision", "allow"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);
    assert!(response.headers().get("location").is_none());
}

async fn sign_out_ends_the_session(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("mia").await;
    let browser = browser();
    let (response, csrf) = env.login_directly(&browser, "mia", "").await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("signed in as mia"));

    let response = browser
        .post(env.url("/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page = env.page(&browser, "/login").await;
    assert!(
        page.contains("<h1>Sign in</h1>"),
        "signed out: the login form again"
    );
}

async fn failed_sign_ins_are_throttled(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("ned").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "s");
    for _ in 0..5 {
        let response = env.sign_in(&browser, &url, "ned", "wrong password").await;
        assert_eq!(response.status(), 401);
        let page = response.text().await.unwrap();
        // One message for a bad username or password: it does not say which.
        assert!(page.contains("The username or password is incorrect."));
    }
    let unknown = env
        .sign_in(&browser, &url, "nobody-here", "wrong password")
        .await;
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("The username or password is incorrect.")
    );

    // Now even the right password is refused for a while, with a clear message.
    let response = env.sign_in(&browser, &url, "ned", PASSWORD).await;
    assert_eq!(response.status(), 429);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Too many failed sign-in attempts")
    );
}

async fn sign_in_cannot_be_used_to_redirect_elsewhere(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("olga").await;
    let browser = browser();
    for target in ["https://evil.example/", "//evil.example/", "/admin/clients"] {
        let (response, _) = env.login_directly(&browser, "olga", target).await;
        assert_eq!(response.status(), 200, "{target}");
        assert!(response.headers().get("location").is_none(), "{target}");
    }
}

async fn sessions_expire_when_idle_and_at_their_absolute_end(backend: Backend) {
    let lifetimes = [
        "--session-idle-secs",
        "600",
        "--session-absolute-secs",
        "900",
    ];
    let env = TestEnv::start_with(backend, &lifetimes).await;
    env.create_user("uma").await;
    let client = env.spa_client().await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    // Signed in: the consent page, not the login form.
    let is_signed_in = async |browser: &reqwest::Client| {
        let page = browser
            .get(&url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if page.contains("wants to access your account") {
            return true;
        }
        assert!(page.contains("<h1>Sign in</h1>"), "{page}");
        false
    };

    // Idle for 10 minutes: ended.
    let idle = browser();
    assert_eq!(
        env.sign_in(&idle, &url, "uma", PASSWORD).await.status(),
        303
    );
    assert!(is_signed_in(&idle).await);
    env.advance_clock(600);
    assert!(!is_signed_in(&idle).await, "idle: the session has ended");

    // In use, still ended 15 minutes after sign-in.
    let busy = browser();
    assert_eq!(
        env.sign_in(&busy, &url, "uma", PASSWORD).await.status(),
        303
    );
    env.advance_clock(500);
    assert!(is_signed_in(&busy).await);
    env.advance_clock(400);
    assert!(!is_signed_in(&busy).await, "the session's absolute end");
}

async fn cookies_are_secure_behind_an_https_issuer(backend: Backend) {
    let env = TestEnv::start_with(backend, &["--issuer", "https://auth.example.test"]).await;
    let response = browser().get(env.url("/login")).send().await.unwrap();
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("; Secure"), "{cookie}");
    // `__Host-` names: no other host (a sibling subdomain) can plant or overwrite them.
    assert!(cookie.starts_with("__Host-portcullis_csrf="), "{cookie}");
    // HSTS on every response behind an https issuer.
    for path in ["/login", "/.well-known/jwks.json", "/nothing-here"] {
        let response = browser().get(env.url(path)).send().await.unwrap();
        assert_eq!(
            response.headers()["strict-transport-security"],
            "max-age=31536000",
            "{path}"
        );
    }
}

/// A server reachable beyond this machine with an http issuer says, at start, that TLS belongs
/// in front of it.
#[tokio::test]
async fn an_http_issuer_beyond_loopback_is_warned_about() {
    let db = crate::common::TestDb::new(Backend::Sqlite).await;
    let keys = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(crate::common::BIN)
        .args([
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--issuer",
            "http://auth.example.test",
        ])
        .env("PORTCULLIS_DATABASE_URL", &db.url)
        .env("PORTCULLIS_KEYS_DIR", keys.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut warned = false;
    for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)).map_while(Result::ok) {
        if line.contains("put TLS in front") {
            warned = true;
        }
        if line.contains("listening on") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(warned, "a warning about the http issuer");
}

async fn failed_sign_ins_are_throttled_per_address(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("vic").await;
    let client = env.spa_client().await;
    let browser = browser();
    let (url, _) = env.authorize_url(&client, "read", "s");
    // Many usernames from one address: each stays under its own limit, the address does not.
    for i in 0..50 {
        let response = env
            .sign_in(
                &browser,
                &url,
                &format!("guess{}", i % 10),
                "wrong password",
            )
            .await;
        assert_eq!(response.status(), 401, "attempt {i}");
    }
    let response = env.sign_in(&browser, &url, "vic", PASSWORD).await;
    assert_eq!(response.status(), 429);
}

/// What someone types as a username never reaches the log raw: CR, LF and ESC in it cannot
/// forge a log line or drive a terminal.
async fn attempted_usernames_cannot_forge_log_lines(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let client = env.spa_client().await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    let forged = "mallory\r\n2026-01-01T00:00:00Z  INFO portcullis: FORGED signed in\u{1b}[2J";
    let response = env.sign_in(&browser(), &url, forged, "wrong").await;
    assert_eq!(response.status(), 401);
    // Not control characters, so this one reaches the "failed sign-in" line: U+2028 is a line
    // break to many log viewers, U+202E turns the rest of a line around.
    let unicode = "mallory\u{2028}FORGED\u{202e}";
    let response = env.sign_in(&browser(), &url, unicode, "wrong").await;
    assert_eq!(response.status(), 401);
    // The server's log is read by another thread: wait for the line.
    let mut logs = env.server.logs();
    for _ in 0..50 {
        if logs.contains("FORGED\\u{202e}") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        logs = env.server.logs();
    }
    assert!(logs.contains("failed sign-in"), "{logs}");
    assert!(!logs.contains('\u{1b}'), "an ESC byte reached the log");
    assert!(
        !logs.contains('\u{2028}') && !logs.contains('\u{202e}'),
        "{logs}"
    );
    assert!(
        logs.contains("mallory\\u{2028}FORGED"),
        "escaped, still readable:\n{logs}"
    );
    assert!(
        !logs.lines().any(|line| line.starts_with("2026-01-01")),
        "a forged line reached the log:\n{logs}"
    );
}

/// A burst of guesses for one username, the right password among them: no more than the limit
/// (5) are ever checked, however concurrent. (Which five is up to the network: the right one
/// gets in only if it is among them, so a guesser's chance stays five in the burst.)
/// A process of its own: the line of sign-ins waiting for a password hash is process-wide
/// (src/passwords.rs), and a sign-in turned away from it (503) would fail this test or another.
async fn a_burst_of_guesses_checks_no_more_than_the_limit(backend: Backend) {
    let env = TestEnv::start_process_with(backend, &[]).await;
    env.create_user("quincy").await;
    let browser = browser();
    let page = env.page(&browser, "/login").await;
    let csrf = hidden_field(&page, "csrf");
    let guesses = (0..40).map(|i| {
        let password = if i == 37 {
            PASSWORD.to_owned()
        } else {
            format!("guess {i}")
        };
        let (browser, csrf, url) = (&browser, &csrf, env.url("/login"));
        async move {
            let form = [
                ("username", "quincy"),
                ("password", password.as_str()),
                ("csrf", csrf.as_str()),
                ("continue", ""),
            ];
            let response = browser.post(url).form(&form).send().await.unwrap();
            response.status().as_u16()
        }
    });
    let statuses = futures::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s != 429).count();
    assert!(checked <= 5, "{checked} checked: {statuses:?}");
    assert!(
        statuses.iter().all(|s| matches!(s, 200 | 401 | 429)),
        "{statuses:?}"
    );
    // Only the right password, and only if it was among the five checked.
    let admitted: Vec<usize> = (0..statuses.len())
        .filter(|i| statuses[*i] == 200)
        .collect();
    assert!(admitted.is_empty() || admitted == [37], "{statuses:?}");
    // Locked: even the right password, alone, is refused (from a browser not signed in by the
    // burst).
    let (url, _) = env.authorize_url(&env.spa_client().await, "read", "s");
    assert_eq!(
        env.sign_in(&crate::common::flow::browser(), &url, "quincy", PASSWORD)
            .await
            .status(),
        429
    );
}

/// A form's CSRF token belongs to one browser's session: it changes at sign-in, and another
/// session's token is refused.
async fn csrf_tokens_are_bound_to_the_session(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("lea").await;
    env.create_user("max").await;
    let lea = browser();
    let before = hidden_field(&env.page(&lea, "/login").await, "csrf");
    let (_, lea_token) = env.login_directly(&lea, "lea", "").await;
    assert_ne!(before, lea_token, "the token changes at sign-in");
    let max = browser();
    let (_, max_token) = env.login_directly(&max, "max", "").await;
    assert_ne!(lea_token, max_token);

    let sign_out = |browser: &reqwest::Client, token: &str| {
        browser
            .post(env.url("/logout"))
            .form(&[("csrf", token.to_owned())])
            .send()
    };
    // The token from before sign-in, and the other session's, are refused.
    assert_eq!(sign_out(&lea, &before).await.unwrap().status(), 403);
    assert_eq!(sign_out(&lea, &max_token).await.unwrap().status(), 403);
    assert_eq!(sign_out(&lea, &lea_token).await.unwrap().status(), 200);
    // Signed out, the browser gets a new pre-sign-in cookie: the old token is dead for good.
    assert_eq!(sign_out(&lea, &before).await.unwrap().status(), 403);
}
