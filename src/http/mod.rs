//! The HTTP surface: thin handlers that parse a request, call the domain, and map the result.

mod account;
mod admin;
mod authorize;
mod body;
mod client_auth;
mod control_characters;
mod discovery;
mod extract;
mod health;
mod home;
mod introspect;
mod login;
pub mod metrics;
mod page_error;
mod pages;
mod register;
mod rejections;
mod request_log;
mod revoke;
mod token;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, middleware};
use tower::ServiceBuilder;
use tower_http::cors::{Any, CorsLayer};
use tower_http::request_id::{PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::trace::TraceLayer;

use request_log::X_REQUEST_ID;

use crate::config::MAX_BODY_BYTES;

use crate::app::AppContext;

pub type AppState = Arc<AppContext>;

pub fn router(state: AppState) -> Router {
    let body_read_timeout = Duration::from_secs(state.config.http.body_read_timeout_secs);
    // Endpoints a browser app (an SPA with PKCE) calls from its own origin. None of them uses
    // cookies, so any origin may call them (no credentials are allowed cross-origin).
    let cors = CorsLayer::new()
        .allow_origin(Any)
        .allow_methods([Method::GET, Method::POST])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE]);
    // RFC 6749 §5.1: answers that carry or refuse credentials are never cached; introspection,
    // revocation and registration answers follow, and so do the probes, which are about now.
    // (Errors made outside these routers get it from `OAuthError`.)
    let no_store = SetResponseHeaderLayer::overriding(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
    let pragma_no_cache =
        SetResponseHeaderLayer::overriding(header::PRAGMA, HeaderValue::from_static("no-cache"));
    // One credential freshness check per request, however many lookups it makes.
    let one_observation = middleware::from_fn(one_credentials_observation);
    let token_and_revoke = Router::new()
        .route(
            "/token",
            post(token::token)
                .route_layer(pragma_no_cache)
                .route_layer(middleware::from_fn(rate_limit_headers)),
        )
        .route("/revoke", post(revoke::revoke))
        .route_layer(no_store.clone())
        .route_layer(one_observation.clone());
    let discovery = Router::new()
        .route(
            "/.well-known/oauth-authorization-server",
            get(discovery::metadata),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks));
    let for_apps = token_and_revoke.merge(discovery).layer(cors);
    // Resource servers, registrars and orchestrators call these, never browsers: no CORS.
    let for_servers = Router::new()
        .route(
            "/introspect",
            post(introspect::introspect).route_layer(one_observation),
        )
        .route("/register", post(register::register))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route_layer(no_store);
    // Behind an https issuer, every response tells the browser to use https only, for a year
    // (RFC 6797): no sign-in page is ever fetched over plain http again.
    let strict_transport_security = SetResponseHeaderLayer::overriding(
        header::STRICT_TRANSPORT_SECURITY,
        state
            .config
            .is_https()
            .then(|| HeaderValue::from_static("max-age=31536000")),
    );
    // Every 503 (the database cannot answer now) says when to retry, whichever error shape the
    // endpoint answers with: OAuth JSON, the admin envelope, or a page.
    let retry_after_503 =
        SetResponseHeaderLayer::if_not_present(header::RETRY_AFTER, |response: &Response| {
            (response.status() == StatusCode::SERVICE_UNAVAILABLE)
                .then(|| HeaderValue::from_static(RETRY_AFTER_SECS))
        });
    // Counted only when someone can see the counts.
    let metrics = state
        .config
        .observability
        .metrics_bind
        .is_some()
        .then(|| middleware::from_fn(metrics::record));
    // Around every route, outermost first: a client's unusable request id is dropped, a new
    // one made where there is none, the response given it, the request's span opened around
    // everything else, and then the guards every request passes. One stack, applied once:
    // axum clones and boxes each `Router::layer` per request, so eleven of them cost more
    // than some handlers. (They still wrap each route, after routing, so the span and the metrics
    // see the matched route.)
    let request_log = TraceLayer::new_for_http()
        .make_span_with(request_log::span_for)
        .on_request(())
        .on_response(request_log::log_response)
        .on_body_chunk(())
        .on_eos(())
        .on_failure(());
    let around_every_route = ServiceBuilder::new()
        .layer(middleware::map_request(
            request_log::drop_unusable_request_id,
        ))
        .layer(SetRequestIdLayer::new(
            X_REQUEST_ID,
            request_log::NewRequestId,
        ))
        .layer(PropagateRequestIdLayer::new(X_REQUEST_ID))
        .layer(request_log)
        .option_layer(metrics)
        .layer(middleware::from_fn(
            control_characters::refuse_in_identifiers,
        ))
        .layer(middleware::from_fn(rejections::in_api_error_shape))
        .layer(middleware::from_fn_with_state(
            body_read_timeout,
            body::read_whole,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(strict_transport_security)
        .layer(retry_after_503);
    Router::new()
        .route("/", get(home::show))
        .merge(for_apps)
        .merge(for_servers)
        .route("/authorize", get(authorize::start).post(authorize::decide))
        .route("/login", get(login::show).post(login::submit))
        .route("/logout", post(login::logout))
        .route("/static/style.css", get(pages::stylesheet))
        .route("/static/copy.js", get(pages::copy_script))
        .route(account::PATH, get(account::show).post(account::create))
        .route("/account/api-keys/{id}/revoke", post(account::revoke))
        .nest("/admin", admin::router())
        .fallback(not_found)
        .layer(around_every_route)
        .with_state(state)
}

/// Middleware: the request's credential lookups share one observation of the generation.
async fn one_credentials_observation(
    request: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    crate::credentials::one_observation_per_request(next.run(request)).await
}

/// Middleware: an answer to a caller counted against a rate limit says where it stands
/// (`rate_limit::Outcome::headers`), whatever the answer is.
async fn rate_limit_headers(request: axum::extract::Request, next: middleware::Next) -> Response {
    let (mut response, outcome) =
        crate::rate_limit::reporting_caller_limit(next.run(request)).await;
    if let Some(outcome) = outcome {
        let headers = response.headers_mut();
        for (name, value) in outcome.headers(crate::clock::unix_now()) {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.insert(name, value);
            }
        }
    }
    response
}

/// Seconds a client is asked to wait before retrying after a 503: outages are noticed and
/// recovered from within about a second (RFC 9110 §10.2.3).
const RETRY_AFTER_SECS: &str = "1";

async fn not_found() -> impl IntoResponse {
    (
        StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({ "error": "not_found" })),
    )
}
