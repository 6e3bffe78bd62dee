//! `portcullis signing-keys`: see and rotate the keys that sign access tokens.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{open_keys, output};
use crate::clock::unix_now;
use crate::config::SigningKeySettings;

#[derive(Args)]
pub struct SigningKeysArgs {
    #[command(flatten)]
    keys: SigningKeySettings,
    #[command(subcommand)]
    command: SigningKeysCommand,
}

#[derive(Subcommand)]
enum SigningKeysCommand {
    /// List the keys and their states.
    List {},
    /// Create a new key, published at once, signing after the JWKS max-age (or --now).
    Rotate {
        #[arg(long)]
        now: bool,
    },
}

pub fn run(args: SigningKeysArgs, json: bool) -> anyhow::Result<()> {
    if !args.keys.keys_dir.is_dir() {
        anyhow::bail!(
            "no signing keys at {}: run this where `portcullis serve` runs, or point at the \
             server's keys with --keys-dir (or PORTCULLIS_KEYS_DIR)",
            std::path::absolute(&args.keys.keys_dir)
                .unwrap_or(args.keys.keys_dir.clone())
                .display()
        );
    }
    let keys = open_keys(&args.keys)?;
    match args.command {
        SigningKeysCommand::List {} => {
            let statuses = keys.statuses();
            if json {
                output::json(&json!({ "keys": statuses }));
            } else {
                let rows = statuses
                    .iter()
                    .map(|s| {
                        vec![
                            s.kid.clone(),
                            format!("{:?}", s.state).to_lowercase(),
                            output::time(Some(s.activates_at)),
                            output::time(s.unpublish_at),
                        ]
                    })
                    .collect();
                output::table(
                    &["kid", "state", "signs from", "unpublished at"],
                    rows,
                    "no signing keys yet: `portcullis serve` creates the first",
                );
            }
        }
        SigningKeysCommand::Rotate { now } => {
            let delay = if now { 0 } else { args.keys.jwks_max_age_secs };
            let kid = keys
                .rotate(delay)
                .context("cannot rotate the signing key")?;
            let activates_at = unix_now() + delay;
            if json {
                output::json(&json!({ "kid": kid, "activates_at": activates_at }));
            } else {
                println!(
                    "new key {kid}: published now, signing from {}",
                    output::time(Some(activates_at))
                );
            }
        }
    }
    Ok(())
}
