//! Request bodies, read whole before any handler runs: at most `MAX_BODY_BYTES`, and within the
//! body-read timeout, so a client that stalls mid-body cannot hold a connection and a handler.

use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::config::MAX_BODY_BYTES;

/// Middleware: reads the body within `timeout`, then hands the handler a body already in memory.
pub async fn read_whole(State(timeout): State<Duration>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    // RFC 9110 §15.5.14: refused from the headers alone, so the client need not send it.
    if declared_length(&parts.headers).is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return closing(StatusCode::PAYLOAD_TOO_LARGE);
    }
    let read = tokio::time::timeout(timeout, Limited::new(body, MAX_BODY_BYTES).collect()).await;
    let bytes = match read {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return closing(StatusCode::PAYLOAD_TOO_LARGE);
        }
        // The client hung up or sent malformed chunks.
        Ok(Err(_)) => return closing(StatusCode::BAD_REQUEST),
        // RFC 9110 §15.5.9.
        Err(_) => return closing(StatusCode::REQUEST_TIMEOUT),
    };
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// An answer after which the connection is closed, saying so: the rest of the body may still
/// be on its way, so the client must not send another request on this connection.
fn closing(status: StatusCode) -> Response {
    let mut response = status.into_response();
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}
