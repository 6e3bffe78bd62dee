//! `portcullis users`: create, list, show, disable, enable and delete users, and set passwords.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, read_password_line, with_store};
use crate::admin::Initiator;
use crate::admin::users::{self, NewUser, UserChange};
use crate::users::User;

#[derive(Args)]
pub struct UsersArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: UsersCommand,
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Create a user; the password is read from standard input (one line).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from standard input, so it never appears in a process list.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// List users.
    List {},
    /// Show a user.
    Show { username: String },
    /// Disable a user: they can no longer sign in, and their sessions and tokens end.
    Disable { username: String },
    /// Let a disabled user sign in again (their old sessions and tokens stay ended).
    Enable { username: String },
    /// Set a new password, read from standard input (one line); ends the user's sessions and
    /// tokens.
    SetPassword {
        username: String,
        /// Read the password from standard input, so it never appears in a process list.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Delete a user with their sessions, tokens, memberships and personal keys.
    Delete { username: String },
}

pub async fn run(args: UsersArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        UsersCommand::Create {
            username,
            email,
            password_stdin: _,
        } => {
            let password = read_password_line()?;
            let new = NewUser {
                username,
                email,
                password,
            };
            let user = users::create_user(store, new, &Initiator::cli()).await?;
            if json {
                output::json(&json!(user));
            } else {
                println!("created user {} ({})", user.username, user.id);
            }
            Ok(())
        }
        UsersCommand::List {} => {
            let all = super::list_all(
                async |after, limit| Ok(users::list_users(store, after, limit).await?),
                |u: &User| u.id.to_string(),
            )
            .await?;
            output::Listing {
                field: "users",
                header: &["id", "username", "state", "email", "created"],
                empty: "no users yet: add one with `portcullis users create`",
                view: |u: &User| json!(u),
                row: |u| {
                    vec![
                        u.id.to_string(),
                        u.username.to_string(),
                        state(u).to_owned(),
                        u.email.clone().unwrap_or_default(),
                        output::time(Some(u.created_at)),
                    ]
                },
            }
            .print(&all, json);
            Ok(())
        }
        UsersCommand::Show { username } => {
            let user = users::find_user_by_username(store, &username).await?;
            if json {
                output::json(&json!(user));
            } else {
                output::fields(&[
                    ("id", user.id.to_string()),
                    ("username", user.username.to_string()),
                    ("email", user.email.clone().unwrap_or_default()),
                    ("state", state(&user).to_owned()),
                    ("disabled", output::time(user.disabled_at)),
                    ("created", output::time(Some(user.created_at))),
                    ("updated", output::time(Some(user.updated_at))),
                ]);
            }
            Ok(())
        }
        UsersCommand::Disable { username } => {
            change(
                store,
                &username,
                UserChange {
                    disabled: Some(true),
                    ..Default::default()
                },
            )
            .await
            .map(|user| {
                let sentence = format!("disabled {username}: their sessions and tokens have ended");
                output::done(json, &sentence, json!(user));
            })?;
            Ok(())
        }
        UsersCommand::Enable { username } => {
            change(
                store,
                &username,
                UserChange {
                    disabled: Some(false),
                    ..Default::default()
                },
            )
            .await
            .map(|user| output::done(json, &format!("enabled {username}"), json!(user)))?;
            Ok(())
        }
        UsersCommand::SetPassword { username, .. } => {
            let password = read_password_line()?;
            let new = UserChange {
                password: Some(password),
                ..Default::default()
            };
            let user = change(store, &username, new).await?;
            let sentence =
                format!("set a new password for {username}: their sessions and tokens have ended");
            output::done(json, &sentence, json!(user));
            Ok(())
        }
        UsersCommand::Delete { username } => {
            let user = users::find_user_by_username(store, &username).await?;
            users::delete_user(store, &user.id, &Initiator::cli()).await?;
            let sentence = format!("deleted {username}");
            output::done(json, &sentence, json!({ "deleted": user.id }));
            Ok(())
        }
    })
    .await
}

async fn change(
    store: &crate::store::Store,
    username: &str,
    change: UserChange,
) -> anyhow::Result<User> {
    let user = users::find_user_by_username(store, username).await?;
    Ok(users::update_user(store, &user.id, change, &Initiator::cli()).await?)
}

fn state(user: &User) -> &'static str {
    if user.is_disabled() {
        "disabled"
    } else {
        "active"
    }
}
