//! The OAuth errors, as the RFCs name them: a typed code and words for the developer reading
//! the response. Nothing here knows HTTP; `crate::error` maps each code to its status and
//! challenge.

use crate::keys::KeyStoreError;
use crate::store::StoreError;

/// Every error code Portcullis answers with, each from its RFC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// RFC 6749 §5.2: a parameter missing, repeated, malformed or unsupported.
    InvalidRequest,
    /// RFC 6749 §5.2: client authentication failed.
    InvalidClient,
    /// RFC 6749 §5.2: the code or refresh token is invalid, expired, revoked or someone else's.
    InvalidGrant,
    /// RFC 6749 §5.2: the client may not use this grant.
    UnauthorizedClient,
    /// RFC 6749 §5.2.
    UnsupportedGrantType,
    /// RFC 6749 §5.2: the scope is invalid, unknown, or more than the client may have.
    InvalidScope,
    /// RFC 8707 §2: the requested resource is invalid or not allowed.
    InvalidTarget,
    /// RFC 6750 §3.1: a missing or bad bearer token.
    InvalidToken,
    /// RFC 6750 §3.1: a valid bearer token without the right to do this.
    InsufficientScope,
    /// RFC 7591 §3.2.2.
    InvalidClientMetadata,
    /// RFC 7591 §3.2.2.
    InvalidRedirectUri,
    /// RFC 6749 §4.1.2.1, used at every endpoint: retry later.
    TemporarilyUnavailable,
    /// The caller is over its rate limit: RFC 6749 §4.1.2.1's `temporarily_unavailable`
    /// (RFC 6749 has no code of its own for it), answered with 429 (RFC 6585 §4).
    RateLimited,
    /// RFC 6749 §4.1.2.1: an unexpected failure; nothing about it is told.
    ServerError,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnauthorizedClient => "unauthorized_client",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::InvalidScope => "invalid_scope",
            Self::InvalidTarget => "invalid_target",
            Self::InvalidToken => "invalid_token",
            Self::InsufficientScope => "insufficient_scope",
            Self::InvalidClientMetadata => "invalid_client_metadata",
            Self::InvalidRedirectUri => "invalid_redirect_uri",
            Self::TemporarilyUnavailable | Self::RateLimited => "temporarily_unavailable",
            Self::ServerError => "server_error",
        }
    }
}

/// An OAuth error: its code, and a description for the developer.
#[derive(Debug)]
pub struct OAuthError {
    pub code: ErrorCode,
    pub description: String,
    /// For `invalid_client`: the client tried HTTP Basic, so the answer challenges it to
    /// (RFC 6749 §5.2).
    pub used_basic: bool,
}

impl OAuthError {
    pub fn new(code: ErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
            used_basic: false,
        }
    }

    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    pub fn invalid_client(used_basic: bool) -> Self {
        Self::invalid_client_because(used_basic, "client authentication failed")
    }

    /// [`Self::invalid_client`], saying why.
    pub fn invalid_client_because(used_basic: bool, description: impl Into<String>) -> Self {
        Self {
            used_basic,
            ..Self::new(ErrorCode::InvalidClient, description)
        }
    }

    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    pub fn unauthorized_client(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::UnsupportedGrantType, description)
    }

    pub fn invalid_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    pub fn invalid_target(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidTarget, description)
    }

    pub fn invalid_token(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidToken, description)
    }

    pub fn insufficient_scope(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InsufficientScope, description)
    }

    pub fn invalid_client_metadata(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidClientMetadata, description)
    }

    pub fn invalid_redirect_uri(description: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidRedirectUri, description)
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            ErrorCode::TemporarilyUnavailable,
            "the server is temporarily unable to handle the request; retry later",
        )
    }

    /// Over the rate limit of `outcome`'s plan; when to retry is in `Retry-After`.
    pub fn rate_limited(outcome: &crate::rate_limit::Outcome) -> Self {
        Self::new(
            ErrorCode::RateLimited,
            format!(
                "rate limit exceeded ({}, plan {}); retry after {} s",
                outcome.policy(),
                outcome.plan,
                outcome.decision.retry_after_secs
            ),
        )
    }

    pub fn server_error() -> Self {
        Self::new(ErrorCode::ServerError, "internal error")
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
