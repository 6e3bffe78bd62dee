//! Registering, listing, showing and deleting webhook endpoints. Registering and deleting
//! are audit events themselves, recorded in the same transaction.

use serde_json::json;

use super::{Error, Initiator};
use crate::audit::{Action, AuditEvent};
use crate::clock::unix_now;
use crate::ids::WebhookId;
use crate::store::Store;
use crate::webhooks::signature::SigningSecret;
use crate::webhooks::{DeliveryStatus, WebhookEndpoint, check_actions, check_url};

/// An endpoint to register.
#[derive(Debug, Clone)]
pub struct NewEndpoint {
    /// https, or http to this machine.
    pub url: String,
    /// Action names, `noun.*` or `*`: at least one.
    pub actions: Vec<String>,
}

/// Checks `new` and registers it; returns it with its signing secret, shown only now.
pub async fn create_webhook(
    store: &Store,
    new: NewEndpoint,
    by: &Initiator,
) -> Result<(WebhookEndpoint, SigningSecret), Error> {
    let url = check_url(&new.url).map_err(Error::Invalid)?;
    let actions = check_actions(&new.actions).map_err(Error::Invalid)?;
    let endpoint = WebhookEndpoint {
        id: WebhookId::generate(),
        url: url.to_string(),
        actions,
        created_at: unix_now(),
        disabled_at: None,
    };
    let secret = SigningSecret::generate();
    let event = AuditEvent::new(
        Action::WebhookCreated,
        by,
        Some(endpoint.id.as_str()),
        json!({ "url": endpoint.url, "actions": endpoint.actions }),
    );
    store
        .insert_webhook_endpoint(&endpoint, &secret, &event)
        .await?;
    tracing::info!(endpoint = %endpoint.id, "registered a webhook endpoint");
    Ok((endpoint, secret))
}

/// Up to `limit` endpoints after the one with id `after`, in id order; never their secrets.
pub async fn list_webhooks(
    store: &Store,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<WebhookEndpoint>, Error> {
    Ok(store.list_webhook_endpoints(after, limit).await?)
}

/// The endpoint and how its deliveries stand.
pub async fn find_webhook(
    store: &Store,
    id: &WebhookId,
) -> Result<(WebhookEndpoint, DeliveryStatus), Error> {
    let endpoint = store
        .find_webhook_endpoint(id)
        .await?
        .ok_or_else(|| no_webhook(id))?;
    let status = store.webhook_delivery_status(id).await?;
    Ok((endpoint, status))
}

/// Deletes the endpoint: what was queued for it goes with it, undelivered.
pub async fn delete_webhook(store: &Store, id: &WebhookId, by: &Initiator) -> Result<(), Error> {
    let endpoint = store
        .find_webhook_endpoint(id)
        .await?
        .ok_or_else(|| no_webhook(id))?;
    let event = AuditEvent::new(
        Action::WebhookDeleted,
        by,
        Some(id.as_str()),
        json!({ "url": endpoint.url }),
    );
    if !store.delete_webhook_endpoint(id, &event).await? {
        return Err(no_webhook(id));
    }
    tracing::info!(endpoint = %id, "deleted a webhook endpoint");
    Ok(())
}

fn no_webhook(id: &WebhookId) -> Error {
    Error::NotFound(format!("no webhook endpoint \"{id}\""))
}
