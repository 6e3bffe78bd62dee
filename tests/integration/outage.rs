//! A database outage is a 503 `temporarily_unavailable`, never an `invalid_client`, and the
//! server recovers by itself when the database comes back.

use std::time::Duration;

use serde_json::Value;

use crate::common::proxy::Proxy;
use crate::common::{Backend, Client, Server, TestDb, cli_json};

// Multi-threaded: the proxy must keep forwarding while the harness blocks on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_temporarily_unavailable_then_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    let (mut proxy, proxied) = Proxy::in_front_of(&db).await;

    let keys = tempfile::tempdir().unwrap();
    let server = Server::start(&proxied, keys.path(), &[]);
    let created = cli_json(
        &db,
        keys.path(),
        &[
            "clients",
            "create",
            "--name",
            "b",
            "--grant-type",
            "client_credentials",
            "--json",
        ],
    );
    let client = Client::from_created(&created);
    let http = reqwest::Client::new();
    let token = || {
        http.post(server.url("/token"))
            .basic_auth(&client.id, Some(&client.secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
    };
    assert_eq!(token().await.unwrap().status(), 200);

    proxy.cut().await;
    // A server answers from its credential cache until its lease would run out (5 s; see
    // src/store/propagation.rs): nothing can be revoked meanwhile without its acknowledgement.
    let mut response = token().await.unwrap();
    for _ in 0..100 {
        if response.status() != 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        response = token().await.unwrap();
    }
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");

    proxy.restore().await;
    let mut status = 0;
    for _ in 0..50 {
        status = token().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(status, 200, "the server recovers once the database is back");
    drop(server);
}
