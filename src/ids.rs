//! Identifiers of what Portcullis stores, each its own type: a user id cannot be passed where
//! a client id is expected. An id read from a request is wrapped as it is (one that names
//! nothing is simply not found); a new one is generated here, with its kind's prefix. They
//! are stored as the TEXT they are (`sqlx(transparent)`).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::secrets::random_id;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(String);

        impl $name {
            /// A new random id: the prefix and 22 base62 characters (131 bits).
            pub fn generate() -> Self {
                Self(random_id($prefix))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl From<String> for $name {
            fn from(id: String) -> Self {
                Self(id)
            }
        }

        impl From<&str> for $name {
            fn from(id: &str) -> Self {
                Self(id.to_owned())
            }
        }

        /// Any text: an id that names nothing is not found, not malformed.
        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(id: &str) -> Result<Self, Self::Err> {
                Ok(Self(id.to_owned()))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
    };
}

id_type!(
    /// An OAuth client's `client_id`: no prefix and no `_`, so it cannot be confused with an
    /// API key.
    ClientId,
    ""
);
id_type!(
    /// A user's id, `usr_…`.
    UserId,
    "usr_"
);
id_type!(
    /// An API key's id, `key_…` (never the key itself).
    ApiKeyId,
    "key_"
);
id_type!(
    /// An organization's id, `org_…`.
    OrgId,
    "org_"
);
id_type!(
    /// An audit event's id, `evt_…`: also the `webhook-id` of its deliveries.
    EventId,
    "evt_"
);
id_type!(
    /// A webhook endpoint's id, `whk_…`.
    WebhookId,
    "whk_"
);
