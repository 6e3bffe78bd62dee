//! `portcullis webhooks`: register (the signing secret printed once), list, show and delete
//! the endpoints audit events are delivered to.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, with_store};
use crate::admin::Initiator;
use crate::admin::webhooks::{self, NewEndpoint};
use crate::ids::WebhookId;
use crate::webhooks::WebhookEndpoint;

#[derive(Args)]
pub struct WebhooksArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: WebhooksCommand,
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Register an endpoint for some actions; prints its signing secret once.
    Create {
        /// Where to POST events: https, or http to this machine only.
        #[arg(long)]
        url: String,
        /// An action (api_key.revoked), every action of a kind (api_key.*) or all (*);
        /// repeatable.
        #[arg(long = "action", required = true)]
        actions: Vec<String>,
    },
    /// List endpoints (never their secrets).
    List {},
    /// Show an endpoint and how its deliveries stand.
    Show { id: WebhookId },
    /// Delete an endpoint; events queued for it are dropped.
    Delete { id: WebhookId },
}

pub async fn run(args: WebhooksArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        WebhooksCommand::Create { url, actions } => {
            let new = NewEndpoint { url, actions };
            let (endpoint, secret) =
                webhooks::create_webhook(store, new, &Initiator::cli()).await?;
            if json {
                let mut out = json!(endpoint);
                out["secret"] = secret.expose().into();
                output::json(&out);
            } else {
                println!("id:     {}", endpoint.id);
                println!("secret: {}", secret.expose());
                println!(
                    "(the secret is shown only now; the endpoint verifies deliveries with it)"
                );
            }
            Ok(())
        }
        WebhooksCommand::List {} => {
            let all = super::list_all(
                async |after, limit| Ok(webhooks::list_webhooks(store, after, limit).await?),
                |e: &WebhookEndpoint| e.id.to_string(),
            )
            .await?;
            output::Listing {
                field: "webhooks",
                header: &["id", "url", "actions", "created"],
                empty: "no webhook endpoints yet: register one with `portcullis webhooks create`",
                view: |e: &WebhookEndpoint| json!(e),
                row: |e| {
                    vec![
                        e.id.to_string(),
                        e.url.clone(),
                        e.actions.join(" "),
                        output::time(Some(e.created_at)),
                    ]
                },
            }
            .print(&all, json);
            Ok(())
        }
        WebhooksCommand::Show { id } => {
            let (endpoint, status) = webhooks::find_webhook(store, &id).await?;
            if json {
                let mut out = json!(endpoint);
                out["deliveries"] = json!(status);
                output::json(&out);
            } else {
                let mut fields = vec![
                    ("id", endpoint.id.to_string()),
                    ("url", endpoint.url.clone()),
                    ("actions", endpoint.actions.join(" ")),
                    ("created", output::time(Some(endpoint.created_at))),
                    ("pending", status.pending.to_string()),
                    ("delivered", status.delivered.to_string()),
                ];
                if let Some(next) = &status.next {
                    fields.push(("next event", next.event_id.clone()));
                    fields.push(("attempts", next.attempts.to_string()));
                    fields.push((
                        "last error",
                        next.last_error.clone().unwrap_or_else(|| "-".into()),
                    ));
                }
                output::fields(&fields);
            }
            Ok(())
        }
        WebhooksCommand::Delete { id } => {
            webhooks::delete_webhook(store, &id, &Initiator::cli()).await?;
            output::done(json, &format!("deleted {id}"), json!({ "deleted": id }));
            Ok(())
        }
    })
    .await
}
