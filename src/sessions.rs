//! Browser sessions on Portcullis's own pages: a random token in a cookie, stored hashed,
//! with idle and absolute expiry. The cookie itself is the HTTP layer's (`http::pages`).

use crate::app::AppContext;
use crate::clock::unix_now;
use crate::secrets::{SECRET_CHARS, Secret, hash_secret, random_base62};
use crate::store::StoreError;
use crate::users::User;

/// The enabled user whose live session `token` is, if it is one.
pub async fn session_user(ctx: &AppContext, token: &str) -> Result<Option<User>, StoreError> {
    if !is_token_shaped(token) {
        return Ok(None);
    }
    let idle_secs = ctx.config.sign_in.session_idle_secs;
    ctx.store
        .find_session_user(&hash_secret(token), unix_now(), idle_secs)
        .await
}

/// Starts a session for `user`; the token goes in the cookie, shown to no one else.
pub async fn start_session(ctx: &AppContext, user: &User) -> Result<Secret, StoreError> {
    let token = Secret::new(random_base62(SECRET_CHARS));
    let now = unix_now();
    let lifetime = ctx.config.sign_in.session_absolute_secs;
    ctx.store
        .insert_session(&token.hash(), &user.id, now, now + lifetime)
        .await?;
    Ok(token)
}

/// Ends the session `token` is, if it is one.
pub async fn end_session(ctx: &AppContext, token: &str) -> Result<(), StoreError> {
    ctx.store.delete_session(&hash_secret(token)).await
}

/// Session tokens (and pre-sign-in CSRF bases) are 43 base62 characters: anything else is not
/// one, and is not looked up.
pub fn is_token_shaped(value: &str) -> bool {
    value.len() == SECRET_CHARS && value.bytes().all(|b| b.is_ascii_alphanumeric())
}
