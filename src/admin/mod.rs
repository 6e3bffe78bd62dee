//! The operations an operator performs on clients, users, organizations, API keys and webhook
//! endpoints, written once for every way in: the admin API (`http/admin`) and the CLI (`cli`)
//! both call these.
//!
//! Each operation takes typed input, checks every rule, talks to the store, and returns a
//! typed [`Error`]; the callers only parse their input and print or serialize the result. A
//! rule found in `http/admin` or `cli` instead of here is a rule that can drift.

pub mod api_keys;
pub mod audit;
pub mod clients;
pub mod organizations;
pub mod users;
pub mod webhooks;

use crate::clients::MetadataError;
use crate::rate_limit::plan::{PlanName, Plans};
use crate::store::StoreError;

pub use crate::audit::{Actor, Initiator};

/// Why an operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule; the message says which and how to fix it.
    #[error("{0}")]
    Invalid(String),
    /// Client metadata breaks an RFC 7591 rule (its two kinds are that RFC's error codes).
    #[error("{}", .0.message())]
    InvalidMetadata(MetadataError),
    /// What the operation names does not exist.
    #[error("{0}")]
    NotFound(String),
    /// Something with the same identity exists already.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict => Self::Conflict("it exists already".into()),
            other => Self::Store(other),
        }
    }
}

impl Error {
    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Self::Invalid(message.into())
    }
}

/// A plan a client or key is to be held to must be one the servers define: `plans` is the
/// serving server's. The CLI passes None, since it cannot see the flags the servers run with;
/// a server that does not know a stored plan applies its default plan instead, and says so.
fn check_plan(plans: Option<&Plans>, name: Option<&PlanName>) -> Result<(), String> {
    match (plans, name) {
        (Some(plans), Some(name)) => plans.check(name),
        _ => Ok(()),
    }
}
