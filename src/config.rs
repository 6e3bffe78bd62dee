//! Server settings: the `serve` command line's sections, each flag also read from
//! `PORTCULLIS_*` in the environment, with the defaults and limits they are checked against.

/// Default lifetime of an access token.
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// Default `max-age` of the JWKS, which is also how long a rotated key waits before it signs.
pub const DEFAULT_JWKS_MAX_AGE_SECS: i64 = 300;
/// Largest request body accepted anywhere: OAuth and admin requests are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Default lifetime of a scoped tenant token: minutes, since it is handed to a browser.
pub const DEFAULT_TENANT_TOKEN_TTL_SECS: i64 = 300;
/// Default idle and absolute lifetimes of a browser session.
pub const DEFAULT_SESSION_IDLE_SECS: i64 = 2 * 3600;
pub const DEFAULT_SESSION_ABSOLUTE_SECS: i64 = 24 * 3600;
/// Default idle and absolute lifetimes of a refresh-token family.
pub const DEFAULT_REFRESH_TOKEN_IDLE_SECS: i64 = 30 * 86_400;
pub const DEFAULT_REFRESH_TOKEN_ABSOLUTE_SECS: i64 = 90 * 86_400;
/// Default refresh retry window: long enough for a client to retry a lost response or for two
/// tabs to race, short enough that a stolen rotated token is soon useless.
pub const DEFAULT_REFRESH_RETRY_WINDOW_SECS: i64 = 10;
/// Longest retry window allowed: it is for retries, not for keeping rotated tokens alive.
pub const MAX_REFRESH_RETRY_WINDOW_SECS: i64 = 300;
/// Default most live keys a person may make on the account page: a stolen session cannot mint
/// keys without end.
pub const DEFAULT_PERSONAL_KEY_LIMIT: u64 = 100;
/// Default longest lifetime of a personal key made on the account page: a key minted by a
/// stolen session must not live for ever.
pub const DEFAULT_PERSONAL_KEY_MAX_LIFETIME_DAYS: i64 = 365;
/// Lifetime of an authorization code: RFC 6749 §4.1.2 recommends at most 10 minutes; a
/// minute is plenty for a redirect and keeps stolen codes short-lived.
pub const CODE_TTL_SECS: i64 = 60;
/// Sign-in throttling: at most this many failures per username, and per client address, in
/// one window; then sign-in is refused until the window ends.
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;
pub const MAX_LOGIN_FAILURES_PER_USERNAME: i64 = 5;
pub const MAX_LOGIN_FAILURES_PER_ADDRESS: i64 = 50;
/// Expired rows are deleted this long after they stop mattering: longer than the longest
/// access-token lifetime (a day), so a grant outlives every token issued from it.
pub const PRUNE_GRACE_SECS: i64 = 2 * 86_400;
/// A code never redeemed goes, with its grant, this long after it expired: minutes, not days,
/// since a signed-in browser can make one per /authorize.
pub const UNREDEEMED_CODE_GRACE_SECS: i64 = 10 * 60;
/// Default time between two prunings of expired rows, which each server runs.
pub const DEFAULT_PRUNE_INTERVAL_SECS: u64 = 600;
/// Most clients, and most API keys, a server keeps in memory; past this it starts over. An
/// entry is well under a kilobyte.
pub const CREDENTIAL_CACHE_MAX_ENTRIES: usize = 50_000;
/// A cached client or key is read again after this long, even if nothing announced a change:
/// a backstop for changes made by hand in SQL.
pub const CREDENTIAL_CACHE_MAX_AGE_SECS: u64 = 60;
/// On PostgreSQL, how long a server's credential lease lasts: how long a server that dies
/// without saying goodbye can hold up credential changes (see src/credentials/leases.rs).
pub const CREDENTIAL_LEASE_MS: i64 = 5_000;
/// How often a server renews its lease, reading the generation again as it does.
pub const CREDENTIAL_LEASE_RENEW_INTERVAL_MS: u64 = 1_000;
/// A server stops trusting its cache this long before its lease ends, for the time a renewal
/// takes to reach the database and for clocks that run at slightly different rates.
pub const CREDENTIAL_LEASE_MARGIN_MS: i64 = 1_000;
/// Default time a client has to send a request's headers: OAuth requests are a few hundred
/// bytes, so 10 s is generous even on a poor mobile link.
pub const DEFAULT_HEADER_READ_TIMEOUT_SECS: u64 = 10;
/// Default time a client has to send a whole request body once its headers are in: at most
/// `MAX_BODY_BYTES`, so this asks for no more than about 6.5 KB/s.
pub const DEFAULT_BODY_READ_TIMEOUT_SECS: u64 = 10;
/// Default time a kept-alive connection may wait for its next request: longer than the 60 s
/// idle timeout of common load balancers, so that they, not we, close their pooled connections.
pub const DEFAULT_IDLE_TIMEOUT_SECS: u64 = 75;
/// Default cap on open client connections: under the common 1,024-descriptor limit, leaving
/// room for the database pool, the keys and the logs.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 768;
/// Default time a stopping server gives requests in flight before it closes their connections:
/// longer than the header and body timeouts, well under Kubernetes' 30 s before SIGKILL.
pub const DEFAULT_SHUTDOWN_GRACE_SECS: u64 = 15;
/// How long `/readyz` waits for the database to answer before it calls it unreachable.
pub const READINESS_DATABASE_TIMEOUT_MS: u64 = 1_000;
/// A pooled database connection idle at least this long is checked with a round trip before
/// it is used, so that one that died meanwhile (a database restart, a network cut) is replaced
/// rather than failing a request. Under load connections are idle for microseconds and never
/// pay for the check.
pub const DATABASE_IDLE_CHECK_MS: u64 = 1_000;

/// How long a request waits for a pooled database connection (connecting included) before it
/// is told to come back later: a database that is down is answered with a 503 within a second.
pub const DATABASE_ACQUIRE_TIMEOUT_MS: u64 = 1_000;
/// How long the first, direct connection to PostgreSQL may take before the server or CLI says
/// it cannot connect.
pub const POSTGRES_CONNECT_CHECK_TIMEOUT_SECS: u64 = 5;
/// How long a write waits for the writers queued before it in this process (SQLite), as long
/// as SQLite's own busy timeout: past that the database is too busy, and the answer is a 503.
pub const SQLITE_WRITE_QUEUE_TIMEOUT_SECS: u64 = 5;
/// A session's `last_seen_at` is refreshed at most this often: not a write per page view.
pub const SESSION_TOUCH_SECS: i64 = 60;
/// An API key's `last_used_at` is refreshed at most this often, so that using a key is not a
/// write per request.
pub const LAST_USED_RESOLUTION_SECS: i64 = 60;
/// How often each server adds the API-key uses it counted in memory to the database
/// (`crate::usage`): what the admin API and the account page show lags by at most this much,
/// and each server writes one small transaction this often, not one per use.
pub const USAGE_FLUSH_INTERVAL_MS: u64 = 5_000;
/// Most keys-and-days a server holds counts for while it cannot write them (a database
/// outage); uses of further keys go uncounted, and say so in the log. An entry is about 150
/// bytes.
pub const USAGE_MAX_PENDING_ENTRIES: usize = 50_000;
/// How long a stopping server tries to write the uses it counted since its last write.
pub const USAGE_FINAL_FLUSH_TIMEOUT_SECS: u64 = 5;
/// Longest span `GET /admin/api-keys/{id}/usage?days=N` lists, and its default.
pub const MAX_USAGE_DAYS: i64 = 366;
pub const DEFAULT_USAGE_DAYS: i64 = 30;
/// On SQLite, how long the credential generation's read waits on a lock before giving up. WAL
/// readers wait only in rare moments (recovering the log after a crash), and this one blocks
/// the thread it runs on.
pub const SQLITE_GENERATION_BUSY_TIMEOUT_MS: u64 = 500;
/// How long a shared read of the credential generation may take (connecting included) before
/// it counts as failed: in an outage, requests are told so within about this long.
pub const GENERATION_READ_TIMEOUT_MS: u64 = 1_000;
/// How long a request waits for shared reads of the generation before it reads for itself:
/// the read under way and the next one.
pub const GENERATION_WAIT_TIMEOUT_MS: u64 = 2_000;
/// After a failure, how long a server waits before it tries to hold a credential lease again.
pub const CREDENTIAL_LEASE_RETRY_PAUSE_MS: u64 = 1_000;
/// How often a running server rescans the keys directory for keys created elsewhere (the CLI,
/// another replica). Far shorter than any publication delay.
pub const SIGNING_KEY_RELOAD_INTERVAL_SECS: u64 = 5;
/// Clock skew tolerated between this server and resource servers when retiring signing keys.
pub const SIGNING_KEY_RETIREMENT_LEEWAY_SECS: i64 = 60;
/// Longest `X-Request-Id` accepted from a client; a longer one is replaced by a generated one.
pub const MAX_REQUEST_ID_CHARS: usize = 128;
/// Connections the metrics listener serves at once: it is for a scraper or two, not the world.
pub const METRICS_MAX_CONNECTIONS: u32 = 16;
/// How often histogram samples are folded into their buckets, so that memory does not grow
/// between scrapes (the exporter's own listener does this every 5 s too).
pub const METRICS_UPKEEP_INTERVAL_SECS: u64 = 5;
/// A server writes its gathered log lines once this many bytes have gathered (a few hundred
/// lines)...
pub const LOG_BATCH_BYTES: usize = 64 * 1024;
/// ...or this often, whichever comes first: a line reaches stderr within this long.
pub const LOG_FLUSH_INTERVAL_MS: u64 = 100;
/// What `portcullis serve` runs with. Its sections are the `serve` command line itself (each
/// flag also read from `PORTCULLIS_<FLAG>`); only the issuer is worked out from them.
#[derive(Debug, Clone)]
pub struct Config {
    /// RFC 8414 issuer identifier: the base URL of every endpoint, no trailing slash.
    pub issuer: String,
    pub keys: SigningKeySettings,
    pub tokens: TokenSettings,
    pub sign_in: SignInSettings,
    pub api_keys: ApiKeySettings,
    pub http: HttpLimits,
    pub maintenance: MaintenanceSettings,
    pub rate_limits: RateLimitSettings,
    pub webhooks: WebhookSettings,
    pub observability: ObservabilitySettings,
}

/// Where the signing keys are and how long they are published.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Signing keys")]
pub struct SigningKeySettings {
    /// Directory of the signing keys (PKCS#8 PEM, mode 0600), created by `serve` when missing.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_KEYS_DIR",
        default_value = "keys"
    )]
    pub keys_dir: std::path::PathBuf,
    /// Lifetime of access tokens, in seconds: a retired key stays published this long.
    #[arg(long, global = true, env = "PORTCULLIS_ACCESS_TOKEN_TTL_SECS", default_value_t = DEFAULT_ACCESS_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub access_token_ttl_secs: i64,
    /// Cache-Control max-age of the JWKS, in seconds; a rotated key waits this long before signing.
    #[arg(long, global = true, env = "PORTCULLIS_JWKS_MAX_AGE_SECS", default_value_t = DEFAULT_JWKS_MAX_AGE_SECS,
          value_parser = clap::value_parser!(i64).range(0..=86_400))]
    pub jwks_max_age_secs: i64,
}

/// What tokens say and how long they live.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Tokens")]
pub struct TokenSettings {
    /// `aud` of tokens requested without a `resource`. Default: the issuer.
    #[arg(long, env = "PORTCULLIS_DEFAULT_AUDIENCE")]
    pub default_audience: Option<String>,
    /// A refresh token unused for this long expires, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_IDLE_SECS", default_value_t = DEFAULT_REFRESH_TOKEN_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_token_idle_secs: i64,
    /// A refresh-token family ends this long after the authorization, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_ABSOLUTE_SECS", default_value_t = DEFAULT_REFRESH_TOKEN_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_token_absolute_secs: i64,
    /// How long after a refresh the same refresh token may be presented again and get the same
    /// successor (a lost response, two tabs), in seconds; 0 treats any second use as reuse.
    #[arg(long, env = "PORTCULLIS_REFRESH_RETRY_WINDOW_SECS", default_value_t = DEFAULT_REFRESH_RETRY_WINDOW_SECS,
          value_parser = clap::value_parser!(i64).range(0..=MAX_REFRESH_RETRY_WINDOW_SECS))]
    pub refresh_retry_window_secs: i64,
    /// Lifetime of scoped tenant tokens (a service key's tokens for one tenant), in seconds.
    #[arg(long, env = "PORTCULLIS_TENANT_TOKEN_TTL_SECS", default_value_t = DEFAULT_TENANT_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub tenant_token_ttl_secs: i64,
}

/// Sessions on Portcullis's own pages, and the consent page's words.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Sign-in and consent")]
pub struct SignInSettings {
    /// Browser sessions end after this much inactivity, in seconds.
    #[arg(long, env = "PORTCULLIS_SESSION_IDLE_SECS", default_value_t = DEFAULT_SESSION_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub session_idle_secs: i64,
    /// Browser sessions end this long after sign-in, in seconds, active or not.
    #[arg(long, env = "PORTCULLIS_SESSION_ABSOLUTE_SECS", default_value_t = DEFAULT_SESSION_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub session_absolute_secs: i64,
    /// Words for a scope on the consent page, as SCOPE=WORDS (repeatable; the environment
    /// variable takes several separated by `;`). Other scopes are shown by name.
    #[arg(long = "scope-description", env = "PORTCULLIS_SCOPE_DESCRIPTIONS",
          value_delimiter = ';', value_parser = parse_scope_description)]
    pub scope_descriptions: Vec<(String, String)>,
    /// Password hashes (argon2id) that may run at once; default: one per core. Each keeps
    /// 19 MiB of working memory once used, so this bounds what sign-ins add to the server's
    /// memory. Four sign-ins per hash may wait their turn; more are asked to try again.
    #[arg(long, env = "PORTCULLIS_PASSWORD_HASHES_AT_ONCE",
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub password_hashes_at_once: Option<u16>,
}

/// API keys, and the keys people make for themselves on `/account/api-keys`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "API keys")]
pub struct ApiKeySettings {
    /// First part of API keys, as in pc_live_….
    #[arg(long, env = "PORTCULLIS_API_KEY_PREFIX", default_value = crate::api_keys::DEFAULT_PREFIX,
          value_parser = parse_api_key_prefix)]
    pub api_key_prefix: String,
    /// Most keys a person may hold from /account/api-keys (revoked and expired ones count
    /// until they are pruned).
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_LIMIT", default_value_t = DEFAULT_PERSONAL_KEY_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub personal_key_limit: u64,
    /// Longest lifetime of a key people make on /account/api-keys, in days (at most ten years);
    /// 0 for no limit.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_MAX_LIFETIME_DAYS", default_value_t = DEFAULT_PERSONAL_KEY_MAX_LIFETIME_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=3650))]
    pub personal_key_max_lifetime_days: i64,
    /// Scopes users may give their own personal keys on /account/api-keys, space-delimited.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_SCOPES", default_value = "",
          value_parser = parse_scope)]
    pub personal_key_scopes: crate::oauth::scope::Scope,
}

/// What keeps slow or stuck clients from holding the server (see docs/decisions.md).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Connections")]
pub struct HttpLimits {
    /// Seconds a client has to send a request's headers (from connecting, or from the first
    /// byte of a later request on a kept-alive connection).
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT_SECS", default_value_t = DEFAULT_HEADER_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body once its headers are in; then 408.
    #[arg(long, env = "PORTCULLIS_BODY_READ_TIMEOUT_SECS", default_value_t = DEFAULT_BODY_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT_SECS", default_value_t = DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,
    /// Open client connections at most; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// On SIGTERM or SIGINT, seconds to let requests in flight finish before closing their connections.
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_GRACE_SECS", default_value_t = DEFAULT_SHUTDOWN_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,
}

/// Rate limits per API key and per client (docs/decisions.md, "Rate limits").
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Rate limits")]
pub struct RateLimitSettings {
    /// A named plan: NAME=N/min[,N/day][,burst=N], e.g. pro=300/min,10000/day,burst=50
    /// (repeatable; in the environment, separated by ';'). Keys and clients name theirs in
    /// `rate_limit_plan`.
    #[arg(
        long = "rate-limit-plan",
        env = "PORTCULLIS_RATE_LIMIT_PLANS",
        value_delimiter = ';'
    )]
    pub rate_limit_plans: Vec<crate::rate_limit::plan::Plan>,
    /// The plan of keys and clients that name none. Without one, they are not limited.
    #[arg(long, env = "PORTCULLIS_DEFAULT_RATE_LIMIT_PLAN")]
    pub default_rate_limit_plan: Option<crate::rate_limit::plan::PlanName>,
    /// Redis to count in, shared by every server (redis://host:port/db). Without it each
    /// server counts on its own; while it cannot be reached, each server counts on its own
    /// meanwhile.
    #[arg(long, env = "PORTCULLIS_REDIS_URL")]
    pub redis_url: Option<String>,
    /// How long a request waits for Redis before it is counted in this process instead, in
    /// milliseconds.
    #[arg(long, env = "PORTCULLIS_REDIS_TIMEOUT_MS", default_value_t = DEFAULT_REDIS_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub redis_timeout_ms: u64,
}

/// Default time a request waits for Redis: a counter round trip on a LAN takes well under a
/// millisecond, and a stalled Redis must not stall sign-ins and token requests.
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 100;

/// Delivering audit events to webhook endpoints (docs/decisions.md, "Webhooks: an outbox
/// written with the event, one deliverer per endpoint").
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Webhooks")]
pub struct WebhookSettings {
    /// How long one delivery may take, connecting included, before it counts as failed, in
    /// seconds.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_TIMEOUT_SECS", default_value_t = DEFAULT_WEBHOOK_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub webhook_timeout_secs: u64,
    /// Wait before the first retry of a failed delivery, in milliseconds; each further retry
    /// waits twice as long (with jitter), up to --webhook-max-retry-delay-secs.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_FIRST_RETRY_MS", default_value_t = DEFAULT_WEBHOOK_FIRST_RETRY_MS,
          value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub webhook_first_retry_ms: u64,
    /// Longest wait between two attempts of a delivery, in seconds.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_MAX_RETRY_DELAY_SECS", default_value_t = DEFAULT_WEBHOOK_MAX_RETRY_DELAY_SECS,
          value_parser = clap::value_parser!(u64).range(1..=86_400))]
    pub webhook_max_retry_delay_secs: u64,
    /// How long a server's claim on an endpoint lasts unless renewed (a third of it between
    /// renewals), in seconds: how long deliveries to an endpoint pause when the server
    /// delivering to it dies without releasing it.
    #[arg(long, env = "PORTCULLIS_WEBHOOK_LEASE_SECS", default_value_t = DEFAULT_WEBHOOK_LEASE_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub webhook_lease_secs: u64,
}

/// Standard Webhooks suggests a receiver answers quickly and works later; 10 s is generous.
pub const DEFAULT_WEBHOOK_TIMEOUT_SECS: u64 = 10;
pub const DEFAULT_WEBHOOK_FIRST_RETRY_MS: u64 = 1_000;
/// Ten minutes: an endpoint back from an outage hears again within that.
pub const DEFAULT_WEBHOOK_MAX_RETRY_DELAY_SECS: u64 = 600;
pub const DEFAULT_WEBHOOK_LEASE_SECS: u64 = 30;
/// How often each server looks for endpoints with deliveries due that no server is working on.
pub const WEBHOOK_POLL_INTERVAL_MS: u64 = 1_000;

/// Housekeeping each server does.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Database")]
pub struct MaintenanceSettings {
    /// Time between two prunings of expired rows (codes, grants, sessions, …), in seconds.
    #[arg(long, env = "PORTCULLIS_PRUNE_INTERVAL_SECS", default_value_t = DEFAULT_PRUNE_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_interval_secs: u64,
    /// How long audit events are kept, in days; the pruner deletes older ones.
    #[arg(long, env = "PORTCULLIS_AUDIT_RETENTION_DAYS", default_value_t = DEFAULT_AUDIT_RETENTION_DAYS,
          value_parser = clap::value_parser!(u64).range(1..=36_500))]
    pub audit_retention_days: u64,
}

/// Default time audit events are kept: a year, the span most audits look back over.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u64 = 365;
/// What an operator watches: metrics and logs.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Observability")]
pub struct ObservabilitySettings {
    /// Serve Prometheus metrics at /metrics on this address (an IP address and a port), a
    /// listener of its own; off when unset. Keep it private: it tells how the server is used.
    #[arg(long, env = "PORTCULLIS_METRICS_BIND", value_parser = parse_bind)]
    pub metrics_bind: Option<std::net::SocketAddr>,
    /// Log lines as text for people, or as one JSON object per line for log shippers.
    #[arg(long, env = "PORTCULLIS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// A socket address, with a hint when it names a host: the server binds to an address, and
/// a name such as `localhost` may stand for several.
pub fn parse_bind(text: &str) -> Result<std::net::SocketAddr, String> {
    text.parse().map_err(|_| {
        let port = text.rsplit_once(':').map_or("8080", |(_, port)| port);
        format!(
            "{text:?} is not an IP address and port: use 127.0.0.1:{port} for this machine \
             only, or 0.0.0.0:{port} for every interface (and set --issuer to the public URL)"
        )
    })
}

fn parse_scope_description(pair: &str) -> Result<(String, String), String> {
    let (scope, words) = pair
        .split_once('=')
        .ok_or_else(|| format!("{pair:?} must be SCOPE=WORDS"))?;
    Ok((scope.trim().to_owned(), words.trim().to_owned()))
}

fn parse_scope(text: &str) -> Result<crate::oauth::scope::Scope, String> {
    crate::oauth::scope::Scope::parse(text).map_err(|e| e.0)
}

/// 1 to 16 ASCII letters or digits.
pub fn parse_api_key_prefix(text: &str) -> Result<String, String> {
    if crate::api_keys::is_valid_prefix(text) {
        Ok(text.to_owned())
    } else {
        Err("the API key prefix must be 1 to 16 ASCII letters or digits".into())
    }
}

impl Config {
    /// The expiries the account page offers, in days (None: never), longest allowed last.
    pub fn personal_key_expiry_choices(&self) -> Vec<Option<i64>> {
        let max = self.api_keys.personal_key_max_lifetime_days;
        if max == 0 {
            return vec![Some(30), Some(90), Some(365), None];
        }
        let mut choices: Vec<Option<i64>> = [30, 90, 365]
            .into_iter()
            .filter(|days| *days <= max)
            .map(Some)
            .collect();
        if !choices.contains(&Some(max)) {
            choices.push(Some(max));
        }
        choices
    }

    /// An absolute URL of this server's endpoint `path` (which starts with `/`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    /// Cookies are `Secure` when the server is reached over https.
    pub fn is_https(&self) -> bool {
        self.issuer.starts_with("https://")
    }

    /// `aud` of tokens issued without an RFC 8707 `resource`: the issuer unless configured.
    pub fn default_audience(&self) -> &str {
        self.tokens
            .default_audience
            .as_deref()
            .unwrap_or(&self.issuer)
    }

    /// Most keys a person may hold from the account page.
    pub fn personal_key_limit(&self) -> usize {
        usize::try_from(self.api_keys.personal_key_limit).unwrap_or(usize::MAX)
    }

    /// A scope in words, for the consent page.
    pub fn describe_scope(&self, scope: &str) -> String {
        self.sign_in
            .scope_descriptions
            .iter()
            .rev()
            .find(|(name, _)| name == scope)
            .map(|(_, words)| words.clone())
            .unwrap_or_else(|| match scope {
                "openid" => "Know who you are".into(),
                "profile" => "See your basic profile".into(),
                "email" => "See your email address".into(),
                "offline_access" => "Stay connected when you are not using it".into(),
                other => format!("Use the \"{other}\" permission"),
            })
    }
}

/// Checks and normalises an issuer: an absolute http(s) URL without query or fragment
/// (RFC 8414 §2), without the trailing slash.
pub fn normalise_issuer(issuer: &str) -> Result<String, String> {
    let url =
        url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(format!("issuer {issuer:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "issuer {issuer:?} must not have a query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_normalised() {
        assert_eq!(
            normalise_issuer("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalise_issuer("https://auth.example/t1").unwrap(),
            "https://auth.example/t1"
        );
        assert!(normalise_issuer("https://auth.example/?x=1").is_err());
        assert!(normalise_issuer("ftp://auth.example").is_err());
        assert!(normalise_issuer("auth.example").is_err());
    }
}
