//! `GET /metrics` on the metrics listener (`--metrics-bind`), and the middleware that counts
//! and times the main listener's requests. The names are in `crate::metrics`.

use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::PrometheusHandle;

use super::AppState;
use super::request_log::UNMATCHED_ROUTE;
use crate::clock::unix_now;
use crate::keys::KeyState;
use crate::metrics;

/// Prometheus text exposition format, version 0.0.4.
const EXPOSITION_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The metrics listener's one route.
pub fn router(state: AppState, handle: PrometheusHandle) -> Router {
    Router::new()
        .route("/metrics", get(scrape))
        .fallback(|| async { StatusCode::NOT_FOUND })
        .with_state((state, handle))
}

/// Samples what is read rather than counted (the pool, the signing key), then renders.
async fn scrape(State((state, handle)): State<(AppState, PrometheusHandle)>) -> Response {
    let pool = state.store.pool_usage();
    metrics::db_pool(pool.open, pool.idle, pool.max);
    let now = unix_now();
    if let Some(active) = state
        .keys
        .statuses()
        .into_iter()
        .find(|key| key.state == KeyState::Active)
    {
        metrics::signing_key(now - active.created_at, now - active.activates_at);
    }
    (
        [(header::CONTENT_TYPE, EXPOSITION_CONTENT_TYPE)],
        handle.render(),
    )
        .into_response()
}

/// Middleware: counts and times each request by method, route (the pattern it matched, never
/// the path a client sent) and status.
pub async fn record(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(request.method());
    let route = request.extensions().get::<MatchedPath>().cloned();
    let response = next.run(request).await;
    metrics::http_request(
        method,
        route.as_ref().map_or(UNMATCHED_ROUTE, MatchedPath::as_str),
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// A method as a label: a client may send any token as a method, so others are `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
