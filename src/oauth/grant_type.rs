//! The grant types Portcullis knows: one list that feeds the token endpoint, discovery and
//! client registration.

use serde::{Deserialize, Serialize};

/// RFC 6749 §4 grant types (and §6, refreshing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// RFC 6749 §4.1, with PKCE (RFC 7636).
    AuthorizationCode,
    /// RFC 6749 §4.4; also how an API key gets a token.
    ClientCredentials,
    /// RFC 6749 §6.
    RefreshToken,
}

impl GrantType {
    /// Every supported grant type, as discovery lists them (RFC 8414 `grant_types_supported`).
    pub const ALL: [Self; 3] = [
        Self::AuthorizationCode,
        Self::RefreshToken,
        Self::ClientCredentials,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::ClientCredentials => "client_credentials",
            Self::RefreshToken => "refresh_token",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|g| g.as_str() == text)
    }

    /// The names of every supported grant type.
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|g| g.as_str()).collect()
    }
}

impl std::fmt::Display for GrantType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_text_and_json() {
        for grant in GrantType::ALL {
            assert_eq!(GrantType::parse(grant.as_str()), Some(grant));
            let json = serde_json::to_value(grant).unwrap();
            assert_eq!(json, grant.as_str());
        }
        assert_eq!(GrantType::parse("password"), None);
        assert_eq!(GrantType::parse("implicit"), None);
    }
}
