//! `portcullis orgs`: organizations and their members.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, with_store};
use crate::admin::Initiator;
use crate::admin::organizations::{self, parse_role};
use crate::admin::users::find_user_by_username;
use crate::ids::OrgId;
use crate::organizations::Organization;

#[derive(Args)]
pub struct OrgsArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: OrgsCommand,
}

#[derive(Subcommand)]
enum OrgsCommand {
    /// Create an organization.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List organizations.
    List {},
    /// Show an organization and its members.
    Show { id: OrgId },
    /// Delete an organization; its API keys go with it.
    Delete { id: OrgId },
    /// Add a member (or change their role).
    AddMember {
        org_id: OrgId,
        username: String,
        /// owner or member.
        #[arg(long, default_value = "member")]
        role: String,
    },
    /// Remove a member; keys they made that go with their creator are revoked.
    RemoveMember { org_id: OrgId, username: String },
}

pub async fn run(args: OrgsArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        OrgsCommand::Create { name } => {
            let org = organizations::create_organization(store, &name, &Initiator::cli()).await?;
            if json {
                output::json(&json!(org));
            } else {
                println!("created organization {} ({})", org.name, org.id);
            }
            Ok(())
        }
        OrgsCommand::List {} => {
            let all = super::list_all(
                async |after, limit| {
                    Ok(organizations::list_organizations(store, after, limit).await?)
                },
                |o: &Organization| o.id.to_string(),
            )
            .await?;
            output::Listing {
                field: "organizations",
                header: &["id", "name", "created"],
                empty: "no organizations yet: add one with `portcullis orgs create`",
                view: |o: &Organization| json!(o),
                row: |o| {
                    vec![
                        o.id.to_string(),
                        o.name.to_string(),
                        output::time(Some(o.created_at)),
                    ]
                },
            }
            .print(&all, json);
            Ok(())
        }
        OrgsCommand::Show { id } => {
            let (org, members) = organizations::find_organization(store, &id).await?;
            if json {
                let mut out = json!(org);
                out["members"] = json!(members);
                output::json(&out);
            } else {
                output::fields(&[
                    ("id", org.id.to_string()),
                    ("name", org.name.to_string()),
                    ("created", output::time(Some(org.created_at))),
                ]);
                println!();
                let rows = members
                    .iter()
                    .map(|m| {
                        vec![
                            m.username.clone(),
                            m.role.as_str().to_owned(),
                            m.user_id.to_string(),
                        ]
                    })
                    .collect();
                output::table(&["member", "role", "user id"], rows, "no members yet");
            }
            Ok(())
        }
        OrgsCommand::Delete { id } => {
            organizations::delete_organization(store, &id, &Initiator::cli()).await?;
            let sentence = format!("deleted organization {id}");
            output::done(json, &sentence, json!({ "deleted": id }));
            Ok(())
        }
        OrgsCommand::AddMember {
            org_id,
            username,
            role,
        } => {
            let role = parse_role(&role)?;
            let user = find_user_by_username(store, &username).await?;
            organizations::add_member(store, &org_id, &user.id, role, &Initiator::cli()).await?;
            let sentence = format!("{username} is now {} of {org_id}", role.as_str());
            let member = json!({ "org_id": org_id, "user_id": user.id, "role": role });
            output::done(json, &sentence, member);
            Ok(())
        }
        OrgsCommand::RemoveMember { org_id, username } => {
            let user = find_user_by_username(store, &username).await?;
            organizations::remove_member(store, &org_id, &user.id, &Initiator::cli()).await?;
            let sentence = format!("removed {username} from {org_id}");
            output::done(
                json,
                &sentence,
                json!({ "org_id": org_id, "removed": user.id }),
            );
            Ok(())
        }
    })
    .await
}
