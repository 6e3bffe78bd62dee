//! A database outage is a 503 `temporarily_unavailable`, never an `invalid_client`, and the
//! server recovers by itself when the database comes back.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::proxy::Proxy;
use crate::common::{
    Backend, Client, Server, TestDb, TestEnv, cli_json, keys_dir_with_signing_key,
};

// Multi-threaded: the proxy must keep forwarding while the harness blocks on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_temporarily_unavailable_then_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    let (mut proxy, proxied) = Proxy::in_front_of(&db).await;

    let keys = keys_dir_with_signing_key();
    let server = Server::start_process(&proxied, keys.path(), &[]);
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
    // src/credentials/leases.rs): nothing can be revoked meanwhile without its acknowledgement.
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

/// Once the database is known to be down, every request is answered with a 503 within about a
/// second, grants included; once it is back, the server recovers within about a second, and
/// nothing was used up meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_answered_fast_and_recovered_from_fast() {
    let (env, mut proxy) = TestEnv::start_behind_proxy(&[]).await;
    let (spa, refresh_token) = env.first_refresh_token("uma").await;
    let service = env.service_client().await;
    let client_credentials = [("grant_type", "client_credentials")];

    proxy.cut().await;
    // Cached credentials answer until the server's lease would run out (see outage above).
    let mut known_down = false;
    for _ in 0..100 {
        if env
            .token(Some(&service), &client_credentials)
            .await
            .status()
            == 503
        {
            known_down = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(known_down, "the server notices the outage");
    for _ in 0..3 {
        for response in [
            timed(env.token(Some(&service), &client_credentials)).await,
            timed(env.refresh(&spa, &refresh_token, None)).await,
            timed(async {
                let admin = env.admin(reqwest::Method::GET, "/admin/clients");
                admin.send().await.unwrap()
            })
            .await,
        ] {
            assert_eq!(response.status(), 503);
            assert_eq!(response.headers()["retry-after"], "1");
        }
        // A person in the browser gets a page that says to retry.
        let (authorize_url, _) = env.authorize_url(&spa, "read", "s");
        let page = timed(async { env.http.get(&authorize_url).send().await.unwrap() }).await;
        assert_eq!(page.status(), 503);
        assert_eq!(page.headers()["retry-after"], "1");
        assert!(
            page.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html")
        );
    }

    proxy.restore().await;
    let restored = Instant::now();
    let mut status = 503;
    while status != 200 && restored.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = env
            .token(Some(&service), &client_credentials)
            .await
            .status()
            .as_u16();
    }
    assert_eq!(status, 200);
    let recovery = restored.elapsed();
    eprintln!("recovered after {recovery:?}");
    assert!(
        recovery < Duration::from_millis(2500),
        "recovered after {recovery:?}"
    );
    // The refresh token was not used up by the refused attempts.
    let refreshed = env.refresh(&spa, &refresh_token, None).await;
    assert_eq!(refreshed.status(), 200);
}

/// Pooled connections are not checked at every use, but one that died while idle (here, cut
/// by the network) is replaced before anything uses it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connection_that_died_while_idle_is_replaced_before_use() {
    let db = TestDb::new(Backend::Postgres).await;
    let (mut proxy, proxied) = Proxy::in_front_of(&db).await;
    let store = portcullis::store::Store::connect(&proxied.url)
        .await
        .unwrap();
    let within = Duration::from_secs(2);
    store.ping(within).await.unwrap();

    proxy.cut().await;
    proxy.restore().await;
    let idle = Duration::from_millis(portcullis::config::DATABASE_IDLE_CHECK_MS);
    tokio::time::sleep(idle + Duration::from_millis(100)).await;
    store
        .ping(within)
        .await
        .expect("the dead connection is not used");
    store.close().await;
}

/// Sends a request; it must be answered within two seconds (about a second, with room for a
/// loaded two-core machine).
async fn timed(request: impl Future<Output = reqwest::Response>) -> reqwest::Response {
    let started = Instant::now();
    let answer = request.await;
    let took = started.elapsed();
    eprintln!("answered {} after {took:?}", answer.status());
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    answer
}
