//! Requests to the OAuth endpoints refused before their handler runs (wrong method, body too
//! large or too slow, wrong media type) are answered as RFC 6749 §5.2 `invalid_request` JSON,
//! like every other error there, instead of axum's plain text.

use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::MAX_BODY_BYTES;
use crate::error::OAuthError;

/// The endpoints OAuth clients call, whose errors they parse as JSON.
const OAUTH_ENDPOINTS: [&str; 4] = ["/token", "/introspect", "/revoke", "/register"];

/// Middleware: rewrites those refusals on those paths, keeping their status and headers (a
/// 405's `Allow`, RFC 9110 §15.5.6).
pub async fn as_oauth_errors(request: Request, next: Next) -> Response {
    if !OAUTH_ENDPOINTS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return response;
    }
    let description = match response.status() {
        StatusCode::METHOD_NOT_ALLOWED => format!("{method} is not allowed here"),
        StatusCode::PAYLOAD_TOO_LARGE => format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported content type".to_owned(),
        StatusCode::REQUEST_TIMEOUT => "the body did not arrive in time".to_owned(),
        _ => return response,
    };
    let error = OAuthError {
        status: response.status(),
        ..OAuthError::invalid_request(description)
    };
    let (mut parts, _) = response.into_parts();
    let (error_parts, body) = error.into_response().into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(error_parts.headers);
    Response::from_parts(parts, body)
}
