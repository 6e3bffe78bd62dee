//! `POST /token` (RFC 6749 §3.2): client authentication, then the grant.

mod api_key;
mod authorization_code;
mod refresh_token;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::AppState;
use crate::clients::{Client, check_resource};
use crate::clock::unix_now;
use crate::error::OAuthError;
use crate::oauth::access_token::{AccessTokenClaims, Audience};
use crate::oauth::client_auth::{CredentialsError, PresentedCredentials};
use crate::oauth::form::OAuthForm;
use crate::oauth::scope::Scope;

/// RFC 6749 §5.1 successful response.
#[derive(Serialize)]
struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
}

pub async fn token(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match issue(&state, &headers, &body).await {
        Ok(response) => {
            let mut response = Json(response).into_response();
            let h = response.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            response
        }
        Err(error) => error.into_response(),
    }
}

async fn issue(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<TokenResponse, OAuthError> {
    require_form(headers)?;
    let form = OAuthForm::parse(body).map_err(OAuthError::invalid_request)?;
    let grant_type = form
        .get("grant_type")
        .ok_or_else(|| OAuthError::invalid_request("grant_type is required"))?;

    let credentials = presented_credentials(headers, &form)?;
    if let PresentedCredentials::ApiKey { key, used_basic } = &credentials {
        return api_key::exchange(state, key, *used_basic, grant_type, &form).await;
    }
    let client = authenticate(state, &credentials).await?;
    match grant_type {
        "client_credentials" => client_credentials(state, &client, &form).await,
        "authorization_code" => authorization_code::exchange(state, &client, &form).await,
        "refresh_token" => refresh_token::refresh(state, &client, &form).await,
        other => Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {other:?} is not supported here"
        ))),
    }
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
    let client = state.credentials.client(credentials.client_id()).await?;
    match client {
        Some(client) if credentials.authenticate(&client) => Ok(Client::clone(&client)),
        _ => Err(OAuthError::invalid_client(credentials.used_basic())),
    }
}

/// RFC 6749 §4.4: a confidential client asks for a token for itself.
async fn client_credentials(
    state: &AppState,
    client: &Client,
    form: &OAuthForm,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() || !client.allows_grant("client_credentials") {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the client_credentials grant",
        ));
    }
    let scope = granted_scope(&client.scope, form.get("scope"))?;
    let audience = audience(state, client, form.resources())?;
    issue_access_token(state, &client.id, &client.id, audience, &scope, None, None).await
}

/// Signs an access token and, for a grant, records it so that revoking the grant reaches it.
async fn issue_access_token(
    state: &AppState,
    subject: &str,
    client_id: &str,
    audience: Audience,
    scope: &Scope,
    grant_id: Option<&str>,
    org_id: Option<&str>,
) -> Result<TokenResponse, OAuthError> {
    let extras = TokenExtras {
        org_id,
        tenant: None,
        ttl_secs: state.config.access_token_ttl_secs,
    };
    issue_token(state, subject, client_id, audience, scope, grant_id, extras).await
}

/// What some tokens carry beyond the RFC 9068 claims, and their lifetime.
struct TokenExtras<'a> {
    org_id: Option<&'a str>,
    tenant: Option<&'a str>,
    ttl_secs: i64,
}

async fn issue_token(
    state: &AppState,
    subject: &str,
    client_id: &str,
    audience: Audience,
    scope: &Scope,
    grant_id: Option<&str>,
    extras: TokenExtras<'_>,
) -> Result<TokenResponse, OAuthError> {
    let config = &state.config;
    let mut claims = AccessTokenClaims::new(
        &config.issuer,
        subject,
        client_id,
        audience,
        scope,
        unix_now(),
        extras.ttl_secs,
    );
    claims.org_id = extras.org_id.map(str::to_owned);
    claims.tenant = extras.tenant.map(str::to_owned);
    let access_token = state.keys.active_key()?.sign_jwt(&claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        OAuthError::server_error()
    })?;
    if let Some(grant_id) = grant_id {
        state
            .store
            .record_access_token(&claims.jti, Some(grant_id), client_id, claims.exp)
            .await?;
    }
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: extras.ttl_secs,
        scope: claims.scope,
        refresh_token: None,
    })
}

/// RFC 6749 §3.3 and §6: the requested scope, which must be within `allowed` (the client's, or
/// the grant's on refresh); none means all of `allowed`.
fn granted_scope(allowed: &Scope, requested: Option<&str>) -> Result<Scope, OAuthError> {
    let Some(requested) = requested else {
        return Ok(allowed.clone());
    };
    let scope = Scope::parse(requested).map_err(|e| OAuthError::invalid_scope(e.0))?;
    if !scope.is_subset_of(allowed) {
        return Err(OAuthError::invalid_scope(
            "the requested scope exceeds what was granted",
        ));
    }
    Ok(scope)
}

/// RFC 8707: the requested resources become `aud`, each one the client must be allowed;
/// without any, the configured default audience.
fn audience(
    state: &AppState,
    client: &Client,
    resources: &[String],
) -> Result<Audience, OAuthError> {
    if resources.is_empty() {
        return Ok(Audience::One(state.config.default_audience.clone()));
    }
    let mut audience: Vec<String> = Vec::with_capacity(resources.len());
    for resource in resources {
        check_resource(resource).map_err(OAuthError::invalid_target)?;
        if !client.resources.contains(resource) {
            return Err(OAuthError::invalid_target(format!(
                "this client may not request resource {resource:?}"
            )));
        }
        if !audience.contains(resource) {
            audience.push(resource.clone());
        }
    }
    Ok(Audience::from_list(audience))
}
