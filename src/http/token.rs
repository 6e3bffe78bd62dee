//! `POST /token` (RFC 6749 §3.2): client authentication, then the grant (in `oauth::grants`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use super::AppState;
use crate::clients::Client;
use crate::error::OAuthError;
use crate::oauth::client_auth::{
    AuthFailure, CredentialsError, PresentedCredentials, how_to_authenticate,
};
use crate::oauth::form::OAuthForm;
use crate::oauth::grants::{self, TokenResponse};
use crate::oauth::token_request::TokenRequest;

/// Its answers are never cached (`Cache-Control` and `Pragma` are set by the router).
pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<TokenResponse>, OAuthError> {
    require_form(&headers)?;
    let form = OAuthForm::parse(&body).map_err(OAuthError::invalid_request)?;
    if form.get("grant_type").is_none() {
        return Err(OAuthError::invalid_request("grant_type is required"));
    }
    let credentials = presented_credentials(&headers, &form)?;
    if let PresentedCredentials::ApiKey { key, used_basic } = &credentials {
        return Ok(Json(
            grants::api_key::exchange(&state, key, *used_basic, &form).await?,
        ));
    }
    let client = authenticate(&state, &credentials).await?;
    Ok(Json(
        grants::issue(&state, &client, TokenRequest::parse(&form)?).await?,
    ))
}

/// RFC 6749 §3.2: token-endpoint bodies are application/x-www-form-urlencoded.
pub(super) fn require_form(headers: &HeaderMap) -> Result<(), OAuthError> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| {
            v.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        });
    if !is_form {
        return Err(OAuthError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    Ok(())
}

/// The client a token-endpoint request authenticates as (RFC 6749 §2.3), or `invalid_client`.
pub(super) async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &OAuthForm,
) -> Result<Client, OAuthError> {
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

/// The registered client these credentials prove, or `invalid_client`.
async fn authenticate(
    state: &AppState,
    credentials: &PresentedCredentials,
) -> Result<Client, OAuthError> {
    let used_basic = credentials.used_basic();
    let Some(client) = state.credentials.client(credentials.client_id()).await? else {
        return Err(OAuthError::invalid_client(used_basic));
    };
    match credentials.authenticate(&client) {
        Ok(()) => Ok(Client::clone(&client)),
        Err(AuthFailure::WrongMethod { registered }) => Err(OAuthError::invalid_client_because(
            used_basic,
            how_to_authenticate(registered),
        )),
        Err(AuthFailure::Refused) => Err(OAuthError::invalid_client(used_basic)),
    }
}
