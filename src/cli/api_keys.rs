//! `portcullis api-keys`: create (the key printed once), list, show (with today's usage) and
//! revoke API keys.

use clap::{Args, Subcommand};
use serde_json::json;

use super::{DatabaseArgs, output, with_store};
use crate::admin::Initiator;
use crate::admin::api_keys::{self, Expiry, KeyRequest};
use crate::admin::users::find_user_by_username;
use crate::api_keys::{ApiKey, ApiKeyKind, DayUsage, KeyEnv, KeyOwner};
use crate::ids::{ApiKeyId, OrgId};
use crate::rate_limit::plan::PlanName;

#[derive(Args)]
pub struct ApiKeysArgs {
    #[command(flatten)]
    database: DatabaseArgs,
    #[command(subcommand)]
    command: ApiKeysCommand,
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create an API key (a service key unless --admin, --registrar, --user or --org); prints it once.
    Create {
        #[arg(long)]
        name: String,
        /// An admin key: manages Portcullis (admin API, client registration).
        #[arg(long, conflicts_with_all = ["user", "org", "registrar"])]
        admin: bool,
        /// A registrar key: may only register clients at /register, without first-party flags.
        #[arg(long, conflicts_with_all = ["user", "org"])]
        registrar: bool,
        /// A personal key of this user (username).
        #[arg(long, conflicts_with = "org")]
        user: Option<String>,
        /// An organization key of this organization (its id).
        #[arg(long)]
        org: Option<OrgId>,
        /// For an organization key: the member (username) it is made for.
        #[arg(long, requires = "org")]
        created_by: Option<String>,
        /// For an organization key: revoke it when --created-by leaves the organization.
        #[arg(long, requires = "created_by")]
        revoke_when_creator_leaves: bool,
        /// The scopes the key may use, space-delimited.
        #[arg(long, default_value = "")]
        scope: String,
        /// Expire the key after this many seconds (at most ten years).
        #[arg(long)]
        expires_in: Option<i64>,
        /// A test key (pc_test_…) rather than a live one.
        #[arg(long)]
        test: bool,
        /// The rate-limit plan it is held to: one the servers define with
        /// `serve --rate-limit-plan NAME=…` (the CLI cannot check that; a server that does not
        /// know it applies its default plan).
        #[arg(long)]
        rate_limit_plan: Option<PlanName>,
        /// First part of the key, as in pc_live_…; the server's --api-key-prefix.
        #[arg(long, env = "PORTCULLIS_API_KEY_PREFIX", default_value = crate::api_keys::DEFAULT_PREFIX,
              value_parser = crate::config::parse_api_key_prefix)]
        api_key_prefix: String,
    },
    /// List keys (never their secrets).
    List {},
    /// Show a key (never its secret), with how much it was used today (UTC).
    Show { id: ApiKeyId },
    /// Revoke a key by id; it is refused from the next request on.
    Revoke { id: ApiKeyId },
}

pub async fn run(args: ApiKeysArgs, json: bool) -> anyhow::Result<()> {
    let store = args.database.open_existing().await?;
    with_store(store, async |store| match args.command {
        ApiKeysCommand::Create {
            name,
            admin,
            registrar,
            user,
            org,
            created_by,
            revoke_when_creator_leaves,
            scope,
            expires_in,
            test,
            rate_limit_plan,
            api_key_prefix,
        } => {
            let (kind, owner) = match (user, org) {
                (Some(username), _) => {
                    let user = find_user_by_username(store, &username).await?;
                    (None, KeyOwner::User { user_id: user.id })
                }
                (None, Some(org_id)) => (None, KeyOwner::Org { org_id }),
                (None, None) if admin => (Some(ApiKeyKind::Admin), KeyOwner::Nobody),
                (None, None) if registrar => (Some(ApiKeyKind::Registrar), KeyOwner::Nobody),
                (None, None) => (None, KeyOwner::Nobody),
            };
            let created_by = match created_by {
                Some(username) => Some(find_user_by_username(store, &username).await?.id),
                None => None,
            };
            let request = KeyRequest {
                kind,
                name,
                scope,
                env: if test { KeyEnv::Test } else { KeyEnv::Live },
                metadata: json!({}),
                owner,
                expiry: expires_in.map_or(Expiry::Never, Expiry::InSecs),
                created_by,
                revoke_when_creator_leaves,
                rate_limit_plan,
            };
            let (key, secret) =
                api_keys::create_api_key(store, &api_key_prefix, request, &Initiator::cli(), None)
                    .await?;
            if json {
                let mut out = json!(key);
                out["key"] = secret.expose().into();
                output::json(&out);
            } else {
                println!("id:  {}", key.id);
                println!("key: {}", secret.expose());
                println!("(the key is shown only now; store it safely)");
            }
            Ok(())
        }
        ApiKeysCommand::List {} => {
            let all = super::list_all(
                async |after, limit| Ok(api_keys::list_api_keys(store, after, limit).await?),
                |k: &ApiKey| k.id.to_string(),
            )
            .await?;
            output::Listing {
                field: "api_keys",
                header: &["id", "kind", "key", "state", "name", "last used"],
                empty: "no API keys yet: make one with `portcullis api-keys create`",
                view: |k: &ApiKey| json!(k),
                row: |k| {
                    vec![
                        k.id.to_string(),
                        k.kind.as_str().to_owned(),
                        format!("{}…", k.display_prefix),
                        state(k).to_owned(),
                        k.name.to_string(),
                        output::time(k.last_used_at),
                    ]
                },
            }
            .print(&all, json);
            Ok(())
        }
        ApiKeysCommand::Show { id } => {
            let key = api_keys::find_api_key(store, &id).await?;
            let usage = api_keys::api_key_usage_today(store, &id).await?;
            if json {
                let mut out = json!(key);
                out["usage"] = json!(usage);
                output::json(&out);
            } else {
                let owner = match &key.owner {
                    KeyOwner::User { user_id } => format!("user {user_id}"),
                    KeyOwner::Org { org_id } => format!("organization {org_id}"),
                    KeyOwner::Nobody => "-".to_owned(),
                };
                output::fields(&[
                    ("id", key.id.to_string()),
                    ("name", key.name.to_string()),
                    ("kind", key.kind.as_str().to_owned()),
                    ("key", format!("{}…", key.display_prefix)),
                    ("owner", owner),
                    ("scope", key.scope.to_string()),
                    (
                        "rate-limit plan",
                        super::clients::plan_or_default(key.rate_limit_plan.as_ref()),
                    ),
                    ("state", state(&key).to_owned()),
                    ("created", output::time(Some(key.created_at))),
                    ("expires", output::time(key.expires_at)),
                    ("revoked", output::time(key.revoked_at)),
                    ("last used", output::time(key.last_used_at)),
                    (&format!("used today ({})", usage.day), usage_today(&usage)),
                ]);
            }
            Ok(())
        }
        ApiKeysCommand::Revoke { id } => {
            api_keys::revoke_api_key(store, &id, &Initiator::cli()).await?;
            output::done(json, &format!("revoked {id}"), json!({ "revoked": id }));
            Ok(())
        }
    })
    .await
}

/// "12 (7 exchanges, 5 introspections), last at 2026-03-01 12:00 UTC, last exchange from
/// 203.0.113.7", or "0".
fn usage_today(usage: &DayUsage) -> String {
    if usage.total == 0 {
        return "0".into();
    }
    let mut words = format!(
        "{} ({} exchanges, {} introspections), last at {}",
        usage.total,
        usage.exchanges,
        usage.introspections,
        output::time(usage.last_used_at)
    );
    if let Some(ip) = &usage.last_exchange_ip {
        words.push_str(&format!(", last exchange from {ip}"));
    }
    words
}

fn state(key: &ApiKey) -> &'static str {
    if key.revoked_at.is_some() {
        "revoked"
    } else if !key.is_usable(crate::clock::unix_now()) {
        "expired"
    } else {
        "active"
    }
}
