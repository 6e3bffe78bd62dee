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

use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::Config;
use keys::KeyStore;
use store::Store;

/// Serves on `listener` until SIGTERM or SIGINT, then finishes the requests in flight within
/// the shutdown grace period.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    store: Store,
    keys: Arc<KeyStore>,
) -> std::io::Result<()> {
    let address = listener.local_addr()?;
    if !config.is_https() && !address.ip().is_loopback() {
        tracing::warn!(
            issuer = %config.issuer,
            "the issuer is http but the server listens on {address}, beyond this machine: \
             passwords, codes and tokens would cross the network in clear; put TLS in front \
             and set --issuer https://…"
        );
    }
    tracing::info!(
        "portcullis listening on {address}, issuer {}",
        config.issuer
    );
    keys.clone().spawn_reloader();
    let credentials =
        credentials::CredentialCache::start(store.clone()).map_err(std::io::Error::other)?;
    let pruner = tokio::spawn(prune_periodically(
        store.clone(),
        config.maintenance.prune_interval_secs,
    ));
    let limits = config.http.clone();
    let state = Arc::new(app::AppContext {
        config,
        store: store.clone(),
        credentials,
        keys,
    });
    let app = http::router(Arc::clone(&state));
    server::serve(listener, app, &limits, shutdown_signal()).await;
    pruner.abort();
    let _ = pruner.await;
    state.credentials.stop().await;
    store.close().await;
    tracing::info!("stopped");
    Ok(())
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

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).expect("can listen for SIGTERM");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate.recv() => {},
    }
    tracing::info!("stopping: no new connections, finishing requests in flight");
}
