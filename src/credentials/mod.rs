//! Clients and usable API keys kept in memory, so that authenticating a client or checking a
//! key is not a database look-up per request, and kept coherent with the database on every
//! server. This module is the cache; its submodules are how it learns of changes. All of them
//! reach the database through `store` (`store::credential_changes` holds their SQL), which
//! knows nothing of them.
//!
//! A cached entry is used only while the credential generation has not moved, as current as a
//! read that started after the request arrived. So a revocation committed anywhere (another
//! replica, the CLI) is seen by the next request on every server, exactly as without the cache;
//! what the cache saves is the look-ups. How a request learns the generation:
//! - on SQLite, from SQLite's own change counter (`PRAGMA data_version`), reading the row
//!   only after a commit ([`SqliteGenerationReader`]), one check for all the requests waiting
//!   at once ([`SqliteRounds`]);
//! - on PostgreSQL, from this server's view while every change waits for it ([`ChangeWatch`]),
//!   else by a read shared with concurrent requests ([`GenerationFence`]).

mod fence;
mod leases;
mod observed;
mod sqlite;
mod sqlite_rounds;

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use fence::GenerationFence;
use leases::ChangeWatch;
use observed::Observed;
use sqlite::SqliteGenerationReader;
use sqlite_rounds::SqliteRounds;

use crate::api_keys::ApiKey;
use crate::clients::Client;
use crate::config::{
    CREDENTIAL_CACHE_MAX_AGE_SECS, CREDENTIAL_CACHE_MAX_ENTRIES, LAST_USED_RESOLUTION_SECS,
};
use crate::ids::ClientId;
use crate::store::api_keys::UsableApiKey;
use crate::store::{Database, Store, StoreError};

pub struct CredentialCache {
    store: Store,
    freshness: Freshness,
    entries: Mutex<Entries>,
}

/// How a request learns the current generation.
enum Freshness {
    /// A check of the SQLite file begun after the request asked, shared with the requests
    /// waiting with it; the row is read only if the file may have changed.
    ReadFile(Box<SqliteRounds>),
    /// This server's view while it holds a lease, else a query shared with concurrent requests.
    Watched {
        watch: Arc<ChangeWatch>,
        fence: Arc<GenerationFence>,
    },
}

/// A usable API key as cached, with the last use this server knows of.
pub struct CachedApiKey {
    pub key: ApiKey,
    /// The owner's username or organization name.
    pub owner_name: Option<String>,
    last_used_at: AtomicI64,
}

/// What the cache holds, all read at one generation.
#[derive(Default)]
struct Entries {
    /// The latest generation read seen; entries are valid for this generation only.
    seen: Option<Observed>,
    clients: HashMap<String, Entry<Client>>,
    /// By the key's hash.
    api_keys: HashMap<String, Entry<CachedApiKey>>,
}

struct Entry<T> {
    value: Arc<T>,
    /// Entries are read again after a while even if the generation stands, so that a change
    /// made without bumping it (by hand in SQL) is not kept forever.
    loaded_at: Instant,
}

impl Entries {
    /// Moves to `observed` if it is a later read, dropping everything when the generation
    /// moved. True when the entries are valid for `observed`.
    fn accept(&mut self, observed: Observed) -> bool {
        match self.seen {
            Some(seen) if observed.read <= seen.read => {}
            Some(seen) if seen.generation == observed.generation => self.seen = Some(observed),
            _ => {
                self.clients.clear();
                self.api_keys.clear();
                self.seen = Some(observed);
            }
        }
        self.seen
            .is_some_and(|seen| seen.generation == observed.generation)
    }
}

tokio::task_local! {
    /// The generation the request running on this task has observed, once it has.
    static REQUEST_OBSERVATION: Cell<Option<Observed>>;
}

/// Runs `request` so that its credential lookups (a client, then an API key, when a resource
/// server introspects a key) share one observation of the generation, made at the first of
/// them: after the request arrived, so each still sees every change committed before it did.
/// On SQLite that is one freshness check per request instead of one per lookup.
pub async fn one_observation_per_request<F: Future>(request: F) -> F::Output {
    REQUEST_OBSERVATION.scope(Cell::new(None), request).await
}

impl CredentialCache {
    /// Needs a migrated database. On PostgreSQL this starts following credential changes in
    /// a task of its own; call [`Self::stop`] on the way out.
    pub fn start(store: Store) -> Result<Self, StoreError> {
        let freshness = match store.database() {
            Database::Sqlite { path } => {
                let reader = SqliteGenerationReader::open(path)?;
                Freshness::ReadFile(Box::new(SqliteRounds::start(reader)))
            }
            Database::Postgres { .. } => {
                let fence = GenerationFence::new(store.clone());
                let watch = ChangeWatch::start(store.clone(), Arc::clone(&fence));
                Freshness::Watched { watch, fence }
            }
        };
        Ok(Self {
            store,
            freshness,
            entries: Mutex::new(Entries::default()),
        })
    }

    /// Stops following changes, so that they no longer wait for this server.
    pub async fn stop(&self) {
        if let Freshness::Watched { watch, .. } = &self.freshness {
            watch.stop().await;
        }
    }

    /// The generation, as seen after this call: by a read of its own, or by this server's view
    /// while every change waits until the server has seen it. Within [`one_observation_per_request`]
    /// the request's first observation serves all its lookups.
    async fn observe(&self) -> Result<Observed, StoreError> {
        if let Ok(Some(observed)) = REQUEST_OBSERVATION.try_with(Cell::get) {
            return Ok(observed);
        }
        let observed = self.observe_now().await?;
        let _ = REQUEST_OBSERVATION.try_with(|shared| shared.set(Some(observed)));
        Ok(observed)
    }

    async fn observe_now(&self) -> Result<Observed, StoreError> {
        match &self.freshness {
            Freshness::ReadFile(rounds) => rounds.observe().await,
            Freshness::Watched { watch, fence } => match watch.trusted() {
                Some(observed) => Ok(observed),
                None => fence.observe().await,
            },
        }
    }

    /// The registered client with this id.
    pub async fn client(&self, id: &str) -> Result<Option<Arc<Client>>, StoreError> {
        // The id is copied only when the cache misses and the store is asked.
        let load = || async { self.store.find_client(&ClientId::from(id)).await };
        self.read_through(|entries| &mut entries.clients, id, load)
            .await
    }

    /// The API key with this hash, if it may be used at `now`.
    pub async fn usable_api_key(
        &self,
        key_hash: &str,
        now: i64,
    ) -> Result<Option<Arc<CachedApiKey>>, StoreError> {
        let load = || async {
            let found = self.store.find_usable_api_key(key_hash, now).await?;
            Ok(found.map(|UsableApiKey { key, owner_name }| CachedApiKey {
                last_used_at: AtomicI64::new(key.last_used_at.unwrap_or(0)),
                key,
                owner_name,
            }))
        };
        let found = self
            .read_through(|entries| &mut entries.api_keys, key_hash, load)
            .await?;
        // Expiry is the one change that needs no write: check it on every use.
        Ok(found.filter(|cached| cached.key.expires_at.is_none_or(|at| at > now)))
    }

    /// Records that a key was used, at most once a minute per key and server, never failing
    /// the request that used it.
    pub async fn record_use(&self, cached: &CachedApiKey, now: i64) {
        let last = cached.last_used_at.load(Ordering::Relaxed);
        let is_due = now - last >= LAST_USED_RESOLUTION_SECS;
        // Of concurrent requests, the one that moves the time forward writes it.
        if !is_due
            || cached
                .last_used_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        if let Err(e) = self.store.record_api_key_use(&cached.key.id, now).await {
            tracing::warn!(error = %e, key_id = %cached.key.id, "could not record API key use");
        }
    }

    /// The cached value, or else the loaded one (cached when found). `load` runs only after
    /// the generation read, so what it reads is at least as new as the generation it is
    /// filed under.
    async fn read_through<T, F, Fut>(
        &self,
        map: fn(&mut Entries) -> &mut HashMap<String, Entry<T>>,
        id: &str,
        load: F,
    ) -> Result<Option<Arc<T>>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<T>, StoreError>>,
    {
        let observed = self.observe().await?;
        {
            let mut entries = self.lock();
            let max_age = Duration::from_secs(CREDENTIAL_CACHE_MAX_AGE_SECS);
            if entries.accept(observed)
                && let Some(hit) = map(&mut entries).get(id)
                && hit.loaded_at.elapsed() < max_age
            {
                return Ok(Some(Arc::clone(&hit.value)));
            }
        }
        let loaded_at = Instant::now();
        let loaded = load().await?.map(Arc::new);
        if let Some(value) = &loaded {
            let mut entries = self.lock();
            if entries.accept(observed) {
                let map = map(&mut entries);
                if map.len() >= CREDENTIAL_CACHE_MAX_ENTRIES {
                    map.clear();
                }
                map.insert(
                    id.to_owned(),
                    Entry {
                        value: Arc::clone(value),
                        loaded_at,
                    },
                );
            }
        }
        Ok(loaded)
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().expect("credential cache lock poisoned")
    }
}
