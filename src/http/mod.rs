//! The HTTP surface: thin handlers that parse a request, call the domain, and map the result.

mod admin;
mod discovery;
mod extract;
mod register;
mod token;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::config::{Config, MAX_BODY_BYTES};
use crate::keys::KeyStore;
use crate::store::Store;

/// What every handler shares.
pub struct AppContext {
    pub config: Config,
    pub store: Store,
    pub keys: Arc<KeyStore>,
}

pub type AppState = Arc<AppContext>;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/token", post(token::token))
        .route("/register", post(register::register))
        .nest("/admin", admin::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "not_found" })),
    )
}
