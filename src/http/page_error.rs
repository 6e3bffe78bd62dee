//! Why a browser page could not be shown as asked: answered as an HTML page or a redirect,
//! never as JSON.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::pages;
use crate::store::StoreError;

#[derive(Debug)]
pub enum PageError {
    /// The database could not answer: a 503 page that says to retry, nothing lost. (Input it
    /// cannot hold is a 400.)
    Store(StoreError),
    /// The request cannot go on: a page with this status, title and message.
    Refused {
        status: StatusCode,
        title: &'static str,
        message: String,
    },
    /// The browser goes elsewhere instead: back to the client with an error, or to sign in.
    Elsewhere(Response),
}

impl PageError {
    pub fn refused(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Self::Refused {
            status,
            title,
            message: message.into(),
        }
    }
}

impl From<StoreError> for PageError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// An operation refused on a page: its message, shown to the person.
impl From<crate::admin::Error> for PageError {
    fn from(e: crate::admin::Error) -> Self {
        use crate::admin::Error;
        match e {
            Error::Store(e) => Self::Store(e),
            Error::NotFound(message) => Self::refused(StatusCode::NOT_FOUND, "Not found", message),
            refused => Self::refused(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Not possible",
                refused.to_string(),
            ),
        }
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        match self {
            Self::Store(StoreError::InvalidText(_)) => pages::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "The request has characters that are not allowed.",
            ),
            Self::Store(e) => {
                let status = if let StoreError::Unavailable(_) = e {
                    tracing::warn!(error = %e, "database unavailable");
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    tracing::error!(error = %e, "database error");
                    StatusCode::INTERNAL_SERVER_ERROR
                };
                pages::message(
                    status,
                    "Temporarily unavailable",
                    "Something went wrong on our side. Please try again in a moment.",
                )
            }
            Self::Refused {
                status,
                title,
                message,
            } => pages::message(status, title, &message),
            Self::Elsewhere(response) => response,
        }
    }
}
