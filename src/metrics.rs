//! Prometheus metrics: every metric's name and labels, one function per event, and the
//! process's recorder. docs/decisions.md ("Metrics") lists them for operators.
//!
//! Call sites stay one line (`metrics::token_issued("api_key")`). Label values are
//! `&'static str` wherever the caller picks them, so a label can only take values written in
//! the code: no request can add a time series. Until [`install`] runs (`--metrics-bind` unset)
//! the `metrics` crate's no-op recorder takes every event, which costs next to nothing.
//!
//! The recorder is global to the process, as the `metrics` crate has it: several servers in
//! one process (the in-process tests) count into the same registry.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ::metrics::{
    Label, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Requests answered, by `method`, `route` and `status`.
pub const HTTP_REQUESTS: &str = "portcullis_http_requests_total";
/// Time to answer a request (until the response's headers), by `method`, `route` and `status`.
pub const HTTP_REQUEST_DURATION: &str = "portcullis_http_request_duration_seconds";
/// Access tokens issued, by `grant`.
pub const TOKENS_ISSUED: &str = "portcullis_tokens_issued_total";
/// Introspection answers, by `active` and `token_type`.
pub const INTROSPECTIONS: &str = "portcullis_introspections_total";
/// A used authorization code or a rotated refresh token presented again, by `credential`.
pub const REUSE_DETECTED: &str = "portcullis_reuse_detected_total";
/// Sign-in attempts on the login page, by `result`.
pub const SIGN_INS: &str = "portcullis_sign_ins_total";
/// Requests refused for being over a rate limit, by `scope`.
pub const RATE_LIMITED: &str = "portcullis_rate_limited_total";
/// With `--redis-url`: 1 while rate limits are counted in Redis, 0 while each server counts
/// on its own because Redis cannot be reached.
pub const RATE_LIMIT_REDIS_UP: &str = "portcullis_rate_limit_redis_up";
/// Requests counted in this server because Redis could not be reached.
pub const RATE_LIMIT_COUNTED_LOCALLY: &str = "portcullis_rate_limit_counted_locally_total";
/// Open connections of the database pool, sampled at each scrape.
pub const DB_POOL_CONNECTIONS: &str = "portcullis_db_pool_connections";
/// Of those, the idle ones.
pub const DB_POOL_IDLE_CONNECTIONS: &str = "portcullis_db_pool_idle_connections";
/// The most connections the pool opens.
pub const DB_POOL_MAX_CONNECTIONS: &str = "portcullis_db_pool_max_connections";
/// Seconds since the key that signs now was created, sampled at each scrape.
pub const SIGNING_KEY_AGE: &str = "portcullis_signing_key_age_seconds";
/// Seconds since the key that signs now started signing.
pub const SIGNING_KEY_ACTIVE: &str = "portcullis_signing_key_active_seconds";
/// Always 1, with the server's `version` as a label.
pub const BUILD_INFO: &str = "portcullis_build_info";

/// Upper bounds of the request-latency buckets, in seconds: an introspection takes well under
/// a millisecond, a token a few, a sign-in (argon2) tens to hundreds.
const LATENCY_BUCKETS_SECS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the Prometheus recorder for the process, once, and returns its handle (the same one
/// to every caller).
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
                    &LATENCY_BUCKETS_SECS,
                )
                .expect("the latency buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if ::metrics::set_global_recorder(recorder).is_err() {
                // Only another library could have set one; its events are not ours to show.
                tracing::warn!("another metrics recorder is installed: /metrics will be empty");
            }
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            handle
        })
        .clone()
}

/// The HELP lines of the exposition.
fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered");
    describe_histogram!(
        HTTP_REQUEST_DURATION,
        ::metrics::Unit::Seconds,
        "Time to answer an HTTP request, until the response headers"
    );
    describe_counter!(TOKENS_ISSUED, "Access tokens issued at /token");
    describe_counter!(INTROSPECTIONS, "Introspection answers (RFC 7662)");
    describe_counter!(
        REUSE_DETECTED,
        "Used codes or rotated refresh tokens presented again (the grant is revoked)"
    );
    describe_counter!(SIGN_INS, "Sign-in attempts on the login page");
    describe_counter!(RATE_LIMITED, "Requests refused over a rate limit");
    describe_gauge!(DB_POOL_CONNECTIONS, "Open database pool connections");
    describe_gauge!(DB_POOL_IDLE_CONNECTIONS, "Idle database pool connections");
    describe_gauge!(DB_POOL_MAX_CONNECTIONS, "Most database pool connections");
    describe_gauge!(
        SIGNING_KEY_AGE,
        ::metrics::Unit::Seconds,
        "Seconds since the signing key in use was created"
    );
    describe_gauge!(
        SIGNING_KEY_ACTIVE,
        ::metrics::Unit::Seconds,
        "Seconds since the signing key in use started signing"
    );
    describe_gauge!(BUILD_INFO, "Build information: the version is a label");
}

/// A request answered. `route` is the route's pattern (`/admin/clients/{id}`) or `unmatched`;
/// `method` one of the standard methods or `other`.
pub fn http_request(method: &'static str, route: &str, status: u16, elapsed: Duration) {
    // The route is shared by the two keys rather than copied.
    let labels = vec![
        Label::from_static_parts("method", method),
        Label::new("route", Arc::<str>::from(route)),
        Label::new("status", status_label(status)),
    ];
    counter!(HTTP_REQUESTS, labels.clone()).increment(1);
    histogram!(HTTP_REQUEST_DURATION, labels).record(elapsed.as_secs_f64());
}

/// A status code as a label: three digits, with no allocation for the common ones.
fn status_label(status: u16) -> std::borrow::Cow<'static, str> {
    match status {
        200 => "200".into(),
        201 => "201".into(),
        204 => "204".into(),
        302 => "302".into(),
        303 => "303".into(),
        400 => "400".into(),
        401 => "401".into(),
        404 => "404".into(),
        429 => "429".into(),
        503 => "503".into(),
        other => other.to_string().into(),
    }
}

/// An access token issued. `grant`: `authorization_code`, `refresh_token`,
/// `client_credentials`, or `api_key` (an API key exchanged for a token).
pub fn token_issued(grant: &'static str) {
    counter!(TOKENS_ISSUED, "grant" => grant).increment(1);
}

/// An introspection answered. `token_type`: `access_token`, `refresh_token`, `api_key` (a
/// string shaped like one of this server's keys), or `other` (nothing this server issued, or
/// an expired or otherwise unverifiable JWT).
pub fn introspection(is_active: bool, token_type: &'static str) {
    let active = if is_active { "true" } else { "false" };
    counter!(INTROSPECTIONS, "active" => active, "token_type" => token_type).increment(1);
}

/// A used code or rotated refresh token came back, and its grant was revoked. `credential`:
/// `authorization_code` or `refresh_token`.
pub fn reuse_detected(credential: &'static str) {
    counter!(REUSE_DETECTED, "credential" => credential).increment(1);
}

/// A sign-in attempt's outcome. `result`: `success`, `bad_credentials`, `throttled` (too many
/// failures for the username or the network), `busy` (too many passwords being checked at
/// once) or `error` (the database failed).
pub fn sign_in(result: &'static str) {
    counter!(SIGN_INS, "result" => result).increment(1);
}

/// A request over its rate limit. `scope` says whose limit: `api_key` or `client` (a request
/// refused with 429), or `introspected_api_key` (an introspection that reported a key over
/// its limit; the introspection itself was answered).
pub fn rate_limited(scope: &'static str) {
    counter!(RATE_LIMITED, "scope" => scope).increment(1);
}

/// Whether rate limits are counted in Redis now.
pub fn rate_limit_redis_up(is_up: bool) {
    gauge!(RATE_LIMIT_REDIS_UP).set(if is_up { 1.0 } else { 0.0 });
}

/// A request counted in this server while Redis could not be reached.
pub fn rate_limit_counted_locally() {
    counter!(RATE_LIMIT_COUNTED_LOCALLY).increment(1);
}

/// The database pool as it is now.
pub fn db_pool(open: u32, idle: usize, max: u32) {
    gauge!(DB_POOL_CONNECTIONS).set(open);
    gauge!(DB_POOL_IDLE_CONNECTIONS).set(idle as f64);
    gauge!(DB_POOL_MAX_CONNECTIONS).set(max);
}

/// The signing key in use now: seconds since it was created and since it started signing.
pub fn signing_key(age_secs: i64, active_secs: i64) {
    gauge!(SIGNING_KEY_AGE).set(age_secs as f64);
    gauge!(SIGNING_KEY_ACTIVE).set(active_secs as f64);
}
