//! Requests refused before their handler runs (wrong method, body too large or too slow, wrong
//! media type) are answered in the error shape of the API they were sent to, instead of axum's
//! plain text: RFC 6749 §5.2 `invalid_request` on the OAuth endpoints, the admin error on the
//! admin API.

use axum::extract::Request;
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::config::MAX_BODY_BYTES;
use crate::error::{AdminError, OAuthError, oauth_error_with_status};

/// The endpoints OAuth clients call, whose errors they parse as JSON.
const OAUTH_ENDPOINTS: [&str; 4] = ["/token", "/introspect", "/revoke", "/register"];

/// Middleware: rewrites those refusals, keeping their status and headers (a 405's `Allow`,
/// RFC 9110 §15.5.6; `Connection: close`).
pub async fn in_api_error_shape(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let is_oauth = OAUTH_ENDPOINTS.contains(&path);
    if !is_oauth && !path.starts_with("/admin/") {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    let status = response.status();
    let Some((code, message)) = refusal(status, &method).filter(|_| !is_json) else {
        return response;
    };
    let error = if is_oauth {
        oauth_error_with_status(OAuthError::invalid_request(message), status)
    } else {
        AdminError::new(status, code, message).into_response()
    };
    let (mut parts, _) = response.into_parts();
    let (error_parts, body) = error.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(error_parts.headers);
    Response::from_parts(parts, body)
}

/// The admin error code and the message for a refusal made before a handler.
fn refusal(status: StatusCode, method: &Method) -> Option<(&'static str, String)> {
    Some(match status {
        StatusCode::METHOD_NOT_ALLOWED => (
            "METHOD_NOT_ALLOWED",
            format!("{method} is not allowed here"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "PAYLOAD_TOO_LARGE",
            format!("the body is larger than {MAX_BODY_BYTES} bytes"),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "UNSUPPORTED_MEDIA_TYPE",
            "unsupported content type".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT => (
            "REQUEST_TIMEOUT",
            "the body did not arrive in time".to_owned(),
        ),
        _ => return None,
    })
}
