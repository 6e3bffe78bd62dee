//! The protocol, free of HTTP: request parsing, client authentication, scopes, token claims,
//! and the grants (each one store transaction), introspection and revocation (single reads
//! and statements).

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod form;
pub mod grant_type;
pub mod grants;
pub mod introspection;
pub mod pkce;
pub mod revocation;
pub mod scope;
pub mod token_request;
