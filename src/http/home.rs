//! `GET /`: what this server is, for a person who opens its address, and where its documents
//! are.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::AppState;
use super::pages::{self, HomePage};

pub async fn show(State(state): State<AppState>) -> Response {
    let page = HomePage {
        issuer: &state.config.issuer,
    };
    pages::html(StatusCode::OK, &page, None)
}
