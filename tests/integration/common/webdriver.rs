//! A minimal W3C WebDriver client for Debian's chromedriver: just what the browser tests use.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use serde_json::{Value, json};

/// The W3C key under which an element reference is returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A headless Chromium session driven through chromedriver, or None when chromedriver is not
/// installed and PORTCULLIS_REQUIRE_BROWSER is not set (CI sets it, so CI never skips).
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Option<Browser> {
        let chromedriver = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists());
        let Some(chromedriver) = chromedriver else {
            assert!(
                std::env::var_os("PORTCULLIS_REQUIRE_BROWSER").is_none(),
                "PORTCULLIS_REQUIRE_BROWSER is set but chromedriver is not installed (apt-get install chromium chromium-driver)"
            );
            eprintln!("browser test skipped: chromedriver is not installed");
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        for _ in 0..100 {
            if http.get(format!("{base}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser {
            driver,
            base,
            http,
            _profile: profile,
        };
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            &format!("--user-data-dir={}", browser._profile.path().display()),
        ];
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": args},
        }}});
        let session = browser
            .call(reqwest::Method::POST, "/session", capabilities)
            .await;
        let id = session["sessionId"]
            .as_str()
            .expect("a WebDriver session")
            .to_owned();
        browser.base = format!("{}/session/{id}", browser.base);
        // Element look-ups wait for the element to appear, as a person would.
        browser
            .call(
                reqwest::Method::POST,
                "/timeouts",
                json!({"implicit": 5000}),
            )
            .await;
        Some(browser)
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        match self.try_call(method, path, body).await {
            Ok(value) => value,
            Err(error) => panic!("WebDriver {path}: {error}"),
        }
    }

    async fn try_call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Value,
    ) -> Result<Value, Value> {
        let request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        let request = if method == reqwest::Method::GET {
            request
        } else {
            request.json(&body)
        };
        let response: Value = request
            .send()
            .await
            .expect("chromedriver answers")
            .json()
            .await
            .unwrap();
        match response["value"].get("error") {
            None => Ok(response["value"].clone()),
            Some(_) => Err(response["value"].clone()),
        }
    }

    pub async fn goto(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url}))
            .await;
    }

    pub async fn current_url(&self) -> String {
        self.call(reqwest::Method::GET, "/url", Value::Null)
            .await
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn find(&self, css: &str) -> String {
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found[ELEMENT_KEY].as_str().unwrap().to_owned()
    }

    /// Types into the input that the `<label>` with this text is for, as a person would find it.
    pub async fn fill_labelled(&self, label: &str, text: &str) {
        let xpath = format!("//label[normalize-space()='{label}']");
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "xpath", "value": xpath}),
            )
            .await;
        let label_id = found[ELEMENT_KEY].as_str().unwrap();
        let target = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{label_id}/attribute/for"),
                Value::Null,
            )
            .await;
        let input = self
            .find(&format!(
                "#{}",
                target.as_str().expect("the label has a for attribute")
            ))
            .await;
        self.call(
            reqwest::Method::POST,
            &format!("/element/{input}/value"),
            json!({"text": text}),
        )
        .await;
    }

    /// Clicks the button with this text.
    pub async fn click_button(&self, text: &str) {
        let xpath = format!("//button[normalize-space()='{text}']");
        let found = self
            .call(
                reqwest::Method::POST,
                "/element",
                json!({"using": "xpath", "value": xpath}),
            )
            .await;
        let id = found[ELEMENT_KEY].as_str().unwrap().to_owned();
        self.call(
            reqwest::Method::POST,
            &format!("/element/{id}/click"),
            json!({}),
        )
        .await;
    }

    /// The text of the element matching `css`.
    pub async fn element_text(&self, css: &str) -> String {
        let id = self.find(css).await;
        let text = self
            .call(
                reqwest::Method::GET,
                &format!("/element/{id}/text"),
                Value::Null,
            )
            .await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// The page's text once it contains `expected`: a click that submits a form returns before
    /// the next page has loaded, so the text is read again until it shows (or 10 s pass).
    pub async fn wait_for_text(&self, expected: &str) -> String {
        let mut text = String::new();
        for _ in 0..100 {
            if let Ok(text_now) = self.try_page_text().await {
                text = text_now;
                if text.contains(expected) {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never showed {expected:?}; it shows:\n{text}");
    }

    async fn try_page_text(&self) -> Result<String, Value> {
        let query = json!({"using": "css selector", "value": "body"});
        let found = self
            .try_call(reqwest::Method::POST, "/element", query)
            .await?;
        let body = found[ELEMENT_KEY].as_str().unwrap_or_default().to_owned();
        let text = self
            .try_call(
                reqwest::Method::GET,
                &format!("/element/{body}/text"),
                Value::Null,
            )
            .await?;
        Ok(text.as_str().unwrap_or_default().to_owned())
    }

    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            reqwest::Method::POST,
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let encoded = self
            .call(reqwest::Method::GET, "/screenshot", Value::Null)
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().unwrap())
            .unwrap()
    }

    /// Waits until the current URL starts with `prefix`.
    pub async fn wait_for_url(&self, prefix: &str) -> String {
        for _ in 0..100 {
            let url = self.current_url().await;
            if url.starts_with(prefix) {
                return url;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the browser never reached {prefix}; it is at {}",
            self.current_url().await
        );
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session closes Chromium; killing chromedriver alone would leave it running.
        self.end_session();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Browser {
    /// `DELETE /session/{id}`, blocking: this runs in `drop`, also when a test fails.
    fn end_session(&self) {
        use std::io::{Read, Write};
        let Some((host, path)) = self
            .base
            .strip_prefix("http://")
            .and_then(|rest| rest.split_once('/'))
        else {
            return;
        };
        let Ok(mut stream) = std::net::TcpStream::connect(host) else {
            return;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let request = format!(
            "DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return;
        }
        // Until the whole response has come: chromedriver answers once Chromium has quit, but
        // keeps the connection open (reading to its end waited out the 10 s timeout).
        let mut received = Vec::new();
        let mut buffer = [0u8; 4096];
        while !is_whole_response(&received) {
            match stream.read(&mut buffer) {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buffer[..n]),
            }
        }
    }
}

/// Whether `received` holds a response's head and as much body as its Content-Length says.
fn is_whole_response(received: &[u8]) -> bool {
    let text = String::from_utf8_lossy(received);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok());
    // Without a length (chunked) the body ends with the connection: wait for it.
    length.is_some_and(|length| body.len() >= length)
}
