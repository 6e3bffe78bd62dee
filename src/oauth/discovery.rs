//! RFC 8414 authorization server metadata: what a client needs to find every endpoint and
//! what each supports.

use serde_json::{Value, json};

use crate::app::AppContext;
use crate::clients::AuthMethod;
use crate::oauth::grant_type::GrantType;
use crate::store::StoreError;

/// The metadata document (RFC 8414 §2); `scopes_supported` lists the scopes clients hold.
pub async fn metadata(ctx: &AppContext) -> Result<Value, StoreError> {
    let config = &ctx.config;
    let scopes = ctx.store.scopes_in_use().await?;
    let scopes: Vec<&str> = scopes.tokens().collect();
    Ok(json!({
        "issuer": config.issuer,
        "authorization_endpoint": config.endpoint("/authorize"),
        "token_endpoint": config.endpoint("/token"),
        "revocation_endpoint": config.endpoint("/revoke"),
        "revocation_endpoint_auth_methods_supported": AuthMethod::ALL,
        "introspection_endpoint": config.endpoint("/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "jwks_uri": config.endpoint("/.well-known/jwks.json"),
        "registration_endpoint": config.endpoint("/register"),
        "grant_types_supported": GrantType::ALL,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "token_endpoint_auth_methods_supported": AuthMethod::ALL,
        "code_challenge_methods_supported": ["S256"],
        "scopes_supported": scopes,
        "authorization_response_iss_parameter_supported": true,
    }))
}
