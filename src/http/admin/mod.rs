//! `/admin`: managing Portcullis, guarded by admin API keys.

mod api_keys;
mod audit;
mod clients;
mod organizations;
mod paging;
mod signing_keys;
mod users;
mod webhooks;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use axum::routing::{delete, get, post};

use super::AppState;
use crate::error::AdminError;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/clients", post(clients::create).get(clients::list))
        .route(
            "/clients/{id}",
            get(clients::show)
                .patch(clients::update)
                .delete(clients::delete),
        )
        .route("/clients/{id}/secret", post(clients::rotate_secret))
        .route("/users", post(users::create).get(users::list))
        .route(
            "/users/{id}",
            get(users::show).patch(users::update).delete(users::delete),
        )
        .route("/users/{id}/consents", get(users::consents))
        .route(
            "/users/{id}/consents/{client_id}",
            delete(users::withdraw_consent),
        )
        .route("/api-keys", post(api_keys::create).get(api_keys::list))
        .route(
            "/api-keys/{id}",
            get(api_keys::show)
                .patch(api_keys::update)
                .delete(api_keys::revoke),
        )
        .route("/api-keys/{id}/usage", get(api_keys::usage))
        .route(
            "/orgs",
            post(organizations::create).get(organizations::list),
        )
        .route(
            "/orgs/{id}",
            get(organizations::show).delete(organizations::delete),
        )
        .route("/orgs/{id}/members", post(organizations::set_member))
        .route(
            "/orgs/{id}/members/{user_id}",
            axum::routing::delete(organizations::remove_member),
        )
        .route("/audit-events", get(audit::list))
        .route("/signing-keys", get(signing_keys::list))
        .route("/signing-keys/rotate", post(signing_keys::rotate))
        .route("/webhooks", post(webhooks::create).get(webhooks::list))
        .route(
            "/webhooks/{id}",
            get(webhooks::show).delete(webhooks::delete),
        )
        .fallback(not_found)
        .layer(axum::middleware::map_response(never_cached))
}

/// Admin responses carry secrets (a new client secret, a new API key) and private data:
/// no cache, shared or private, may keep any of them (RFC 9111 §5.2.2.5).
async fn never_cached(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

async fn not_found() -> AdminError {
    AdminError::not_found("no such admin endpoint")
}
