//! Request input of the endpoints clients call with a form (`/token`, `/introspect`,
//! `/revoke`), as extractors: the form, and who sent it (RFC 6749 §2.3). A handler that takes
//! one of these has a parsed form from an authenticated caller, or never runs.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, header};

use super::AppState;
use super::extract::{authenticate_admin, bearer_token, has_media_type};
use crate::clients::Client;
use crate::error::OAuthError;
use crate::oauth::client_auth::{
    AuthFailure, CredentialsError, PresentedCredentials, how_to_authenticate,
};
use crate::oauth::form::OAuthForm;

/// A request's headers, and its `application/x-www-form-urlencoded` body read by OAuth's
/// rules (RFC 6749 §3.2). The headers are moved out, not copied.
async fn headers_and_form(
    request: Request,
    state: &AppState,
) -> Result<(HeaderMap, OAuthForm), OAuthError> {
    let (mut parts, body) = request.into_parts();
    require_form(&parts.headers)?;
    let headers = std::mem::take(&mut parts.headers);
    // The body has been read whole already, within its limits (see `body`).
    let body = Bytes::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(|e| OAuthError::invalid_request(e.body_text()))?;
    let form = OAuthForm::parse(&body).map_err(OAuthError::invalid_request)?;
    Ok((headers, form))
}

/// Who sent a `/token` request: a registered client, or an API key standing for one.
pub enum TokenCaller {
    Client(Arc<Client>),
    /// RFC 6749 §2.3.1 credentials whose id is an API key (the secret is the key itself).
    ApiKey {
        key: String,
        used_basic: bool,
    },
}

/// A `/token` request: its form and its authenticated caller.
pub struct TokenRequestFrom {
    pub caller: TokenCaller,
    pub form: OAuthForm,
}

impl FromRequest<AppState> for TokenRequestFrom {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let (headers, form) = headers_and_form(request, state).await?;
        // RFC 6749 §5.2: a request without a grant type is malformed before anything else.
        if form.get("grant_type").is_none() {
            return Err(OAuthError::invalid_request("grant_type is required"));
        }
        let caller = match presented_credentials(&headers, &form)? {
            PresentedCredentials::ApiKey { key, used_basic } => {
                TokenCaller::ApiKey { key, used_basic }
            }
            credentials => TokenCaller::Client(authenticate(state, &credentials).await?),
        };
        Ok(Self { caller, form })
    }
}

/// A request from a registered client that proved who it is, with its form; an API key is
/// `invalid_client` here.
pub struct ClientRequest {
    pub client: Arc<Client>,
    pub form: OAuthForm,
}

impl FromRequest<AppState> for ClientRequest {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let (headers, form) = headers_and_form(request, state).await?;
        let client = authenticate_client(state, &headers, &form).await?;
        Ok(Self { client, form })
    }
}

/// Who asks `/introspect` (RFC 7662 §2.1): an admin API key as bearer token, or a confidential
/// client.
pub enum Introspector {
    Admin {
        form: OAuthForm,
    },
    Client {
        client: Arc<Client>,
        form: OAuthForm,
    },
}

impl FromRequest<AppState> for Introspector {
    type Rejection = OAuthError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, OAuthError> {
        let (headers, form) = headers_and_form(request, state).await?;
        if bearer_token(&headers).is_some() {
            authenticate_admin(state, &headers).await?;
            return Ok(Self::Admin { form });
        }
        let client = authenticate_client(state, &headers, &form).await?;
        if client.is_public() {
            // RFC 7662 §2.1: the caller must authenticate; a public client cannot.
            return Err(OAuthError::invalid_client_because(
                false,
                "a public client cannot introspect: the caller must authenticate (RFC 7662 §2.1)",
            ));
        }
        Ok(Self::Client { client, form })
    }
}

/// RFC 6749 §3.2: token-endpoint bodies are application/x-www-form-urlencoded.
fn require_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    if !has_media_type(headers, "application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(())
}

/// The registered client a request authenticates as (RFC 6749 §2.3), or `invalid_client`.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Arc<Client>, OAuthError> {
    match presented_credentials(headers, form)? {
        PresentedCredentials::ApiKey { used_basic, .. } => {
            Err(OAuthError::invalid_client(used_basic))
        }
        credentials => authenticate(state, &credentials).await,
    }
}

/// The credentials a request presents, or the RFC 6749 error for unreadable ones.
fn presented_credentials(
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<PresentedCredentials, OAuthError> {
    let authorization = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .map_err(|_| OAuthError::invalid_client(true))?,
        ),
    };
    PresentedCredentials::from_request(authorization, form).map_err(|e| match e {
        CredentialsError::MalformedBasic => OAuthError::invalid_client(true),
        CredentialsError::SeveralMethods => {
            OAuthError::invalid_request("use exactly one client authentication method")
        }
        CredentialsError::Missing => OAuthError::invalid_client(false),
    })
}

/// The registered client these credentials prove, or `invalid_client`: the cached one, not a
/// copy.
async fn authenticate(
    state: &AppState,
    credentials: &PresentedCredentials,
) -> Result<Arc<Client>, OAuthError> {
    let used_basic = credentials.used_basic();
    let Some(client) = state.credentials.client(credentials.client_id()).await? else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    match credentials.authenticate(&client) {
        Ok(()) => Ok(client),
        Err(AuthFailure::WrongMethod { registered }) => Err(OAuthError::invalid_client_because(
            used_basic,
            how_to_authenticate(registered),
        )),
        Err(AuthFailure::Refused) => Err(OAuthError::invalid_client(used_basic)),
    }
}
