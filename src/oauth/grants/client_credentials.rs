//! `grant_type=client_credentials` (RFC 6749 §4.4): a confidential client asks for a token for
//! itself. Nothing is stored: the token lives and dies with its client.

use super::{TokenResponse, audience, claims, granted_scope, sign};
use crate::app::AppContext;
use crate::clients::Client;
use crate::clock::unix_now;
use crate::oauth::error::OAuthError;
use crate::oauth::grant_type::GrantType;
use crate::oauth::token_request::ClientCredentialsRequest;

pub fn issue(
    ctx: &AppContext,
    client: &Client,
    request: &ClientCredentialsRequest,
) -> Result<TokenResponse, OAuthError> {
    // RFC 6749 §4.4: only confidential clients.
    if client.is_public() || !client.allows_grant(GrantType::ClientCredentials) {
        return Err(OAuthError::unauthorized_client(
            "this client may not use the client_credentials grant",
        ));
    }
    let scope = granted_scope(&client.scope, request.scope.as_deref())?;
    let audience = audience(ctx, client, &request.resources)?;
    let claims = claims(
        ctx,
        client.id.as_str(),
        client.id.as_str(),
        audience,
        &scope,
        ctx.config.keys.access_token_ttl_secs,
        unix_now(),
    );
    sign(ctx, &claims)
}
