//! On PostgreSQL, a server answers credential checks from its cache while it holds a lease,
//! and a credential change is reported done only once every server with a live lease has seen
//! it (src/credentials/leases.rs).

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::proxy::Proxy;
use crate::common::{
    Backend, Server, TestDb, TestEnv, cli, cli_json, introspect_at, keys_dir_with_signing_key,
};

const LIVE_LEASES: &str = "SELECT COUNT(*) FROM credential_watchers \
     WHERE lease_expires_ms > (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// Revokes a key through the admin API; returns how long that took.
async fn revoke(env: &TestEnv, id: &str) -> Duration {
    let started = Instant::now();
    env.revoke_api_key(id).await;
    started.elapsed()
}

async fn live_leases(db: &TestDb) -> i64 {
    sqlx::query_scalar(LIVE_LEASES)
        .fetch_one(&db.pool().await)
        .await
        .unwrap()
}

/// One server on a fresh PostgreSQL database that it reaches through a proxy, and an admin key.
struct BehindProxy {
    db: TestDb,
    proxy: Proxy,
    server: Server,
    keys: tempfile::TempDir,
    admin_key: String,
}

impl BehindProxy {
    async fn start() -> Self {
        let db = TestDb::new(Backend::Postgres).await;
        let (proxy, proxied) = Proxy::in_front_of(&db).await;
        let keys = keys_dir_with_signing_key();
        let server = Server::start_process(&proxied, keys.path(), &[]);
        let admin = cli_json(
            &db,
            keys.path(),
            &["api-keys", "create", "--name", "ops", "--admin", "--json"],
        );
        Self {
            admin_key: admin["key"].as_str().unwrap().to_owned(),
            db,
            proxy,
            server,
            keys,
        }
    }
}

/// Waits up to 10 s for the one server on `db` to hold a lease.
async fn wait_for_one_live_lease(db: &TestDb) {
    let mut leases = 0;
    for _ in 0..100 {
        leases = live_leases(db).await;
        if leases == 1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{leases} live leases, not one");
}

// Multi-threaded: the proxy must keep forwarding while the harness blocks on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leased_server_checks_keys_without_asking_the_database() {
    let BehindProxy {
        db,
        proxy,
        server,
        keys,
        admin_key,
    } = BehindProxy::start().await;
    let admin_key = admin_key.as_str();
    let service = cli_json(
        &db,
        keys.path(),
        &[
            "api-keys", "create", "--name", "job", "--scope", "read", "--json",
        ],
    );
    let key = service["key"].as_str().unwrap();
    let http = reqwest::Client::new();

    wait_for_one_live_lease(&db).await;
    // The first checks load both keys and record their use.
    assert_eq!(
        introspect_at(&http, &server, admin_key, key).await["active"],
        true
    );

    let requests = 300;
    let before = proxy.sent_to_database();
    for _ in 0..requests {
        assert_eq!(
            introspect_at(&http, &server, admin_key, key).await["active"],
            true
        );
    }
    let sent = proxy.sent_to_database() - before;
    // Any query per request would send tens of bytes each; lease renewals send a few hundred
    // bytes a second.
    assert!(
        sent < requests * 10,
        "{sent} bytes sent to the database for {requests} introspections"
    );

    // Still, a revocation through the CLI is seen by the very next request.
    let revoked = cli(
        &db,
        keys.path(),
        &["api-keys", "revoke", service["id"].as_str().unwrap()],
    );
    assert!(revoked.status.success());
    assert_eq!(
        introspect_at(&http, &server, admin_key, key).await,
        serde_json::json!({"active": false})
    );

    // A server that stops gives its lease up, so that changes no longer wait for it.
    assert!(server.stop().success());
    assert_eq!(live_leases(&db).await, 0);
}

#[tokio::test]
async fn a_change_waits_for_every_server_with_a_live_lease() {
    let env = TestEnv::start(Backend::Postgres).await;
    let service = cli_json(
        &env.db,
        &env.keys_dir,
        &[
            "api-keys", "create", "--name", "job", "--scope", "read", "--json",
        ],
    );
    let key = service["key"].as_str().unwrap();
    assert_eq!(env.introspect(key).await["active"], true);

    // A server that holds a lease for three more seconds but never acknowledges, as one that
    // hangs or is cut off from the database would.
    let inserted = Instant::now();
    sqlx::query(
        "INSERT INTO credential_watchers (id, lease_expires_ms, acked_count) \
         VALUES ('watcher_silent', (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT + 3000, 0)",
    )
    .execute(&env.db.pool().await)
    .await
    .unwrap();
    let waited = revoke(&env, service["id"].as_str().unwrap()).await;
    assert!(
        inserted.elapsed() >= Duration::from_millis(2900) && waited < Duration::from_secs(9),
        "the revocation waited {waited:?} for the silent server's lease to run out"
    );
    assert_eq!(
        env.introspect(key).await,
        serde_json::json!({"active": false})
    );

    // With only live servers, which acknowledge at once, a change is quick.
    let other = cli_json(
        &env.db,
        &env.keys_dir,
        &["api-keys", "create", "--name", "other", "--json"],
    );
    let waited = revoke(&env, other["id"].as_str().unwrap()).await;
    assert!(waited < Duration::from_secs(1), "took {waited:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_cut_off_from_the_database_never_answers_from_an_old_view() {
    let BehindProxy {
        db,
        mut proxy,
        server,
        keys,
        admin_key,
    } = BehindProxy::start().await;
    let admin_key = admin_key.as_str();
    let create_key = |name: &str| {
        cli_json(
            &db,
            keys.path(),
            &["api-keys", "create", "--name", name, "--json"],
        )
    };
    let (first, second) = (create_key("first"), create_key("second"));
    let http = reqwest::Client::new();
    for key in [&first, &second] {
        let key = key["key"].as_str().unwrap();
        assert_eq!(
            introspect_at(&http, &server, admin_key, key).await["active"],
            true
        );
    }
    let revoke_through_cli = |key: &Value| {
        let started = Instant::now();
        let out = cli(
            &db,
            keys.path(),
            &["api-keys", "revoke", key["id"].as_str().unwrap()],
        );
        assert!(out.status.success());
        started.elapsed()
    };

    // Cut off, the server cannot acknowledge: the revocation waits for its lease to run out,
    // and the server has stopped trusting its view by then.
    proxy.cut().await;
    let waited = revoke_through_cli(&first);
    assert!(waited < Duration::from_secs(9), "took {waited:?}");
    proxy.restore().await;
    let first_key = first["key"].as_str().unwrap();
    let mut answer = Value::Null;
    for _ in 0..50 {
        let response = http
            .post(server.url("/introspect"))
            .bearer_auth(admin_key)
            .form(&[("token", first_key)])
            .send()
            .await
            .unwrap();
        if response.status() == 200 {
            answer = response.json().await.unwrap();
            break;
        }
        // 503 while the pool reconnects.
        assert_eq!(response.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(answer, serde_json::json!({"active": false}));

    // It takes a lease again, and acknowledges changes at once.
    wait_for_one_live_lease(&db).await;
    let waited = revoke_through_cli(&second);
    assert!(waited < Duration::from_secs(2), "took {waited:?}");
    let second_key = second["key"].as_str().unwrap();
    assert_eq!(
        introspect_at(&http, &server, admin_key, second_key).await,
        serde_json::json!({"active": false})
    );
}
