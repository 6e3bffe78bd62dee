//! Organizations and their members.

use serde_json::json;

use super::{Error, Initiator};
use crate::audit::{Action, AuditEvent};
use crate::clock::unix_now;
use crate::ids::{OrgId, UserId};
use crate::names::DisplayName;
use crate::organizations::{Member, Organization, Role};
use crate::store::Store;

pub async fn create_organization(
    store: &Store,
    name: &str,
    by: &Initiator,
) -> Result<Organization, Error> {
    let org = Organization {
        id: OrgId::generate(),
        name: DisplayName::parse(name).map_err(Error::Invalid)?,
        created_at: unix_now(),
    };
    let event = AuditEvent::new(
        Action::OrganizationCreated,
        by,
        Some(org.id.as_str()),
        json!({ "name": org.name }),
    );
    store.insert_organization(&org, &event).await?;
    tracing::info!(org_id = %org.id, "created an organization");
    Ok(org)
}

/// Up to `limit` organizations after the one with id `after`, in id order.
pub async fn list_organizations(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Organization>, Error> {
    Ok(store.list_organizations(after, limit).await?)
}

/// The organization and its members.
pub async fn find_organization(
    store: &Store,
    id: &OrgId,
) -> Result<(Organization, Vec<Member>), Error> {
    let org = store
        .find_organization(id)
        .await?
        .ok_or_else(|| no_org(id))?;
    let members = store.list_members(id).await?;
    Ok((org, members))
}

/// Deletes the organization; its API keys go with it.
pub async fn delete_organization(store: &Store, id: &OrgId, by: &Initiator) -> Result<(), Error> {
    let event = AuditEvent::new(
        Action::OrganizationDeleted,
        by,
        Some(id.as_str()),
        json!({}),
    );
    if !store.delete_organization(id, &event).await? {
        return Err(no_org(id));
    }
    tracing::info!(org_id = %id, "deleted an organization");
    Ok(())
}

/// Adds a member, or changes their role.
pub async fn add_member(
    store: &Store,
    org_id: &OrgId,
    user_id: &UserId,
    role: Role,
    by: &Initiator,
) -> Result<(), Error> {
    store
        .find_organization(org_id)
        .await?
        .ok_or_else(|| no_org(org_id))?;
    if store.find_user(user_id).await?.is_none() {
        return Err(Error::invalid(format!("no user \"{user_id}\"")));
    }
    let event = AuditEvent::new(
        Action::OrganizationMemberAdded,
        by,
        Some(org_id.as_str()),
        json!({ "user_id": user_id, "role": role.as_str() }),
    );
    store
        .set_member(org_id, user_id, role, unix_now(), &event)
        .await?;
    tracing::info!(%org_id, %user_id, role = role.as_str(), "set an organization member");
    Ok(())
}

/// Removes a member; the organization's keys they made with `revoke_when_creator_leaves` are
/// revoked in the same transaction.
pub async fn remove_member(
    store: &Store,
    org_id: &OrgId,
    user_id: &UserId,
    by: &Initiator,
) -> Result<(), Error> {
    let event = AuditEvent::new(
        Action::OrganizationMemberRemoved,
        by,
        Some(org_id.as_str()),
        json!({ "user_id": user_id }),
    );
    if !store
        .remove_member(org_id, user_id, unix_now(), &event)
        .await?
    {
        return Err(Error::NotFound(format!(
            "user \"{user_id}\" is not a member of organization \"{org_id}\""
        )));
    }
    tracing::info!(%org_id, %user_id, "removed an organization member");
    Ok(())
}

/// Parses a role name, with the error a person can act on.
pub fn parse_role(text: &str) -> Result<Role, Error> {
    Role::parse(text).ok_or_else(|| Error::invalid("role must be owner or member"))
}

fn no_org(id: &OrgId) -> Error {
    Error::NotFound(format!("no organization \"{id}\""))
}
