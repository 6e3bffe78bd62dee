//! The authorization request (RFC 6749 §4.1.1 with RFC 7636 and RFC 9700): which problems are
//! shown on a page and which are sent back to the client.

use url::Url;

use super::form::OAuthForm;
use super::grant_type::GrantType;
use super::pkce;
use super::scope::Scope;
use crate::app::AppContext;
use crate::audit::{Action, Actor, AuditEvent, Initiator};
use crate::clients::{Client, check_redirect_uri};
use crate::clock::unix_now;
use crate::config::CODE_TTL_SECS;
use crate::secrets::{SECRET_CHARS, Secret, random_base62, random_id};
use crate::store::StoreError;
use crate::store::grants::NewCode;
use crate::users::User;

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the request named the redirect URI (then the token request must repeat it).
    pub redirect_uri_in_request: bool,
    pub scope: Scope,
    pub state: Option<String>,
    pub code_challenge: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeError {
    /// RFC 6749 §4.1.2.1: the client or redirect URI cannot be trusted, so the person sees an
    /// error page and is never redirected.
    Page(String),
    /// Every other problem goes back to the client's redirect URI.
    Redirect(ErrorRedirect),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorRedirect {
    pub redirect_uri: String,
    pub state: Option<String>,
    pub error: &'static str,
    pub description: String,
}

/// The client id a request names, if it can be read at all.
pub fn requested_client_id(form: &OAuthForm) -> Option<&str> {
    form.get("client_id")
}

/// Checks `form` (the query of `GET /authorize`) against the client it names.
pub fn validate(
    form: &OAuthForm,
    client: Option<&Client>,
) -> Result<AuthorizationRequest, AuthorizeError> {
    let client =
        client.ok_or_else(|| AuthorizeError::Page("This application is not known.".into()))?;

    // RFC 6749 §3.1.2.3: exact match; the URI may be left out only when just one is registered.
    let requested = form.get("redirect_uri");
    let redirect_uri = match requested {
        Some(uri)
            if client
                .redirect_uris
                .iter()
                .any(|r| redirect_uri_matches(r, uri)) =>
        {
            uri.to_owned()
        }
        Some(_) => {
            return Err(AuthorizeError::Page(
                "The redirect URI is not registered for this application.".into(),
            ));
        }
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => {
            return Err(AuthorizeError::Page(
                "The request does not say where to return to.".into(),
            ));
        }
    };
    // Registered before today's rules, and no longer allowed by them: never redirect there.
    if check_redirect_uri(&redirect_uri).is_err() {
        return Err(AuthorizeError::Page(
            "The redirect URI registered for this application is no longer allowed; its owner \
             must register an https address."
                .into(),
        ));
    }
    let state = form.get("state").map(str::to_owned);
    let fail = |error: &'static str, description: &str| {
        AuthorizeError::Redirect(ErrorRedirect {
            redirect_uri: redirect_uri.clone(),
            state: state.clone(),
            error,
            description: description.to_owned(),
        })
    };

    match form.get("response_type") {
        None => return Err(fail("invalid_request", "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            ));
        }
    }
    if !client.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            "unauthorized_client",
            "this client may not use the authorization code grant",
        ));
    }
    let code_challenge = match (
        form.get("code_challenge"),
        form.get("code_challenge_method"),
    ) {
        (Some(challenge), Some("S256")) if pkce::is_valid_challenge(challenge) => {
            challenge.to_owned()
        }
        (Some(_), Some("S256")) => {
            return Err(fail(
                "invalid_request",
                "code_challenge is not a valid S256 challenge",
            ));
        }
        (None, _) => {
            return Err(fail(
                "invalid_request",
                "PKCE is required: send code_challenge with code_challenge_method=S256",
            ));
        }
        (Some(_), _) => {
            return Err(fail(
                "invalid_request",
                "code_challenge_method must be S256",
            ));
        }
    };
    // A blank scope (`scope=%20`) is treated as omitted, like an empty one (RFC 6749 §3.1).
    let scope = match form.get("scope").filter(|text| !text.trim().is_empty()) {
        None => client.scope.clone(),
        Some(text) => Scope::parse(text).map_err(|e| fail("invalid_scope", &e.0))?,
    };
    if !scope.is_subset_of(&client.scope) {
        return Err(fail(
            "invalid_scope",
            "the requested scope exceeds what this client may ask for",
        ));
    }
    Ok(AuthorizationRequest {
        client_id: client.id.to_string(),
        redirect_uri,
        redirect_uri_in_request: requested.is_some(),
        scope,
        state,
        code_challenge,
    })
}

/// `uri` with `params` added to its query (RFC 6749 §4.1.2: keep the existing query).
pub fn redirect_with(uri: &str, params: &[(&str, &str)]) -> String {
    match Url::parse(uri) {
        Ok(mut url) => {
            url.query_pairs_mut().extend_pairs(params);
            url.to_string()
        }
        // Registered URIs are validated absolute URIs; this is only a fallback.
        Err(_) => uri.to_owned(),
    }
}

/// RFC 9700 §4.1.3: exact string matching, except that a loopback redirect URI (`http` on
/// 127.0.0.1 or [::1]) matches with any port, as RFC 8252 §7.3 asks: a native app listens on
/// whatever port the system gives it.
pub fn redirect_uri_matches(registered: &str, requested: &str) -> bool {
    if registered == requested {
        return true;
    }
    let (Ok(registered), Ok(parsed)) = (Url::parse(registered), Url::parse(requested)) else {
        return false;
    };
    let is_loopback_ip = match registered.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        _ => false,
    };
    // The requested URI must be in normal form, so that what matched is where the browser goes.
    parsed.as_str() == requested
        && registered.scheme() == "http"
        && is_loopback_ip
        && parsed.scheme() == "http"
        && parsed.host() == registered.host()
        && parsed.path() == registered.path()
        && parsed.query() == registered.query()
        && parsed.username().is_empty()
        && parsed.password().is_none()
        && parsed.fragment().is_none()
}

/// The registered client an authorization request names, if there is one.
pub async fn requested_client(
    ctx: &AppContext,
    form: &OAuthForm,
) -> Result<Option<Client>, StoreError> {
    match requested_client_id(form) {
        Some(id) => ctx.store.find_client(&id.into()).await,
        None => Ok(None),
    }
}

/// Whether `user` must be asked to consent: unless the client is first-party, or they
/// consented to this client before, to all of this scope. An empty scope is no reason to skip
/// it: it still gives the client who the person is, and a refresh token.
pub async fn needs_consent(
    ctx: &AppContext,
    user: &User,
    client: &Client,
    scope: &Scope,
) -> Result<bool, StoreError> {
    if client.skip_consent {
        return Ok(false);
    }
    let consented = ctx.store.find_consent(&user.id, &client.id).await?;
    Ok(!consented.is_some_and(|consented| scope.is_subset_of(&consented)))
}

/// Records that `user` allowed `client` this scope, on top of what they allowed it before.
pub async fn record_consent(
    ctx: &AppContext,
    user: &User,
    client: &Client,
    scope: &Scope,
    by: &Initiator,
) -> Result<(), StoreError> {
    let mut allowed = ctx
        .store
        .find_consent(&user.id, &client.id)
        .await?
        .unwrap_or_default();
    allowed.extend(scope);
    let event = AuditEvent::new(
        Action::ConsentGranted,
        &by.as_actor(Actor::User(user.id.clone())),
        Some(client.id.as_str()),
        serde_json::json!({ "user_id": user.id, "scope": allowed }),
    );
    ctx.store
        .save_consent(&user.id, &client.id, &allowed, unix_now(), &event)
        .await
}

/// Creates the grant and its single-use code (RFC 6749 §4.1.2), bound to the client, redirect
/// URI, PKCE challenge, user and scope; returns the code, shown only to the client.
pub async fn issue_code(
    ctx: &AppContext,
    client: &Client,
    user: &User,
    request: &AuthorizationRequest,
) -> Result<Secret, StoreError> {
    let code = Secret::new(random_base62(SECRET_CHARS));
    let grant_id = random_id("grt_");
    let now = unix_now();
    let scope = request.scope.to_string();
    let new_code = NewCode {
        grant_id: &grant_id,
        client_id: client.id.as_str(),
        user_id: user.id.as_str(),
        scope: &scope,
        redirect_uri: &request.redirect_uri,
        redirect_uri_in_request: request.redirect_uri_in_request,
        code_challenge: &request.code_challenge,
        code_hash: &code.hash(),
        now,
        code_expires_at: now + CODE_TTL_SECS,
        grant_expires_at: now + ctx.config.tokens.refresh_token_absolute_secs,
    };
    ctx.store.insert_code(&new_code).await?;
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clients::AuthMethod;

    fn client() -> Client {
        Client {
            id: "app".into(),
            name: "App".into(),
            secret_hash: None,
            auth_method: AuthMethod::None,
            redirect_uris: vec![
                "https://app.example/cb".into(),
                "https://app.example/cb2".into(),
            ],
            grant_types: vec![GrantType::AuthorizationCode],
            scope: Scope::parse("read write").unwrap(),
            resources: vec![],
            skip_consent: false,
            resource_server: false,
            rate_limit_plan: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn check(query: &str) -> Result<AuthorizationRequest, AuthorizeError> {
        validate(
            &OAuthForm::parse(query.as_bytes()).unwrap(),
            Some(&client()),
        )
    }

    fn error_of(query: &str) -> &'static str {
        match check(query) {
            Err(AuthorizeError::Redirect(r)) => r.error,
            other => panic!("expected a redirect error, got {other:?}"),
        }
    }

    #[test]
    fn loopback_redirect_uris_match_any_port() {
        let registered = "http://127.0.0.1/callback";
        assert!(redirect_uri_matches(
            registered,
            "http://127.0.0.1:53123/callback"
        ));
        assert!(redirect_uri_matches(
            "http://[::1]:8080/cb",
            "http://[::1]:9/cb"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.1:53123/other"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.2:53123/callback"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "https://127.0.0.1:53123/callback"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://u@127.0.0.1:1/callback"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.1:53123/callback#x"
        ));
        assert!(!redirect_uri_matches(
            registered,
            "http://127.0.0.1:053123/callback"
        ));
        // Only loopback IP literals; a name, or https, must match exactly.
        assert!(!redirect_uri_matches(
            "http://localhost:3000/cb",
            "http://localhost:4000/cb"
        ));
        assert!(!redirect_uri_matches(
            "https://app.example/cb",
            "https://app.example:8443/cb"
        ));
    }

    #[test]
    fn a_good_request() {
        let q = format!(
            "response_type=code&client_id=app&redirect_uri=https://app.example/cb&state=s&code_challenge={CHALLENGE}&code_challenge_method=S256&scope=read"
        );
        let request = check(&q).unwrap();
        assert_eq!(request.scope.to_string(), "read");
        assert_eq!(request.state.as_deref(), Some("s"));
        assert!(request.redirect_uri_in_request);
    }

    #[test]
    fn untrusted_client_or_redirect_is_a_page() {
        let form = OAuthForm::parse(b"client_id=x").unwrap();
        assert!(matches!(
            validate(&form, None),
            Err(AuthorizeError::Page(_))
        ));
        assert!(matches!(
            check("redirect_uri=https://evil.example/cb"),
            Err(AuthorizeError::Page(_))
        ));
        assert!(matches!(
            check("redirect_uri=https://app.example/cb/"),
            Err(AuthorizeError::Page(_))
        ));
        // Two registered: the request must name one.
        assert!(matches!(
            check("response_type=code"),
            Err(AuthorizeError::Page(_))
        ));
    }

    #[test]
    fn other_problems_redirect_with_rfc_codes() {
        let base = "redirect_uri=https://app.example/cb";
        assert_eq!(error_of(base), "invalid_request");
        assert_eq!(
            error_of(&format!("{base}&response_type=token")),
            "unsupported_response_type"
        );
        assert_eq!(
            error_of(&format!("{base}&response_type=code")),
            "invalid_request"
        );
        assert_eq!(
            error_of(&format!(
                "{base}&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=plain"
            )),
            "invalid_request"
        );
        assert_eq!(
            error_of(&format!(
                "{base}&response_type=code&code_challenge={CHALLENGE}&code_challenge_method=S256&scope=admin"
            )),
            "invalid_scope"
        );
    }

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with(
                "https://app.example/cb?tenant=1",
                &[("code", "a b"), ("state", "x&y")]
            ),
            "https://app.example/cb?tenant=1&code=a+b&state=x%26y"
        );
    }
}
