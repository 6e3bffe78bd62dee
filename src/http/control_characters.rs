//! Control characters never belong in an identifier, so a request whose path or query carries
//! one (percent-encoded, as `%00`) is refused before any handler or query sees it. PostgreSQL
//! refuses NUL in text, which would otherwise surface as a 500.

use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::error::{AdminError, OAuthError};

/// Middleware: refuses the request in the error shape of the API it was sent to.
pub async fn refuse_in_identifiers(request: Request, next: Next) -> Response {
    let uri = request.uri();
    let carries_one =
        has_encoded_control(uri.path()) || uri.query().is_some_and(has_encoded_control);
    if !carries_one {
        return next.run(request).await;
    }
    let message = "control characters are not allowed in a path or query";
    let path = uri.path();
    if path.starts_with("/admin/") {
        AdminError::not_found(message).into_response()
    } else if path == "/authorize" || path.starts_with("/account/") || path == "/login" {
        pages::message(StatusCode::BAD_REQUEST, "Bad request", message)
    } else {
        OAuthError::invalid_request(message).into_response()
    }
}

/// `%00`–`%1F` or `%7F` anywhere in `text`.
fn has_encoded_control(text: &str) -> bool {
    text.as_bytes().windows(3).any(|w| {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (w[0], hex(w[1]), hex(w[2])) {
            (b'%', Some(high), Some(low)) => {
                let byte = high * 16 + low;
                byte < 0x20 || byte == 0x7f
            }
            _ => false,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::has_encoded_control;

    #[test]
    fn finds_encoded_control_characters_only() {
        for text in ["/admin/clients/%00", "a%0d%0Ab", "x%1F", "%7f", "%7F"] {
            assert!(has_encoded_control(text), "{text}");
        }
        for text in [
            "/admin/clients/c_1",
            "%20",
            "%C3%A9",
            "%7E",
            "%",
            "%0",
            "100%",
        ] {
            assert!(!has_encoded_control(text), "{text}");
        }
    }
}
