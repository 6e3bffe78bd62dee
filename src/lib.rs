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
pub mod audit;
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
pub mod metrics;
pub mod names;
pub mod oauth;
pub mod organizations;
pub mod passwords;
pub mod rate_limit;
pub mod secrets;
pub mod server;
pub mod sessions;
pub mod sign_in;
pub mod store;
pub mod usage;
pub mod users;
pub mod webhooks;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusHandle;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use config::Config;
use keys::KeyStore;
use store::Store;

/// A server put together and bound to its address: the configuration, the database, the
/// signing keys, the credential cache, the usage counter and the pruner, behind the router and
/// the connection loop. `portcullis serve` builds one (`cli::serve::build`) and runs it until
/// SIGTERM or SIGINT; the integration tests build the same one in-process and run it until
/// they stop it.
pub struct App {
    listener: TcpListener,
    address: SocketAddr,
    /// The metrics listener (`--metrics-bind`) and the recorder it shows.
    metrics: Option<(TcpListener, PrometheusHandle)>,
    state: Arc<app::AppContext>,
    /// The keys directory's rescan and the pruner, stopped with the server.
    background: Vec<JoinHandle<()>>,
    /// Sends webhooks; stopped apart from `background`, since it first finishes the
    /// deliveries in flight and gives up its endpoints to the other servers.
    webhooks: webhooks::Deliverer,
}

impl App {
    /// Starts the credential cache, the rescan of the keys directory, the pruner and the
    /// writing of API-key usage on the current tokio runtime; connections wait in `listener`'s
    /// backlog (and scrapes in `metrics_listener`'s, which also installs the metrics recorder)
    /// until [`App::run_until`].
    pub fn build(
        listener: TcpListener,
        metrics_listener: Option<TcpListener>,
        config: Config,
        store: Store,
        keys: Arc<KeyStore>,
        rate_limiter: rate_limit::RateLimiter,
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
        let webhooks = webhooks::Deliverer::start(store.clone(), &config.webhooks)
            .map_err(std::io::Error::other)?;
        let mut background = vec![
            keys.clone().spawn_reloader(),
            tokio::spawn(prune_periodically(
                store.clone(),
                config.maintenance.prune_interval_secs,
                config.maintenance.audit_retention_days,
            )),
        ];
        let metrics = metrics_listener.map(|listener| {
            let handle = metrics::install();
            background.push(tokio::spawn(metrics_upkeep(handle.clone())));
            (listener, handle)
        });
        let usage = usage::UsageCounter::start(store.clone());
        let state = Arc::new(app::AppContext {
            config,
            store,
            credentials,
            keys,
            rate_limiter,
            usage,
        });
        Ok(Self {
            listener,
            address,
            metrics,
            state,
            background,
            webhooks,
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
            metrics,
            state,
            background,
            webhooks,
        } = self;
        // Logged first: the tests learn the metrics address before the server's.
        let metrics_server = metrics.map(|(listener, handle)| {
            if let Ok(address) = listener.local_addr() {
                tracing::info!("metrics at http://{address}/metrics");
            }
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            let limits = config::HttpLimits {
                max_connections: config::METRICS_MAX_CONNECTIONS,
                ..state.config.http.clone()
            };
            let app = http::metrics::router(Arc::clone(&state), handle);
            let serving = tokio::spawn(async move {
                server::serve(listener, app, &limits, async {
                    let _ = stopped.await;
                })
                .await;
            });
            (stop, serving)
        });
        tracing::info!(
            "portcullis listening on {address}, issuer {}",
            state.config.issuer
        );
        let app = http::router(Arc::clone(&state));
        // Webhook attempts in flight finish while the requests in flight do.
        let shutdown = async {
            shutdown.await;
            webhooks.begin_stopping();
        };
        server::serve(listener, app, &state.config.http, shutdown).await;
        // No request can count a use any more: the last counts are written now, while the
        // webhook attempts in flight end.
        tokio::join!(state.usage.stop(), webhooks.stop());
        if let Some((stop, serving)) = metrics_server {
            let _ = stop.send(());
            let _ = serving.await;
        }
        for task in background {
            task.abort();
            let _ = task.await;
        }
        state.credentials.stop().await;
        state.rate_limiter.stop();
        state.store.close().await;
        tracing::info!("stopped");
    }
}

/// Folds histogram samples into their buckets every [`config::METRICS_UPKEEP_INTERVAL_SECS`],
/// so that a server nobody scrapes does not keep every sample.
async fn metrics_upkeep(handle: PrometheusHandle) {
    let mut interval =
        tokio::time::interval(Duration::from_secs(config::METRICS_UPKEEP_INTERVAL_SECS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        handle.run_upkeep();
    }
}

/// Deletes expired rows, and audit events and API key usage past their retention, now and
/// then every `interval_secs`, never stopping on a failure.
async fn prune_periodically(store: Store, interval_secs: u64, audit_retention_days: u64) {
    let retention_days = i64::try_from(audit_retention_days).unwrap_or(i64::MAX / 86_400_000);
    let retention_ms = retention_days.saturating_mul(86_400_000);
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
        match store
            .prune_events(clock::unix_now_ms() - retention_ms)
            .await
        {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned audit events past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune audit events"),
        }
        // Usage is kept as long as the audit log: whole days, today and the retention's
        // days before it.
        let first_kept = clock::UtcDay::today().minus(retention_days);
        match store.prune_api_key_usage(first_kept).await {
            Ok(0) => {}
            Ok(deleted) => tracing::info!(deleted, "pruned API key usage past the audit retention"),
            Err(e) => tracing::warn!(error = %e, "could not prune API key usage"),
        }
    }
}
