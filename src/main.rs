use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// What is logged when neither PORTCULLIS_LOG nor RUST_LOG is set.
const DEFAULT_LOG_FILTER: &str = "info,sqlx=warn";

#[tokio::main]
async fn main() -> ExitCode {
    // PORTCULLIS_LOG, else RUST_LOG, the variable Rust programs usually read.
    let chosen = ["PORTCULLIS_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| Some((name, std::env::var(name).ok()?)));
    let (filter, invalid) = match chosen {
        None => (EnvFilter::new(DEFAULT_LOG_FILTER), None),
        Some((name, directives)) => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(DEFAULT_LOG_FILTER), Some((name, e))),
        },
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    if let Some((name, error)) = invalid {
        tracing::warn!("{name} is not a valid log filter ({error}); logging {DEFAULT_LOG_FILTER}");
    }
    portcullis::cli::run(portcullis::cli::Cli::parse()).await
}
