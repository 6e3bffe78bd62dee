//! `POST /token` (RFC 6749 §3.2): the grant (in `oauth::grants`) for an authenticated caller.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::client_auth::{TokenCaller, TokenRequestFrom};
use super::extract::Origin;
use crate::audit::Actor;
use crate::error::OAuthError;
use crate::oauth::grants::{self, TokenResponse};
use crate::oauth::token_request::TokenRequest;

/// Its answers are never cached (`Cache-Control` and `Pragma` are set by the router).
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    TokenRequestFrom { caller, form }: TokenRequestFrom,
) -> Result<Json<TokenResponse>, OAuthError> {
    let response = match caller {
        TokenCaller::ApiKey { key, used_basic } => {
            grants::api_key::exchange(&state, &key, used_basic, &form).await?
        }
        TokenCaller::Client(client) => {
            let by = origin.by(Actor::Client(client.id.clone()));
            grants::issue(&state, &client, TokenRequest::parse(&form)?, &by).await?
        }
    };
    Ok(Json(response))
}
