//! The token endpoint's grants (RFC 6749 §4 and §6), one module each.
//!
//! A grant that consumes something (a code, a refresh token) runs every read and write in one
//! database transaction, and checks everything that can fail before it consumes anything: a
//! failure anywhere, the database's or the process's, changes nothing, and the same request
//! can simply be sent again. The client-credentials and API-key grants write nothing a failure
//! could leave half-done (an API key's last use is advisory and never fails a request).

pub mod api_key;
pub mod authorization_code;
pub mod client_credentials;
pub mod refresh_token;

use serde::Serialize;

use super::access_token::{AccessTokenClaims, Audience};
use super::scope::Scope;
use super::token_request::TokenRequest;
use crate::app::AppContext;
use crate::audit::{Action, Actor, AuditEvent, Initiator};
use crate::clients::{Client, check_resource};
use crate::keys::KeyStoreError;
use crate::metrics;
use crate::oauth::error::OAuthError;
use crate::rate_limit::Subject;
use crate::store::{Store, StoreError, WriteTx};

/// RFC 6749 §5.1 successful response.
#[derive(Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

/// Runs the grant a client authenticated as `client` asks for.
pub async fn issue(
    ctx: &AppContext,
    client: &Client,
    request: TokenRequest,
    by: &Initiator,
) -> Result<TokenResponse, OAuthError> {
    // Counted once the client has proved who it is, before any work is done for it.
    ctx.rate_limiter
        .admit(
            Subject::Client(client.id.as_str()),
            client.rate_limit_plan.as_ref(),
        )
        .await?;
    match request {
        TokenRequest::AuthorizationCode(request) => {
            authorization_code::exchange(ctx, client, request, by).await
        }
        TokenRequest::RefreshToken(request) => {
            refresh_token::refresh(ctx, client, request, by).await
        }
        TokenRequest::ClientCredentials(request) => {
            client_credentials::issue(ctx, client, &request)
        }
    }
}

/// Why a grant stopped inside its transaction, which decides how the transaction ends.
enum Stop {
    /// The request is refused: roll back, answer this.
    Refused(OAuthError),
    /// A used code or rotated refresh token came back (RFC 6749 §4.1.2, RFC 9700 §4.14.2):
    /// commit the revocation of its grant, answer `invalid_grant`.
    Reused {
        grant_id: String,
        message: &'static str,
        /// What the audit log calls it.
        action: Action,
    },
    /// The database failed: the transaction is in doubt and is abandoned (its connection is
    /// closed, see `store::transaction`).
    Store(StoreError),
}

impl From<OAuthError> for Stop {
    fn from(error: OAuthError) -> Self {
        Self::Refused(error)
    }
}

impl From<StoreError> for Stop {
    fn from(error: StoreError) -> Self {
        Self::Store(error)
    }
}

impl From<KeyStoreError> for Stop {
    fn from(error: KeyStoreError) -> Self {
        Self::Refused(error.into())
    }
}

/// Ends a grant's transaction as its outcome requires. Only a committed outcome is answered
/// with tokens.
async fn finish<T>(
    mut tx: WriteTx,
    outcome: Result<T, Stop>,
    client_id: &str,
    now: i64,
    by: &Initiator,
) -> Result<T, OAuthError> {
    match outcome {
        Ok(value) => {
            tx.commit().await?;
            Ok(value)
        }
        Err(Stop::Refused(error)) => {
            // Nothing was written; if even the rollback fails, the connection is closed.
            if let Err(e) = tx.rollback().await {
                tracing::warn!(error = %e, "rollback failed");
            }
            Err(error)
        }
        Err(Stop::Reused {
            grant_id,
            message,
            action,
        }) => {
            if tx.revoke_grant(&grant_id, now).await? {
                tracing::warn!(client_id, grant_id, "{message}; its grant is revoked");
                let event = AuditEvent::new(
                    action,
                    &by.as_actor(Actor::Client(client_id.into())),
                    Some(&grant_id),
                    serde_json::json!({ "client_id": client_id, "grant_revoked": true }),
                );
                Store::record_event(&mut tx, &event).await?;
            }
            tx.commit().await?;
            metrics::reuse_detected(match action {
                Action::RefreshTokenReuseDetected => "refresh_token",
                _ => "authorization_code",
            });
            Err(OAuthError::invalid_grant(message))
        }
        Err(Stop::Store(error)) => {
            drop(tx);
            Err(error.into())
        }
    }
}

/// The claims of a new access token from this issuer (RFC 9068 §2.2), living `ttl_secs`.
fn claims(
    ctx: &AppContext,
    subject: &str,
    client_id: &str,
    audience: Audience,
    scope: &Scope,
    ttl_secs: i64,
    now: i64,
) -> AccessTokenClaims {
    AccessTokenClaims::new(
        &ctx.config.issuer,
        subject,
        client_id,
        audience,
        scope,
        now,
        ttl_secs,
    )
}

/// Signs `claims` into the token response.
fn sign(ctx: &AppContext, claims: &AccessTokenClaims) -> Result<TokenResponse, OAuthError> {
    let access_token = ctx.keys.active_key()?.sign_jwt(claims).map_err(|e| {
        tracing::error!(error = %e, "signing failed");
        OAuthError::server_error()
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer",
        expires_in: claims.exp - claims.iat,
        scope: claims.scope.clone(),
        refresh_token: None,
    })
}

/// Signs an access token for a user's grant and records it in `tx`, so that revoking the
/// grant reaches it.
async fn issue_for_grant(
    ctx: &AppContext,
    tx: &mut WriteTx,
    grant: GrantHolder<'_>,
    audience: Audience,
    scope: &Scope,
    now: i64,
) -> Result<TokenResponse, Stop> {
    let claims = claims(
        ctx,
        grant.user_id,
        grant.client_id,
        audience,
        scope,
        ctx.config.keys.access_token_ttl_secs,
        now,
    );
    let response = sign(ctx, &claims)?;
    tx.record_access_token(&claims.jti, grant.grant_id, grant.client_id, claims.exp)
        .await?;
    Ok(response)
}

/// Whose grant a token is issued from.
#[derive(Clone, Copy)]
struct GrantHolder<'a> {
    grant_id: &'a str,
    user_id: &'a str,
    client_id: &'a str,
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
    ctx: &AppContext,
    client: &Client,
    resources: &[String],
) -> Result<Audience, OAuthError> {
    if resources.is_empty() {
        return Ok(Audience::One(ctx.config.default_audience().to_owned()));
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
