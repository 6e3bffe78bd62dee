//! What every request shares, whether it arrives over HTTP or is answered by the protocol
//! layer: configuration, the database, the credential cache and the signing keys.

use std::sync::Arc;

use crate::config::Config;
use crate::credentials::CredentialCache;
use crate::keys::KeyStore;
use crate::store::Store;

pub struct AppContext {
    pub config: Config,
    pub store: Store,
    /// Clients and API keys, as fresh as the store for every change made through Portcullis,
    /// but cheaper to ask.
    pub credentials: CredentialCache,
    pub keys: Arc<KeyStore>,
}
