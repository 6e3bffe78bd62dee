//! The authorization-code flow as a browser and an app would drive it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::Method;
use serde_json::{Value, json};

use super::{Client, TestEnv};

pub const PASSWORD: &str = "correct horse battery";
pub const REDIRECT_URI: &str = "http://localhost:3000/callback";

/// A token response's body; fails the test on anything but a 200.
pub async fn tokens(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    response.json().await.unwrap()
}

/// An OAuth error response's status and `error` code.
pub async fn error(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    (status, body["error"].as_str().unwrap().to_owned())
}

/// A browser: keeps cookies, does not follow redirects (the test reads each one).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce_pair() -> (String, String) {
    let verifier = portcullis::secrets::random_base62(64);
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    (verifier, URL_SAFE_NO_PAD.encode(digest))
}

/// The value of a hidden form field in a page, unescaped.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in:\n{html}"))
        + marker.len();
    let end = start + html[start..].find('"').unwrap();
    unescape_html(&html[start..end])
}

/// Decodes the entities a template escaper writes: `&#NN;`, `&#xNN;` and the named five.
fn unescape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else { break };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ if entity.starts_with("#x") => u32::from_str_radix(&entity[2..], 16)
                .ok()
                .and_then(char::from_u32),
            _ if entity.starts_with('#') => entity[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// A query parameter of a redirect's Location.
pub fn location_param(response: &reqwest::Response, name: &str) -> Option<String> {
    let location = response.headers().get("location")?.to_str().ok()?;
    let url = url::Url::parse(location).ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

impl TestEnv {
    /// Creates a user through the admin API; returns its id.
    pub async fn create_user(&self, username: &str) -> String {
        let response = self
            .admin(Method::POST, "/admin/users")
            .json(&json!({"username": username, "password": PASSWORD, "email": format!("{username}@example.com")}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let user: Value = response.json().await.unwrap();
        user["id"].as_str().unwrap().to_owned()
    }

    /// A public SPA client (PKCE, no secret) allowed refresh tokens, scope "read write".
    pub async fn spa_client(&self) -> Client {
        let created = self
            .create_client(json!({
                "client_name": "Photo App",
                "redirect_uris": [REDIRECT_URI],
                "grant_types": ["authorization_code", "refresh_token"],
                "token_endpoint_auth_method": "none",
                "scope": "read write",
            }))
            .await;
        Client::from_created(&created)
    }

    /// `/authorize?…` for `client` with a fresh PKCE pair; returns (url, verifier).
    pub fn authorize_url(&self, client: &Client, scope: &str, state: &str) -> (String, String) {
        let (verifier, challenge) = pkce_pair();
        let mut url = url::Url::parse(&self.url("/authorize")).unwrap();
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &client.id)
            .append_pair("redirect_uri", REDIRECT_URI)
            .append_pair("scope", scope)
            .append_pair("state", state)
            .append_pair("code_challenge", &challenge)
            .append_pair("code_challenge_method", "S256");
        (url.to_string(), verifier)
    }

    /// Signs `username` in on the login page that `authorize_url` shows.
    pub async fn sign_in(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = browser
            .get(authorize_url)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        browser
            .post(self.url("/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf", &hidden_field(&page, "csrf")),
                ("continue", &hidden_field(&page, "continue")),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The text of the page at `path`, as `browser` gets it.
    pub async fn page(&self, browser: &reqwest::Client, path: &str) -> String {
        let response = browser.get(self.url(path)).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// Signs in on `/login` itself (not within an authorization), continuing to `continue_to`;
    /// returns the response and the browser's CSRF token: once signed in, the session's (the
    /// token changes at sign-in).
    pub async fn login_directly(
        &self,
        browser: &reqwest::Client,
        username: &str,
        continue_to: &str,
    ) -> (reqwest::Response, String) {
        let page = self.page(browser, "/login").await;
        let csrf = hidden_field(&page, "csrf");
        let form = [
            ("username", username),
            ("password", PASSWORD),
            ("csrf", &csrf),
            ("continue", continue_to),
        ];
        let response = browser
            .post(self.url("/login"))
            .form(&form)
            .send()
            .await
            .unwrap();
        let after = self.page(browser, "/login").await;
        if after.contains("You are signed in") {
            return (response, hidden_field(&after, "csrf"));
        }
        (response, csrf)
    }

    /// Answers the consent page that `authorize_url` shows with `decision`; returns the redirect.
    pub async fn consent(
        &self,
        browser: &reqwest::Client,
        authorize_url: &str,
        decision: &str,
    ) -> reqwest::Response {
        let page = browser.get(authorize_url).send().await.unwrap();
        assert_eq!(page.status(), 200);
        let page = page.text().await.unwrap();
        browser
            .post(self.url("/authorize"))
            .form(&[
                ("request", hidden_field(&page, "request").as_str()),
                ("csrf", &hidden_field(&page, "csrf")),
                ("decision", decision),
            ])
            .send()
            .await
            .unwrap()
    }

    /// The whole front channel: sign in, allow, return the code and the PKCE verifier.
    pub async fn authorization_code(
        &self,
        client: &Client,
        username: &str,
        scope: &str,
    ) -> (String, String) {
        let browser = browser();
        let (url, verifier) = self.authorize_url(client, scope, "state-1");
        let signed_in = self.sign_in(&browser, &url, username, PASSWORD).await;
        assert_eq!(signed_in.status(), 303);
        // Consent asked once per client and scope; after that, straight back.
        let answer = browser.get(&url).send().await.unwrap();
        let redirect = if answer.status() == 200 {
            self.consent(&browser, &url, "allow").await
        } else {
            answer
        };
        assert!(redirect.status().is_redirection());
        assert_eq!(
            location_param(&redirect, "state").as_deref(),
            Some("state-1")
        );
        (location_param(&redirect, "code").expect("a code"), verifier)
    }

    /// Redeems a code as a public client.
    pub async fn redeem(&self, client: &Client, code: &str, verifier: &str) -> reqwest::Response {
        let form = [
            ("grant_type", "authorization_code"),
            ("client_id", client.id.as_str()),
            ("code", code),
            ("code_verifier", verifier),
            ("redirect_uri", REDIRECT_URI),
        ];
        self.token(None, &form).await
    }

    /// A new user `username` signed in to a new SPA client with scope "read write"; returns
    /// the client and the first refresh token.
    pub async fn first_refresh_token(&self, username: &str) -> (Client, String) {
        self.create_user(username).await;
        let client = self.spa_client().await;
        let (code, verifier) = self
            .authorization_code(&client, username, "read write")
            .await;
        let first = tokens(self.redeem(&client, &code, &verifier).await).await;
        (client, first["refresh_token"].as_str().unwrap().to_owned())
    }

    /// Refreshes as a public client.
    pub async fn refresh(
        &self,
        client: &Client,
        refresh_token: &str,
        scope: Option<&str>,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "refresh_token"),
            ("client_id", client.id.as_str()),
            ("refresh_token", refresh_token),
        ];
        if let Some(scope) = scope {
            form.push(("scope", scope));
        }
        self.token(None, &form).await
    }
}
