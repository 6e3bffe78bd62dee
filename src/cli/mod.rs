//! The `portcullis` command line: every flag also reads `PORTCULLIS_<FLAG>` from the environment.
//!
//! Each command parses its input, calls the application layer (`crate::admin`) or the signing
//! keys, and prints the result: a table for people, `--json` for scripts. Rules live in the
//! application layer, not here.

mod api_keys;
mod audit;
mod clients;
mod orgs;
mod output;
pub mod serve;
mod signing_keys;
mod users;
mod webhooks;

use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::config::SigningKeySettings;
use crate::keys::KeyStore;
use crate::store::{Store, redact_url};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 authorization server",
    after_help = "Every flag can also be set in the environment as PORTCULLIS_<FLAG>, \
                  e.g. PORTCULLIS_DATABASE_URL."
)]
pub struct Cli {
    /// Print JSON, for scripts, instead of text for people.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Apply migrations, create a signing key when there is none, and serve.
    Serve(Box<serve::ServeArgs>),
    /// Create the database when missing, apply pending migrations, and exit.
    Migrate(DatabaseArgs),
    /// Manage OAuth clients.
    Clients(clients::ClientsArgs),
    /// Manage the people who sign in.
    Users(users::UsersArgs),
    /// Manage organizations and their members.
    Orgs(orgs::OrgsArgs),
    /// Manage API keys.
    #[command(name = "api-keys")]
    ApiKeys(api_keys::ApiKeysArgs),
    /// Read the audit log.
    Audit(audit::AuditArgs),
    /// See and rotate the token signing keys.
    #[command(name = "signing-keys")]
    SigningKeys(signing_keys::SigningKeysArgs),
    /// Manage the endpoints audit events are delivered to, signed (Standard Webhooks).
    Webhooks(webhooks::WebhooksArgs),
    /// Print a shell completion script: `portcullis completions bash > ~/.local/share/bash-completion/completions/portcullis`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Which database a command works on.
#[derive(Args, Clone)]
pub struct DatabaseArgs {
    /// sqlite://FILE or postgres://USER@HOST/DB [default: sqlite://portcullis.db]. Also read
    /// from DATABASE_URL.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_DATABASE_URL",
        value_name = "URL",
        help_heading = "Database"
    )]
    pub database_url: Option<String>,
}

impl DatabaseArgs {
    fn url(&self) -> String {
        self.database_url
            .clone()
            .or_else(|| std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()))
            .unwrap_or_else(|| "sqlite://portcullis.db".to_owned())
    }

    /// Opens the database, creating it when missing: for `serve` and `migrate`.
    async fn open_or_create(&self) -> anyhow::Result<Store> {
        self.open(true).await
    }

    /// Opens an existing database, migrating it: an admin command run in the wrong directory
    /// must not make an empty database of its own and print credentials no server knows.
    async fn open_existing(&self) -> anyhow::Result<Store> {
        self.open(false).await
    }

    /// Opens the database and applies pending migrations.
    async fn open(&self, create_if_missing: bool) -> anyhow::Result<Store> {
        let url = self.url();
        if let Some(path) = crate::store::sqlite_path(&url).filter(|_| !create_if_missing)
            && !path.exists()
        {
            let shown = std::path::absolute(&path).unwrap_or(path);
            anyhow::bail!(
                "no database at {}.\n\
                 Run this command where `portcullis serve` runs, or point it at the server's \
                 database with --database-url sqlite://PATH (or PORTCULLIS_DATABASE_URL). \
                 `portcullis migrate` creates a new, empty one.",
                shown.display()
            );
        }
        let opened = if create_if_missing {
            Store::connect(&url).await
        } else {
            Store::connect_existing(&url).await
        };
        let store =
            opened.with_context(|| format!("cannot open the database {}", redact_url(&url)))?;
        store
            .migrate()
            .await
            .context("cannot migrate the database")?;
        Ok(store)
    }
}

/// Opens the signing keys the settings name.
fn open_keys(keys: &SigningKeySettings) -> anyhow::Result<KeyStore> {
    KeyStore::open(&keys.keys_dir, keys.access_token_ttl_secs).with_context(|| {
        format!(
            "cannot open the signing keys in {}",
            keys.keys_dir.display()
        )
    })
}

/// Runs a parsed command line; errors are printed with their causes.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            // After the log lines that led to it.
            crate::logging::flush();
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn execute(cli: Cli) -> anyhow::Result<()> {
    let json = cli.json;
    match cli.command {
        Command::Serve(args) => serve::run(*args).await,
        Command::Migrate(database) => {
            database.open_or_create().await?.close().await;
            output::done(
                json,
                "migrations applied",
                serde_json::json!({ "migrated": true }),
            );
            Ok(())
        }
        Command::Clients(args) => clients::run(args, json).await,
        Command::Users(args) => users::run(args, json).await,
        Command::Orgs(args) => orgs::run(args, json).await,
        Command::ApiKeys(args) => api_keys::run(args, json).await,
        Command::Audit(args) => audit::run(args, json).await,
        Command::SigningKeys(args) => signing_keys::run(args, json).await,
        Command::Webhooks(args) => webhooks::run(args, json).await,
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "portcullis", &mut script);
            match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
                // A reader that stops early (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
                _ => Ok(()),
            }
        }
    }
}

/// Runs `work` on `store`, then closes it whatever the outcome.
async fn with_store<T>(
    store: Store,
    work: impl AsyncFnOnce(&Store) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let result = work(&store).await;
    store.close().await;
    result
}

/// Items asked for per page when a command lists everything.
const LIST_PAGE: i64 = 200;

/// Every item of a keyset-paged list, page after page.
async fn list_all<T>(
    mut fetch: impl AsyncFnMut(Option<&str>, i64) -> anyhow::Result<Vec<T>>,
    id: impl Fn(&T) -> String,
) -> anyhow::Result<Vec<T>> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = fetch(after.as_deref(), LIST_PAGE).await?;
        let full = page.len() as i64 == LIST_PAGE;
        after = page.last().map(&id);
        all.extend(page);
        if !full {
            return Ok(all);
        }
    }
}

/// One line of standard input without its line ending: a password, kept out of the process
/// list and the shell history.
fn read_password_line() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_owned())
}
