use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    let _flush_logs_on_exit = portcullis::logging::init(&cli.command);
    portcullis::cli::run(cli).await
}
