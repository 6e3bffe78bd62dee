//! `portcullis serve`: the server's settings, in sections (`config`), and starting it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;

use super::{DatabaseArgs, open_keys};
use crate::App;
use crate::config::{
    self, ApiKeySettings, Config, HttpLimits, LogFormat, MaintenanceSettings,
    ObservabilitySettings, RateLimitSettings, SignInSettings, SigningKeySettings, TokenSettings,
    WebhookSettings,
};
use crate::rate_limit::RateLimiter;
use crate::rate_limit::plan::Plans;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(flatten)]
    listening: Listening,
    #[command(flatten)]
    keys: SigningKeySettings,
    #[command(flatten)]
    tokens: TokenSettings,
    #[command(flatten)]
    sign_in: SignInSettings,
    #[command(flatten)]
    api_keys: ApiKeySettings,
    #[command(flatten)]
    http: HttpLimits,
    #[command(flatten)]
    maintenance: MaintenanceSettings,
    #[command(flatten)]
    rate_limits: RateLimitSettings,
    #[command(flatten)]
    webhooks: WebhookSettings,
    #[command(flatten)]
    observability: ObservabilitySettings,
}

impl ServeArgs {
    /// How the server's log lines are written: `main` sets up logging before anything runs.
    pub fn log_format(&self) -> LogFormat {
        self.observability.log_format
    }
}

/// Where the server listens, and the URL it is known by.
#[derive(Args)]
#[command(next_help_heading = "Listening")]
struct Listening {
    /// Address to listen on: an IP address and a port.
    #[arg(long, env = "PORTCULLIS_BIND", default_value = "127.0.0.1:8080", value_parser = config::parse_bind)]
    bind: SocketAddr,
    /// Issuer identifier (RFC 8414): the public base URL. Default: http://localhost:<port>.
    #[arg(long, env = "PORTCULLIS_ISSUER")]
    issuer: Option<String>,
}

/// Serves until SIGTERM or SIGINT, then finishes the requests in flight within the shutdown
/// grace period.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    build(args).await?.run_until(shutdown_signal()).await;
    Ok(())
}

/// Opens (or creates) the database and the signing keys, binds, and works out the issuer: the
/// server `portcullis serve` runs, and the one the integration tests run in-process.
pub async fn build(args: ServeArgs) -> anyhow::Result<App> {
    if let Some(count) = args.sign_in.password_hashes_at_once {
        crate::passwords::set_hashes_at_once(usize::from(count)).map_err(|in_force| {
            anyhow::anyhow!(
                "--password-hashes-at-once {count}: this process already hashes {in_force} \
                 at once (the limit is process-wide)"
            )
        })?;
    }
    let rate_limiter = start_rate_limiter(&args.rate_limits).await?;
    let store = args.database.open_or_create().await?;
    let keys = open_keys(&args.keys)?;
    keys.ensure_key().context("cannot create a signing key")?;

    let bind = args.listening.bind;
    let listener = tokio::net::TcpListener::bind(bind)
        .await
        .with_context(|| format!("cannot listen on {bind}"))?;
    let address = listener.local_addr()?;
    let metrics_listener = match args.observability.metrics_bind {
        Some(bind) => Some(
            tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("cannot listen for metrics on {bind}"))?,
        ),
        None => None,
    };
    let issuer = match &args.listening.issuer {
        Some(issuer) => config::normalise_issuer(issuer).map_err(anyhow::Error::msg)?,
        None if address.ip().is_loopback() || address.ip().is_unspecified() => {
            format!("http://localhost:{}", address.port())
        }
        None => format!("http://{address}"),
    };
    let config = Config {
        issuer,
        keys: args.keys,
        tokens: args.tokens,
        sign_in: args.sign_in,
        api_keys: args.api_keys,
        http: args.http,
        maintenance: args.maintenance,
        rate_limits: args.rate_limits,
        webhooks: args.webhooks,
        observability: args.observability,
    };
    Ok(App::build(
        listener,
        metrics_listener,
        config,
        store,
        Arc::new(keys),
        rate_limiter,
    )?)
}

/// The plans, checked, and where to count: Redis if given (waiting briefly for a first
/// connection), else this process.
async fn start_rate_limiter(settings: &RateLimitSettings) -> anyhow::Result<RateLimiter> {
    let plans = Plans::new(
        settings.rate_limit_plans.clone(),
        settings.default_rate_limit_plan.clone(),
    )
    .map_err(anyhow::Error::msg)?;
    match &settings.redis_url {
        Some(url) => {
            let timeout = Duration::from_millis(settings.redis_timeout_ms);
            RateLimiter::shared(plans, url, timeout)
                .await
                .map_err(anyhow::Error::msg)
        }
        None => Ok(RateLimiter::local(plans)),
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
