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

/// An OAuth error response.
#[derive(Debug)]
pub struct OAuthError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: String,
    /// The `WWW-Authenticate` challenge to send, if any.
    pub challenge: Option<&'static str>,
}

impl OAuthError {
    fn new(status: StatusCode, code: &'static str, description: impl Into<String>) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            challenge: None,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// RFC 6749 §5.2: 401, with a `Basic` challenge when the client tried HTTP Basic.
    pub fn invalid_client(used_basic: bool) -> Self {
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            "client authentication failed",
        );
        if used_basic {
            e.challenge = Some(r#"Basic realm="portcullis", charset="UTF-8""#);
        }
        e
    }

    /// [`Self::invalid_client`], saying why.
    pub fn invalid_client_because(used_basic: bool, description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            ..Self::invalid_client(used_basic)
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", description)
    }

    /// RFC 8707 §2: the requested resource is invalid or not allowed.
    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", description)
    }

    /// RFC 6750 §3.1: a missing or bad bearer token.
    pub fn invalid_token(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
        e.challenge = Some(r#"Bearer realm="portcullis", error="invalid_token""#);
        e
    }

    /// RFC 6750 §3.1: a valid bearer token without the right to do this.
    pub fn insufficient_scope(description: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::FORBIDDEN, "insufficient_scope", description);
        e.challenge = Some(r#"Bearer realm="portcullis", error="insufficient_scope""#);
        e
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_client_metadata",
            description,
        )
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_redirect_uri", description)
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "the server is temporarily unable to handle the request; retry later",
        )
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "internal error",
        )
    }
}

impl From<StoreError> for OAuthError {
    fn from(e: StoreError) -> Self {
        if let StoreError::Unavailable(_) = e {
            tracing::warn!(error = %e, "database unavailable");
            Self::temporarily_unavailable()
        } else if let StoreError::InvalidText(_) = e {
            Self::invalid_request("a parameter has characters that are not allowed")
        } else {
            tracing::error!(error = %e, "database error");
            Self::server_error()
        }
    }
}

impl From<KeyStoreError> for OAuthError {
    fn from(e: KeyStoreError) -> Self {
        tracing::error!(error = %e, "signing key error");
        Self::server_error()
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body = json!({ "error": self.code, "error_description": self.description });
        let mut response = (self.status, Json(body)).into_response();
        let headers = response.headers_mut();
        // RFC 6749 §5.1: responses carrying (or refusing) credentials are not cached.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.challenge {
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
