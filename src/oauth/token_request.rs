//! A token-endpoint request (RFC 6749 §3.2), read once from its form into what its grant needs.

use super::form::OAuthForm;
use super::grant_type::GrantType;
use crate::oauth::error::OAuthError;

/// What a client asks the token endpoint for. Holds codes and refresh tokens, so it has no
/// `Debug`: it cannot end up in a log line.
pub enum TokenRequest {
    AuthorizationCode(CodeRequest),
    RefreshToken(RefreshRequest),
    ClientCredentials(ClientCredentialsRequest),
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.5).
pub struct CodeRequest {
    pub code: String,
    pub code_verifier: String,
    pub redirect_uri: Option<String>,
    /// RFC 8707 resources: the audiences asked for.
    pub resources: Vec<String>,
}

/// RFC 6749 §6.
pub struct RefreshRequest {
    pub refresh_token: String,
    /// Narrower than granted, or None for all of it.
    pub scope: Option<String>,
    pub resources: Vec<String>,
}

/// RFC 6749 §4.4.2, also an API key's request.
pub struct ClientCredentialsRequest {
    pub scope: Option<String>,
    pub resources: Vec<String>,
    /// A scoped tenant token's tenant (API service keys only; clients ignore it).
    pub tenant: Option<String>,
}

impl TokenRequest {
    /// The grant type a form asks for: `invalid_request` without one, `unsupported_grant_type`
    /// for one Portcullis does not know.
    pub fn grant_type(form: &OAuthForm) -> Result<GrantType, OAuthError> {
        let name = form
            .get("grant_type")
            .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;
        GrantType::parse(name).ok_or_else(|| {
            OAuthError::unsupported_grant_type(format!("grant_type {name:?} is not supported here"))
        })
    }

    /// The grant this request is for.
    pub fn grant(&self) -> GrantType {
        match self {
            Self::AuthorizationCode(_) => GrantType::AuthorizationCode,
            Self::RefreshToken(_) => GrantType::RefreshToken,
            Self::ClientCredentials(_) => GrantType::ClientCredentials,
        }
    }

    pub fn parse(form: &OAuthForm) -> Result<Self, OAuthError> {
        let resources = form.resources().to_vec();
        let scope = form.get("scope").map(str::to_owned);
        Ok(match Self::grant_type(form)? {
            GrantType::AuthorizationCode => Self::AuthorizationCode(CodeRequest {
                code: required(form, "code", "code is required")?,
                code_verifier: required(form, "code_verifier", "code_verifier is required (PKCE)")?,
                redirect_uri: form.get("redirect_uri").map(str::to_owned),
                resources,
            }),
            GrantType::RefreshToken => Self::RefreshToken(RefreshRequest {
                refresh_token: required(form, "refresh_token", "refresh_token is required")?,
                scope,
                resources,
            }),
            GrantType::ClientCredentials => Self::ClientCredentials(ClientCredentialsRequest {
                scope,
                resources,
                tenant: form.get("tenant").map(str::to_owned),
            }),
        })
    }
}

fn required(form: &OAuthForm, name: &str, message: &str) -> Result<String, OAuthError> {
    form.get(name)
        .map(str::to_owned)
        .ok_or_else(|| OAuthError::invalid_request(message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, OAuthError> {
        TokenRequest::parse(&OAuthForm::parse(body.as_bytes()).unwrap())
    }

    #[test]
    fn each_grant_reads_its_own_parameters() {
        let Ok(TokenRequest::AuthorizationCode(code)) =
            parse("grant_type=authorization_code&code=c&code_verifier=v&resource=https://a")
        else {
            panic!("a code request")
        };
        assert_eq!(
            (code.code.as_str(), code.code_verifier.as_str()),
            ("c", "v")
        );
        assert_eq!(code.redirect_uri, None);
        assert_eq!(code.resources, ["https://a"]);

        let Ok(TokenRequest::RefreshToken(refresh)) =
            parse("grant_type=refresh_token&refresh_token=r&scope=a")
        else {
            panic!("a refresh request")
        };
        assert_eq!(refresh.refresh_token, "r");
        assert_eq!(refresh.scope.as_deref(), Some("a"));

        let Ok(TokenRequest::ClientCredentials(cc)) =
            parse("grant_type=client_credentials&tenant=t1")
        else {
            panic!("a client credentials request")
        };
        assert_eq!(cc.tenant.as_deref(), Some("t1"));
    }

    #[test]
    fn missing_and_unknown_parameters_get_their_rfc_errors() {
        let code = |body| parse(body).err().map(|e| e.code.as_str());
        assert_eq!(code("scope=a"), Some("invalid_request"));
        assert_eq!(code("grant_type=password"), Some("unsupported_grant_type"));
        assert_eq!(
            code("grant_type=authorization_code&code=c"),
            Some("invalid_request")
        );
        assert_eq!(code("grant_type=refresh_token"), Some("invalid_request"));
    }
}
