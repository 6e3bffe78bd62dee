//! Per-key usage: every exchange and introspection of a key is counted in memory and added to
//! the key's row for the day every few seconds, by every server, and once more as a server
//! stops; shown by the admin API, the CLI and the account page.

use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::flow::browser;
use crate::common::{Backend, Server, TestEnv, cli, cli_json, introspect_at};
use crate::on_both_databases;

on_both_databases!(
    exchanges_and_introspections_are_counted_exactly,
    replicas_add_up_into_one_row,
    the_account_page_shows_todays_use,
    counts_survive_a_graceful_stop,
    the_next_utc_day_starts_at_zero,
    usage_past_the_audit_retention_is_pruned,
);

/// Longer than a few of the servers' write intervals (5 s), on a loaded machine.
const WRITTEN_WITHIN: Duration = Duration::from_secs(30);

/// `YYYY-MM-DD` of the day `days_ahead` days from now, UTC, by the system clock.
fn day(days_ahead: i64) -> String {
    let now = portcullis::clock::unix_now();
    portcullis::clock::UtcDay::of(now + days_ahead * 86_400).to_string()
}

/// Exchanges `key` for a token at the server at `base`; returns the status.
async fn exchange(env: &TestEnv, base: &str, key: &str, scope: Option<&str>) -> u16 {
    let mut form = vec![("grant_type", "client_credentials")];
    if let Some(scope) = scope {
        form.push(("scope", scope));
    }
    env.http
        .post(format!("{base}/token"))
        .basic_auth(key, Some(""))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// A service key with scope "read"; returns (key, id).
async fn service_key(env: &TestEnv, name: &str) -> (String, String) {
    let created = env
        .create_api_key(json!({"name": name, "scope": "read"}))
        .await;
    (
        created["key"].as_str().unwrap().to_owned(),
        created["id"].as_str().unwrap().to_owned(),
    )
}

/// `GET /admin/api-keys/{id}`'s `usage`: today's.
async fn usage_today(env: &TestEnv, id: &str) -> Value {
    let key = env.admin_get(&format!("/admin/api-keys/{id}")).await;
    key["usage"].clone()
}

/// `GET /admin/api-keys/{id}/usage?days=N`'s days.
async fn usage_days(env: &TestEnv, id: &str, days: u32) -> Vec<Value> {
    let response = env
        .admin(
            Method::GET,
            &format!("/admin/api-keys/{id}/usage?days={days}"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    body["days"].as_array().unwrap().clone()
}

/// Polls today's usage of `id` until it has `total` uses; returns it. Fails after
/// [`WRITTEN_WITHIN`], with the last answer.
async fn wait_for_total(env: &TestEnv, id: &str, total: u64) -> Value {
    let started = Instant::now();
    loop {
        let usage = usage_today(env, id).await;
        if usage["total"] == total {
            return usage;
        }
        assert!(
            started.elapsed() < WRITTEN_WITHIN,
            "usage never reached {total}: {usage}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Rows the database holds for the key.
async fn usage_rows(env: &TestEnv, id: &str) -> i64 {
    let pool = env.db.pool().await;
    let rows = sqlx::query_scalar("SELECT COUNT(*) FROM api_key_usage WHERE api_key_id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    rows
}

async fn exchanges_and_introspections_are_counted_exactly(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (key, id) = service_key(&env, "reporting").await;
    let (_, unused_id) = service_key(&env, "unused").await;
    let base = env.server.base.clone();
    for _ in 0..7 {
        assert_eq!(exchange(&env, &base, &key, None).await, 200);
    }
    for _ in 0..5 {
        assert_eq!(env.introspect(&key).await["active"], true);
    }
    // A refused exchange (a scope the key does not have) is not a use.
    assert_eq!(exchange(&env, &base, &key, Some("write")).await, 400);

    let usage = wait_for_total(&env, &id, 12).await;
    assert_eq!(usage["exchanges"], 7, "{usage}");
    assert_eq!(usage["introspections"], 5, "{usage}");
    assert_eq!(usage["day"], day(0));
    assert_eq!(usage["last_exchange_ip"], "127.0.0.1");
    assert!(usage["last_used_at"].as_i64().unwrap() >= usage["last_exchange_at"].as_i64().unwrap());
    // A key nobody used shows zeros; so does the admin key, which asked (its own requests,
    // to the admin API or introspecting, are not uses of the key it asked about).
    let listed: Value = env.admin_get("/admin/api-keys").await;
    let admin_id = listed["api_keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "admin")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for unused_id in [unused_id, admin_id] {
        let unused = usage_today(&env, &unused_id).await;
        assert_eq!(
            unused,
            json!({"day": day(0), "exchanges": 0, "introspections": 0, "total": 0,
                   "last_used_at": null, "last_exchange_at": null, "last_exchange_ip": null})
        );
    }

    // Written once: a later write adds only what came after.
    env.introspect(&key).await;
    let usage = wait_for_total(&env, &id, 13).await;
    assert_eq!(
        (
            usage["exchanges"].as_u64(),
            usage["introspections"].as_u64()
        ),
        (Some(7), Some(6))
    );
    assert_eq!(usage_days(&env, &id, 30).await, vec![usage]);

    // Day by day: 1 to 366 days, for a key that exists.
    let days_status = |query: &'static str, id: String| {
        let env = &env;
        async move {
            env.admin(Method::GET, &format!("/admin/api-keys/{id}/usage{query}"))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(days_status("", id.clone()).await, 200, "30 days by default");
    assert_eq!(days_status("?days=366", id.clone()).await, 200);
    for bad in ["?days=0", "?days=367", "?days=-1", "?days=many", "?weeks=2"] {
        assert_eq!(days_status(bad, id.clone()).await, 422, "{bad}");
    }
    assert_eq!(days_status("", "key_nonesuch".into()).await, 404);
    let without_admin = env
        .http
        .get(env.url(&format!("/admin/api-keys/{id}/usage")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        without_admin.status(),
        403,
        "a service key is not an admin key"
    );
}

async fn replicas_add_up_into_one_row(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let replica = Server::start(&env.db, &env.keys_dir, &[]);
    let (key, id) = service_key(&env, "shared").await;
    let (first, second) = (env.server.base.clone(), replica.base.clone());
    // Both servers count the key at once, each adding to the same row.
    for base in [&first, &second, &first, &second, &first, &second, &second] {
        assert_eq!(exchange(&env, base, &key, None).await, 200);
    }
    for server in [&env.server, &replica, &env.server, &replica, &replica] {
        introspect_at(&env.http, server, &env.admin_key, &key).await;
    }

    let usage = wait_for_total(&env, &id, 12).await;
    assert_eq!(usage["exchanges"], 7, "{usage}");
    assert_eq!(usage["introspections"], 5, "{usage}");
    assert_eq!(usage_rows(&env, &id).await, 1);
    // And either server reads the same.
    let at_replica: Value = env
        .http
        .get(replica.url(&format!("/admin/api-keys/{id}")))
        .bearer_auth(&env.admin_key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(at_replica["usage"], usage);
}

async fn the_account_page_shows_todays_use(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let user_id = env.create_user("gus").await;
    let other_id = env.create_user("hal").await;
    let personal = |name: &str, owner: &str| json!({"name": name, "scope": "read", "owner": {"user_id": owner}});
    let laptop = env.create_api_key(personal("laptop", &user_id)).await;
    let laptop_key = laptop["key"].as_str().unwrap().to_owned();
    env.create_api_key(personal("ci", &user_id)).await;
    let hals = env.create_api_key(personal("hal's", &other_id)).await;
    let hals_key = hals["key"].as_str().unwrap().to_owned();

    let browser = browser();
    env.login_directly(&browser, "gus", "/account/api-keys")
        .await;
    let page = env.page(&browser, "/account/api-keys").await;
    assert_eq!(page.matches("not used today").count(), 2, "{page}");

    // 1 exchange and 1,203 introspections, as a product's API checks each request's key.
    let base = env.server.base.clone();
    assert_eq!(exchange(&env, &base, &laptop_key, None).await, 200);
    futures::stream::iter(0..1203)
        .map(|_| env.introspect(&laptop_key))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    // Another person's use is theirs.
    assert_eq!(exchange(&env, &base, &hals_key, None).await, 200);

    wait_for_total(&env, laptop["id"].as_str().unwrap(), 1204).await;
    wait_for_total(&env, hals["id"].as_str().unwrap(), 1).await;
    let page = env.page(&browser, "/account/api-keys").await;
    assert!(
        page.contains("used 1,204 times today, last token request from 127.0.0.1"),
        "{page}"
    );
    assert_eq!(
        page.matches("not used today").count(),
        1,
        "the other key: {page}"
    );
    assert!(
        !page.contains("used once today"),
        "hal's key is not on gus's page"
    );
}

async fn counts_survive_a_graceful_stop(backend: Backend) {
    let mut env = TestEnv::start_process_with(backend, &[]).await;
    let (key, id) = service_key(&env, "batch job").await;
    let base = env.server.base.clone();
    for _ in 0..4 {
        assert_eq!(exchange(&env, &base, &key, None).await, 200);
    }
    for _ in 0..3 {
        env.introspect(&key).await;
    }
    // Stopped before its next write (every 5 s), almost always: the last counts are written
    // as it stops.
    env.server.terminate();
    let status = env.server.wait_for_exit(Duration::from_secs(20));
    assert_eq!(
        status.map(|s| s.success()),
        Some(true),
        "{}",
        env.server.logs()
    );

    // Read with the server gone: what the CLI shows is in the database.
    let shown = cli_json(&env.db, &env.keys_dir, &["api-keys", "show", &id, "--json"]);
    assert_eq!(shown["usage"]["exchanges"], 4, "{shown}");
    assert_eq!(shown["usage"]["introspections"], 3, "{shown}");
    assert_eq!(shown["usage"]["last_exchange_ip"], "127.0.0.1");
    let out = cli(&env.db, &env.keys_dir, &["api-keys", "show", &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "used today ({}): 7 (4 exchanges, 3 introspections)",
            day(0)
        )) && text.contains("last exchange from 127.0.0.1"),
        "{text}"
    );
}

async fn the_next_utc_day_starts_at_zero(backend: Backend) {
    let env = TestEnv::start(backend).await;
    let (key, id) = service_key(&env, "nightly").await;
    let base = env.server.base.clone();
    for _ in 0..2 {
        assert_eq!(exchange(&env, &base, &key, None).await, 200);
    }
    env.introspect(&key).await;
    let yesterday = wait_for_total(&env, &id, 3).await;

    env.advance_clock(86_400);
    let today = usage_today(&env, &id).await;
    assert_eq!(today["day"], day(1));
    assert_eq!(today["total"], 0, "{today}");
    assert_eq!(usage_days(&env, &id, 2).await, vec![yesterday.clone()]);
    assert_eq!(usage_days(&env, &id, 1).await, Vec::<Value>::new());

    env.introspect(&key).await;
    let today = wait_for_total(&env, &id, 1).await;
    assert_eq!(
        (today["day"].as_str(), today["introspections"].as_u64()),
        (Some(day(1).as_str()), Some(1))
    );
    assert_eq!(today["last_exchange_ip"], Value::Null, "no exchange today");
    assert_eq!(usage_days(&env, &id, 2).await, vec![today, yesterday]);
    assert_eq!(usage_rows(&env, &id).await, 2);
}

async fn usage_past_the_audit_retention_is_pruned(backend: Backend) {
    let env = TestEnv::start_with(
        backend,
        &["--audit-retention-days", "1", "--prune-interval-secs", "1"],
    )
    .await;
    let (key, id) = service_key(&env, "old").await;
    env.introspect(&key).await;
    wait_for_total(&env, &id, 1).await;

    // Two days on, the old day is past a day's retention; today's and yesterday's are kept.
    env.advance_clock(2 * 86_400);
    env.introspect(&key).await;
    wait_for_total(&env, &id, 1).await;
    let started = Instant::now();
    loop {
        let days = usage_days(&env, &id, 30).await;
        if days.len() == 1 {
            assert_eq!(days[0]["day"], day(2));
            break;
        }
        assert!(started.elapsed() < WRITTEN_WITHIN, "{days:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(usage_rows(&env, &id).await, 1);
}
