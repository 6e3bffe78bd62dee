use std::process::ExitCode;

use clap::Parser;

/// mimalloc rather than glibc's malloc: a request's many small allocations cost a fifth fewer
/// instructions (docs/decisions.md, "The per-request floor, and how the introspection ratio is
/// measured").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = portcullis::cli::Cli::parse();
    let _flush_logs_on_exit = portcullis::logging::init(&cli.command);
    portcullis::cli::run(cli).await
}
