//! Password hashing with argon2id, off the async runtime's worker threads.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of one core, so at most one runs per core
//! at a time (or as many as `serve --password-hashes-at-once` says): a burst of sign-ins
//! queues here instead of stalling token issuance or exhausting memory through the blocking
//! pool. The queue for sign-ins is short: past it a sign-in is refused at once, so that a
//! burst cannot delay a real person's sign-in by seconds.
//!
//! The 19 MiB are allocated once per hashing slot and kept: allocated and freed for each hash,
//! they stayed in the allocator's per-thread arenas, and a minute of sign-ins took the server
//! to 625 MiB (docs/decisions.md, "Password hashing keeps its memory, one buffer per slot").

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

/// Passwords longer than this are refused before hashing, so input size cannot buy CPU time.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

/// New passwords get argon2id v1.3 with the crate's defaults (OWASP's 19 MiB, 2 passes, 1
/// lane), 16 bytes of salt and 32 of output.
const PARAMS: Params = Params::DEFAULT;
const SALT_BYTES: usize = 16;

/// How many hashes may run at once, process-wide: one per core unless `serve` was told
/// otherwise (`set_hashes_at_once`) before the first hash.
static HASHING_SLOTS: OnceLock<Slots> = OnceLock::new();
/// Working memory for the hashes running now: one buffer per slot in use at most, since a
/// buffer is taken only by work holding a slot.
static HASHING_MEMORY: Mutex<Vec<Box<[Block]>>> = Mutex::new(Vec::new());
/// Sign-in checks hashing or waiting to, across the process.
static SIGN_INS_IN_LINE: AtomicUsize = AtomicUsize::new(0);
/// Sign-in checks that may wait per hashing slot: a few hashes' time (tens of milliseconds
/// each).
const SIGN_INS_WAITING_PER_SLOT: usize = 4;

struct Slots {
    count: usize,
    permits: Arc<Semaphore>,
}

impl Slots {
    fn new(count: usize) -> Self {
        Self {
            count,
            permits: Arc::new(Semaphore::new(count)),
        }
    }
}

fn slots() -> &'static Slots {
    HASHING_SLOTS
        .get_or_init(|| Slots::new(std::thread::available_parallelism().map_or(2, |n| n.get())))
}

/// Sets how many password hashes may run at once in this process (each keeps 19 MiB once
/// used). Only before the first hash, or again with the same count: otherwise `Err` with the
/// count in force.
pub fn set_hashes_at_once(count: usize) -> Result<(), usize> {
    let count = count.max(1);
    let slots = HASHING_SLOTS.get_or_init(|| Slots::new(count));
    if slots.count == count {
        Ok(())
    } else {
        Err(slots.count)
    }
}

/// Hashed with when the username is unknown, so that the answer takes as long either way.
const DUMMY_SALT: &[u8] = b"portcullis-dummy-salt";

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_PASSWORD_BYTES} bytes")]
    TooLong,
    #[error("password hashing failed")]
    Hashing,
    /// Too many sign-ins are being checked right now: try again in a moment.
    #[error("too many sign-ins at once")]
    Busy,
}

/// Checks a new password's length.
pub fn check_new_password(password: &str) -> Result<(), PasswordError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

/// An argon2id PHC string for a new password.
pub async fn hash_password(password: String) -> Result<String, PasswordError> {
    check_new_password(&password)?;
    run_limited(move |memory| new_hash(memory, password.as_bytes())).await
}

/// Does `password` match `stored`? With `stored` absent (no such user) the same work is done
/// with the default parameters and the answer is no. `Busy` when the queue of sign-ins is
/// full.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let limit = slots().count * (1 + SIGN_INS_WAITING_PER_SLOT);
    let in_line = InLine::join(&SIGN_INS_IN_LINE, limit).ok_or(PasswordError::Busy)?;
    let matched = run_limited(move |memory| {
        // Held until the hash is done, even if the request is dropped meanwhile: a client
        // that hangs up cannot start hashes beyond the line.
        let _in_line = in_line;
        Ok::<bool, PasswordError>(match stored {
            Some(stored) => password_matches(memory, password.as_bytes(), &stored),
            None => {
                let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
                let _ = argon2id(memory, &PARAMS, password.as_bytes(), DUMMY_SALT, &mut out);
                false
            }
        })
    })
    .await;
    Ok(matched.unwrap_or(false))
}

/// A new PHC string: `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`.
fn new_hash(memory: &mut [Block], password: &[u8]) -> Result<String, PasswordError> {
    let mut salt = [0u8; SALT_BYTES];
    aws_lc_rs::rand::fill(&mut salt).map_err(|_| PasswordError::Hashing)?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2id(memory, &PARAMS, password, &salt, &mut out).map_err(|_| PasswordError::Hashing)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&PARAMS).map_err(|_| PasswordError::Hashing)?,
        salt: Some(Salt::new(&salt).map_err(|_| PasswordError::Hashing)?),
        hash: Some(Output::new(&out).map_err(|_| PasswordError::Hashing)?),
    };
    Ok(hash.to_string())
}

/// Whether `password` hashes to `stored`, a PHC string, with the algorithm, version and
/// parameters it names. An unreadable one matches nothing.
fn password_matches(memory: &mut [Block], password: &[u8], stored: &str) -> bool {
    let Ok(hash) = PasswordHash::new(stored) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&hash.salt, &hash.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(hash.algorithm.as_str()) else {
        return false;
    };
    let version = match hash.version.map(Version::try_from) {
        None => Version::default(),
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
    };
    let Ok(params) = Params::try_from(&hash) else {
        return false;
    };
    let mut out = [0u8; Output::MAX_LENGTH];
    let Some(out) = out.get_mut(..expected.len()) else {
        return false;
    };
    let argon2 = Argon2::new(algorithm, version, params.clone());
    let hashed = match memory.get_mut(..params.block_count()) {
        Some(blocks) => argon2.hash_password_into_with_memory(password, salt.as_ref(), out, blocks),
        // Made with more memory than this server hashes with (another tool's settings): the
        // crate allocates for this one.
        None => argon2.hash_password_into(password, salt.as_ref(), out),
    };
    // `Output`'s equality is constant-time.
    hashed.is_ok() && Output::new(out).is_ok_and(|computed| &computed == expected)
}

/// argon2id v1.3 with `params` into `out`, in `memory`.
fn argon2id(
    memory: &mut [Block],
    params: &Params,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
        .hash_password_into_with_memory(password, salt, out, memory)
}

/// A place in a line of at most `limit`, given up when dropped.
struct InLine<'a>(&'a AtomicUsize);

impl<'a> InLine<'a> {
    fn join(line: &'a AtomicUsize, limit: usize) -> Option<Self> {
        let ahead = line.fetch_add(1, Ordering::AcqRel);
        let place = Self(line);
        (ahead < limit).then_some(place)
    }
}

impl Drop for InLine<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// One slot's working memory, taken from `HASHING_MEMORY` (or made, the first time a slot is
/// used) and put back when dropped.
struct HashingMemory(Option<Box<[Block]>>);

impl HashingMemory {
    fn take() -> Self {
        let kept = HASHING_MEMORY
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .pop();
        Self(Some(kept.unwrap_or_else(|| {
            vec![Block::new(); PARAMS.block_count()].into_boxed_slice()
        })))
    }

    fn blocks(&mut self) -> &mut [Block] {
        self.0.as_deref_mut().unwrap_or_default()
    }
}

impl Drop for HashingMemory {
    fn drop(&mut self) {
        if let Some(blocks) = self.0.take() {
            HASHING_MEMORY
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(blocks);
        }
    }
}

/// Runs `work` on the blocking pool once a hashing slot is free, with that slot's memory. The
/// slot goes with the work, so it is held until the hash is done even if the caller stops
/// waiting.
async fn run_limited<T: Send + 'static>(
    work: impl FnOnce(&mut [Block]) -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let slot = Arc::clone(&slots().permits)
        .acquire_owned()
        .await
        .map_err(|_| PasswordError::Hashing)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        // Dropped before the slot (locals drop in reverse): the memory is back in the pool
        // before another hash can hold this slot, so buffers never outnumber slots.
        let mut memory = HashingMemory::take();
        work(memory.blocks())
    })
    .await
    .map_err(|_| PasswordError::Hashing)?
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHasher, PasswordVerifier};

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            verify_password("correct horse".into(), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("wrong horse".into(), Some(hash))
                .await
                .unwrap()
        );
        assert!(!verify_password("correct horse".into(), None).await.unwrap());
        assert!(
            !verify_password("correct horse".into(), Some("not a hash".into()))
                .await
                .unwrap()
        );
    }

    /// Hashes stored before the memory was kept were made by the crate's own
    /// `hash_password`; they still verify, and the crate verifies the new ones.
    #[tokio::test]
    async fn hashes_agree_with_the_argon2_crate() {
        let old = Argon2::default()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        assert!(
            verify_password("correct horse".into(), Some(old.clone()))
                .await
                .unwrap()
        );
        assert!(
            !verify_password("correct hors".into(), Some(old))
                .await
                .unwrap()
        );
        let new = hash_password("correct horse".into()).await.unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse", new.as_str())
                .is_ok()
        );
        // Other parameters, such as another tool's, are read from the hash: less memory
        // than the kept buffer uses part of it, more is allocated for.
        for m_cost in [8 * 1024, 32 * 1024] {
            let params = Params::new(m_cost, 1, 1, None).unwrap();
            let other = Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
                .hash_password(b"correct horse")
                .unwrap()
                .to_string();
            assert!(
                verify_password("correct horse".into(), Some(other.clone()))
                    .await
                    .unwrap(),
                "{other}"
            );
            assert!(!verify_password("wrong".into(), Some(other)).await.unwrap());
        }
    }

    #[test]
    fn the_line_of_sign_ins_is_short() {
        let line = AtomicUsize::new(0);
        let places: Vec<_> = (0..3).map(|_| InLine::join(&line, 3)).collect();
        assert!(places.iter().all(Option::is_some));
        assert!(
            InLine::join(&line, 3).is_none(),
            "the fourth is refused at once"
        );
        drop(places);
        assert_eq!(line.load(Ordering::Acquire), 0, "places are given back");
        assert!(InLine::join(&line, 3).is_some());
    }

    #[tokio::test]
    async fn length_limits() {
        assert!(matches!(
            hash_password("short".into()).await,
            Err(PasswordError::TooShort)
        ));
        assert!(matches!(
            hash_password("x".repeat(2000)).await,
            Err(PasswordError::TooLong)
        ));
    }
}
