//! Cross-cutting request input: bearer credentials, admin keys, JSON bodies.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::{HeaderMap, header, request::Parts};
use serde::de::DeserializeOwned;

use super::AppState;
use super::request_log::request_id_of;
use crate::api_keys::{self, ApiKey, ApiKeyKind};
use crate::audit::{Actor, Initiator};
use crate::clock::unix_now;
use crate::error::{AdminError, OAuthError};
use crate::secrets::hash_secret;
use crate::store::StoreError;

/// Whether the request's body is declared as `media_type` (parameters such as `charset`
/// aside; RFC 9110 §8.3).
pub fn has_media_type(headers: &HeaderMap, media_type: &str) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media_type))
}

/// The value of an `Authorization: Bearer …` header (RFC 6750 §2.1).
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Why a request's API key was refused.
pub enum KeyAuthFailure {
    /// No bearer token.
    Missing,
    /// Not a key, or one that is unknown, expired or revoked.
    Invalid,
    /// A usable key of a kind that may not do this.
    WrongKind,
    Store(StoreError),
}

/// On the admin API.
impl From<KeyAuthFailure> for AdminError {
    fn from(failure: KeyAuthFailure) -> Self {
        match failure {
            KeyAuthFailure::Missing => {
                Self::unauthorized("an admin API key is required: Authorization: Bearer <key>")
            }
            KeyAuthFailure::Invalid => Self::unauthorized("invalid, expired or revoked API key"),
            KeyAuthFailure::WrongKind => Self::forbidden("this API key is not an admin key"),
            KeyAuthFailure::Store(e) => e.into(),
        }
    }
}

/// On the OAuth endpoints that take an API key as a bearer token (RFC 6750 §3.1): `/register`
/// (its initial access token, RFC 7591 §3) and `/introspect`.
impl From<KeyAuthFailure> for OAuthError {
    fn from(failure: KeyAuthFailure) -> Self {
        match failure {
            KeyAuthFailure::Missing => {
                Self::invalid_token("an API key is required: Authorization: Bearer <key>")
            }
            KeyAuthFailure::Invalid => Self::invalid_token("invalid, expired or revoked API key"),
            KeyAuthFailure::WrongKind => Self::insufficient_scope("this API key may not do this"),
            KeyAuthFailure::Store(e) => e.into(),
        }
    }
}

/// Finds the usable admin API key a request presents as its bearer token.
pub async fn authenticate_admin(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<ApiKey, KeyAuthFailure> {
    authenticate_key_of(state, headers, &[ApiKeyKind::Admin]).await
}

/// Finds the usable API key a request presents as its bearer token, if it is of one of
/// `kinds` (`WrongKind` otherwise).
pub async fn authenticate_key_of(
    state: &AppState,
    headers: &HeaderMap,
    kinds: &[ApiKeyKind],
) -> Result<ApiKey, KeyAuthFailure> {
    let token = bearer_token(headers).ok_or(KeyAuthFailure::Missing)?;
    if !api_keys::is_well_formed(token) {
        return Err(KeyAuthFailure::Invalid);
    }
    let now = unix_now();
    let cached = state
        .credentials
        .usable_api_key(&hash_secret(token), now)
        .await
        .map_err(KeyAuthFailure::Store)?
        .ok_or(KeyAuthFailure::Invalid)?;
    if !kinds.contains(&cached.key.kind) {
        return Err(KeyAuthFailure::WrongKind);
    }
    state.credentials.record_use(&cached, now).await;
    Ok(cached.key.clone())
}

/// Extractor: the request carries a valid admin API key, or is refused with the admin error.
/// (Operations that change something take [`AdminActor`], which names the key.)
pub struct AdminKey;

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        authenticate_admin(state, &parts.headers).await?;
        Ok(Self)
    }
}

/// Extractor: an admin API key acting, and where its request came from: who an admin
/// operation's audit event names.
pub struct AdminActor(pub Initiator);

impl FromRequestParts<AppState> for AdminActor {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AdminError> {
        let key = authenticate_admin(state, &parts.headers).await?;
        Ok(Self(Origin::of(parts).by(Actor::AdminKey(key.id))))
    }
}

/// Extractor: where a request came from (the peer address, its User-Agent and request id),
/// for the audit log and API-key usage. Never refuses.
pub struct Origin {
    initiator: Initiator,
    peer: Option<IpAddr>,
}

/// Longest User-Agent kept: enough to tell clients apart, not a place to store a novel.
const MAX_RECORDED_HEADER_CHARS: usize = 256;

impl Origin {
    fn of(parts: &Parts) -> Self {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|text| text.chars().take(MAX_RECORDED_HEADER_CHARS).collect())
        };
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(peer)| peer.ip());
        Self {
            initiator: Initiator {
                actor: Actor::Anonymous,
                ip: peer.map(|ip| ip.to_string()),
                user_agent: header("user-agent"),
                request_id: request_id_of(&parts.extensions).map(str::to_owned),
            },
            peer,
        }
    }

    /// The request, made by `actor`.
    pub fn by(&self, actor: Actor) -> Initiator {
        self.initiator.as_actor(actor)
    }

    /// The peer's address (a proxy's, behind one).
    pub fn peer_ip(&self) -> Option<IpAddr> {
        self.peer
    }
}

impl<S: Sync> FromRequestParts<S> for Origin {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(parts))
    }
}

/// Extractor: a JSON body, refused with the admin error shape instead of axum's plain text.
pub struct AdminJson<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for AdminJson<T> {
    type Rejection = AdminError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, AdminError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                let message = rejection.body_text();
                Err(match status.as_u16() {
                    413 => AdminError::new(status, "PAYLOAD_TOO_LARGE", message),
                    415 => AdminError::new(status, "UNSUPPORTED_MEDIA_TYPE", message),
                    422 => AdminError::invalid_input(message),
                    _ => AdminError::malformed(message),
                })
            }
        }
    }
}
