//! A TCP forwarder to PostgreSQL that a test can cut and restore, as a network would, and that
//! counts what the server sends to the database.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::TestDb;

pub struct Proxy {
    pub address: SocketAddr,
    target: SocketAddr,
    tasks: JoinSet<()>,
    sent_to_database: Arc<AtomicU64>,
}

/// A listener on a port below Linux's ephemeral range (32768 and up), so that while the proxy
/// is cut no outgoing connection of another test can be given its port and keep it from being
/// restored.
async fn bind_below_ephemeral_ports() -> TcpListener {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let start = u64::from(std::process::id()) * 7_919;
    loop {
        let offset = (start + NEXT.fetch_add(1, Ordering::Relaxed)) % 12_000;
        let port = u16::try_from(20_000 + offset).expect("below 32,000");
        if let Ok(listener) = TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
    }
}

impl Proxy {
    /// A proxy in front of `db`'s PostgreSQL server, and the same database reached through it.
    pub async fn in_front_of(db: &TestDb) -> (Self, TestDb) {
        let postgres: url::Url = db.url.parse().unwrap();
        let target = tokio::net::lookup_host((
            postgres.host_str().unwrap(),
            postgres.port().unwrap_or(5432),
        ))
        .await
        .unwrap()
        .next()
        .unwrap();
        let proxy = Self::start(target).await;
        let mut via_proxy = postgres.clone();
        via_proxy.set_ip_host(proxy.address.ip()).unwrap();
        via_proxy.set_port(Some(proxy.address.port())).unwrap();
        (proxy, TestDb::existing(via_proxy.to_string()))
    }

    async fn start(target: SocketAddr) -> Self {
        let listener = bind_below_ephemeral_ports().await;
        let address = listener.local_addr().unwrap();
        let mut proxy = Self {
            address,
            target,
            tasks: JoinSet::new(),
            sent_to_database: Arc::new(AtomicU64::new(0)),
        };
        proxy.serve(listener);
        proxy
    }

    fn serve(&mut self, listener: TcpListener) {
        let target = self.target;
        let counter = Arc::clone(&self.sent_to_database);
        self.tasks.spawn(async move {
            let mut connections = JoinSet::new();
            while let Ok((inbound, _)) = listener.accept().await {
                let counter = Arc::clone(&counter);
                connections.spawn(async move {
                    let Ok(outbound) = TcpStream::connect(target).await else {
                        return;
                    };
                    let (mut from_server, mut to_server) = inbound.into_split();
                    let (mut from_database, mut to_database) = outbound.into_split();
                    let upstream = async {
                        let mut buffer = [0u8; 8192];
                        loop {
                            match from_server.read(&mut buffer).await {
                                Ok(0) | Err(_) => break,
                                Ok(n) => {
                                    counter.fetch_add(n as u64, Ordering::Relaxed);
                                    if to_database.write_all(&buffer[..n]).await.is_err() {
                                        break;
                                    }
                                }
                            }
                        }
                        let _ = to_database.shutdown().await;
                    };
                    let downstream = async {
                        let _ = tokio::io::copy(&mut from_database, &mut to_server).await;
                        let _ = to_server.shutdown().await;
                    };
                    tokio::join!(upstream, downstream);
                });
            }
        });
    }

    /// Bytes the server has sent to the database so far.
    pub fn sent_to_database(&self) -> u64 {
        self.sent_to_database.load(Ordering::Relaxed)
    }

    /// Drops every connection and refuses new ones.
    pub async fn cut(&mut self) {
        self.tasks.shutdown().await;
    }

    /// Listens again on the same address; another socket may hold it for a moment.
    pub async fn restore(&mut self) {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        let listener = loop {
            match TcpListener::bind(self.address).await {
                Ok(listener) => break listener,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    eprintln!("proxy: {} is taken ({e}); retrying", self.address);
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("proxy: cannot listen on {} again: {e}", self.address),
            }
        };
        self.serve(listener);
    }
}
