//! Token revocation (RFC 7009): a client revokes a refresh token (and with it the whole
//! family) or an access token (recorded by `jti`, honoured by introspection). Each is one
//! statement, so it either happened or did not.

use crate::app::AppContext;
use crate::clients::Client;
use crate::clock::unix_now;
use crate::secrets::hash_secret;
use crate::store::StoreError;

/// Revokes `token` if it is `client`'s. RFC 7009 §2.2: unknown and invalid tokens, and other
/// clients' tokens (§2.1), are not an error; the caller answers 200 either way.
pub async fn revoke(ctx: &AppContext, client: &Client, token: &str) -> Result<(), StoreError> {
    let now = unix_now();
    // The hint only orders the look-ups (RFC 7009 §2.1); both kinds are tried.
    if let Some(refresh) = ctx.store.find_refresh_token(&hash_secret(token)).await? {
        if refresh.client_id == client.id && ctx.store.revoke_grant(&refresh.grant_id, now).await? {
            tracing::info!(client_id = %client.id, "refresh token family revoked");
        }
        return Ok(());
    }
    if let Some(claims) = ctx.keys.verify_access_token(token, &ctx.config.issuer) {
        let is_own = claims["client_id"].as_str() == Some(client.id.as_str());
        if let (true, Some(jti), Some(exp)) =
            (is_own, claims["jti"].as_str(), claims["exp"].as_i64())
        {
            ctx.store
                .revoke_access_token(jti, client.id.as_str(), exp, now)
                .await?;
            tracing::info!(client_id = %client.id, "access token revoked");
        }
    }
    Ok(())
}
