//! Registering, changing and removing OAuth clients, and rotating their secrets.

use super::{Error, Initiator, check_plan};
use crate::audit::{Action, AuditEvent};
use crate::clients::{Client, ClientMetadata, MetadataError};
use crate::clock::unix_now;
use crate::ids::ClientId;
use crate::oauth::scope::Scope;
use crate::rate_limit::plan::Plans;
use crate::secrets::{SECRET_CHARS, Secret, random_base62};
use crate::store::Store;

/// Who registers a client, which bounds what it may be.
#[derive(Debug, Clone)]
pub enum Registrant {
    /// An operator (an admin key, or the CLI): any valid metadata.
    Operator,
    /// A registrar key with this scope (RFC 7591 initial access token for a partner): its
    /// clients get no more than it was given.
    Registrar { scope: Scope },
}

/// Checks `metadata` (RFC 7591 defaults and rules) and what `registrant` may register, and
/// stores the client. The secret, for a confidential client, is returned only now.
/// `plans`: the rate-limit plans a client may name (see [`check_plan`]).
pub async fn register_client(
    store: &Store,
    metadata: ClientMetadata,
    registrant: &Registrant,
    plans: Option<&Plans>,
    by: &Initiator,
) -> Result<(Client, Option<Secret>), Error> {
    let valid = metadata.validate().map_err(Error::InvalidMetadata)?;
    check_plan(plans, valid.rate_limit_plan.as_ref()).map_err(invalid_metadata)?;
    // No first-party flags, scopes within the key's, and no resources: a registrar's clients'
    // tokens are for the default audience.
    if let Registrant::Registrar { scope } = registrant {
        if valid.skip_consent || valid.resource_server {
            return Err(invalid_metadata(
                "a registrar key cannot register first-party clients (skip_consent) or resource servers".into(),
            ));
        }
        // A partner does not choose its own limits: its clients get the servers' default.
        if valid.rate_limit_plan.is_some() {
            return Err(invalid_metadata(
                "a registrar key cannot choose a rate_limit_plan".into(),
            ));
        }
        if !valid.scope.is_subset_of(scope) {
            return Err(invalid_metadata(format!(
                "this registrar key may register clients with scopes within {:?} only",
                scope.to_string()
            )));
        }
        if !valid.resources.is_empty() {
            return Err(invalid_metadata(
                "a registrar key cannot register clients for resources".into(),
            ));
        }
    }
    let (client, secret) = valid.into_new_client(unix_now());
    let event = AuditEvent::new(
        Action::ClientCreated,
        by,
        Some(client.id.as_str()),
        client.metadata(),
    );
    store.insert_client(&client, &event).await?;
    tracing::info!(client_id = %client.id, "registered a client");
    Ok((client, secret))
}

/// Up to `limit` clients after the one with id `after`, in id order.
pub async fn list_clients(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Client>, Error> {
    Ok(store.list_clients(after, limit).await?)
}

pub async fn find_client(store: &Store, id: &ClientId) -> Result<Client, Error> {
    store.find_client(id).await?.ok_or_else(|| no_client(id))
}

/// Changes the fields `patch` gives; the rest stay, and the result must pass every rule of a
/// new registration. The authentication method cannot change, since that would mean
/// inventing or dropping a secret: register a new client instead.
pub async fn update_client(
    store: &Store,
    id: &ClientId,
    patch: ClientMetadata,
    plans: Option<&Plans>,
    by: &Initiator,
) -> Result<Client, Error> {
    let mut client = find_client(store, id).await?;
    if patch
        .token_endpoint_auth_method
        .as_deref()
        .is_some_and(|m| m != client.auth_method.as_str())
    {
        return Err(Error::invalid(format!(
            "token_endpoint_auth_method cannot be changed (this client uses {}); register a new client instead",
            client.auth_method.as_str()
        )));
    }
    let merged = ClientMetadata {
        client_name: patch.client_name.or(Some(client.name.clone())),
        redirect_uris: patch.redirect_uris.or(Some(client.redirect_uris.clone())),
        grant_types: patch.grant_types.or_else(|| {
            Some(
                client
                    .grant_types
                    .iter()
                    .map(|g| g.as_str().into())
                    .collect(),
            )
        }),
        response_types: patch.response_types,
        scope: patch.scope.or(Some(client.scope.to_string())),
        token_endpoint_auth_method: Some(client.auth_method.as_str().to_owned()),
        resources: patch.resources.or(Some(client.resources.clone())),
        skip_consent: patch.skip_consent.or(Some(client.skip_consent)),
        resource_server: patch.resource_server.or(Some(client.resource_server)),
        rate_limit_plan: patch
            .rate_limit_plan
            .or_else(|| Some(client.rate_limit_plan.clone().map(String::from))),
    };
    let valid = merged.validate().map_err(Error::InvalidMetadata)?;
    if valid.rate_limit_plan != client.rate_limit_plan {
        check_plan(plans, valid.rate_limit_plan.as_ref()).map_err(invalid_metadata)?;
    }
    client.name = valid.name;
    client.redirect_uris = valid.redirect_uris;
    client.grant_types = valid.grant_types;
    client.scope = valid.scope;
    client.resources = valid.resources;
    client.skip_consent = valid.skip_consent;
    client.resource_server = valid.resource_server;
    client.rate_limit_plan = valid.rate_limit_plan;
    client.updated_at = unix_now();
    let event = AuditEvent::new(
        Action::ClientUpdated,
        by,
        Some(id.as_str()),
        client.metadata(),
    );
    if !store.update_client(&client, &event).await? {
        return Err(no_client(id));
    }
    tracing::info!(client_id = %id, "updated a client");
    Ok(client)
}

/// Deletes the client; its grants and tokens go with it, and it is refused from the next
/// request on, on every replica.
pub async fn delete_client(store: &Store, id: &ClientId, by: &Initiator) -> Result<(), Error> {
    let event = AuditEvent::new(
        Action::ClientDeleted,
        by,
        Some(id.as_str()),
        serde_json::json!({}),
    );
    if !store.delete_client(id, &event).await? {
        return Err(no_client(id));
    }
    tracing::info!(client_id = %id, "deleted a client");
    Ok(())
}

/// A new secret for a confidential client, returned only now; the old one stops working at
/// once.
pub async fn rotate_client_secret(
    store: &Store,
    id: &ClientId,
    by: &Initiator,
) -> Result<Secret, Error> {
    let client = find_client(store, id).await?;
    if client.is_public() {
        return Err(Error::invalid(
            "a public client (token_endpoint_auth_method none) has no secret",
        ));
    }
    let secret = Secret::new(random_base62(SECRET_CHARS));
    let event = AuditEvent::new(
        Action::ClientSecretRotated,
        by,
        Some(id.as_str()),
        serde_json::json!({}),
    );
    if !store
        .set_client_secret_hash(id, &secret.hash(), unix_now(), &event)
        .await?
    {
        return Err(no_client(id));
    }
    tracing::info!(client_id = %id, "rotated a client secret");
    Ok(secret)
}

fn no_client(id: &ClientId) -> Error {
    Error::NotFound(format!("no client \"{id}\""))
}

fn invalid_metadata(message: String) -> Error {
    Error::InvalidMetadata(MetadataError::InvalidClientMetadata(message))
}
