//! What an operator watches: Prometheus metrics on their own listener, request ids, and JSON
//! logs.
//!
//! The metrics recorder is global to a process, and the in-process servers of other tests
//! count into it too: the tests that read counts run their server as a child process, where
//! every count is this test's own and can be checked exactly.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::flow::{PASSWORD, browser, hidden_field, tokens};
use crate::common::{Backend, Server, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    metrics_count_tokens_introspections_and_sign_ins,
    metrics_count_refreshes_reuse_and_throttled_sign_ins,
    metrics_are_off_by_default,
    request_ids_are_echoed_or_made,
    every_log_line_of_a_request_carries_its_id,
    json_logs_carry_the_request_id,
);

/// One scrape: each sample's value by its name and labels (see [`sample`]).
struct Scrape {
    samples: BTreeMap<String, f64>,
    text: String,
}

/// `name{a="x",b="y"}` with the labels in order of their names: how samples are looked up,
/// whatever order the exporter writes them in.
fn sample(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels = labels.to_vec();
    labels.sort();
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", labels.join(","))
}

impl Scrape {
    async fn of(server: &Server) -> Self {
        let response = reqwest::get(server.metrics_url()).await.unwrap();
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap();
        assert!(
            content_type.starts_with("text/plain; version=0.0.4"),
            "{content_type}"
        );
        let text = response.text().await.unwrap();
        let mut samples = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => (name, labels.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels: Vec<(&str, &str)> = labels
                .split(',')
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once('=').unwrap();
                    (k, v.trim_matches('"'))
                })
                .collect();
            samples.insert(sample(name, &labels), value.parse().unwrap());
        }
        Self { samples, text }
    }

    /// A sample's value; 0 when the series does not exist yet.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .get(&sample(name, labels))
            .copied()
            .unwrap_or(0.0)
    }

    /// How much a sample grew since `before`.
    fn grew(&self, before: &Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels) - before.get(name, labels)
    }
}

async fn metrics_count_tokens_introspections_and_sign_ins(backend: Backend) {
    let env = TestEnv::start_process_with(backend, &["--metrics-bind", "127.0.0.1:0"]).await;
    let client = env.service_client().await;
    env.create_user("mia").await;
    let before = Scrape::of(&env.server).await;

    let token = tokens(
        env.token(Some(&client), &[("grant_type", "client_credentials")])
            .await,
    )
    .await;
    let access_token = token["access_token"].as_str().unwrap();
    assert_eq!(env.introspect(access_token).await["active"], true);
    assert_eq!(env.introspect("not-a-token").await["active"], false);
    let spa = env.spa_client().await;
    let (url, _) = env.authorize_url(&spa, "read", "s");
    let failed = env.sign_in(&browser(), &url, "mia", "wrong password").await;
    assert_eq!(failed.status(), 401);
    // A path no route matches is counted as `unmatched`, never by its path.
    let stray = env.http.get(env.url("/no/such/path-7q")).send().await;
    assert_eq!(stray.unwrap().status(), 404);

    let after = Scrape::of(&env.server).await;
    let grew = |name: &str, labels: &[(&str, &str)]| after.grew(&before, name, labels);
    assert_eq!(
        grew(
            "portcullis_tokens_issued_total",
            &[("grant", "client_credentials")]
        ),
        1.0
    );
    let introspections = "portcullis_introspections_total";
    let active_access_token = [("active", "true"), ("token_type", "access_token")];
    assert_eq!(grew(introspections, &active_access_token), 1.0);
    let inactive_other = [("active", "false"), ("token_type", "other")];
    assert_eq!(grew(introspections, &inactive_other), 1.0);
    let sign_ins = "portcullis_sign_ins_total";
    assert_eq!(grew(sign_ins, &[("result", "bad_credentials")]), 1.0);
    assert_eq!(grew(sign_ins, &[("result", "success")]), 0.0);

    // Requests by route (the nested admin routes too) and status, with their latency.
    let token_ok = [("method", "POST"), ("route", "/token"), ("status", "200")];
    assert_eq!(grew("portcullis_http_requests_total", &token_ok), 1.0);
    let histogram = "portcullis_http_request_duration_seconds";
    assert_eq!(grew(&format!("{histogram}_count"), &token_ok), 1.0);
    assert!(grew(&format!("{histogram}_sum"), &token_ok) > 0.0);
    let inf_bucket = [token_ok.as_slice(), &[("le", "+Inf")]].concat();
    assert_eq!(grew(&format!("{histogram}_bucket"), &inf_bucket), 1.0);
    let introspect_ok = [
        ("method", "POST"),
        ("route", "/introspect"),
        ("status", "200"),
    ];
    assert_eq!(grew("portcullis_http_requests_total", &introspect_ok), 2.0);
    let login_refused = [("method", "POST"), ("route", "/login"), ("status", "401")];
    assert_eq!(grew("portcullis_http_requests_total", &login_refused), 1.0);
    let client_created = [
        ("method", "POST"),
        ("route", "/admin/clients"),
        ("status", "201"),
    ];
    assert_eq!(grew("portcullis_http_requests_total", &client_created), 1.0);
    let unmatched = [("method", "GET"), ("route", "unmatched"), ("status", "404")];
    assert_eq!(grew("portcullis_http_requests_total", &unmatched), 1.0);
    assert!(!after.text.contains("path-7q"), "{}", after.text);

    // Sampled at each scrape: the pool, the signing key; and the build.
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        after.get("portcullis_build_info", &[("version", version)]),
        1.0
    );
    let max = after.get("portcullis_db_pool_max_connections", &[]);
    let open = after.get("portcullis_db_pool_connections", &[]);
    let idle = after.get("portcullis_db_pool_idle_connections", &[]);
    assert!(
        max > 0.0 && open >= 1.0 && open <= max && idle <= open,
        "{}",
        after.text
    );
    // The key was made for this test run: seconds or minutes old, not never.
    for gauge in [
        "portcullis_signing_key_age_seconds",
        "portcullis_signing_key_active_seconds",
    ] {
        assert!(after.text.contains(&format!("\n{gauge} ")), "{gauge}");
        assert!((0.0..3600.0).contains(&after.get(gauge, &[])), "{gauge}");
    }

    // The main listener does not serve them.
    let main = env.http.get(env.url("/metrics")).send().await.unwrap();
    assert_eq!(main.status(), 404);
}

async fn metrics_count_refreshes_reuse_and_throttled_sign_ins(backend: Backend) {
    // Any second use of a refresh token is reuse.
    let args = [
        "--metrics-bind",
        "127.0.0.1:0",
        "--refresh-retry-window-secs",
        "0",
    ];
    let env = TestEnv::start_process_with(backend, &args).await;
    let before = Scrape::of(&env.server).await;

    let (client, first) = env.first_refresh_token("noor").await;
    tokens(env.refresh(&client, &first, None).await).await;
    let reused = env.refresh(&client, &first, None).await;
    assert_eq!(reused.status(), 400);
    env.create_user("omar").await;
    let (url, _) = env.authorize_url(&client, "read", "s");
    let browser = browser();
    for _ in 0..5 {
        let failed = env.sign_in(&browser, &url, "omar", "wrong password").await;
        assert_eq!(failed.status(), 401);
    }
    let throttled = env.sign_in(&browser, &url, "omar", PASSWORD).await;
    assert_eq!(throttled.status(), 429);

    let after = Scrape::of(&env.server).await;
    let grew = |name: &str, labels: &[(&str, &str)]| after.grew(&before, name, labels);
    let issued = "portcullis_tokens_issued_total";
    assert_eq!(grew(issued, &[("grant", "authorization_code")]), 1.0);
    assert_eq!(grew(issued, &[("grant", "refresh_token")]), 1.0);
    assert_eq!(
        grew(
            "portcullis_reuse_detected_total",
            &[("credential", "refresh_token")]
        ),
        1.0
    );
    let sign_ins = "portcullis_sign_ins_total";
    assert_eq!(grew(sign_ins, &[("result", "success")]), 1.0);
    assert_eq!(grew(sign_ins, &[("result", "bad_credentials")]), 5.0);
    assert_eq!(grew(sign_ins, &[("result", "throttled")]), 1.0);
}

async fn metrics_are_off_by_default(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let response = env.http.get(env.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert!(!env.server.logs().contains("metrics at "));
}

/// The `X-Request-Id` of a response.
fn request_id_of(response: &reqwest::Response) -> String {
    response
        .headers()
        .get("x-request-id")
        .expect("an X-Request-Id on every response")
        .to_str()
        .unwrap()
        .to_owned()
}

/// A generated id: 22 base62 characters (128 bits).
fn is_generated(id: &str) -> bool {
    id.len() == 22 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn request_ids_are_echoed_or_made(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let get = |id: Option<&str>| {
        let mut request = env.http.get(env.url("/healthz"));
        if let Some(id) = id {
            request = request.header("x-request-id", id);
        }
        request.send()
    };

    for sent in [
        "f3a9c1e2-7b4d-4e8a-9f00-1c2d3e4f5a6b",
        "Root=1-5759e988-bd862e3fe1be46a994272793",
        &"a".repeat(128),
    ] {
        let response = get(Some(sent)).await.unwrap();
        assert_eq!(request_id_of(&response), sent);
    }

    let first = request_id_of(&get(None).await.unwrap());
    let second = request_id_of(&get(None).await.unwrap());
    assert!(is_generated(&first) && is_generated(&second), "{first}");
    assert_ne!(first, second);

    // Too long, or with characters that could break a log line: replaced.
    for unusable in [
        "a".repeat(129),
        "two words".into(),
        "quote\"d".into(),
        "{json}".into(),
    ] {
        let response = get(Some(&unusable)).await.unwrap();
        let id = request_id_of(&response);
        assert!(is_generated(&id), "{unusable:?} became {id:?}");
    }

    // On refusals and errors too, whatever answers them.
    let not_found = env.http.get(env.url("/nowhere")).send().await.unwrap();
    assert_eq!(not_found.status(), 404);
    assert!(is_generated(&request_id_of(&not_found)));
    let refused = env
        .http
        .post(env.url("/token"))
        .header("x-request-id", "refused-1")
        .basic_auth("nobody", Some("nothing"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(request_id_of(&refused), "refused-1");
}

/// Signs in as `username` with a wrong password on `/login`, sending `request_id`.
async fn failed_sign_in_with_id(env: &TestEnv, username: &str, request_id: &str) {
    let browser = browser();
    let page = env.page(&browser, "/login").await;
    let response = browser
        .post(env.url("/login"))
        .header("x-request-id", request_id)
        .form(&[
            ("username", username),
            ("password", "wrong password"),
            ("csrf", &hidden_field(&page, "csrf")),
            ("continue", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(request_id_of(&response), request_id);
}

/// The server's logs once they contain `wanted` (another thread reads them).
async fn logs_with(server: &Server, wanted: &str) -> String {
    for _ in 0..100 {
        let logs = server.logs();
        if logs.contains(wanted) {
            return logs;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no {wanted:?} in the logs:\n{}", server.logs());
}

async fn every_log_line_of_a_request_carries_its_id(backend: Backend) {
    let env = TestEnv::start(backend).await;
    env.create_user("pia").await;
    failed_sign_in_with_id(&env, "pia", "sign-in-7f3").await;

    let logs = logs_with(&env.server, "status=401").await;
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("request_id=\"sign-in-7f3\""))
        .collect();
    // What the handler logged, and the request log's line, both in the request's span.
    assert!(lines.iter().any(|l| l.contains("failed sign-in")), "{logs}");
    let answered = lines
        .iter()
        .find(|l| l.contains("answered"))
        .unwrap_or_else(|| panic!("no response line:\n{logs}"));
    assert!(answered.contains("method=POST"), "{answered}");
    assert!(answered.contains("route=\"/login\""), "{answered}");
    assert!(answered.contains("status=401"), "{answered}");
    assert!(answered.contains("latency_us="), "{answered}");
}

async fn json_logs_carry_the_request_id(backend: Backend) {
    let env = TestEnv::start_process_with(backend, &["--log-format", "json"]).await;
    env.create_user("quinn").await;
    failed_sign_in_with_id(&env, "quinn", "json-5e1").await;
    let generated = request_id_of(&env.http.get(env.url("/healthz")).send().await.unwrap());

    let logs = logs_with(&env.server, &generated).await;
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    for line in &lines {
        assert!(
            line["timestamp"].is_string() && line["level"].is_string(),
            "{line}"
        );
    }
    let of_request = |id: &str| -> Vec<&Value> {
        lines
            .iter()
            .filter(|l| l["span"]["request_id"] == id)
            .collect()
    };
    let sign_in = of_request("json-5e1");
    assert!(
        sign_in.iter().any(|l| l["message"] == "failed sign-in"),
        "{logs}"
    );
    let answered = sign_in
        .iter()
        .find(|l| l["message"] == "answered")
        .unwrap_or_else(|| panic!("no response line:\n{logs}"));
    assert_eq!(answered["status"], 401);
    assert!(answered["latency_us"].is_u64());
    assert_eq!(
        answered["span"],
        json!({"name": "request", "request_id": "json-5e1", "method": "POST", "route": "/login"})
    );
    let health = of_request(&generated);
    assert!(
        health
            .iter()
            .any(|l| l["message"] == "answered" && l["status"] == 200),
        "{logs}"
    );
}
