//! The HTTP surface: thin handlers that parse a request, call the domain, and map the result.

mod account;
mod admin;
mod authorize;
mod body;
mod control_characters;
mod discovery;
mod extract;
mod health;
mod home;
mod introspect;
mod login;
mod page_error;
mod pages;
mod register;
mod rejections;
mod revoke;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower_http::cors::{Any, CorsLayer};

use crate::config::MAX_BODY_BYTES;

use crate::app::AppContext;

pub type AppState = Arc<AppContext>;

pub fn router(state: AppState) -> Router {
    let body_read_timeout = Duration::from_secs(state.config.http_limits.body_read_timeout_secs);
    // Endpoints a browser app (an SPA with PKCE) calls from its own origin. None of them uses
    // cookies, so any origin may call them (no credentials are allowed cross-origin).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    let for_apps = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/token", post(token::token))
        .route("/revoke", post(revoke::revoke))
        .layer(cors);
    Router::new()
        .route("/", get(home::show))
        .merge(for_apps)
        // Resource servers call it, never browsers: no CORS.
        .route("/introspect", post(introspect::introspect))
        .route("/register", post(register::register))
        .route("/authorize", get(authorize::start).post(authorize::decide))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/static/copy.js", get(pages::copy_script))
        .route(account::PATH, get(account::show).post(account::create))
        .route("/account/api-keys/{id}/revoke", post(account::revoke))
        .nest("/admin", admin::router())
        .fallback(not_found)
        .layer(axum::middleware::map_response(retry_later_after_503))
        .layer(axum::middleware::map_response_with_state(
            state.config.is_https(),
            strict_transport_security,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            body_read_timeout,
            body::read_whole,
        ))
        .layer(middleware::from_fn(rejections::in_api_error_shape))
        .layer(middleware::from_fn(
            control_characters::refuse_in_identifiers,
        ))
        .with_state(state)
}

/// Behind an https issuer, every response tells the browser to use https only, for a year
/// (RFC 6797): no sign-in page is ever fetched over plain http again.
async fn strict_transport_security(
    axum::extract::State(is_https): axum::extract::State<bool>,
    mut response: Response,
) -> Response {
    if is_https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    response
}

/// Seconds a client is asked to wait before retrying after a 503: outages are noticed and
/// recovered from within about a second (RFC 9110 §10.2.3).
const RETRY_AFTER_SECS: &str = "1";

/// Every 503 (the database cannot answer now) says when to retry, whichever error shape the
/// endpoint answers with: OAuth JSON, the admin envelope, or a page.
async fn retry_later_after_503(mut response: Response) -> Response {
    if response.status() == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .entry(header::RETRY_AFTER)
            .or_insert(HeaderValue::from_static(RETRY_AFTER_SECS));
    }
    response
}

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "not_found" })),
    )
}
