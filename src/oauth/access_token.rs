//! RFC 9068 JWT access token claims.

use serde::Serialize;

use super::scope::Scope;
use crate::secrets::{ID_CHARS, random_base62};

/// RFC 9068 §2.2: the claims of a JWT access token.
#[derive(Debug, Serialize)]
pub struct AccessTokenClaims {
    pub iss: String,
    /// The resource owner; for client credentials, the client itself (RFC 9068 §2.2).
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The organization an organization API key acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub org_id: Option<String>,
    /// The tenant a scoped tenant token was minted for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `live` or `test`, for a token exchanged from an API key: a resource server tells test
    /// traffic from real traffic without looking the key up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<&'static str>,
}

/// `aud` is one string for one audience, an array for several (RFC 7519 §4.1.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_list(mut list: Vec<String>) -> Self {
        if list.len() == 1 {
            Self::One(list.remove(0))
        } else {
            Self::Many(list)
        }
    }
}

impl AccessTokenClaims {
    pub fn new(
        issuer: &str,
        subject: &str,
        client_id: &str,
        audience: Audience,
        scope: &Scope,
        now: i64,
        ttl_secs: i64,
    ) -> Self {
        Self {
            iss: issuer.to_owned(),
            sub: subject.to_owned(),
            aud: audience,
            exp: now + ttl_secs,
            iat: now,
            jti: random_base62(ID_CHARS),
            client_id: client_id.to_owned(),
            scope: (!scope.is_empty()).then(|| scope.to_string()),
            org_id: None,
            tenant: None,
            env: None,
        }
    }
}

/// A tenant identifier: 1 to 128 letters, digits, `.`, `_`, `-` or `:`.
pub fn is_valid_tenant(tenant: &str) -> bool {
    (1..=128).contains(&tenant.len())
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serializes_the_rfc_9068_claims() {
        let claims = AccessTokenClaims::new(
            "https://as.example",
            "c1",
            "c1",
            Audience::from_list(vec!["https://api.example".into()]),
            &Scope::parse("b a").unwrap(),
            1000,
            60,
        );
        let json = serde_json::to_value(&claims).unwrap();
        assert_eq!(json["aud"], "https://api.example");
        assert_eq!(json["exp"], 1060);
        assert_eq!(json["scope"], "a b");
        assert_eq!(json["jti"].as_str().unwrap().len(), ID_CHARS);
        let many = Audience::from_list(vec!["a".into(), "b".into()]);
        assert_eq!(
            serde_json::to_value(many).unwrap(),
            serde_json::json!(["a", "b"])
        );
    }
}
