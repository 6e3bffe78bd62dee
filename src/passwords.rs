//! Password hashing with argon2id, off the async runtime's worker threads.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of one core, so at most one runs per core
//! at a time: a burst of sign-ins queues here instead of stalling token issuance or exhausting
//! memory through the blocking pool. The queue for sign-ins is short: past it a sign-in is
//! refused at once, so that a burst cannot delay a real person's sign-in by seconds.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Passwords longer than this are refused before hashing, so input size cannot buy CPU time.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

static CORES: LazyLock<usize> =
    LazyLock::new(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
static HASHING_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| Arc::new(Semaphore::new(*CORES)));
/// Sign-in checks hashing or waiting to, across the process.
static SIGN_INS_IN_LINE: AtomicUsize = AtomicUsize::new(0);
/// Sign-in checks that may wait per core: a few hashes' time (tens of milliseconds each).
const SIGN_INS_WAITING_PER_CORE: usize = 4;

/// Verified against when the username is unknown, so that the answer takes as long either way.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    Argon2::default()
        .hash_password(b"portcullis-dummy-password")
        .expect("argon2 hashes a constant")
        .to_string()
});

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
    run_limited(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|_| PasswordError::Hashing)
    })
    .await
}

/// Does `password` match `stored`? With `stored` absent (no such user) the same work is done
/// against a dummy hash and the answer is no. `Busy` when the queue of sign-ins is full.
pub async fn verify_password(
    password: String,
    stored: Option<String>,
) -> Result<bool, PasswordError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Ok(false);
    }
    let limit = *CORES * (1 + SIGN_INS_WAITING_PER_CORE);
    let in_line = InLine::join(&SIGN_INS_IN_LINE, limit).ok_or(PasswordError::Busy)?;
    let matched = run_limited(move || {
        // Held until the hash is done, even if the request is dropped meanwhile: a client
        // that hangs up cannot start hashes beyond the line.
        let _in_line = in_line;
        let is_real = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        Ok::<bool, PasswordError>(matches && is_real)
    })
    .await;
    Ok(matched.unwrap_or(false))
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

/// Runs `work` on the blocking pool once a hashing slot is free. The slot goes with the work,
/// so it is held until the hash is done even if the caller stops waiting.
async fn run_limited<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let slot = Arc::clone(&HASHING_SLOTS)
        .acquire_owned()
        .await
        .map_err(|_| PasswordError::Hashing)?;
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        work()
    })
    .await
    .map_err(|_| PasswordError::Hashing)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_unknown_users_never_match() {
        let hash = hash_password("correct horse".into()).await.unwrap();
        assert!(hash.starts_with("$argon2id$"));
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
        assert!(
            !verify_password("portcullis-dummy-password".into(), None)
                .await
                .unwrap()
        );
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
