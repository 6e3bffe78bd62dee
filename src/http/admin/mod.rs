//! `/admin`: managing Portcullis, guarded by admin API keys.

mod clients;
mod signing_keys;
mod users;

use axum::Router;
use axum::routing::{get, post};

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
        .route("/signing-keys", get(signing_keys::list))
        .route("/signing-keys/rotate", post(signing_keys::rotate))
        .fallback(not_found)
}

async fn not_found() -> AdminError {
    AdminError::not_found("no such admin endpoint")
}
