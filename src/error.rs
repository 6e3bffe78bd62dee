//! The two error shapes Portcullis answers with, and their HTTP mapping.
//!
//! - [`OAuthError`]: protocol endpoints (RFC 6749 §5.2, RFC 7591 §3.2.2, RFC 6750 §3).
//! - [`AdminError`]: the admin API, `{"error":{"code":"…","message":"…"}}`.
//!
//! Internal failures are logged here and answered without detail, so nothing internal leaks.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::keys::KeyStoreError;
use crate::store::StoreError;

pub use crate::oauth::error::{ErrorCode, OAuthError};

/// RFC 6749 §5.2, RFC 6750 §3.1 and RFC 7591 §3.2.2: the status each code is answered with.
fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    }
}

/// The `WWW-Authenticate` challenge an error carries, if any.
fn challenge_of(error: &OAuthError) -> Option<&'static str> {
    match error.code {
        ErrorCode::InvalidClient if error.used_basic => {
            Some(r#"Basic realm="portcullis", charset="UTF-8""#)
        }
        ErrorCode::InvalidToken => Some(r#"Bearer realm="portcullis", error="invalid_token""#),
        ErrorCode::InsufficientScope => {
            Some(r#"Bearer realm="portcullis", error="insufficient_scope""#)
        }
        _ => None,
    }
}

/// An OAuth error answered with another status than its code's: a request refused before
/// its endpoint read it (405, 408, 413, 415), in the endpoint's error shape.
pub fn oauth_error_with_status(error: OAuthError, status: StatusCode) -> Response {
    let mut response = error.into_response();
    *response.status_mut() = status;
    response
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let challenge = challenge_of(&self);
        let body = json!({ "error": self.code.as_str(), "error_description": self.description });
        let mut response = (status_of(self.code), Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1: responses carrying (or refusing) credentials are not cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

/// An admin API error: `{"error":{"code":"…","message":"…"}}`.
#[derive(Debug)]
pub struct AdminError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl AdminError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: no credential, or one that is not a valid admin key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", message)
    }

    /// 403: a valid credential that may not do this.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "FORBIDDEN", message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "NOT_FOUND", message)
    }

    /// 422: well-formed input that breaks a rule.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "INVALID_INPUT", message)
    }

    /// 400: a body that is not JSON, or JSON of the wrong shape.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MALFORMED_REQUEST", message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "CONFLICT", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            "internal error",
        )
    }
}

impl From<StoreError> for AdminError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::conflict("a resource with this identity already exists"),
            StoreError::InvalidText(_) => {
                Self::invalid_input("the input has characters that are not allowed")
            }
            StoreError::Unavailable(_) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "UNAVAILABLE",
                    "database unavailable; retry later",
                )
            }
            _ => {
                tracing::error!(error = %e, "database error");
                Self::internal()
            }
        }
    }
}

impl From<crate::admin::Error> for AdminError {
    fn from(e: crate::admin::Error) -> Self {
        use crate::admin::Error;
        match e {
            Error::Invalid(message) => Self::invalid_input(message),
            Error::InvalidMetadata(e) => Self::invalid_input(e.message()),
            Error::NotFound(message) => Self::not_found(message),
            Error::Conflict(message) => Self::conflict(message),
            Error::Store(e) => e.into(),
        }
    }
}

impl From<KeyStoreError> for AdminError {
    fn from(e: KeyStoreError) -> Self {
        tracing::error!(error = %e, "signing key error");
        Self::internal()
    }
}

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let body = json!({ "error": { "code": self.code, "message": self.message } });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Bearer realm="portcullis-admin""#),
            );
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
