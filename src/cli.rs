//! The `portcullis` command line: every flag also reads `PORTCULLIS_<FLAG>` from the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use serde_json::json;

use crate::api_keys::{self, ApiKeyKind, KeyEnv, KeyOwner, NewApiKey};
use crate::clients::ClientMetadata;
use crate::clock::unix_now;
use crate::config::{self, Config};
use crate::keys::KeyStore;
use crate::secrets::random_id;
use crate::store::{Store, redact_url};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 authorization server"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct GlobalArgs {
    /// sqlite://FILE (created when missing) or postgres://USER@HOST/DB. Also read from DATABASE_URL.
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory of the signing keys (PKCS#8 PEM, mode 0600), created when missing.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_KEYS_DIR",
        default_value = "keys"
    )]
    pub keys_dir: PathBuf,
    /// Lifetime of access tokens, in seconds.
    #[arg(long, global = true, env = "PORTCULLIS_ACCESS_TOKEN_TTL_SECS", default_value_t = config::DEFAULT_ACCESS_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=86_400))]
    pub access_token_ttl_secs: i64,
    /// Cache-Control max-age of the JWKS, in seconds; a rotated key waits this long before signing.
    #[arg(long, global = true, env = "PORTCULLIS_JWKS_MAX_AGE_SECS", default_value_t = config::DEFAULT_JWKS_MAX_AGE_SECS,
          value_parser = clap::value_parser!(i64).range(0..=86_400))]
    pub jwks_max_age_secs: i64,
    /// First part of API keys, as in pc_live_….
    #[arg(long, global = true, env = "PORTCULLIS_API_KEY_PREFIX", default_value = api_keys::DEFAULT_PREFIX)]
    pub api_key_prefix: String,
}

impl GlobalArgs {
    fn database_url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "sqlite://portcullis.db".to_owned())
    }
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply migrations, create a signing key when there is none, and serve.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage the people who sign in.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Manage organizations and their members.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Manage API keys.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// See and rotate the token signing keys.
    #[command(subcommand, name = "signing-keys")]
    SigningKeys(SigningKeysCommand),
}

#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "PORTCULLIS_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Issuer identifier (RFC 8414): the public base URL. Default: http://localhost:<port>.
    #[arg(long, env = "PORTCULLIS_ISSUER")]
    pub issuer: Option<String>,
    /// `aud` of tokens requested without a `resource`. Default: the issuer.
    #[arg(long, env = "PORTCULLIS_DEFAULT_AUDIENCE")]
    pub default_audience: Option<String>,
    /// Browser sessions end after this much inactivity, in seconds.
    #[arg(long, env = "PORTCULLIS_SESSION_IDLE_SECS", default_value_t = config::DEFAULT_SESSION_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub session_idle_secs: i64,
    /// Browser sessions end this long after sign-in, in seconds.
    #[arg(long, env = "PORTCULLIS_SESSION_ABSOLUTE_SECS", default_value_t = config::DEFAULT_SESSION_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(60..))]
    pub session_absolute_secs: i64,
    /// A refresh token unused for this long expires, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_IDLE_SECS", default_value_t = config::DEFAULT_REFRESH_TOKEN_IDLE_SECS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_token_idle_secs: i64,
    /// A refresh-token family ends this long after the authorization, in seconds.
    #[arg(long, env = "PORTCULLIS_REFRESH_TOKEN_ABSOLUTE_SECS", default_value_t = config::DEFAULT_REFRESH_TOKEN_ABSOLUTE_SECS,
          value_parser = clap::value_parser!(i64).range(1..))]
    pub refresh_token_absolute_secs: i64,
    /// How long after a refresh the same refresh token may be presented again and get the same
    /// successor (a lost response, two tabs), in seconds; 0 treats any second use as reuse.
    #[arg(long, env = "PORTCULLIS_REFRESH_RETRY_WINDOW_SECS", default_value_t = config::DEFAULT_REFRESH_RETRY_WINDOW_SECS,
          value_parser = clap::value_parser!(i64).range(0..=config::MAX_REFRESH_RETRY_WINDOW_SECS))]
    pub refresh_retry_window_secs: i64,
    /// Most live keys a person may hold from /account/api-keys.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_LIMIT", default_value_t = config::DEFAULT_PERSONAL_KEY_LIMIT,
          value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub personal_key_limit: u64,
    /// Longest lifetime of a key people make on /account/api-keys, in days; 0 for no limit.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_MAX_LIFETIME_DAYS", default_value_t = config::DEFAULT_PERSONAL_KEY_MAX_LIFETIME_DAYS,
          value_parser = clap::value_parser!(i64).range(0..=36_500))]
    pub personal_key_max_lifetime_days: i64,
    /// Scopes users may give their own personal keys on /account/api-keys, space-delimited.
    #[arg(long, env = "PORTCULLIS_PERSONAL_KEY_SCOPES", default_value = "")]
    pub personal_key_scopes: String,
    /// Lifetime of scoped tenant tokens (a service key's tokens for one tenant), in seconds.
    #[arg(long, env = "PORTCULLIS_TENANT_TOKEN_TTL_SECS", default_value_t = config::DEFAULT_TENANT_TOKEN_TTL_SECS,
          value_parser = clap::value_parser!(i64).range(1..=3600))]
    pub tenant_token_ttl_secs: i64,
    /// Words for a scope on the consent page, as SCOPE=WORDS (repeatable; the environment
    /// variable takes several separated by `;`).
    #[arg(
        long = "scope-description",
        env = "PORTCULLIS_SCOPE_DESCRIPTIONS",
        value_delimiter = ';'
    )]
    pub scope_descriptions: Vec<String>,
    /// Time between two prunings of expired rows (codes, grants, sessions, …), in seconds.
    #[arg(long, env = "PORTCULLIS_PRUNE_INTERVAL_SECS", default_value_t = config::DEFAULT_PRUNE_INTERVAL_SECS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub prune_interval_secs: u64,
    /// Seconds a client has to send a request's headers (from connecting, or from the first
    /// byte of a later request on a kept-alive connection).
    #[arg(long, env = "PORTCULLIS_HEADER_READ_TIMEOUT_SECS", default_value_t = config::DEFAULT_HEADER_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Seconds a client has to send a whole request body once its headers are in; then 408.
    #[arg(long, env = "PORTCULLIS_BODY_READ_TIMEOUT_SECS", default_value_t = config::DEFAULT_BODY_READ_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_read_timeout_secs: u64,
    /// Seconds a kept-alive connection may wait for its next request before it is closed.
    #[arg(long, env = "PORTCULLIS_IDLE_TIMEOUT_SECS", default_value_t = config::DEFAULT_IDLE_TIMEOUT_SECS,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout_secs: u64,
    /// Open client connections at most; further ones wait in the listen backlog until one closes.
    #[arg(long, env = "PORTCULLIS_MAX_CONNECTIONS", default_value_t = config::DEFAULT_MAX_CONNECTIONS,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// On SIGTERM or SIGINT, seconds to let requests in flight finish before closing their connections.
    #[arg(long, env = "PORTCULLIS_SHUTDOWN_GRACE_SECS", default_value_t = config::DEFAULT_SHUTDOWN_GRACE_SECS,
          value_parser = clap::value_parser!(u64).range(0..=3600))]
    pub shutdown_grace_secs: u64,
}

#[derive(Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        /// An exact redirect URI (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// A public client (SPA, mobile): no secret, token_endpoint_auth_method none.
        #[arg(long)]
        public: bool,
        /// Authenticate with client_secret_post instead of client_secret_basic.
        #[arg(long, conflicts_with = "public")]
        secret_post: bool,
        /// An allowed grant type (repeatable): authorization_code, client_credentials, refresh_token.
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// The scopes the client may ask for, space-delimited.
        #[arg(long)]
        scope: Option<String>,
        /// An RFC 8707 resource (token audience) the client may ask for (repeatable).
        #[arg(long = "resource")]
        resources: Vec<String>,
        /// A first-party client: people are not asked to consent.
        #[arg(long)]
        skip_consent: bool,
        /// A resource server: may introspect other clients' tokens and API keys.
        #[arg(long)]
        resource_server: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input, so it never appears in a process list.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long)]
        json: bool,
    },
    /// List users.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Disable a user: they can no longer sign in, and their sessions and tokens end.
    Disable { username: String },
}

#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Create an API key (a service key unless --admin, --user or --org); prints it once.
    Create {
        #[arg(long)]
        name: String,
        /// An admin key: manages Portcullis (admin API, client registration).
        #[arg(long, conflicts_with_all = ["user", "org", "registrar"])]
        admin: bool,
        /// A registrar key: may only register clients at /register, without first-party flags.
        #[arg(long, conflicts_with_all = ["user", "org"])]
        registrar: bool,
        /// A personal key of this user (username).
        #[arg(long, conflicts_with = "org")]
        user: Option<String>,
        /// An organization key of this organization (its id).
        #[arg(long)]
        org: Option<String>,
        /// The scopes the key may use, space-delimited.
        #[arg(long, default_value = "")]
        scope: String,
        /// Expire the key after this many seconds.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        expires_in: Option<i64>,
        /// A test key (pc_test_…) rather than a live one.
        #[arg(long)]
        test: bool,
        /// Print JSON: {"id": "...", "key": "...", …}.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id; it is refused from the next request on.
    Revoke { id: String },
}

#[derive(Subcommand)]
pub enum OrgsCommand {
    /// Create an organization.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// List organizations.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Delete an organization; its API keys go with it.
    Delete { id: String },
    /// Add a member (or change their role).
    AddMember {
        org_id: String,
        username: String,
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove a member; keys they made that go with their creator are revoked.
    RemoveMember { org_id: String, username: String },
}

#[derive(Subcommand)]
pub enum SigningKeysCommand {
    /// List the keys and their states.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Create a new key, published at once, signing after the JWKS max-age (or --now).
    Rotate {
        #[arg(long)]
        now: bool,
    },
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> Result<(), String> {
    let global = &cli.global;
    if !api_keys::is_valid_prefix(&global.api_key_prefix) {
        return Err("--api-key-prefix must be 1 to 16 ASCII letters or digits".into());
    }
    match &cli.command {
        Command::Serve(args) => serve(global, args).await,
        Command::Migrate => {
            open_store(global).await?.close().await;
            println!("migrations applied");
            Ok(())
        }
        Command::Clients(command) => clients(global, command).await,
        Command::Users(command) => users_command(global, command).await,
        Command::ApiKeys(command) => api_keys_command(global, command).await,
        Command::Orgs(command) => orgs_command(global, command).await,
        Command::SigningKeys(command) => signing_keys(global, command),
    }
}

async fn open_store(global: &GlobalArgs) -> Result<Store, String> {
    let url = global.database_url();
    let store = Store::connect(&url)
        .await
        .map_err(|e| format!("cannot open the database {}: {e}", redact_url(&url)))?;
    store.migrate().await.map_err(|e| e.to_string())?;
    Ok(store)
}

fn open_keys(global: &GlobalArgs) -> Result<KeyStore, String> {
    KeyStore::open(&global.keys_dir, global.access_token_ttl_secs).map_err(|e| e.to_string())
}

async fn serve(global: &GlobalArgs, args: &ServeArgs) -> Result<(), String> {
    let store = open_store(global).await?;
    let keys = open_keys(global)?;
    keys.ensure_key().map_err(|e| e.to_string())?;

    let listener = tokio::net::TcpListener::bind(args.bind)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.bind))?;
    let address = listener.local_addr().map_err(|e| e.to_string())?;
    let issuer = match &args.issuer {
        Some(issuer) => config::normalise_issuer(issuer)?,
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
        access_token_ttl_secs: global.access_token_ttl_secs,
        jwks_max_age_secs: global.jwks_max_age_secs,
        api_key_prefix: global.api_key_prefix.clone(),
        session_idle_secs: args.session_idle_secs,
        session_absolute_secs: args.session_absolute_secs,
        refresh_token_idle_secs: args.refresh_token_idle_secs,
        refresh_token_absolute_secs: args.refresh_token_absolute_secs,
        refresh_retry_window_secs: args.refresh_retry_window_secs,
        tenant_token_ttl_secs: args.tenant_token_ttl_secs,
        personal_key_max_lifetime_days: args.personal_key_max_lifetime_days,
        personal_key_limit: usize::try_from(args.personal_key_limit).unwrap_or(usize::MAX),
        personal_key_scopes: crate::oauth::scope::Scope::parse(&args.personal_key_scopes)
            .map_err(|e| format!("--personal-key-scopes: {}", e.0))?,
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
    crate::serve(listener, config, store, Arc::new(keys))
        .await
        .map_err(|e| e.to_string())
}

fn parse_scope_descriptions(
    pairs: &[String],
) -> Result<std::collections::BTreeMap<String, String>, String> {
    pairs
        .iter()
        .filter(|p| !p.trim().is_empty())
        .map(|pair| {
            let (scope, words) = pair
                .split_once('=')
                .ok_or_else(|| format!("--scope-description {pair:?} must be SCOPE=WORDS"))?;
            Ok((scope.trim().to_owned(), words.trim().to_owned()))
        })
        .collect()
}

async fn clients(global: &GlobalArgs, command: &ClientsCommand) -> Result<(), String> {
    let ClientsCommand::Create {
        name,
        redirect_uris,
        public,
        secret_post,
        grant_types,
        scope,
        resources,
        skip_consent,
        resource_server,
        json,
    } = command;
    let method = if *public {
        "none"
    } else if *secret_post {
        "client_secret_post"
    } else {
        "client_secret_basic"
    };
    let metadata = ClientMetadata {
        client_name: Some(name.clone()),
        redirect_uris: Some(redirect_uris.clone()),
        grant_types: (!grant_types.is_empty()).then(|| grant_types.clone()),
        response_types: None,
        scope: scope.clone(),
        token_endpoint_auth_method: Some(method.into()),
        resources: Some(resources.clone()),
        skip_consent: Some(*skip_consent),
        resource_server: Some(*resource_server),
    };
    let valid = metadata.validate().map_err(|e| e.message().to_owned())?;
    let store = open_store(global).await?;
    let (client, secret) = valid.into_new_client(unix_now());
    store
        .insert_client(&client)
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    if *json {
        let mut out = client.metadata();
        if let Some(secret) = &secret {
            out["client_secret"] = secret.expose().into();
        }
        println!("{out}");
    } else {
        println!("client_id:     {}", client.id);
        if let Some(secret) = &secret {
            println!("client_secret: {}", secret.expose());
            println!("(the secret is shown only now; store it safely)");
        }
    }
    Ok(())
}

async fn users_command(global: &GlobalArgs, command: &UsersCommand) -> Result<(), String> {
    let store = open_store(global).await?;
    let result = match command {
        UsersCommand::Create {
            username,
            email,
            password_stdin: _,
            json,
        } => {
            let mut password = String::new();
            std::io::stdin()
                .read_line(&mut password)
                .map_err(|e| format!("cannot read the password: {e}"))?;
            let password = password.trim_end_matches(['\r', '\n']).to_owned();
            let user = crate::users::create_user(&store, username, email.as_deref(), password)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                println!("{}", json!(user));
            } else {
                println!("created user {} ({})", user.username, user.id);
            }
            Ok(())
        }
        UsersCommand::List { json } => {
            let mut all = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .list_users(after.as_deref(), 200)
                    .await
                    .map_err(|e| e.to_string())?;
                let done = page.len() < 200;
                after = page.last().map(|u| u.id.clone());
                all.extend(page);
                if done {
                    break;
                }
            }
            if *json {
                println!("{}", json!({ "users": all }));
            } else {
                for user in all {
                    let state = if user.is_disabled() {
                        "disabled"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<26} {:<32} {:<8} {}",
                        user.id,
                        user.username,
                        state,
                        user.email.unwrap_or_default()
                    );
                }
            }
            Ok(())
        }
        UsersCommand::Disable { username } => {
            let mut user = store
                .find_user_by_username(username)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| format!("no user {username:?}"))?;
            let now = unix_now();
            user.disabled_at = user.disabled_at.or(Some(now));
            user.updated_at = now;
            store
                .update_user(&user, None)
                .await
                .map_err(|e| e.to_string())?;
            println!("disabled {username}");
            Ok(())
        }
    };
    store.close().await;
    result
}

async fn api_keys_command(global: &GlobalArgs, command: &ApiKeysCommand) -> Result<(), String> {
    let store = open_store(global).await?;
    let result = run_api_keys_command(global, &store, command).await;
    store.close().await;
    result
}

async fn run_api_keys_command(
    global: &GlobalArgs,
    store: &Store,
    command: &ApiKeysCommand,
) -> Result<(), String> {
    match command {
        ApiKeysCommand::Create {
            name,
            admin,
            registrar,
            user,
            org,
            scope,
            expires_in,
            test,
            json,
        } => {
            let (kind, owner) = match (admin, user, org) {
                (true, _, _) => (ApiKeyKind::Admin, KeyOwner::Nobody),
                (false, None, None) if *registrar => (ApiKeyKind::Registrar, KeyOwner::Nobody),
                (false, Some(username), _) => {
                    let user = store
                        .find_user_by_username(username)
                        .await
                        .map_err(|e| e.to_string())?
                        .ok_or_else(|| format!("no user {username:?}"))?;
                    (ApiKeyKind::Personal, KeyOwner::User { user_id: user.id })
                }
                (false, None, Some(org_id)) => (
                    ApiKeyKind::Organization,
                    KeyOwner::Org {
                        org_id: org_id.clone(),
                    },
                ),
                (false, None, None) => (ApiKeyKind::Service, KeyOwner::Nobody),
            };
            let new = NewApiKey {
                kind,
                name: name.clone(),
                scope: scope.clone(),
                env: if *test { KeyEnv::Test } else { KeyEnv::Live },
                metadata: json!({}),
                owner,
                created_by: None,
                revoke_when_creator_leaves: false,
                expires_at: expires_in.map(|secs| unix_now() + secs),
            };
            let (key, secret) = api_keys::create_api_key(store, &global.api_key_prefix, new)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                let mut out = json!(key);
                out["key"] = secret.expose().into();
                println!("{out}");
            } else {
                println!("id:  {}", key.id);
                println!("key: {}", secret.expose());
                println!("(the key is shown only now; store it safely)");
            }
            Ok(())
        }
        ApiKeysCommand::List { json } => {
            let keys = store
                .list_api_keys(None, 10_000)
                .await
                .map_err(|e| e.to_string())?;
            if *json {
                println!("{}", json!({ "api_keys": keys }));
            } else {
                for key in keys {
                    let state = if key.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    println!(
                        "{:<26} {:<12} {:<16} {:<8} {}",
                        key.id,
                        key.kind.as_str(),
                        key.display_prefix,
                        state,
                        key.name
                    );
                }
            }
            Ok(())
        }
        ApiKeysCommand::Revoke { id } => {
            if !store
                .revoke_api_key(id, unix_now())
                .await
                .map_err(|e| e.to_string())?
            {
                return Err(format!("no API key {id:?}"));
            }
            println!("revoked {id}");
            Ok(())
        }
    }
}

async fn orgs_command(global: &GlobalArgs, command: &OrgsCommand) -> Result<(), String> {
    let store = open_store(global).await?;
    let result = run_orgs_command(&store, command).await;
    store.close().await;
    result
}

async fn run_orgs_command(store: &Store, command: &OrgsCommand) -> Result<(), String> {
    use crate::names::check_display_name;
    use crate::organizations::{Organization, Role};
    let text = |e: crate::store::StoreError| e.to_string();
    let user_id = |username: String| async move {
        store
            .find_user_by_username(&username)
            .await
            .map_err(text)?
            .map(|u| u.id)
            .ok_or(format!("no user {username:?}"))
    };
    match command {
        OrgsCommand::Create { name, json } => {
            check_display_name(name)?;
            let org = Organization {
                id: random_id("org_"),
                name: name.trim().to_owned(),
                created_at: unix_now(),
            };
            store.insert_organization(&org).await.map_err(text)?;
            if *json {
                println!("{}", json!(org));
            } else {
                println!("created organization {} ({})", org.name, org.id);
            }
        }
        OrgsCommand::List { json } => {
            let orgs = store.list_organizations(None, 10_000).await.map_err(text)?;
            if *json {
                println!("{}", json!({ "organizations": orgs }));
            } else {
                for org in orgs {
                    println!("{:<26} {}", org.id, org.name);
                }
            }
        }
        OrgsCommand::Delete { id } => {
            if !store.delete_organization(id).await.map_err(text)? {
                return Err(format!("no organization {id:?}"));
            }
            println!("deleted {id}");
        }
        OrgsCommand::AddMember {
            org_id,
            username,
            role,
        } => {
            let role = Role::parse(role).ok_or("--role must be owner or member")?;
            let user_id = user_id(username.clone()).await?;
            if store
                .find_organization(org_id)
                .await
                .map_err(text)?
                .is_none()
            {
                return Err(format!("no organization {org_id:?}"));
            }
            store
                .set_member(org_id, &user_id, role, unix_now())
                .await
                .map_err(text)?;
            println!("{username} is now {} of {org_id}", role.as_str());
        }
        OrgsCommand::RemoveMember { org_id, username } => {
            let user_id = user_id(username.clone()).await?;
            if !store
                .remove_member(org_id, &user_id, unix_now())
                .await
                .map_err(text)?
            {
                return Err(format!("{username} is not a member of {org_id}"));
            }
            println!("removed {username}");
        }
    }
    Ok(())
}

fn signing_keys(global: &GlobalArgs, command: &SigningKeysCommand) -> Result<(), String> {
    let keys = open_keys(global)?;
    match command {
        SigningKeysCommand::List { json } => {
            let statuses = keys.statuses();
            if *json {
                println!("{}", json!({ "keys": statuses }));
            } else {
                println!(
                    "{:<44} {:<9} {:>12} {:>12}",
                    "kid", "state", "activates_at", "unpublish_at"
                );
                for s in statuses {
                    let unpublish = s.unpublish_at.map(|t| t.to_string()).unwrap_or_default();
                    let state = format!("{:?}", s.state).to_lowercase();
                    println!(
                        "{:<44} {:<9} {:>12} {:>12}",
                        s.kid, state, s.activates_at, unpublish
                    );
                }
            }
            Ok(())
        }
        SigningKeysCommand::Rotate { now } => {
            let delay = if *now { 0 } else { global.jwks_max_age_secs };
            let kid = keys.rotate(delay).map_err(|e| e.to_string())?;
            println!(
                "new key {kid}: published now, signing from {}",
                unix_now() + delay
            );
            Ok(())
        }
    }
}
