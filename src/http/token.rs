//! `POST /token` (RFC 6749 §3.2): the grant (in `oauth::grants`) for an authenticated caller.

use axum::Json;
use axum::extract::State;

use super::AppState;
use super::client_auth::{TokenCaller, TokenRequestFrom};
use super::extract::Origin;
use crate::audit::Actor;
use crate::error::OAuthError;
use crate::metrics;
use crate::oauth::grants::{self, TokenResponse};
use crate::oauth::token_request::TokenRequest;

/// Its answers are never cached (`Cache-Control` and `Pragma` are set by the router).
pub async fn token(
    State(state): State<AppState>,
    origin: Origin,
    TokenRequestFrom { caller, form }: TokenRequestFrom,
) -> Result<Json<TokenResponse>, OAuthError> {
    let (response, grant) = match caller {
        TokenCaller::ApiKey { key, used_basic } => (
            grants::api_key::exchange(&state, &key, used_basic, &form, origin.peer_ip()).await?,
            "api_key",
        ),
        TokenCaller::Client(client) => {
            let by = origin.by(Actor::Client(client.id.clone()));
            let request = TokenRequest::parse(&form)?;
            let grant = request.grant().as_str();
            (grants::issue(&state, &client, request, &by).await?, grant)
        }
    };
    metrics::token_issued(grant);
    Ok(Json(response))
}
