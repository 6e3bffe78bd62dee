//! Password hashing with argon2id, off the async runtime's worker threads.
//!
//! Each hash costs ~19 MiB and tens of milliseconds of one core, so at most one runs per core
//! at a time: a burst of sign-ins queues here instead of stalling token issuance or exhausting
//! memory through the blocking pool.

use std::sync::LazyLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use tokio::sync::Semaphore;

/// Passwords longer than this are refused before hashing, so input size cannot buy CPU time.
pub const MAX_PASSWORD_BYTES: usize = 1024;
pub const MIN_PASSWORD_CHARS: usize = 8;

static HASHING_SLOTS: LazyLock<Semaphore> =
    LazyLock::new(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |n| n.get())));

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
/// against a dummy hash and the answer is no.
pub async fn verify_password(password: String, stored: Option<String>) -> bool {
    if password.len() > MAX_PASSWORD_BYTES {
        return false;
    }
    run_limited(move || {
        let is_real = stored.is_some();
        let hash = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let matches = Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok();
        Ok::<bool, PasswordError>(matches && is_real)
    })
    .await
    .unwrap_or(false)
}

async fn run_limited<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, PasswordError> + Send + 'static,
) -> Result<T, PasswordError> {
    let _slot = HASHING_SLOTS
        .acquire()
        .await
        .map_err(|_| PasswordError::Hashing)?;
    tokio::task::spawn_blocking(work)
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
        assert!(verify_password("correct horse".into(), Some(hash.clone())).await);
        assert!(!verify_password("wrong horse".into(), Some(hash)).await);
        assert!(!verify_password("portcullis-dummy-password".into(), None).await);
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
