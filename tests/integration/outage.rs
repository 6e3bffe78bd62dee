//! A database outage is a 503 `temporarily_unavailable`, never an `invalid_client`, and the
//! server recovers by itself when the database comes back.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::common::{Backend, Client, Server, TestDb, cli_json};

/// A TCP forwarder to PostgreSQL that the test can cut and restore, as a network would.
struct Proxy {
    address: SocketAddr,
    target: SocketAddr,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let mut proxy = Self {
            address,
            target,
            tasks: JoinSet::new(),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
    }

    /// Drops every connection and refuses new ones.
    async fn cut(&mut self) {
        self.tasks.shutdown().await;
    }

    async fn restore(&mut self) {
        let listener = TcpListener::bind(self.address).await.unwrap();
        self.serve(listener);
    }
}

// Multi-threaded: the proxy must keep forwarding while the harness blocks on the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_outage_is_temporarily_unavailable_then_recovers() {
    let db = TestDb::new(Backend::Postgres).await;
    let postgres: url::Url = db.url.parse().unwrap();
    let target: SocketAddr = tokio::net::lookup_host((
        postgres.host_str().unwrap(),
        postgres.port().unwrap_or(5432),
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let mut proxy = Proxy::start(target).await;
    let mut via_proxy = postgres.clone();
    via_proxy.set_ip_host(proxy.address.ip()).unwrap();
    via_proxy.set_port(Some(proxy.address.port())).unwrap();
    let proxied = TestDb::existing(via_proxy.to_string());

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
    let response = token().await.unwrap();
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
