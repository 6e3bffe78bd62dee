//! GET /healthz and GET /readyz: unauthenticated probes; readiness follows the database.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::proxy::Proxy;
use crate::common::{Backend, Server, TestDb, TestEnv, keys_dir_with_signing_key};
use crate::on_both_databases;

on_both_databases!(probes_answer_without_credentials);

async fn probe(http: &reqwest::Client, server: &Server, path: &str) -> (u16, Value) {
    let response = http.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn probes_answer_without_credentials(backend: Backend) {
    let env = TestEnv::start(backend).await;
    assert_eq!(
        probe(&env.http, &env.server, "/healthz").await,
        (200, json!({"status": "ok"}))
    );
    assert_eq!(
        probe(&env.http, &env.server, "/readyz").await,
        (200, json!({"status": "ready"}))
    );
}

// Multi-threaded: the proxy must keep forwarding while the harness blocks on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_is_unavailable_while_postgres_is_cut_and_ready_after() {
    let db = TestDb::new(Backend::Postgres).await;
    let (mut proxy, proxied) = Proxy::in_front_of(&db).await;
    let keys = keys_dir_with_signing_key();
    let server = Server::start_process(&proxied, keys.path(), &[]);
    let http = reqwest::Client::new();
    assert_eq!(probe(&http, &server, "/readyz").await.0, 200);

    proxy.cut().await;
    let started = Instant::now();
    let answer = probe(&http, &server, "/readyz").await;
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "a probe answers quickly"
    );
    assert_eq!(
        answer,
        (
            503,
            json!({"status": "unavailable", "reason": "database unreachable"})
        )
    );
    assert_eq!(
        probe(&http, &server, "/healthz").await.0,
        200,
        "the process is up"
    );

    proxy.restore().await;
    let mut status = 0;
    for _ in 0..50 {
        status = probe(&http, &server, "/readyz").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "ready again once the database is back");
    drop(server);
}
