//! `portcullis clients`: register, list, show, change and delete OAuth clients.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, with_store};
use crate::admin::Initiator;
use crate::admin::clients::{self, Registrant};
use crate::clients::{Client, ClientMetadata};
use crate::ids::ClientId;
use crate::rate_limit::plan::PlanName;

#[derive(Args)]
pub struct ClientsArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: ClientsCommand,
}

#[derive(Subcommand)]
enum ClientsCommand {
    /// Register a client; prints its secret once.
    Create {
        #[arg(long)]
        name: String,
        /// A public client (SPA, mobile): no secret, token_endpoint_auth_method none.
        #[arg(long)]
        public: bool,
        /// Authenticate with client_secret_post instead of client_secret_basic.
        #[arg(long, conflicts_with = "public")]
        secret_post: bool,
        #[command(flatten)]
        settings: ClientSettings,
    },
    /// List clients (never their secrets).
    List {},
    /// Show a client's metadata.
    Show { client_id: ClientId },
    /// Change a client: the options given replace what it has, the others stay.
    Update {
        client_id: ClientId,
        /// A new name.
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        settings: ClientSettings,
        /// Ask people to consent again (undoes --skip-consent).
        #[arg(long, conflicts_with = "skip_consent")]
        ask_consent: bool,
        /// No longer a resource server (undoes --resource-server).
        #[arg(long, conflicts_with = "resource_server")]
        not_resource_server: bool,
        /// Back to the servers' default rate-limit plan (undoes --rate-limit-plan).
        #[arg(long, conflicts_with = "rate_limit_plan")]
        default_rate_limit_plan: bool,
    },
    /// Delete a client: its tokens stop working at once.
    Delete { client_id: ClientId },
    /// Give a confidential client a new secret, printed once; the old one stops working at once.
    RotateSecret { client_id: ClientId },
}

/// What `create` sets and `update` replaces.
#[derive(Args)]
struct ClientSettings {
    /// An exact redirect URI (repeatable; on update, the new list).
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
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
    /// The rate-limit plan its token requests are held to: one the servers define with
    /// `serve --rate-limit-plan NAME=…` (the CLI cannot check that; a server that does not
    /// know it applies its default plan).
    #[arg(long)]
    rate_limit_plan: Option<PlanName>,
}

pub async fn run(args: ClientsArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        ClientsCommand::Create {
            name,
            public,
            secret_post,
            settings,
        } => {
            let method = if public {
                "none"
            } else if secret_post {
                "client_secret_post"
            } else {
                "client_secret_basic"
            };
            let metadata = ClientMetadata {
                client_name: Some(name),
                redirect_uris: Some(settings.redirect_uris),
                grant_types: (!settings.grant_types.is_empty()).then_some(settings.grant_types),
                response_types: None,
                scope: settings.scope,
                token_endpoint_auth_method: Some(method.into()),
                resources: Some(settings.resources),
                skip_consent: Some(settings.skip_consent),
                resource_server: Some(settings.resource_server),
                rate_limit_plan: Some(settings.rate_limit_plan.map(String::from)),
            };
            let (client, secret) = clients::register_client(
                store,
                metadata,
                &Registrant::Operator,
                None,
                &Initiator::cli(),
            )
            .await?;
            if json {
                let mut out = client.metadata();
                if let Some(secret) = &secret {
                    out["client_secret"] = secret.expose().into();
                }
                output::json(&out);
            } else {
                println!("client_id:     {}", client.id);
                if let Some(secret) = &secret {
                    println!("client_secret: {}", secret.expose());
                    println!("(the secret is shown only now; store it safely)");
                }
            }
            Ok(())
        }
        ClientsCommand::List {} => {
            let all = super::list_all(
                async |after, limit| Ok(clients::list_clients(store, after, limit).await?),
                |c: &Client| c.id.to_string(),
            )
            .await?;
            output::Listing {
                field: "clients",
                header: &[
                    "client_id",
                    "name",
                    "authentication",
                    "grant types",
                    "created",
                ],
                empty: "no clients yet: add one with `portcullis clients create`",
                view: Client::metadata,
                row: |c| {
                    vec![
                        c.id.to_string(),
                        c.name.clone(),
                        c.auth_method.as_str().to_owned(),
                        grant_types(c),
                        output::time(Some(c.created_at)),
                    ]
                },
            }
            .print(&all, json);
            Ok(())
        }
        ClientsCommand::Show { client_id } => {
            let client = clients::find_client(store, &client_id).await?;
            print_client(&client, json);
            Ok(())
        }
        ClientsCommand::Update {
            client_id,
            name,
            settings,
            ask_consent,
            not_resource_server,
            default_rate_limit_plan,
        } => {
            let list = |items: Vec<String>| (!items.is_empty()).then_some(items);
            let flag = |set: bool, unset: bool| {
                if set {
                    Some(true)
                } else if unset {
                    Some(false)
                } else {
                    None
                }
            };
            let patch = ClientMetadata {
                client_name: name,
                redirect_uris: list(settings.redirect_uris),
                grant_types: list(settings.grant_types),
                response_types: None,
                scope: settings.scope,
                token_endpoint_auth_method: None,
                resources: list(settings.resources),
                skip_consent: flag(settings.skip_consent, ask_consent),
                resource_server: flag(settings.resource_server, not_resource_server),
                rate_limit_plan: match settings.rate_limit_plan {
                    Some(plan) => Some(Some(plan.into())),
                    None => default_rate_limit_plan.then_some(None),
                },
            };
            let client =
                clients::update_client(store, &client_id, patch, None, &Initiator::cli()).await?;
            print_client(&client, json);
            Ok(())
        }
        ClientsCommand::Delete { client_id } => {
            clients::delete_client(store, &client_id, &Initiator::cli()).await?;
            let sentence = format!("deleted client {client_id}");
            output::done(json, &sentence, json!({ "deleted": client_id }));
            Ok(())
        }
        ClientsCommand::RotateSecret { client_id } => {
            let secret =
                clients::rotate_client_secret(store, &client_id, &Initiator::cli()).await?;
            if json {
                output::json(&json!({ "client_id": client_id, "client_secret": secret.expose() }));
            } else {
                println!("client_id:     {client_id}");
                println!("client_secret: {}", secret.expose());
                println!("(the secret is shown only now; the old one no longer works)");
            }
            Ok(())
        }
    })
    .await
}

fn grant_types(client: &Client) -> String {
    let names: Vec<&str> = client.grant_types.iter().map(|g| g.as_str()).collect();
    names.join(",")
}

fn print_client(client: &Client, json: bool) {
    if json {
        output::json(&client.metadata());
        return;
    }
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_owned();
    output::fields(&[
        ("client_id", client.id.to_string()),
        ("name", client.name.clone()),
        ("authentication", client.auth_method.as_str().to_owned()),
        ("grant types", grant_types(client)),
        ("redirect URIs", client.redirect_uris.join(" ")),
        ("scope", client.scope.to_string()),
        ("resources", client.resources.join(" ")),
        ("skips consent", yes_no(client.skip_consent)),
        ("resource server", yes_no(client.resource_server)),
        (
            "rate-limit plan",
            plan_or_default(client.rate_limit_plan.as_ref()),
        ),
        ("created", output::time(Some(client.created_at))),
        ("updated", output::time(Some(client.updated_at))),
    ]);
}

/// A plan's name, or what applies without one.
pub(super) fn plan_or_default(plan: Option<&PlanName>) -> String {
    plan.map_or_else(|| "the servers' default".to_owned(), PlanName::to_string)
}
