//! `portcullis audit list`: the audit log, newest first.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, with_store};
use crate::admin::audit::{self, EventQuery};
use crate::audit::{AuditEvent, format_rfc3339_ms};

#[derive(Args)]
pub struct AuditArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: AuditCommand,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// List events, newest first.
    List {
        /// Only this action, e.g. api_key.revoked.
        #[arg(long)]
        action: Option<String>,
        /// Only by this actor: an admin key id, user id, client id, cli or anonymous.
        #[arg(long)]
        actor: Option<String>,
        /// Only about this id.
        #[arg(long)]
        target: Option<String>,
        /// From this Unix time on.
        #[arg(long)]
        since: Option<i64>,
        /// Before this Unix time.
        #[arg(long)]
        until: Option<i64>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=1000))]
        limit: i64,
    },
}

pub async fn run(args: AuditArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        AuditCommand::List {
            action,
            actor,
            target,
            since,
            until,
            limit,
        } => {
            let query = EventQuery {
                action,
                actor,
                target,
                since,
                until,
                after: None,
            };
            let (events, _) = audit::list_events(store, query, limit).await?;
            output::Listing {
                field: "events",
                header: &["at", "action", "actor", "target", "from"],
                empty: "no events yet",
                view: |event: &AuditEvent| json!(event),
                row: |event| {
                    vec![
                        format_rfc3339_ms(event.at_ms),
                        event.action.as_str().to_owned(),
                        event.actor.clone(),
                        event.target.clone().unwrap_or_else(|| "-".into()),
                        event.ip.clone().unwrap_or_else(|| "-".into()),
                    ]
                },
            }
            .print(&events, json);
            Ok(())
        }
    })
    .await
}
