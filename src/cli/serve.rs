//! `portcullis serve`: the server's settings, in sections, and starting it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;

use super::{DatabaseArgs, KeysArgs};
use crate::config::{self, Config};
use crate::oauth::scope::Scope;

#[derive(Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub keys: KeysArgs,

    /// Address to listen on: an IP address and a port.
    #[arg(long, env = "PORTCULLIS_BIND", default_value = "127.0.0.1:8080", value_parser = parse_bind,
          help_heading = "Listening")]
    pub bind: SocketAddr,
    /// Issuer identifier (RFC 8414): the public base URL. Default: http://localhost:<port>.
    #[arg(long, env = "PORTCULLIS_ISSUER", help_heading = "Listening")]
    pub issuer: Option<String>,
    /// Seconds a client has to send a request's headers (from connecting, or from the first
    /// byte of a later request on a kept-alive connection).
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT_SECS", default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Listening")]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body once its headers are in; then 408.
    #[arg(long, env = "PORTCULLIS_BODY_READ_TIMEOUT_SECS", default_value_t = config::DEFAULT_BODY_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Listening")]
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT_SECS", default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600), help_heading = "Listening")]
    pub idle_timeout_secs: u64,
    /// Open client connections at most; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Listening")]
    pub max_connections: u32,
    /// On SIGTERM or SIGINT, seconds to let requests in flight finish before closing their connections.
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_GRACE_SECS", default_value_t = config::DEFAULT_SHUTDOWN_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600), help_heading = "Listening")]
    pub shutdown_grace_secs: u64,

    /// `aud` of tokens requested without a `resource`. Default: the issuer.
    #[arg(long, env = "PORTCULLIS_DEFAULT_AUDIENCE", help_heading = "Tokens")]
    pub default_audience: Option<String>,
    /// A refresh token unused for this long expires, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_IDLE_SECS", default_value_t = config::DEFAULT_REFRESH_TOKEN_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(1..), help_heading = "Tokens")]
    pub refresh_token_idle_secs: i64,
    /// A refresh-token family ends this long after the authorization, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_ABSOLUTE_SECS", default_value_t = config::DEFAULT_REFRESH_TOKEN_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(1..), help_heading = "Tokens")]
    pub refresh_token_absolute_secs: i64,
    /// How long after a refresh the same refresh token may be presented again and get the same
    /// successor (a lost response, two tabs), in seconds; 0 treats any second use as reuse.
    #[arg(long, env = "PORTCULLIS_REFRESH_RETRY_WINDOW_SECS", default_value_t = config::DEFAULT_REFRESH_RETRY_WINDOW_SECS,
          value_parser = clap::value_parser!(i64).range(0..=config::MAX_REFRESH_RETRY_WINDOW_SECS),
          help_heading = "Tokens")]
    pub refresh_retry_window_secs: i64,
    /// Lifetime of scoped tenant tokens (a service key's tokens for one tenant), in seconds.
    #[arg(long, env = "PORTCULLIS_TENANT_TOKEN_TTL_SECS", default_value_t = config::DEFAULT_TENANT_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=3600), help_heading = "Tokens")]
    pub tenant_token_ttl_secs: i64,

    /// Browser sessions end after this much inactivity, in seconds.
    #[arg(long, env = "PORTCULLIS_SESSION_IDLE_SECS", default_value_t = config::DEFAULT_SESSION_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(60..), help_heading = "Sign-in and consent")]
    pub session_idle_secs: i64,
    /// Browser sessions end this long after sign-in, in seconds.
    #[arg(long, env = "PORTCULLIS_SESSION_ABSOLUTE_SECS", default_value_t = config::DEFAULT_SESSION_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(60..), help_heading = "Sign-in and consent")]
    pub session_absolute_secs: i64,
    /// Words for a scope on the consent page, as SCOPE=WORDS (repeatable; the environment
    /// variable takes several separated by `;`).
    #[arg(
        long = "scope-description",
        env = "PORTCULLIS_SCOPE_DESCRIPTIONS",
        value_delimiter = ';',
        help_heading = "Sign-in and consent"
    )]
    pub scope_descriptions: Vec<String>,

    /// First part of API keys, as in pc_live_….
    #[arg(long, env = "PORTCULLIS_API_KEY_PREFIX", default_value = crate::api_keys::DEFAULT_PREFIX,
          value_parser = super::api_keys::parse_prefix, help_heading = "API keys")]
    pub api_key_prefix: String,
    /// Most live keys a person may hold from /account/api-keys.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_LIMIT", default_value_t = config::DEFAULT_PERSONAL_KEY_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..=10_000), help_heading = "API keys")]
    pub personal_key_limit: u64,
    /// Longest lifetime of a key people make on /account/api-keys, in days (at most ten years);
    /// 0 for no limit.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_MAX_LIFETIME_DAYS", default_value_t = config::DEFAULT_PERSONAL_KEY_MAX_LIFETIME_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650), help_heading = "API keys")]
    pub personal_key_max_lifetime_days: i64,
    /// Scopes users may give their own personal keys on /account/api-keys, space-delimited.
    #[arg(
        long,
        env = "PORTCULLIS_PERSONAL_KEY_SCOPES",
        default_value = "",
        help_heading = "API keys"
    )]
    pub personal_key_scopes: String,

    /// Time between two prunings of expired rows (codes, grants, sessions, …), in seconds.
    #[arg(long, env = "PORTCULLIS_PRUNE_INTERVAL_SECS", default_value_t = config::DEFAULT_PRUNE_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(1..), help_heading = "Database")]
    pub prune_interval_secs: u64,
}

/// A socket address, with a hint when it names a host: the server binds to an address, and
/// a name such as `localhost` may stand for several.
fn parse_bind(text: &str) -> Result<SocketAddr, String> {
    text.parse().map_err(|_| {
        let port = text.rsplit_once(':').map_or("8080", |(_, port)| port);
        format!(
            "{text:?} is not an IP address and port: use 127.0.0.1:{port} for this machine \
             only, or 0.0.0.0:{port} for every interface (and set --issuer to the public URL)"
        )
    })
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let store = args.database.open_or_create().await?;
    let keys = args.keys.open()?;
    keys.ensure_key().context("cannot create a signing key")?;

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .with_context(|| format!("cannot listen on {}", args.bind))?;
    let address = listener.local_addr()?;
    let issuer = match &args.issuer {
        Some(issuer) => config::normalise_issuer(issuer).map_err(anyhow::Error::msg)?,
        None if address.ip().is_loopback() || address.ip().is_unspecified() => {
            format!("http://localhost:{}", address.port())
        }
        None => format!("http://{address}"),
    };
    let config = Config {
        default_audience: args
            .default_audience
            .clone()
            .unwrap_or_else(|| issuer.clone()),
        issuer,
        access_token_ttl_secs: args.keys.access_token_ttl_secs,
        jwks_max_age_secs: args.keys.jwks_max_age_secs,
        api_key_prefix: args.api_key_prefix.clone(),
        session_idle_secs: args.session_idle_secs,
        session_absolute_secs: args.session_absolute_secs,
        refresh_token_idle_secs: args.refresh_token_idle_secs,
        refresh_token_absolute_secs: args.refresh_token_absolute_secs,
        refresh_retry_window_secs: args.refresh_retry_window_secs,
        tenant_token_ttl_secs: args.tenant_token_ttl_secs,
        personal_key_max_lifetime_days: args.personal_key_max_lifetime_days,
        personal_key_limit: usize::try_from(args.personal_key_limit).unwrap_or(usize::MAX),
        personal_key_scopes: Scope::parse(&args.personal_key_scopes)
            .map_err(|e| anyhow::anyhow!("--personal-key-scopes: {}", e.0))?,
        scope_descriptions: parse_scope_descriptions(&args.scope_descriptions)?,
        prune_interval_secs: args.prune_interval_secs,
        http_limits: config::HttpLimits {
            header_read_timeout_secs: args.header_read_timeout_secs,
            body_read_timeout_secs: args.body_read_timeout_secs,
            idle_timeout_secs: args.idle_timeout_secs,
            max_connections: args.max_connections as usize,
            shutdown_grace_secs: args.shutdown_grace_secs,
        },
    };
    crate::serve(listener, config, store, Arc::new(keys)).await?;
    Ok(())
}

fn parse_scope_descriptions(pairs: &[String]) -> anyhow::Result<BTreeMap<String, String>> {
    pairs
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (scope, words) = pair
                .split_once('=')
                .with_context(|| format!("--scope-description {pair:?} must be SCOPE=WORDS"))?;
            Ok((scope.trim().to_owned(), words.trim().to_owned()))
        })
        .collect()
}
