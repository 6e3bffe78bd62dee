//! What an operator watches: request ids, the request log, and JSON logs.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::flow::{browser, hidden_field};
use crate::common::{Backend, Server, TestEnv};
use crate::on_both_databases;

on_both_databases!(
    request_ids_are_echoed_or_made,
    every_log_line_of_a_request_carries_its_id,
    json_logs_carry_the_request_id,
);

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
