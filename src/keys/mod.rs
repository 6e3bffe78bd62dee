//! Signing keys: the keys directory, the rotation schedule, the JWKS, and which key signs now.
//!
//! Each key is two files in the keys directory: `<kid>.pem` (PKCS#8, mode 0600) and `<kid>.json`
//! (`{"created_at": …, "activates_at": …}`). The schedule is derived from activation times alone,
//! so every server reading the same directory publishes the same set and signs with the same key:
//! - the *active* key is the one with the latest `activates_at` that is not in the future;
//! - a *pending* key (activation in the future) is already published, so that caches of the JWKS
//!   know it before the first token it signs;
//! - a *retired* key (superseded by a newer active key) stays published until every token it
//!   signed has expired: its successor's activation time plus the token lifetime plus leeway.

mod signing_key;

use std::collections::HashMap;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use signing_key::{KeyError, SigningKey};

use crate::clock::{unix_now, unix_now_ms};
use crate::config::{SIGNING_KEY_RELOAD_INTERVAL_SECS, SIGNING_KEY_RETIREMENT_LEEWAY_SECS};

#[derive(Debug, thiserror::Error)]
pub enum KeyStoreError {
    #[error("keys directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("key file {path}: {source}")]
    BadKey { path: PathBuf, source: KeyError },
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("there is no signing key in {0}")]
    NoKey(PathBuf),
    /// Someone else could plant a key here that the server would publish and sign with.
    #[error("keys directory {path} {problem}")]
    NotPrivate { path: PathBuf, problem: String },
}

/// When a key was made and when it starts (or started) signing.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct KeySchedule {
    /// Milliseconds, so that of two keys activating in the same second the newer one wins.
    created_at_ms: i64,
    activates_at: i64,
}

/// A key as it stands at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyState {
    Pending,
    Active,
    /// Superseded, still published for tokens it signed.
    Retiring,
    /// Superseded and past its last token's expiry: no longer published.
    Retired,
}

/// A key's status for `signing-keys list` and the admin API.
#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub kid: String,
    pub state: KeyState,
    pub created_at: i64,
    pub activates_at: i64,
    /// When the key stops being published; absent while it is pending or active.
    pub unpublish_at: Option<i64>,
}

struct LoadedKey {
    key: Arc<SigningKey>,
    schedule: KeySchedule,
}

/// The keys found in the keys directory, ordered by activation (then kid, for a total order).
#[derive(Default)]
struct KeySet {
    keys: Vec<LoadedKey>,
}

impl KeySet {
    /// The state of each key (in the set's order) at `now`.
    fn statuses(&self, now: i64, token_ttl_secs: i64) -> Vec<KeyStatus> {
        let active_index = self
            .keys
            .iter()
            .rposition(|k| k.schedule.activates_at <= now);
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                let (state, unpublish_at) = match active_index {
                    Some(a) if i < a => {
                        // It signed until its successor activated; its tokens live on after that.
                        let successor = self.keys[i + 1].schedule.activates_at;
                        let until = successor + token_ttl_secs + SIGNING_KEY_RETIREMENT_LEEWAY_SECS;
                        let state = if now < until {
                            KeyState::Retiring
                        } else {
                            KeyState::Retired
                        };
                        (state, Some(until))
                    }
                    Some(a) if i == a => (KeyState::Active, None),
                    _ => (KeyState::Pending, None),
                };
                KeyStatus {
                    kid: k.key.kid().to_owned(),
                    state,
                    created_at: k.schedule.created_at_ms / 1000,
                    activates_at: k.schedule.activates_at,
                    unpublish_at,
                }
            })
            .collect()
    }
}

/// The file in the keys directory that serialises making the first key (see
/// [`KeyStore::ensure_key`]). A dot file: the rescan reads only `<kid>.json`.
pub const FIRST_KEY_LOCK: &str = ".first-key.lock";

/// The signing keys of one keys directory, reloaded from disk as they change.
pub struct KeyStore {
    dir: PathBuf,
    /// Lifetime of the longest-lived token a key signs: how long a retired key stays published.
    token_ttl_secs: i64,
    current: RwLock<Arc<KeySet>>,
}

/// Refuses a keys directory that anyone but the server's user could write to: they could plant
/// a key that the server would publish and sign with.
fn check_private(dir: &Path) -> Result<(), KeyStoreError> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let not_private = |problem: String| KeyStoreError::NotPrivate {
        path: dir.into(),
        problem,
    };
    let metadata = std::fs::metadata(dir).map_err(|source| KeyStoreError::Io {
        path: dir.into(),
        source,
    })?;
    if metadata.permissions().mode() & 0o022 != 0 {
        return Err(not_private(format!(
            "is writable by its group or by others (mode {:o}): run `chmod go-w {}`",
            metadata.permissions().mode() & 0o777,
            dir.display()
        )));
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    {
        let server_user = rustix::process::geteuid().as_raw();
        if metadata.uid() != server_user {
            return Err(not_private(format!(
                "is owned by uid {}, not by the server's user (uid {server_user}): run `chown` on it",
                metadata.uid()
            )));
        }
    }
    Ok(())
}

impl KeyStore {
    /// Loads every key in `dir` (created with mode 0700 if missing), which must be private to
    /// the server's user.
    pub fn open(dir: &Path, token_ttl_secs: i64) -> Result<Self, KeyStoreError> {
        if !dir.exists() {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|source| KeyStoreError::Io {
                    path: dir.into(),
                    source,
                })?;
        }
        check_private(dir)?;
        let store = Self {
            dir: dir.to_path_buf(),
            token_ttl_secs,
            current: RwLock::new(Arc::new(KeySet::default())),
        };
        store.reload()?;
        Ok(store)
    }

    /// Creates a first key, active at once, when the directory has none.
    ///
    /// Replicas started at once on an empty shared directory would each make a key, each
    /// publish only its own until the next rescan, and one key would be superseded at birth.
    /// So the first key is made under an exclusive flock(2) on [`FIRST_KEY_LOCK`], which every
    /// process sharing the directory sees (containers sharing a volume too) and which is
    /// released if its holder dies; whoever gets it second rescans and finds the key.
    pub fn ensure_key(&self) -> Result<(), KeyStoreError> {
        if !self.snapshot().keys.is_empty() {
            return Ok(());
        }
        let lock_path = self.dir.join(FIRST_KEY_LOCK);
        let io = |source| KeyStoreError::Io {
            path: lock_path.clone(),
            source,
        };
        // Kept, not removed after use: a process waiting on a removed file's lock would hold
        // a lock that a later process, creating the file anew, does not see.
        let lock = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io)?;
        lock.lock().map_err(io)?;
        self.reload()?;
        if self.snapshot().keys.is_empty() {
            let kid = self.create_key(unix_now())?;
            tracing::info!(%kid, dir = %self.dir.display(), "generated a first signing key");
        }
        // The lock is released when `lock` is dropped (closed).
        Ok(())
    }

    /// Creates a new key that starts signing at `activates_at` and is published from now on.
    pub fn create_key(&self, activates_at: i64) -> Result<String, KeyStoreError> {
        let (key, pem) = SigningKey::generate()?;
        let kid = key.kid().to_owned();
        let schedule = KeySchedule {
            created_at_ms: unix_now_ms(),
            activates_at,
        };
        let io = |source| KeyStoreError::Io {
            path: self.dir.clone(),
            source,
        };

        // The private key first, readable by its owner only; the schedule last, written to a
        // temporary name and renamed, so a reader never sees a key without a complete schedule.
        let mut pem_file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(self.dir.join(format!("{kid}.pem")))
            .map_err(io)?;
        pem_file.write_all(pem.as_bytes()).map_err(io)?;
        pem_file.sync_all().map_err(io)?;

        let tmp = self.dir.join(format!(".{kid}.json.tmp"));
        let schedule_json = serde_json::to_vec(&schedule).expect("a schedule serializes");
        let mut schedule_file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(io)?;
        schedule_file.write_all(&schedule_json).map_err(io)?;
        schedule_file.sync_all().map_err(io)?;
        std::fs::rename(&tmp, self.dir.join(format!("{kid}.json"))).map_err(io)?;

        self.reload()?;
        Ok(kid)
    }

    /// Rotates: a new key, published now, signing from `now + delay_secs`.
    pub fn rotate(&self, delay_secs: i64) -> Result<String, KeyStoreError> {
        self.create_key(unix_now() + delay_secs.max(0))
    }

    /// Rescans the directory. Keys already loaded are kept as they are; a file that cannot be
    /// read or parsed is logged and skipped, so one bad file cannot stop the server signing.
    pub fn reload(&self) -> Result<(), KeyStoreError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|source| KeyStoreError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let previous = self.snapshot();
        let known: HashMap<&str, &LoadedKey> =
            previous.keys.iter().map(|k| (k.key.kid(), k)).collect();

        let mut keys = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let Some(kid) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            if kid.starts_with('.') {
                continue;
            }
            match self.load_key(kid, &path, &known) {
                Ok(key) => keys.push(key),
                Err(e) => tracing::warn!(error = %e, "skipping signing key"),
            }
        }
        keys.sort_by(|a, b| {
            let order = |k: &LoadedKey| (k.schedule.activates_at, k.schedule.created_at_ms);
            order(a)
                .cmp(&order(b))
                .then_with(|| a.key.kid().cmp(b.key.kid()))
        });
        *self.current.write().expect("key set lock is not poisoned") = Arc::new(KeySet { keys });
        Ok(())
    }

    fn load_key(
        &self,
        kid: &str,
        schedule_path: &Path,
        known: &HashMap<&str, &LoadedKey>,
    ) -> Result<LoadedKey, KeyStoreError> {
        let bad = |source| KeyStoreError::BadKey {
            path: schedule_path.into(),
            source,
        };
        let io = |source| KeyStoreError::Io {
            path: schedule_path.into(),
            source,
        };
        let schedule: KeySchedule =
            serde_json::from_slice(&std::fs::read(schedule_path).map_err(io)?)
                .map_err(|e| bad(KeyError::Pem(format!("bad schedule: {e}"))))?;
        if let Some(existing) = known.get(kid) {
            return Ok(LoadedKey {
                key: existing.key.clone(),
                schedule,
            });
        }
        let pem_path = self.dir.join(format!("{kid}.pem"));
        let pem = std::fs::read_to_string(&pem_path).map_err(|source| KeyStoreError::Io {
            path: pem_path.clone(),
            source,
        })?;
        let key = SigningKey::from_pkcs8_pem(&pem).map_err(|source| KeyStoreError::BadKey {
            path: pem_path.clone(),
            source,
        })?;
        if key.kid() != kid {
            return Err(bad(KeyError::Rejected(format!(
                "file name says {kid}, key is {}",
                key.kid()
            ))));
        }
        Ok(LoadedKey {
            key: Arc::new(key),
            schedule,
        })
    }

    fn snapshot(&self) -> Arc<KeySet> {
        self.current
            .read()
            .expect("key set lock is not poisoned")
            .clone()
    }

    /// The key that signs now.
    pub fn active_key(&self) -> Result<Arc<SigningKey>, KeyStoreError> {
        let set = self.snapshot();
        let now = unix_now();
        set.keys
            .iter()
            .rev()
            .find(|k| k.schedule.activates_at <= now)
            // Only pending keys (a clock set back): sign with the earliest rather than not at all.
            .or_else(|| set.keys.first())
            .map(|k| k.key.clone())
            .ok_or_else(|| KeyStoreError::NoKey(self.dir.clone()))
    }

    /// Every key with its state at this moment, oldest first.
    pub fn statuses(&self) -> Vec<KeyStatus> {
        self.snapshot().statuses(unix_now(), self.token_ttl_secs)
    }

    /// The JWKS document (RFC 7517 §5): every published key's public part.
    pub fn jwks(&self) -> serde_json::Value {
        let set = self.snapshot();
        let statuses = set.statuses(unix_now(), self.token_ttl_secs);
        let keys: Vec<&serde_json::Value> = set
            .keys
            .iter()
            .zip(&statuses)
            .filter(|(_, status)| status.state != KeyState::Retired)
            .map(|(k, _)| k.key.public_jwk())
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The claims of an unexpired access token signed by one of this server's published keys
    /// with `iss` = `issuer`; None for anything else. No leeway: the clock that set `exp` is
    /// this one, so a token is expired from its `exp` on (RFC 7519 §4.1.4), not a minute later.
    pub fn verify_access_token(&self, token: &str, issuer: &str) -> Option<serde_json::Value> {
        let header = jsonwebtoken::decode_header(token).ok()?;
        let kid = header.kid?;
        let set = self.snapshot();
        let now = unix_now();
        let statuses = set.statuses(now, self.token_ttl_secs);
        let key = set
            .keys
            .iter()
            .zip(&statuses)
            .find(|(k, status)| k.key.kid() == kid && status.state != KeyState::Retired)?
            .0;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.validate_aud = false;
        validation.set_issuer(&[issuer]);
        validation.set_required_spec_claims(&["exp", "iss", "sub"]);
        validation.leeway = 0;
        let claims =
            jsonwebtoken::decode::<serde_json::Value>(token, key.key.decoding_key(), &validation)
                .ok()?
                .claims;
        // The library accepts a token in the second of its `exp`; RFC 7519 does not.
        claims["exp"].as_i64().filter(|&exp| now < exp)?;
        Some(claims)
    }

    /// Rescans the directory every [`SIGNING_KEY_RELOAD_INTERVAL_SECS`] so that keys made by
    /// the CLI or another replica are published and used without a restart, until the
    /// returned task is aborted.
    pub fn spawn_reloader(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_secs(SIGNING_KEY_RELOAD_INTERVAL_SECS));
            loop {
                tick.tick().await;
                let store = self.clone();
                let result = tokio::task::spawn_blocking(move || store.reload()).await;
                if let Ok(Err(e)) = result {
                    tracing::warn!(error = %e, "could not rescan the keys directory");
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_schedule() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 600).unwrap();
        assert!(store.active_key().is_err());
        store.ensure_key().unwrap();
        let first = store.active_key().unwrap().kid().to_owned();

        let second = store.rotate(300).unwrap();
        // Published at once, not yet signing.
        assert_eq!(store.active_key().unwrap().kid(), first);
        assert_eq!(store.jwks()["keys"].as_array().unwrap().len(), 2);
        let states: Vec<KeyState> = store.statuses().iter().map(|s| s.state).collect();
        assert_eq!(states, [KeyState::Active, KeyState::Pending]);

        // A third key activated now supersedes both; the first stays published (retiring).
        let third = store.rotate(0).unwrap();
        assert_eq!(store.active_key().unwrap().kid(), third);
        let statuses = store.statuses();
        assert_eq!(statuses[0].state, KeyState::Retiring);
        assert!(
            statuses
                .iter()
                .any(|s| s.kid == second && s.state == KeyState::Pending)
        );

        // Another store on the same directory agrees, and the private key is owner-only.
        let other = KeyStore::open(dir.path(), 600).unwrap();
        assert_eq!(other.active_key().unwrap().kid(), third);
        let mode = std::fs::metadata(dir.path().join(format!("{third}.pem"))).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
    }

    /// Two stores on one empty directory (as two replicas on a new volume) make one key.
    #[test]
    fn first_keys_made_at_once_are_one() {
        let dir = tempfile::tempdir().unwrap();
        let start = std::sync::Barrier::new(2);
        let kids: Vec<String> = std::thread::scope(|s| {
            let made: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        let store = KeyStore::open(dir.path(), 600).unwrap();
                        start.wait();
                        store.ensure_key().unwrap();
                        store.active_key().unwrap().kid().to_owned()
                    })
                })
                .collect();
            made.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(kids[0], kids[1]);
        assert_eq!(KeyStore::open(dir.path(), 600).unwrap().statuses().len(), 1);
    }

    #[test]
    fn a_corrupt_key_file_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path(), 600).unwrap();
        store.ensure_key().unwrap();
        std::fs::write(
            dir.path().join("bogus.json"),
            br#"{"created_at_ms":0,"activates_at":0}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("bogus.pem"), "garbage").unwrap();
        store.reload().unwrap();
        assert_eq!(store.statuses().len(), 1);
    }
}
