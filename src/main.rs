use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use portcullis::config::LogFormat;
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    // What is logged when neither PORTCULLIS_LOG nor RUST_LOG is set: a server tells what it
    // does; a command prints its result, and logs only what went wrong.
    let default_filter = match cli.command {
        portcullis::cli::Command::Serve(_) => "info,sqlx=warn",
        _ => "warn",
    };
    // PORTCULLIS_LOG, else RUST_LOG, the variable Rust programs usually read.
    let chosen = ["PORTCULLIS_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| Some((name, std::env::var(name).ok()?)));
    let (filter, invalid) = match chosen {
        None => (EnvFilter::new(default_filter), None),
        Some((name, directives)) => match EnvFilter::try_new(&directives) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(default_filter), Some((name, e))),
        },
    };
    let format = match &cli.command {
        portcullis::cli::Command::Serve(args) => args.log_format(),
        _ => LogFormat::Text,
    };
    let logger = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logger.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line: the event's fields at the top level beside `message`, and the
        // request's span (its id, method and route) as `span`.
        LogFormat::Json => logger
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
    if let Some((name, error)) = invalid {
        tracing::warn!("{name} is not a valid log filter ({error}); logging {default_filter}");
    }
    portcullis::cli::run(cli).await
}
