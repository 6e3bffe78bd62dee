//! Webhooks: audit events reach the endpoints that want them, signed as Standard Webhooks
//! prescribes, in order, retried until acknowledged, once each (a duplicate only of the
//! delivery a crash cut short), by one server at a time. Each endpoint here is a receiver in
//! the test that checks every signature itself.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{Backend, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    api_key_events_reach_the_endpoint_signed_once_and_in_order,
    an_endpoint_gets_only_the_actions_it_asked_for,
    a_failing_delivery_is_retried_and_later_events_wait_behind_it,
    a_server_killed_mid_delivery_leaves_it_to_the_next,
    a_stopping_server_hands_its_endpoints_over_at_once,
    two_replicas_never_deliver_an_event_twice,
    bad_endpoints_are_refused_and_the_secret_is_shown_once,
);

/// Quick retries, so that tests of failures take seconds.
const FAST_RETRIES: [&str; 4] = [
    "--webhook-first-retry-ms",
    "100",
    "--webhook-max-retry-delay-secs",
    "1",
];

/// One request the receiver took, in arrival order.
#[derive(Debug, Clone)]
struct Arrival {
    /// `webhook-id`.
    id: String,
    /// The body's `type`.
    action: String,
    /// The body's `data`: the event.
    event: Value,
    /// What the receiver answered.
    status: u16,
}

#[derive(Default)]
struct Inbox {
    /// Known once the endpoint is registered; until then requests are answered 503.
    secret: Option<String>,
    /// Answer 500 to this many more requests.
    failures_to_give: usize,
    /// Hold every request unanswered while set.
    stalled: bool,
    /// Take this long over each answer.
    delay: Duration,
    arrivals: Vec<Arrival>,
    /// Requests whose signature, timestamp or shape was wrong: must stay zero.
    refused: Vec<String>,
}

/// An HTTP server on 127.0.0.1 that verifies each delivery's signature with the endpoint's
/// secret, independently of Portcullis's code, and records it. Runs on a thread of its own,
/// so that it answers while the test blocks.
struct Receiver {
    url: String,
    inbox: Arc<Mutex<Inbox>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Receiver {
    fn start() -> Self {
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (bound, address) = std::sync::mpsc::channel();
        let state = Arc::clone(&inbox);
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                bound.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/hook", axum::routing::post(receive))
                    .with_state(state);
                tokio::select! {
                    _ = axum::serve(listener, app) => {}
                    _ = stopped => {}
                }
            });
        });
        let address = address.recv().unwrap();
        Self {
            url: format!("http://{address}/hook"),
            inbox,
            stop: Some(stop),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Inbox) -> T) -> T {
        f(&mut self.inbox.lock().unwrap())
    }

    fn arrivals(&self) -> Vec<Arrival> {
        self.with(|inbox| inbox.arrivals.clone())
    }

    /// The ids of the deliveries answered 2xx, in arrival order.
    fn acknowledged(&self) -> Vec<String> {
        self.arrivals()
            .into_iter()
            .filter(|a| a.status < 300)
            .map(|a| a.id)
            .collect()
    }

    /// Waits until `done` holds of the arrivals; panics after `limit`.
    async fn wait_until(&self, limit: Duration, done: impl Fn(&[Arrival]) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            let arrivals = self.arrivals();
            if done(&arrivals) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver waited {limit:?} in vain; it has {arrivals:#?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every one of `ids` has been acknowledged.
    async fn wait_for_all(&self, ids: &[String]) {
        self.wait_until(Duration::from_secs(30), |arrivals| {
            ids.iter()
                .all(|id| arrivals.iter().any(|a| &a.id == id && a.status < 300))
        })
        .await;
    }

    fn assert_all_signatures_good(&self) {
        let refused = self.with(|inbox| inbox.refused.clone());
        assert!(refused.is_empty(), "refused deliveries: {refused:?}");
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|stop| stop.send(()));
    }
}

async fn receive(
    axum::extract::State(inbox): axum::extract::State<Arc<Mutex<Inbox>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let Some(secret) = inbox.lock().unwrap().secret.clone() else {
        return StatusCode::SERVICE_UNAVAILABLE;
    };
    let (id, payload) = match verify(&secret, &headers, &body) {
        Ok(verified) => verified,
        Err(why) => {
            inbox.lock().unwrap().refused.push(why);
            return StatusCode::UNAUTHORIZED;
        }
    };
    let (status, delay) = {
        let mut inbox = inbox.lock().unwrap();
        let status = if inbox.failures_to_give > 0 {
            inbox.failures_to_give -= 1;
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::NO_CONTENT
        };
        inbox.arrivals.push(Arrival {
            id,
            action: payload["type"].as_str().unwrap_or_default().to_owned(),
            event: payload["data"].clone(),
            status: status.as_u16(),
        });
        (status, inbox.delay)
    };
    tokio::time::sleep(delay).await;
    while inbox.lock().unwrap().stalled {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    status
}

/// A receiver's check, written from the Standard Webhooks specification: the key is the
/// base64 after `whsec_`; the signature, one of the space-separated `v1,<base64>` in
/// `webhook-signature`, is HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`; the
/// timestamp is within five minutes. Returns the id and the parsed body.
fn verify(secret: &str, headers: &HeaderMap, body: &[u8]) -> Result<(String, Value), String> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .ok_or(format!("no {name}"))
    };
    let id = header("webhook-id")?;
    let timestamp = header("webhook-timestamp")?;
    let signatures = header("webhook-signature")?;
    if header("content-type")? != "application/json" {
        return Err("not JSON".into());
    }
    let sent: i64 = timestamp.parse().map_err(|_| "a bad timestamp")?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    if (now - sent).abs() > 300 {
        return Err(format!("timestamp {sent} is not now"));
    }
    let key = STANDARD
        .decode(secret.strip_prefix("whsec_").ok_or("not whsec_")?)
        .map_err(|_| "secret not base64")?;
    let key = hmac::Key::new(hmac::HMAC_SHA256, &key);
    let mut signed = format!("{id}.{timestamp}.").into_bytes();
    signed.extend_from_slice(body);
    let valid = signatures.split(' ').any(|signature| {
        signature
            .strip_prefix("v1,")
            .and_then(|tag| STANDARD.decode(tag).ok())
            .is_some_and(|tag| hmac::verify(&key, &signed, &tag).is_ok())
    });
    if !valid {
        return Err(format!("bad signature on {id}"));
    }
    let payload: Value = serde_json::from_slice(body).map_err(|_| "body not JSON")?;
    // The payload's own shape: the event, its type and time, and the id it is sent under.
    if payload["data"]["id"] != id.as_str()
        || payload["type"] != payload["data"]["action"]
        || payload["timestamp"] != payload["data"]["at"]
    {
        return Err(format!(
            "a payload that does not match its headers: {payload}"
        ));
    }
    Ok((id, payload))
}

/// Registers an endpoint at `receiver` for `actions` through the admin API on `env`'s server
/// and hands the receiver its secret; returns the endpoint's id.
async fn register(env: &TestEnv, receiver: &Receiver, actions: &[&str]) -> String {
    let response = env
        .admin(Method::POST, "/admin/webhooks")
        .json(&json!({ "url": receiver.url, "actions": actions }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{created}");
    receiver.with(|inbox| inbox.secret = Some(secret));
    created["id"].as_str().unwrap().to_owned()
}

/// The ids of the events recorded since endpoint `endpoint_id` was registered (its
/// registration included) whose action `wanted` picks, oldest first: the order they are
/// delivered in.
async fn events_since(
    env: &TestEnv,
    endpoint_id: &str,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let page: Value = env.admin_get("/admin/audit-events?limit=200").await;
    let mut events = page["events"].as_array().unwrap().clone();
    events.reverse();
    let registered = events
        .iter()
        .position(|e| e["action"] == "webhook.created" && e["target"] == endpoint_id)
        .expect("the endpoint's registration is recorded");
    events[registered..]
        .iter()
        .filter(|e| wanted(e["action"].as_str().unwrap()))
        .map(|e| e["id"].as_str().unwrap().to_owned())
        .collect()
}

/// Makes an API key through the admin API of the server at `base`; returns its id.
async fn create_key_at(env: &TestEnv, base: &str, name: &str) -> String {
    let response = env
        .http
        .post(format!("{base}/admin/api-keys"))
        .bearer_auth(&env.admin_key)
        .json(&json!({ "name": name, "scope": "read" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let key: Value = response.json().await.unwrap();
    key["id"].as_str().unwrap().to_owned()
}

async fn show(env: &TestEnv, endpoint_id: &str) -> Value {
    env.admin_get(&format!("/admin/webhooks/{endpoint_id}"))
        .await
}

/// How many times each id arrived.
fn counts(arrivals: &[Arrival]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for arrival in arrivals {
        *counts.entry(arrival.id.clone()).or_default() += 1;
    }
    counts
}

async fn api_key_events_reach_the_endpoint_signed_once_and_in_order(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let receiver = Receiver::start();
    let endpoint = register(&env, &receiver, &["api_key.*"]).await;

    let first = env
        .create_api_key(json!({"name": "one", "scope": "read"}))
        .await;
    let second = env
        .create_api_key(json!({"name": "two", "scope": "read"}))
        .await;
    env.create_client(json!({"grant_types": ["client_credentials"]}))
        .await;
    let renamed = env
        .admin(
            Method::PATCH,
            &format!("/admin/api-keys/{}", first["id"].as_str().unwrap()),
        )
        .json(&json!({"name": "one, renamed"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);
    env.revoke_api_key(first["id"].as_str().unwrap()).await;
    env.revoke_api_key(second["id"].as_str().unwrap()).await;

    let expected = events_since(&env, &endpoint, |a| a.starts_with("api_key.")).await;
    assert_eq!(expected.len(), 5, "two created, one updated, two revoked");
    receiver.wait_for_all(&expected).await;
    // Time for a duplicate to show, had there been one.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    receiver.assert_all_signatures_good();
    let arrivals = receiver.arrivals();
    let ids: Vec<&str> = arrivals.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, expected, "each once, in the order they happened");
    let actions: Vec<&str> = arrivals.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        actions,
        [
            "api_key.created",
            "api_key.created",
            "api_key.updated",
            "api_key.revoked",
            "api_key.revoked"
        ]
    );
    // The event as the audit log has it: who, on what, from where; never the key.
    let revoked = &arrivals[3].event;
    assert_eq!(revoked["target"], first["id"]);
    assert_eq!(revoked["actor"].as_str().unwrap().get(..4), Some("key_"));
    assert_eq!(revoked["ip"], "127.0.0.1");
    let bodies =
        serde_json::to_string(&arrivals.iter().map(|a| &a.event).collect::<Vec<_>>()).unwrap();
    assert!(!bodies.contains(first["key"].as_str().unwrap()));

    let shown = show(&env, &endpoint).await;
    assert_eq!(shown["deliveries"]["pending"], 0, "{shown}");
    assert_eq!(shown["deliveries"]["delivered"], 5, "{shown}");
}

async fn an_endpoint_gets_only_the_actions_it_asked_for(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let deletions = Receiver::start();
    let everything = Receiver::start();
    let deletions_id = register(&env, &deletions, &["client.deleted"]).await;
    let everything_id = register(&env, &everything, &["*"]).await;

    let client = env
        .create_client(json!({"grant_types": ["client_credentials"]}))
        .await;
    let client_id = client["client_id"].as_str().unwrap();
    env.create_api_key(json!({"name": "k", "scope": "read"}))
        .await;
    let deleted = env
        .admin(Method::DELETE, &format!("/admin/clients/{client_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    env.create_api_key(json!({"name": "after", "scope": "read"}))
        .await;

    // Its own registration first, then everything after.
    let all = events_since(&env, &everything_id, |_| true).await;
    let only_deletion = events_since(&env, &deletions_id, |a| a == "client.deleted").await;
    assert_eq!(only_deletion.len(), 1);
    everything.wait_for_all(&all).await;
    deletions.wait_for_all(&only_deletion).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let arrivals = deletions.arrivals();
    assert_eq!(arrivals.len(), 1, "{arrivals:#?}");
    assert_eq!(arrivals[0].action, "client.deleted");
    assert_eq!(arrivals[0].event["target"], client_id);
    let everything_got: Vec<String> = everything.arrivals().into_iter().map(|a| a.id).collect();
    assert_eq!(everything_got, all);
    let actions: Vec<String> = everything
        .arrivals()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(
        actions.contains(&"client.created".to_owned()),
        "{actions:?}"
    );
    deletions.assert_all_signatures_good();
    everything.assert_all_signatures_good();
}

async fn a_failing_delivery_is_retried_and_later_events_wait_behind_it(backend: Backend) {
    let env = TestEnv::start_with(backend, &FAST_RETRIES).await;
    let receiver = Receiver::start();
    receiver.with(|inbox| inbox.failures_to_give = usize::MAX);
    let endpoint = register(&env, &receiver, &["api_key.created"]).await;
    for name in ["first", "second", "third"] {
        env.create_api_key(json!({"name": name, "scope": "read"}))
            .await;
    }
    let expected = events_since(&env, &endpoint, |a| a == "api_key.created").await;
    assert_eq!(expected.len(), 3);

    // The first is refused again and again; the others wait behind it.
    receiver
        .wait_until(Duration::from_secs(20), |arrivals| arrivals.len() >= 4)
        .await;
    let refused = receiver.arrivals();
    assert!(refused.iter().all(|a| a.id == expected[0]), "{refused:#?}");
    let shown = show(&env, &endpoint).await;
    let next = &shown["deliveries"]["next"];
    assert_eq!(next["event_id"], expected[0].as_str(), "{shown}");
    assert!(next["attempts"].as_i64().unwrap() >= 3, "{shown}");
    assert_eq!(next["last_error"], "HTTP 500", "{shown}");
    assert_eq!(shown["deliveries"]["pending"], 3, "{shown}");

    // The endpoint recovers: the first arrives once more, acknowledged, then the others.
    receiver.with(|inbox| inbox.failures_to_give = 0);
    receiver.wait_for_all(&expected).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.assert_all_signatures_good();
    let arrivals = receiver.arrivals();
    let acknowledged = receiver.acknowledged();
    assert_eq!(acknowledged, expected, "{arrivals:#?}");
    let first_acknowledged = arrivals.iter().position(|a| a.status < 300).unwrap();
    assert!(
        arrivals[..=first_acknowledged]
            .iter()
            .all(|a| a.id == expected[0]),
        "nothing else was sent before the first was acknowledged: {arrivals:#?}"
    );
    assert_eq!(arrivals.len(), first_acknowledged + 3, "{arrivals:#?}");
}

async fn a_server_killed_mid_delivery_leaves_it_to_the_next(backend: Backend) {
    let args = [&FAST_RETRIES[..], &["--webhook-lease-secs", "2"]].concat();
    let mut env = TestEnv::start_process_with(backend, &args).await;
    let receiver = Receiver::start();
    receiver.with(|inbox| inbox.stalled = true);
    let endpoint = register(&env, &receiver, &["api_key.*"]).await;
    for name in ["first", "second", "third"] {
        env.create_api_key(json!({"name": name, "scope": "read"}))
            .await;
    }
    let expected = events_since(&env, &endpoint, |a| a.starts_with("api_key.")).await;
    assert_eq!(expected.len(), 3);
    receiver
        .wait_until(Duration::from_secs(10), |arrivals| !arrivals.is_empty())
        .await;

    // Another server starts; the first is killed while the receiver holds its request.
    let next = env.start_replica_with(&args);
    let killed = std::mem::replace(&mut env.server, next);
    drop(killed);
    receiver.with(|inbox| inbox.stalled = false);

    receiver.wait_for_all(&expected).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    receiver.assert_all_signatures_good();
    let arrivals = receiver.arrivals();
    let seen = counts(&arrivals);
    assert_eq!(
        seen[&expected[0]], 2,
        "the one in flight, again: {arrivals:#?}"
    );
    assert_eq!(seen[&expected[1]], 1, "{arrivals:#?}");
    assert_eq!(seen[&expected[2]], 1, "{arrivals:#?}");
    // Deduplicated by webhook-id, each once and in order.
    let mut deduplicated: Vec<String> = Vec::new();
    for arrival in &arrivals {
        if !deduplicated.contains(&arrival.id) {
            deduplicated.push(arrival.id.clone());
        }
    }
    assert_eq!(deduplicated, expected);
    let shown = show(&env, &endpoint).await;
    assert_eq!(shown["deliveries"]["pending"], 0, "{shown}");
}

async fn a_stopping_server_hands_its_endpoints_over_at_once(backend: Backend) {
    // A lease far longer than the test waits: only a release lets the next server in.
    let args = [&FAST_RETRIES[..], &["--webhook-lease-secs", "600"]].concat();
    let mut env = TestEnv::start_process_with(backend, &args).await;
    let receiver = Receiver::start();
    receiver.with(|inbox| inbox.failures_to_give = usize::MAX);
    let endpoint = register(&env, &receiver, &["api_key.created"]).await;
    env.create_api_key(json!({"name": "k", "scope": "read"}))
        .await;
    let expected = events_since(&env, &endpoint, |a| a == "api_key.created").await;
    receiver
        .wait_until(Duration::from_secs(10), |arrivals| !arrivals.is_empty())
        .await;

    let next = env.start_replica_with(&args);
    let stopping = std::mem::replace(&mut env.server, next);
    assert!(stopping.stop().success());
    receiver.with(|inbox| inbox.failures_to_give = 0);
    receiver
        .wait_until(Duration::from_secs(10), |arrivals| {
            arrivals
                .iter()
                .any(|a| a.id == expected[0] && a.status < 300)
        })
        .await;
}

async fn two_replicas_never_deliver_an_event_twice(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let replica = env.start_replica();
    // Slow receivers: a delivery takes long enough for both servers to look for work
    // while it is in flight.
    let receivers: Vec<Receiver> = (0..3).map(|_| Receiver::start()).collect();
    let mut endpoints = Vec::new();
    for receiver in &receivers {
        receiver.with(|inbox| inbox.delay = Duration::from_millis(300));
        endpoints.push(register(&env, receiver, &["api_key.created"]).await);
    }
    for i in 0..6 {
        let base = if i % 2 == 0 {
            &env.server.base
        } else {
            &replica.base
        };
        create_key_at(&env, base, &format!("key {i}")).await;
    }
    for (receiver, endpoint) in receivers.iter().zip(&endpoints) {
        let expected = events_since(&env, endpoint, |a| a == "api_key.created").await;
        assert_eq!(expected.len(), 6);
        receiver.wait_for_all(&expected).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    for (receiver, endpoint) in receivers.iter().zip(&endpoints) {
        receiver.assert_all_signatures_good();
        let expected = events_since(&env, endpoint, |a| a == "api_key.created").await;
        let ids: Vec<String> = receiver.arrivals().into_iter().map(|a| a.id).collect();
        assert_eq!(ids, expected, "each event once, in order");
    }
}

async fn bad_endpoints_are_refused_and_the_secret_is_shown_once(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let refused = [
        (
            json!({"url": "http://hooks.example.com/in", "actions": ["*"]}),
            "url must be https",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "actions": []}),
            "at least one action",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "actions": ["api_key.exploded"]}),
            "unknown action \"api_key.exploded\"",
        ),
        (
            json!({"url": "https://hooks.example.com/in", "actions": ["nope.*"]}),
            "unknown action \"nope.*\"",
        ),
        (json!({"url": "not a url", "actions": ["*"]}), "not a URL"),
    ];
    for (body, message) in refused {
        let response = env
            .admin(Method::POST, "/admin/webhooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "INVALID_INPUT");
        let said = error["error"]["message"].as_str().unwrap();
        assert!(said.contains(message), "{body}: {said}");
    }
    let unauthenticated = env
        .http
        .post(env.url("/admin/webhooks"))
        .json(&json!({"url": "https://hooks.example.com/in", "actions": ["*"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);

    // Registered through the API: the secret only in the answer to the registration.
    let response = env
        .admin(Method::POST, "/admin/webhooks")
        .json(
            &json!({"url": "https://hooks.example.com/in", "actions": ["api_key.*", "api_key.*"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.unwrap();
    let secret = created["secret"].as_str().unwrap();
    let id = created["id"].as_str().unwrap();
    assert!(id.starts_with("whk_"));
    assert_eq!(created["actions"], json!(["api_key.*"]));
    let listed: Value = env.admin_get("/admin/webhooks").await;
    assert_eq!(listed["webhooks"][0]["id"], id);
    let shown = show(&env, id).await;
    let audit = env
        .admin(Method::GET, &format!("/admin/audit-events?target={id}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(audit.contains("webhook.created"), "{audit}");
    for text in [
        listed.to_string(),
        shown.to_string(),
        audit,
        env.server.logs(),
    ] {
        assert!(!text.contains(secret), "the secret leaked: {text}");
    }

    // The CLI: the same rules, the same operations.
    let out = cli(
        &env.db,
        &env.keys_dir,
        &[
            "webhooks",
            "create",
            "--url",
            "http://10.0.0.1/",
            "--action",
            "*",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("url must be https"),
        "{out:?}"
    );
    let made = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "--json",
            "webhooks",
            "create",
            "--url",
            "http://127.0.0.1:9/in",
            "--action",
            "client.deleted",
        ],
    );
    let cli_id = made["id"].as_str().unwrap();
    assert!(made["secret"].as_str().unwrap().starts_with("whsec_"));
    let listed = cli_json(&env.db, &env.keys_dir, &["--json", "webhooks", "list"]);
    assert_eq!(listed["webhooks"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains("whsec_"));
    let shown = cli_json(
        &env.db,
        &env.keys_dir,
        &["--json", "webhooks", "show", cli_id],
    );
    assert_eq!(shown["deliveries"]["pending"], 0);
    cli_json(
        &env.db,
        &env.keys_dir,
        &["--json", "webhooks", "delete", cli_id],
    );

    // Deleted through the API: gone, and recorded.
    let deleted = env
        .admin(Method::DELETE, &format!("/admin/webhooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    for method in [Method::GET, Method::DELETE] {
        let gone = env
            .admin(method, &format!("/admin/webhooks/{id}"))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
    }
    let deletions: Value = env
        .admin_get("/admin/audit-events?action=webhook.deleted")
        .await;
    let actors: Vec<&str> = deletions["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["actor"].as_str().unwrap())
        .collect();
    assert_eq!(actors.len(), 2, "{deletions}");
    assert!(actors.contains(&"cli"), "{deletions}");
}
