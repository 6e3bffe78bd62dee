//! OAuth clients: what a client is, and the rules its registration must follow.

use serde::{Deserialize, Serialize};
use url::Url;

use crate::oauth::grant_type::GrantType;
use crate::oauth::scope::Scope;
use crate::rate_limit::plan::PlanName;
use crate::secrets::{SECRET_CHARS, Secret, random_base62};

/// RFC 7591 §2: how a client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// RFC 6749 §2.3.1, HTTP Basic: the default for confidential clients.
    ClientSecretBasic,
    /// RFC 6749 §2.3.1, id and secret in the form body.
    ClientSecretPost,
    /// A public client (SPA, mobile app): no secret, PKCE instead.
    None,
}

impl AuthMethod {
    pub const ALL: [&'static str; 3] = ["client_secret_basic", "client_secret_post", "none"];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "client_secret_basic" => Some(Self::ClientSecretBasic),
            "client_secret_post" => Some(Self::ClientSecretPost),
            "none" => Some(Self::None),
            _ => None,
        }
    }
}

/// A registered client, as stored.
#[derive(Debug, Clone)]
pub struct Client {
    pub id: crate::ids::ClientId,
    pub name: String,
    /// Absent for public clients.
    pub secret_hash: Option<String>,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scope: Scope,
    /// RFC 8707 resources (token audiences) this client may ask for.
    pub resources: Vec<String>,
    /// A first-party client: people are not asked to consent to it.
    pub skip_consent: bool,
    /// A resource server: may introspect other clients' tokens and API keys.
    pub resource_server: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// The rate-limit plan its token requests are held to; None for the servers' default.
    pub rate_limit_plan: Option<PlanName>,
}

impl Client {
    pub fn is_public(&self) -> bool {
        self.auth_method == AuthMethod::None
    }

    /// What to call the client on a page: its name, or its id when it has none.
    pub fn name_or_id(&self) -> &str {
        if self.name.is_empty() {
            self.id.as_str()
        } else {
            &self.name
        }
    }

    pub fn allows_grant(&self, grant_type: GrantType) -> bool {
        self.grant_types.contains(&grant_type)
    }

    /// The public view of a client: its RFC 7591 metadata, never a secret.
    pub fn metadata(&self) -> serde_json::Value {
        let response_types: &[&str] = if self.allows_grant(GrantType::AuthorizationCode) {
            &["code"]
        } else {
            &[]
        };
        serde_json::json!({
            "client_id": self.id,
            "client_name": self.name,
            "token_endpoint_auth_method": self.auth_method.as_str(),
            "redirect_uris": self.redirect_uris,
            "grant_types": self.grant_types,
            "response_types": response_types,
            "scope": self.scope.to_string(),
            "resources": self.resources,
            "skip_consent": self.skip_consent,
            "resource_server": self.resource_server,
            "rate_limit_plan": self.rate_limit_plan,
            "client_id_issued_at": self.created_at,
            "updated_at": self.updated_at,
        })
    }
}

/// Client metadata as a person or program submits it; every field optional, defaults per
/// RFC 7591 §2. Unknown fields are ignored, as RFC 7591 §2 asks of servers.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ClientMetadata {
    pub client_name: Option<String>,
    pub redirect_uris: Option<Vec<String>>,
    pub grant_types: Option<Vec<String>>,
    pub response_types: Option<Vec<String>>,
    pub scope: Option<String>,
    pub token_endpoint_auth_method: Option<String>,
    pub resources: Option<Vec<String>>,
    /// Portcullis extension: a first-party client that skips the consent page.
    pub skip_consent: Option<bool>,
    /// Portcullis extension: a resource server, which may introspect other clients' tokens.
    pub resource_server: Option<bool>,
    /// Portcullis extension: the rate-limit plan its token requests are held to. `null`
    /// (in an update) returns it to the servers' default.
    #[serde(default, deserialize_with = "present_even_if_null")]
    pub rate_limit_plan: Option<Option<String>>,
}

/// Tells a field given as `null` (Some(None)) from one not given at all (None).
pub fn present_even_if_null<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Metadata that passed every rule.
#[derive(Debug, Clone)]
pub struct ValidMetadata {
    pub name: String,
    pub auth_method: AuthMethod,
    pub redirect_uris: Vec<String>,
    pub grant_types: Vec<GrantType>,
    pub scope: Scope,
    pub resources: Vec<String>,
    pub skip_consent: bool,
    pub resource_server: bool,
    pub rate_limit_plan: Option<PlanName>,
}

/// Why metadata was refused; the two kinds are RFC 7591 §3.2.2's error codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetadataError {
    InvalidRedirectUri(String),
    InvalidClientMetadata(String),
}

impl MetadataError {
    pub fn message(&self) -> &str {
        match self {
            Self::InvalidRedirectUri(m) | Self::InvalidClientMetadata(m) => m,
        }
    }
}

const MAX_NAME_CHARS: usize = 200;
const MAX_LIST_LEN: usize = 50;
const MAX_URI_LEN: usize = 2000;

impl ClientMetadata {
    /// Applies RFC 7591 defaults and checks every rule.
    pub fn validate(self) -> Result<ValidMetadata, MetadataError> {
        use MetadataError::InvalidClientMetadata as Invalid;

        let name = self.client_name.unwrap_or_default().trim().to_owned();
        if name.chars().count() > MAX_NAME_CHARS || name.chars().any(char::is_control) {
            return Err(Invalid(format!(
                "client_name must be at most {MAX_NAME_CHARS} characters, without control characters"
            )));
        }

        let auth_method = match self.token_endpoint_auth_method.as_deref() {
            None => AuthMethod::ClientSecretBasic,
            Some(text) => AuthMethod::parse(text).ok_or_else(|| {
                Invalid(format!(
                    "token_endpoint_auth_method must be one of {}",
                    AuthMethod::ALL.join(", ")
                ))
            })?,
        };

        let mut grant_types: Vec<GrantType> = Vec::new();
        for name in self
            .grant_types
            .unwrap_or_else(|| vec![GrantType::AuthorizationCode.as_str().into()])
        {
            let grant = GrantType::parse(&name).ok_or_else(|| {
                Invalid(format!(
                    "unsupported grant type {name:?}; supported: {}",
                    GrantType::names().join(", ")
                ))
            })?;
            if !grant_types.contains(&grant) {
                grant_types.push(grant);
            }
        }
        if grant_types.is_empty() {
            return Err(Invalid("grant_types must not be empty".into()));
        }
        let has = |g: GrantType| grant_types.contains(&g);
        if auth_method == AuthMethod::None && has(GrantType::ClientCredentials) {
            return Err(Invalid(
                "a public client (token_endpoint_auth_method none) cannot use client_credentials"
                    .into(),
            ));
        }
        if has(GrantType::RefreshToken) && !has(GrantType::AuthorizationCode) {
            return Err(Invalid(
                "refresh_token requires the authorization_code grant".into(),
            ));
        }

        // RFC 7591 §2.1: response_types and grant_types must agree.
        if let Some(response_types) = self.response_types {
            let expected: Vec<String> = if has(GrantType::AuthorizationCode) {
                vec!["code".into()]
            } else {
                vec![]
            };
            if dedup(response_types) != expected {
                return Err(Invalid(format!(
                    "response_types must be {expected:?} for grant_types {:?}",
                    grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>()
                )));
            }
        }

        let redirect_uris = dedup(self.redirect_uris.unwrap_or_default());
        check_list_len("redirect_uris", &redirect_uris)?;
        for uri in &redirect_uris {
            check_redirect_uri(uri).map_err(MetadataError::InvalidRedirectUri)?;
        }
        if has(GrantType::AuthorizationCode) && redirect_uris.is_empty() {
            return Err(MetadataError::InvalidRedirectUri(
                "the authorization_code grant needs at least one redirect URI".into(),
            ));
        }

        let scope = Scope::parse(self.scope.as_deref().unwrap_or(""))
            .map_err(|e| Invalid(format!("scope: {}", e.0)))?;

        let resources = dedup(self.resources.unwrap_or_default());
        check_list_len("resources", &resources)?;
        for resource in &resources {
            check_resource(resource).map_err(Invalid)?;
        }

        Ok(ValidMetadata {
            name,
            auth_method,
            redirect_uris,
            grant_types,
            scope,
            resources,
            skip_consent: self.skip_consent.unwrap_or(false),
            resource_server: self.resource_server.unwrap_or(false),
            rate_limit_plan: self
                .rate_limit_plan
                .flatten()
                .map(|name| name.parse())
                .transpose()
                .map_err(Invalid)?,
        })
    }
}

fn dedup(list: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for item in list {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

fn check_list_len(field: &str, list: &[String]) -> Result<(), MetadataError> {
    if list.len() > MAX_LIST_LEN {
        return Err(MetadataError::InvalidClientMetadata(format!(
            "{field} may hold at most {MAX_LIST_LEN} entries"
        )));
    }
    Ok(())
}

/// RFC 6749 §3.1.2 and RFC 9700 §4.1: an absolute URI without a fragment, matched exactly later.
/// `https` anywhere; `http` only on loopback (RFC 8252 §7.3); private-use schemes for native
/// apps (RFC 8252 §7.1), except schemes that run code or read files in a browser.
/// A redirect URI a client may register: an allowlist, not a denylist (RFC 9700 §4.1.1,
/// RFC 8252 §7).
/// - `https`;
/// - `http` only for `localhost` and loopback addresses, any port (RFC 8252 §7.3);
/// - a private-use scheme in reverse-domain form, containing a dot, such as
///   `com.example.app:/callback` (RFC 8252 §7.1).
///
/// No user name or password, no fragment (RFC 6749 §3.1.2), and the URI must be in the normal
/// form a URL parser gives it: what is compared at `/authorize` is what a browser will go to
/// (`https:/\evil.example/cb` would be sent to `https://evil.example/cb`).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    if uri.len() > MAX_URI_LEN {
        return Err(format!("redirect URI longer than {MAX_URI_LEN} characters"));
    }
    let parsed =
        Url::parse(uri).map_err(|e| format!("redirect URI {uri:?} is not an absolute URI: {e}"))?;
    if parsed.as_str() != uri {
        return Err(format!(
            "redirect URI {uri:?} is not in normal form: register {:?} instead",
            parsed.as_str()
        ));
    }
    if parsed.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(format!(
            "redirect URI {uri:?} must not contain a user name or password"
        ));
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if is_loopback(&parsed) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?} must use https (http is allowed only for localhost and loopback addresses)"
        )),
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "redirect URI {uri:?}: scheme {scheme:?} is not allowed; use https, http for \
             loopback, or a private-use scheme in reverse-domain form such as com.example.app"
        )),
    }
}

fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// RFC 8707 §2: a resource is an absolute URI without a fragment.
pub fn check_resource(resource: &str) -> Result<(), String> {
    if resource.len() > MAX_URI_LEN {
        return Err(format!("resource longer than {MAX_URI_LEN} characters"));
    }
    let parsed = Url::parse(resource)
        .map_err(|_| format!("resource {resource:?} is not an absolute URI"))?;
    if parsed.fragment().is_some() {
        return Err(format!("resource {resource:?} must not contain a fragment"));
    }
    Ok(())
}

impl ValidMetadata {
    /// A new client with a server-generated id and, unless public, a secret shown only now.
    pub fn into_new_client(self, now: i64) -> (Client, Option<Secret>) {
        let secret = (self.auth_method != AuthMethod::None)
            .then(|| Secret::new(random_base62(SECRET_CHARS)));
        let client = Client {
            id: crate::ids::ClientId::generate(),
            name: self.name,
            secret_hash: secret.as_ref().map(Secret::hash),
            auth_method: self.auth_method,
            redirect_uris: self.redirect_uris,
            grant_types: self.grant_types,
            scope: self.scope,
            resources: self.resources,
            skip_consent: self.skip_consent,
            resource_server: self.resource_server,
            rate_limit_plan: self.rate_limit_plan,
            created_at: now,
            updated_at: now,
        };
        (client, secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metadata(json: serde_json::Value) -> Result<ValidMetadata, MetadataError> {
        serde_json::from_value::<ClientMetadata>(json)
            .unwrap()
            .validate()
    }

    #[test]
    fn defaults_follow_rfc_7591() {
        let valid =
            metadata(serde_json::json!({"redirect_uris": ["https://app.example/cb"]})).unwrap();
        assert_eq!(valid.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(valid.grant_types, [GrantType::AuthorizationCode]);
    }

    #[test]
    fn redirect_uri_rules() {
        assert!(check_redirect_uri("https://app.example/cb?x=1").is_ok());
        assert!(check_redirect_uri("http://localhost:3000/cb").is_ok());
        assert!(check_redirect_uri("http://127.0.0.1:3000/cb").is_ok());
        assert!(check_redirect_uri("http://[::1]/cb").is_ok());
        assert!(check_redirect_uri("com.example.app:/oauth").is_ok());
        assert!(check_redirect_uri("http://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example/cb#frag").is_err());
        assert!(check_redirect_uri("/relative").is_err());
        assert!(check_redirect_uri("javascript:alert(1)").is_err());
        // An allowlist: other schemes, even harmless-looking ones, are refused.
        for uri in [
            "ftp://app.example/cb",
            "ws://app.example/cb",
            "wss://app.example/cb",
            "chrome://settings/",
            "view-source:https://app.example/",
            "myapp://callback",
            "data:text/html,x",
            "file:///etc/passwd",
        ] {
            assert!(check_redirect_uri(uri).is_err(), "{uri}");
        }
        // No userinfo; only the normal form, which is where a browser would really go.
        assert!(check_redirect_uri("https://u:p@app.example/cb").is_err());
        assert!(check_redirect_uri("https://u@app.example/cb").is_err());
        assert!(check_redirect_uri("https:/\\evil.example/cb").is_err());
        assert!(check_redirect_uri("HTTPS://app.example/cb").is_err());
        assert!(check_redirect_uri("https://app.example").is_err());
        assert!(check_redirect_uri("https://app.example/").is_ok());
        assert!(check_redirect_uri("http://localhost:8080/").is_ok());
    }

    #[test]
    fn inconsistent_metadata_is_refused() {
        let public_cc = metadata(serde_json::json!({
            "grant_types": ["client_credentials"], "token_endpoint_auth_method": "none"
        }));
        assert!(matches!(
            public_cc,
            Err(MetadataError::InvalidClientMetadata(_))
        ));
        let code_without_uri = metadata(serde_json::json!({"grant_types": ["authorization_code"]}));
        assert!(matches!(
            code_without_uri,
            Err(MetadataError::InvalidRedirectUri(_))
        ));
        let mismatched = metadata(serde_json::json!({
            "grant_types": ["client_credentials"], "response_types": ["code"]
        }));
        assert!(mismatched.is_err());
        assert!(metadata(serde_json::json!({"grant_types": ["password"]})).is_err());
        assert!(
            metadata(serde_json::json!({"grant_types": ["client_credentials"], "scope": "a\"b"}))
                .is_err()
        );
    }
}
