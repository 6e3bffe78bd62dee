//! `portcullis signing-keys`: see and rotate the keys that sign access tokens.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, open_keys, output, with_store};
use crate::audit::{Action, AuditEvent, Initiator};
use crate::clock::unix_now;
use crate::config::SigningKeySettings;

#[derive(Args)]
pub struct SigningKeysArgs {
    #[command(flatten)]
    keys: SigningKeySettings,
    /// Where a rotation is recorded in the audit log.
    #[command(flatten)]
    database: DatabaseArgs,
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

pub async fn run(args: SigningKeysArgs, json: bool) -> anyhow::Result<()> {
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
            // The database first: a rotation that cannot be recorded is not made.
            let store = args.database.open_existing().await?;
            let kid = with_store(store, async |store| {
                let kid = keys
                    .rotate(delay)
                    .context("cannot rotate the signing key")?;
                let event = AuditEvent::new(
                    Action::SigningKeyRotated,
                    &Initiator::cli(),
                    Some(&kid),
                    json!({ "activates_in_secs": delay }),
                );
                store.record_event_alone(&event).await.with_context(|| {
                    format!("rotated the signing key (new key {kid}), but cannot record it in the audit log")
                })?;
                Ok(kid)
            })
            .await?;
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
