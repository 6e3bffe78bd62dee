//! Rate limits per API key and per client: exact counts on one server, headers on every
//! answer to a limited caller, the key's state in introspection, one budget across replicas
//! through Redis, and Redis lost and found mid-test.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, Response};
use serde_json::{Value, json};

use crate::common::{Backend, Client, Server, TestEnv, cli, cli_json};
use crate::on_both_databases;

on_both_databases!(
    a_key_gets_exactly_its_minute_then_429_with_headers,
    a_client_is_counted_only_once_it_authenticates,
    the_burst_spreads_a_minute,
    introspecting_a_key_counts_against_the_key_not_the_caller,
    plans_are_named_checked_and_defaulted,
    replicas_share_one_budget_through_redis,
    losing_redis_never_fails_a_request,
    the_cli_sets_plans_that_the_server_enforces,
);

/// `tiny`: 5 a minute, all at once; `steady`: 60 a minute, 2 at once; `roomy`: plenty.
const PLANS: &[&str] = &[
    "--rate-limit-plan",
    "tiny=5/min",
    "--rate-limit-plan",
    "steady=60/min,1000/day,burst=2",
    "--rate-limit-plan",
    "roomy=100000/min",
];

async fn exchange_at(env: &TestEnv, base: &str, key: &str) -> Response {
    env.http
        .post(format!("{base}/token"))
        .basic_auth(key, Some(""))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap()
}

async fn exchange(env: &TestEnv, key: &str) -> Response {
    exchange_at(env, &env.server.base, key).await
}

fn header(response: &Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
        .to_owned()
}

async fn key_on_plan(env: &TestEnv, plan: Option<&str>) -> (String, String) {
    let created = env
        .create_api_key(json!({"name": "limited", "rate_limit_plan": plan}))
        .await;
    assert_eq!(created["rate_limit_plan"], json!(plan));
    (
        created["id"].as_str().unwrap().to_owned(),
        created["key"].as_str().unwrap().to_owned(),
    )
}

async fn a_key_gets_exactly_its_minute_then_429_with_headers(backend: Backend) {
    let env = TestEnv::start_with(backend, PLANS).await;
    let (_, key) = key_on_plan(&env, Some("tiny")).await;
    // Line up with the start of a minute, so that the five fall in one window.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    env.advance_clock(60 - now % 60);

    for remaining in (0..5).rev() {
        let response = exchange(&env, &key).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ratelimit-limit"), "5");
        assert_eq!(
            header(&response, "x-ratelimit-remaining"),
            remaining.to_string()
        );
        assert_eq!(header(&response, "x-ratelimit-policy"), "5/minute");
        assert_eq!(header(&response, "ratelimit-policy"), "\"minute\";q=5;w=60");
        assert!(
            header(&response, "ratelimit").starts_with(&format!("\"minute\";r={remaining};t="))
        );
        let reset: i64 = header(&response, "x-ratelimit-reset").parse().unwrap();
        assert_eq!(reset % 60, 0, "the minute's end");
        assert!(response.headers().get("retry-after").is_none());
    }
    let refused = exchange(&env, &key).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    let retry_after: i64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(header(&refused, "cache-control"), "no-store");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .contains("5/minute")
    );

    // Another key has its own allowance; a key without a plan (and no default) has none.
    let (_, other) = key_on_plan(&env, Some("tiny")).await;
    assert_eq!(exchange(&env, &other).await.status(), 200);
    let (_, unlimited) = key_on_plan(&env, None).await;
    let response = exchange(&env, &unlimited).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().get("x-ratelimit-limit").is_none());

    // Refused requests were not counted: the next minute has all five again.
    env.advance_clock(60);
    for _ in 0..5 {
        assert_eq!(exchange(&env, &key).await.status(), 200);
    }
    assert_eq!(exchange(&env, &key).await.status(), 429);
}

async fn a_client_is_counted_only_once_it_authenticates(backend: Backend) {
    let env = TestEnv::start_with(backend, PLANS).await;
    let created = env
        .create_client(json!({
            "grant_types": ["client_credentials"],
            "rate_limit_plan": "tiny",
        }))
        .await;
    assert_eq!(created["rate_limit_plan"], "tiny");
    let client = Client::from_created(&created);
    let wrong = Client {
        secret: "not the secret".into(),
        ..client.clone()
    };
    // Someone who knows the client id but not the secret cannot spend its allowance.
    for _ in 0..10 {
        let response = env
            .token(Some(&wrong), &[("grant_type", "client_credentials")])
            .await;
        assert_eq!(response.status(), 401);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let response = env
            .token(Some(&client), &[("grant_type", "client_credentials")])
            .await;
        statuses.push(response.status().as_u16());
        assert_eq!(header(&response, "x-ratelimit-limit"), "5");
    }
    // Five in a minute, unless the minute turned over in the middle (then all six pass).
    let passed = statuses.iter().filter(|s| **s == 200).count();
    assert!(
        statuses == [200, 200, 200, 200, 200, 429] || passed == 6,
        "{statuses:?}"
    );
    // A refused request that authenticated counts too: an answer with an error still says
    // where the caller stands.
    env.advance_clock(60);
    let response = env
        .token(
            Some(&client),
            &[("grant_type", "client_credentials"), ("scope", "nope")],
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(header(&response, "x-ratelimit-remaining"), "4");
}

async fn the_burst_spreads_a_minute(backend: Backend) {
    let env = TestEnv::start_with(backend, PLANS).await;
    let (_, key) = key_on_plan(&env, Some("steady")).await;
    // Two at once, then one a second (60 a minute).
    assert_eq!(exchange(&env, &key).await.status(), 200);
    assert_eq!(exchange(&env, &key).await.status(), 200);
    let refused = exchange(&env, &key).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(
        header(&refused, "ratelimit-policy"),
        "\"minute\";q=60;w=60, \"day\";q=1000;w=86400"
    );
    env.advance_clock(1);
    assert_eq!(exchange(&env, &key).await.status(), 200);
}

async fn introspecting_a_key_counts_against_the_key_not_the_caller(backend: Backend) {
    let env = TestEnv::start_with(backend, PLANS).await;
    let (_, key) = key_on_plan(&env, Some("tiny")).await;
    // The resource server itself is on the tiny plan too, and is never counted for asking.
    let resource_server = Client::from_created(
        &env.create_client(json!({
            "grant_types": ["client_credentials"],
            "resource_server": true,
            "rate_limit_plan": "tiny",
        }))
        .await,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    env.advance_clock(60 - now % 60);
    let introspect = || async {
        let response = env
            .http
            .post(env.url("/introspect"))
            .basic_auth(&resource_server.id, Some(&resource_server.secret))
            .form(&[("token", key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.headers().get("x-ratelimit-limit").is_none());
        response.json::<Value>().await.unwrap()
    };
    for remaining in (0..5).rev() {
        let answer = introspect().await;
        assert_eq!(answer["active"], true);
        let limit = &answer["rate_limit"];
        assert_eq!(limit["limit"], 5);
        assert_eq!(limit["remaining"], remaining);
        assert_eq!(limit["policy"], "5/minute");
        assert_eq!(limit["exceeded"], false);
        assert_eq!(limit["reset"].as_i64().unwrap() % 60, 0);
    }
    // Over the limit the key is still valid: the request is what is over.
    for _ in 0..3 {
        let answer = introspect().await;
        assert_eq!(answer["active"], true);
        assert_eq!(answer["rate_limit"]["exceeded"], true);
        assert_eq!(answer["rate_limit"]["remaining"], 0);
    }
    // The key's exchanges share that allowance.
    assert_eq!(exchange(&env, &key).await.status(), 429);
    // A key without a plan is not limited, and says nothing of limits.
    let (_, unlimited) = key_on_plan(&env, None).await;
    let answer = env.introspect(&unlimited).await;
    assert_eq!(answer["active"], true);
    assert!(answer.get("rate_limit").is_none());
}

async fn plans_are_named_checked_and_defaulted(backend: Backend) {
    let mut args = PLANS.to_vec();
    args.extend(["--default-rate-limit-plan", "tiny"]);
    let env = TestEnv::start_with(backend, &args).await;

    // An unknown plan is refused where it is set, saying which plans there are.
    let response = env
        .admin(Method::POST, "/admin/api-keys")
        .json(&json!({"name": "k", "rate_limit_plan": "platinum"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "INVALID_INPUT");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("roomy, steady, tiny")
    );
    let response = env
        .admin(Method::POST, "/admin/clients")
        .json(&json!({"grant_types": ["client_credentials"], "rate_limit_plan": "platinum"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let response = env
        .http
        .post(env.url("/register"))
        .bearer_auth(&env.admin_key)
        .json(&json!({"grant_types": ["client_credentials"], "rate_limit_plan": "platinum"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client_metadata");
    let response = env
        .admin(Method::POST, "/admin/api-keys")
        .json(&json!({"name": "k", "rate_limit_plan": "Not A Name"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_client_error());

    // Without a plan of its own, a key gets the default; a PATCH sets one, null removes it.
    let (id, key) = key_on_plan(&env, None).await;
    let answer = env.introspect(&key).await;
    assert_eq!(answer["rate_limit"]["plan"], "tiny");
    let patch = |plan: Value| {
        env.admin(Method::PATCH, &format!("/admin/api-keys/{id}"))
            .json(&json!({"rate_limit_plan": plan}))
            .send()
    };
    let patched: Value = patch(json!("roomy")).await.unwrap().json().await.unwrap();
    assert_eq!(patched["rate_limit_plan"], "roomy");
    assert_eq!(env.introspect(&key).await["rate_limit"]["plan"], "roomy");
    assert_eq!(patch(json!("gold")).await.unwrap().status(), 422);
    let patched: Value = patch(Value::Null).await.unwrap().json().await.unwrap();
    assert_eq!(patched["rate_limit_plan"], Value::Null);
    assert_eq!(env.introspect(&key).await["rate_limit"]["plan"], "tiny");

    // Clients likewise, through the admin API's PATCH.
    let created = env
        .create_client(json!({"grant_types": ["client_credentials"]}))
        .await;
    assert_eq!(created["rate_limit_plan"], Value::Null);
    let client_id = created["client_id"].as_str().unwrap();
    let response = env
        .admin(Method::PATCH, &format!("/admin/clients/{client_id}"))
        .json(&json!({"rate_limit_plan": "steady"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let updated: Value = response.json().await.unwrap();
    assert_eq!(updated["rate_limit_plan"], "steady");

    // A registrar key cannot choose its clients' plan.
    let registrar = env
        .create_api_key(json!({"name": "partner", "kind": "registrar"}))
        .await;
    let response = env
        .http
        .post(env.url("/register"))
        .bearer_auth(registrar["key"].as_str().unwrap())
        .json(&json!({"grant_types": ["client_credentials"], "rate_limit_plan": "roomy"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
}

/// A Redis server of the test's own, on a free port, keeping nothing on disk.
struct OwnRedis {
    port: u16,
    child: Child,
}

impl OwnRedis {
    fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian's redis-server package)");
        let started = std::time::Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { port, child }
    }

    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Self::start_on(port)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn replicas_share_one_budget_through_redis(backend: Backend) {
    let redis = OwnRedis::start();
    let mut args = PLANS.to_vec();
    let url = redis.url();
    args.extend(["--redis-url", &url]);
    let env = TestEnv::start_with(backend, &args).await;
    let replica = Server::start(&env.db, &env.keys_dir, &args);
    let (_, key) = key_on_plan(&env, Some("tiny")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    if now % 60 > 50 {
        // Not across a minute's end (the replica keeps the system time).
        tokio::time::sleep(Duration::from_secs(61 - now % 60)).await;
    }
    let mut passed = 0;
    for i in 0..10 {
        let base = if i % 2 == 0 {
            &env.server.base
        } else {
            &replica.base
        };
        let response = exchange_at(&env, base, &key).await;
        if response.status() == 200 {
            passed += 1;
        } else {
            assert_eq!(response.status(), 429);
        }
    }
    assert_eq!(passed, 5, "five in all, not five on each server");
}

async fn losing_redis_never_fails_a_request(backend: Backend) {
    let mut redis = OwnRedis::start();
    let mut args = PLANS.to_vec();
    let url = redis.url();
    args.extend(["--redis-url", &url, "--redis-timeout-ms", "200"]);
    let env = TestEnv::start_with(backend, &args).await;
    let (id, key) = key_on_plan(&env, Some("tiny")).await;
    let (_, roomy) = key_on_plan(&env, Some("roomy")).await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    env.advance_clock(60 - now % 60);

    for _ in 0..3 {
        assert_eq!(exchange(&env, &key).await.status(), 200);
    }
    redis.kill();
    // Without Redis every request is still answered, and counted here instead: this server
    // had not counted the first three, so it lets five more through.
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(exchange(&env, &key).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 200, 200, 429, 429]);
    assert_eq!(exchange(&env, &roomy).await.status(), 200);
    assert!(
        env.server.logs().contains("Redis stopped answering"),
        "{}",
        env.server.logs()
    );

    // Back on the same port (empty: it kept nothing), the server finds it within seconds and
    // counts there again.
    let redis = OwnRedis::start_on(redis.port);
    let started = std::time::Instant::now();
    let reconnected = || {
        let logs = env.server.logs();
        let lost = logs.find("Redis stopped answering").unwrap();
        logs.rfind("rate limits are counted in Redis")
            .is_some_and(|found| found > lost)
    };
    while !reconnected() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{}",
            env.server.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.advance_clock(60);
    for _ in 0..5 {
        assert_eq!(exchange(&env, &key).await.status(), 200);
    }
    assert_eq!(exchange(&env, &key).await.status(), 429);
    let counted = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "HGET",
            &format!("portcullis:rate:key:{id}"),
            "mc",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&counted.stdout).trim(), "5");
}

async fn the_cli_sets_plans_that_the_server_enforces(backend: Backend) {
    let env = TestEnv::start_with(backend, PLANS).await;
    let (db, keys) = (&env.db, env.keys_dir.as_path());
    let created = cli_json(
        db,
        keys,
        &[
            "api-keys",
            "create",
            "--name",
            "cli",
            "--rate-limit-plan",
            "steady",
            "--json",
        ],
    );
    assert_eq!(created["rate_limit_plan"], "steady");
    let key = created["key"].as_str().unwrap();
    assert_eq!(exchange(&env, key).await.status(), 200);
    assert_eq!(exchange(&env, key).await.status(), 200);
    assert_eq!(
        exchange(&env, key).await.status(),
        429,
        "steady's burst is 2"
    );

    let client = cli_json(
        db,
        keys,
        &[
            "clients",
            "create",
            "--name",
            "b",
            "--grant-type",
            "client_credentials",
            "--rate-limit-plan",
            "tiny",
            "--json",
        ],
    );
    assert_eq!(client["rate_limit_plan"], "tiny");
    let id = client["client_id"].as_str().unwrap();
    let updated = cli_json(
        db,
        keys,
        &[
            "clients",
            "update",
            id,
            "--default-rate-limit-plan",
            "--json",
        ],
    );
    assert_eq!(updated["rate_limit_plan"], Value::Null);
    let shown = cli(db, keys, &["clients", "show", id]);
    assert!(String::from_utf8_lossy(&shown.stdout).contains("the servers' default"));

    // The CLI checks the name's form (it cannot see the servers' plans).
    let refused = cli(
        db,
        keys,
        &[
            "api-keys",
            "create",
            "--name",
            "x",
            "--rate-limit-plan",
            "Gold Plan",
        ],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("rate-limit plan name"));
}
