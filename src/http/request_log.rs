//! Request ids and the request log. Every request gets an `X-Request-Id`, the client's when it
//! is usable, else a new one; the response echoes it, and every log line of the request carries
//! it (and the method and route) in the `request` span, which ends with one line per response.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::{Extensions, HeaderName, HeaderValue};
use axum::response::Response;
use tower_http::request_id::{self, MakeRequestId};
use tracing::Span;

use crate::config::MAX_REQUEST_ID_CHARS;
use crate::secrets::{ID_CHARS, random_base62};

pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The `route` of a request that matched no route, in its span and its metrics: never its
/// path, which the client chose.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Middleware: removes an `X-Request-Id` that is empty, longer than [`MAX_REQUEST_ID_CHARS`],
/// or has a character other than ASCII letters, digits and `-_.:+/=@`, so that a new one is
/// made instead. It goes into every log line of the request: a client must not be able to
/// forge a line, break a JSON field or flood the log through it.
pub async fn drop_unusable_request_id(mut request: Request) -> Request {
    let usable = request
        .headers()
        .get(&X_REQUEST_ID)
        .is_none_or(|id| is_usable(id.as_bytes()));
    if !usable {
        request.headers_mut().remove(&X_REQUEST_ID);
    }
    request
}

fn is_usable(id: &[u8]) -> bool {
    (1..=MAX_REQUEST_ID_CHARS).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+/=@".contains(&b))
}

/// Makes the id of a request that came without a usable one: 128 random bits in base62,
/// unique across replicas, and telling nothing about how many requests came before.
#[derive(Clone, Copy)]
pub struct NewRequestId;

impl MakeRequestId for NewRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<request_id::RequestId> {
        HeaderValue::try_from(random_base62(ID_CHARS))
            .ok()
            .map(request_id::RequestId::new)
    }
}

/// The `request` span, around everything the request does.
pub fn span_for(request: &Request) -> Span {
    let request_id = request_id_of(request.extensions()).unwrap_or_default();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, MatchedPath::as_str);
    tracing::info_span!("request", request_id, method = %request.method(), route)
}

/// The request log's line, in the request's span.
pub fn log_response(response: &Response, latency: Duration, _: &Span) {
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
    tracing::info!(status = response.status().as_u16(), latency_us, "answered");
}

/// The request's id, as the response's `X-Request-Id` and its log lines carry it: for code
/// that records it (an audit event). None for a request that did not pass the router's layers.
pub fn request_id_of(extensions: &Extensions) -> Option<&str> {
    extensions
        .get::<request_id::RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_clients_are_bounded_and_plain() {
        assert!(is_usable(b"3f2a9c1e-7b4d-4e8a-9f00-1c2d3e4f5a6b"));
        assert!(is_usable(b"Root=1-5759e988-bd862e3fe1be46a994272793"));
        assert!(is_usable(&[b'a'; MAX_REQUEST_ID_CHARS]));
        assert!(!is_usable(&[b'a'; MAX_REQUEST_ID_CHARS + 1]));
        assert!(!is_usable(b""));
        for bad in ["a b", "a\"b", "a\\b", "a\tb", "a{b}", "é"] {
            assert!(!is_usable(bad.as_bytes()), "{bad:?}");
        }
    }
}
