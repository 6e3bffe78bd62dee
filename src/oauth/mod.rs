//! The protocol rules, free of HTTP and SQL: request parsing, client authentication, scopes
//! and token claims. Each is unit-tested without a server.

pub mod access_token;
pub mod authorize;
pub mod client_auth;
pub mod form;
pub mod pkce;
pub mod scope;
