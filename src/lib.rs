//! Portcullis: an OAuth 2.0 authorization server.
//!
//! `cli` and `http` are the ways in: they parse, call the protocol (`oauth`) or the operator
//! operations (`admin`), and print or answer. Those call the database (`store`), the
//! credential cache kept coherent with it on every server (`credentials`), the signing keys
//! (`keys`) and the domain types and rules (`clients`, `users`, `api_keys`, …). The README's
//! "Layout" draws the map.

// Unit tests may unwrap: a panic there is a failed test (`[lints.clippy]` in Cargo.toml).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod admin;
pub mod api_keys;
pub mod app;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod credentials;
pub mod error;
pub mod http;
pub mod ids;
pub mod keys;
pub mod logging;
pub mod names;
pub mod oauth;
pub mod organizations;
pub mod passwords;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod sign_in;
pub mod store;
pub mod users;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;
use keys::KeyStore;
use store::Store;

/// A server put together and bound to its address: the configuration, the database, the
/// signing keys, the credential cache and the pruner, behind the router and the connection
/// loop. `portcullis serve` builds one (`cli::serve::build`) and runs it until SIGTERM or
/// SIGINT; the integration tests build the same one in-process and run it until they stop it.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    state: Arc<app::AppContext>,
    /// The keys directory's rescan and the pruner, stopped with the server.
    background: Vec<JoinHandle<()>>,
}

impl App {
    /// Starts the credential cache, the rescan of the keys directory and the pruner on the
    /// current tokio runtime; connections wait in `listener`'s backlog until [`App::run_until`].
    pub fn build(
        listener: TcpListener,
        config: Config,
        store: Store,
        keys: Arc<KeyStore>,
    ) -> std::io::Result<Self> {
        let address = listener.local_addr()?;
        if !config.is_https() && !address.ip().is_loopback() {
            tracing::warn!(
                issuer = %config.issuer,
                "the issuer is http but the server listens on {address}, beyond this machine: \
                 passwords, codes and tokens would cross the network in clear; put TLS in front \
                 and set --issuer https://…"
            );
        }
        let credentials =
            credentials::CredentialCache::start(store.clone()).map_err(std::io::Error::other)?;
        let background = vec![
            keys.clone().spawn_reloader(),
            tokio::spawn(prune_periodically(
                store.clone(),
                config.maintenance.prune_interval_secs,
            )),
        ];
        let state = Arc::new(app::AppContext {
            config,
            store,
            credentials,
            keys,
        });
        Ok(Self {
            listener,
            address,
            state,
            background,
        })
    }

    /// Where the server listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// The issuer identifier: the base URL of every endpoint.
    pub fn issuer(&self) -> &str {
        &self.state.config.issuer
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight within the
    /// shutdown grace period and stops everything the server started.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        let Self {
            listener,
            address,
            state,
            background,
        } = self;
        tracing::info!(
            "portcullis listening on {address}, issuer {}",
            state.config.issuer
        );
        let app = http::router(Arc::clone(&state));
        server::serve(listener, app, &state.config.http, shutdown).await;
        for task in background {
            task.abort();
            let _ = task.await;
        }
        state.credentials.stop().await;
        state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Deletes expired rows now and then every `interval_secs`, never stopping on a failure.
async fn prune_periodically(store: Store, interval_secs: u64) {
    let period = std::time::Duration::from_secs(interval_secs.max(1));
    let mut interval = tokio::time::interval(period);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        match store.prune_expired(clock::unix_now()).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned expired rows"),
            Err(e) => tracing::warn!(error = %e, "could not prune expired rows"),
        }
    }
}
