//! What every request shares, whether it arrives over HTTP or is answered by the protocol
//! layer: configuration, the database, the credential cache, the signing keys, the rate
//! limiter and the per-key usage counter.

use std::sync::Arc;

use crate::config::Config;
use crate::credentials::CredentialCache;
use crate::keys::KeyStore;
use crate::rate_limit::RateLimiter;
use crate::store::Store;
use crate::usage::UsageCounter;

pub struct AppContext {
    pub config: Config,
    pub store: Store,
    /// Clients and API keys, as fresh as the store for every change made through Portcullis,
    /// but cheaper to ask.
    pub credentials: CredentialCache,
    pub keys: Arc<KeyStore>,
    /// Counts requests of keys and clients against their rate-limit plans.
    pub rate_limiter: RateLimiter,
    /// Counts each API key's uses, written to the database every few seconds.
    pub usage: UsageCounter,
}

/// Why the server cannot issue tokens right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    NoSigningKey,
    DatabaseUnreachable,
}

impl NotReady {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NoSigningKey => "no signing key",
            Self::DatabaseUnreachable => "database unreachable",
        }
    }
}

impl AppContext {
    /// Ready when a key can sign and the database answers a trivial query within `within`.
    pub async fn readiness(&self, within: std::time::Duration) -> Result<(), NotReady> {
        if self.keys.active_key().is_err() {
            return Err(NotReady::NoSigningKey);
        }
        if let Err(e) = self.store.ping(within).await {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            return Err(NotReady::DatabaseUnreachable);
        }
        Ok(())
    }
}
