//! Client authentication at the token endpoint (RFC 6749 §2.3).

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::form::OAuthForm;
use crate::clients::{AuthMethod, Client};
use crate::secrets::secret_matches;

/// The credentials a request presented, and how. Its `Debug` never prints a secret.
#[derive(Clone, PartialEq, Eq)]
pub enum PresentedCredentials {
    /// `Authorization: Basic` (client_secret_basic).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post { client_id: String, secret: String },
    /// `client_id` alone: a public client (none).
    ClientIdOnly { client_id: String },
    /// An API key, as `Authorization: Bearer KEY` or Basic `KEY:` (empty password): one
    /// string that is both client id and secret.
    ApiKey { key: String, used_basic: bool },
}

impl std::fmt::Debug for PresentedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const REDACTED: &str = "<redacted>";
        match self {
            Self::Basic { client_id, .. } => f
                .debug_struct("Basic")
                .field("client_id", client_id)
                .field("secret", &REDACTED)
                .finish(),
            Self::Post { client_id, .. } => f
                .debug_struct("Post")
                .field("client_id", client_id)
                .field("secret", &REDACTED)
                .finish(),
            Self::ClientIdOnly { client_id } => f
                .debug_struct("ClientIdOnly")
                .field("client_id", client_id)
                .finish(),
            Self::ApiKey { used_basic, .. } => f
                .debug_struct("ApiKey")
                .field("key", &REDACTED)
                .field("used_basic", used_basic)
                .finish(),
        }
    }
}

/// Why the presented credentials could not even be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsError {
    /// The Authorization header was not valid Basic: `invalid_client` with a challenge.
    MalformedBasic,
    /// RFC 6749 §2.3: more than one authentication method in one request (`invalid_request`).
    SeveralMethods,
    /// No client identification at all (`invalid_client`).
    Missing,
}

impl PresentedCredentials {
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::ClientIdOnly { client_id } => client_id,
            Self::ApiKey { .. } => "",
        }
    }

    pub fn used_basic(&self) -> bool {
        matches!(
            self,
            Self::Basic { .. }
                | Self::ApiKey {
                    used_basic: true,
                    ..
                }
        )
    }

    /// Reads the credentials from the `Authorization` header and the form.
    pub fn from_request(
        authorization: Option<&str>,
        form: &OAuthForm,
    ) -> Result<Self, CredentialsError> {
        let body_id = form.get("client_id");
        let body_secret = form.get("client_secret");
        if let Some(header) = authorization {
            if let Some(key) = parse_bearer(header) {
                if body_id.is_some() || body_secret.is_some() {
                    return Err(CredentialsError::SeveralMethods);
                }
                return Ok(Self::ApiKey {
                    key,
                    used_basic: false,
                });
            }
            let (client_id, secret) =
                parse_basic(header).ok_or(CredentialsError::MalformedBasic)?;
            if secret.is_empty() && crate::api_keys::is_well_formed(&client_id) {
                if body_id.is_some() || body_secret.is_some() {
                    return Err(CredentialsError::SeveralMethods);
                }
                return Ok(Self::ApiKey {
                    key: client_id,
                    used_basic: true,
                });
            }
            if body_secret.is_some() {
                return Err(CredentialsError::SeveralMethods);
            }
            // A body client_id that contradicts the header is an attempt at two identities.
            if body_id.is_some_and(|id| id != client_id) {
                return Err(CredentialsError::SeveralMethods);
            }
            return Ok(Self::Basic { client_id, secret });
        }
        match (body_id, body_secret) {
            (Some(id), Some(secret)) => Ok(Self::Post {
                client_id: id.into(),
                secret: secret.into(),
            }),
            (Some(id), None) => Ok(Self::ClientIdOnly {
                client_id: id.into(),
            }),
            (None, _) => Err(CredentialsError::Missing),
        }
    }

    /// Whether these credentials prove `client`'s identity by its registered method.
    /// A client must authenticate the way it registered (RFC 7591 §2).
    pub fn authenticate(&self, client: &Client) -> Result<(), AuthFailure> {
        let presented_secret = match (self, client.auth_method) {
            (Self::Basic { secret, .. }, AuthMethod::ClientSecretBasic)
            | (Self::Post { secret, .. }, AuthMethod::ClientSecretPost) => secret,
            (Self::ClientIdOnly { .. }, AuthMethod::None) => return Ok(()),
            (_, registered) => return Err(AuthFailure::WrongMethod { registered }),
        };
        let matches = client
            .secret_hash
            .as_deref()
            .is_some_and(|hash| secret_matches(presented_secret, hash));
        if matches {
            Ok(())
        } else {
            Err(AuthFailure::Refused)
        }
    }
}

/// Why credentials did not prove a known client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Sent by another method than the registered one; no secret was checked, so telling the
    /// method (public, in the client's own metadata, as Hydra does) says nothing of it.
    WrongMethod { registered: AuthMethod },
    /// The right method with a wrong secret: nothing more is said.
    Refused,
}

/// The `error_description` for a client that used another method than `registered`.
pub fn how_to_authenticate(registered: AuthMethod) -> &'static str {
    match registered {
        AuthMethod::ClientSecretBasic => {
            "this client is registered for client_secret_basic: send client_id and \
             client_secret in an HTTP Basic Authorization header, not in the body"
        }
        AuthMethod::ClientSecretPost => {
            "this client is registered for client_secret_post: send client_id and \
             client_secret in the form body, without an Authorization header"
        }
        AuthMethod::None => {
            "this client is public (registered for none): send its client_id in the form \
             body, with no secret and no Authorization header"
        }
    }
}

/// The token of `Authorization: Bearer …`.
fn parse_bearer(header: &str) -> Option<String> {
    let (scheme, token) = header.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// RFC 7617 Basic credentials, each half form-urlencoded as RFC 6749 §2.3.1 asks.
fn parse_basic(header: &str) -> Option<(String, String)> {
    let (scheme, encoded) = header.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let id = form_urldecode(id)?;
    let secret = form_urldecode(secret)?;
    // RFC 6749 Appendix A: ids and secrets are visible ASCII; control characters never match.
    if id.is_empty() || id.chars().chain(secret.chars()).any(char::is_control) {
        return None;
    }
    Some((id, secret))
}

fn form_urldecode(text: &str) -> Option<String> {
    let pair = format!("v={text}");
    url::form_urlencoded::parse(pair.as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .or(Some(String::new()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> OAuthForm {
        OAuthForm::parse(body.as_bytes()).unwrap()
    }

    fn basic(id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
    }

    #[test]
    fn basic_credentials_are_form_urldecoded() {
        let header = basic("my%20client", "s%3Acret+x");
        let creds = PresentedCredentials::from_request(Some(&header), &form("")).unwrap();
        assert_eq!(
            creds,
            PresentedCredentials::Basic {
                client_id: "my client".into(),
                secret: "s:cret x".into()
            }
        );
    }

    #[test]
    fn malformed_or_doubled_credentials_are_refused() {
        let err = |h: Option<&str>, body: &str| {
            PresentedCredentials::from_request(h, &form(body)).unwrap_err()
        };
        assert_eq!(err(Some("Basic !!!"), ""), CredentialsError::MalformedBasic);
        assert_eq!(
            err(Some(&basic("", "x")), ""),
            CredentialsError::MalformedBasic
        );
        assert_eq!(
            err(Some(&basic("a", "b")), "client_secret=c"),
            CredentialsError::SeveralMethods
        );
        assert_eq!(
            err(Some(&basic("a", "b")), "client_id=other"),
            CredentialsError::SeveralMethods
        );
        assert_eq!(err(None, "client_secret=c"), CredentialsError::Missing);
    }

    #[test]
    fn api_keys_come_as_bearer_or_basic_with_an_empty_password() {
        let key = crate::api_keys::generate_key("pc", crate::api_keys::KeyEnv::Live);
        let bearer = format!("Bearer {}", key.expose());
        let creds = PresentedCredentials::from_request(Some(&bearer), &form("")).unwrap();
        assert_eq!(
            creds,
            PresentedCredentials::ApiKey {
                key: key.expose().into(),
                used_basic: false
            }
        );
        let creds =
            PresentedCredentials::from_request(Some(&basic(key.expose(), "")), &form("")).unwrap();
        assert_eq!(
            creds,
            PresentedCredentials::ApiKey {
                key: key.expose().into(),
                used_basic: true
            }
        );
        // With a password, it is an ordinary client id and secret.
        let creds =
            PresentedCredentials::from_request(Some(&basic(key.expose(), "x")), &form("")).unwrap();
        assert!(matches!(creds, PresentedCredentials::Basic { .. }));
    }

    #[test]
    fn the_registered_method_is_told_only_when_another_was_used() {
        let metadata = serde_json::json!({"grant_types": ["client_credentials"]});
        let (mut client, secret) =
            serde_json::from_value::<crate::clients::ClientMetadata>(metadata)
                .unwrap()
                .validate()
                .unwrap()
                .into_new_client(0);
        let secret = secret.unwrap();
        let basic = PresentedCredentials::Basic {
            client_id: client.id.to_string(),
            secret: secret.expose().into(),
        };
        let post = PresentedCredentials::Post {
            client_id: client.id.to_string(),
            secret: secret.expose().into(),
        };
        let wrong_post = PresentedCredentials::Post {
            client_id: client.id.to_string(),
            secret: "wrong".into(),
        };
        let id_only = PresentedCredentials::ClientIdOnly {
            client_id: client.id.to_string(),
        };
        assert_eq!(client.auth_method, AuthMethod::ClientSecretBasic);
        assert_eq!(basic.authenticate(&client), Ok(()));
        let told = Err(AuthFailure::WrongMethod {
            registered: AuthMethod::ClientSecretBasic,
        });
        // The same answer whether the secret was right or not.
        assert_eq!(post.authenticate(&client), told);
        assert_eq!(wrong_post.authenticate(&client), told);
        assert_eq!(id_only.authenticate(&client), told);
        client.auth_method = AuthMethod::ClientSecretPost;
        assert_eq!(post.authenticate(&client), Ok(()));
        assert_eq!(wrong_post.authenticate(&client), Err(AuthFailure::Refused));
    }

    #[test]
    fn post_and_public_credentials() {
        let creds =
            PresentedCredentials::from_request(None, &form("client_id=a&client_secret=b")).unwrap();
        assert!(matches!(creds, PresentedCredentials::Post { .. }));
        let creds = PresentedCredentials::from_request(None, &form("client_id=a")).unwrap();
        assert_eq!(
            creds,
            PresentedCredentials::ClientIdOnly {
                client_id: "a".into()
            }
        );
    }

    #[test]
    fn debug_never_prints_a_secret() {
        let shown = [
            PresentedCredentials::Basic {
                client_id: "c".into(),
                secret: "s3cr3t-value".into(),
            },
            PresentedCredentials::Post {
                client_id: "c".into(),
                secret: "s3cr3t-value".into(),
            },
            PresentedCredentials::ApiKey {
                key: "s3cr3t-value".into(),
                used_basic: true,
            },
        ]
        .map(|c| format!("{c:?}"));
        for text in shown {
            assert!(!text.contains("s3cr3t"), "{text}");
            assert!(text.contains("<redacted>"), "{text}");
        }
    }
}
