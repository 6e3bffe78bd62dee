//! API keys: their format, their kinds, and when one may be used.
//!
//! A key reads `<prefix>_<env>_<random><checksum>`, e.g. `pc_live_3fZ…`: 43 base62 characters
//! of randomness (256 bits) and 6 of checksum over everything before it. The checksum lets a
//! typo be refused without a database look-up and lets secret scanners recognise a key, as
//! GitHub's tokens do. Only the key's SHA-256 is stored, with a short, non-secret display prefix.

use serde::Serialize;

use crate::secrets::{SECRET_CHARS, Secret, base62_fixed, random_base62};
use aws_lc_rs::digest;

pub const DEFAULT_PREFIX: &str = "pc";
const CHECKSUM_CHARS: usize = 6;
/// How much of a key is kept in clear to tell keys apart: the prefix, env and 4 characters.
const DISPLAY_RANDOM_CHARS: usize = 4;

/// Whether a key is for production or testing; visible in the key itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyEnv {
    Live,
    Test,
}

impl KeyEnv {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Test => "test",
        }
    }
}

/// Who a key acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiKeyKind {
    /// Manages Portcullis itself: the admin API and client registration.
    Admin,
    Personal,
    Organization,
    Service,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Personal => "personal",
            Self::Organization => "organization",
            Self::Service => "service",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "personal" => Some(Self::Personal),
            "organization" => Some(Self::Organization),
            "service" => Some(Self::Service),
            _ => None,
        }
    }
}

/// A stored API key: everything but the secret.
#[derive(Debug, Clone, Serialize)]
pub struct ApiKey {
    pub id: String,
    pub kind: ApiKeyKind,
    pub name: String,
    pub display_prefix: String,
    pub scope: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl ApiKey {
    /// Neither revoked nor expired at `now`.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }
}

/// A new key string of the given prefix and environment.
pub fn generate_key(prefix: &str, env: KeyEnv) -> Secret {
    let body = format!("{prefix}_{}_{}", env.as_str(), random_base62(SECRET_CHARS));
    let checksum = checksum(&body);
    Secret::new(format!("{body}{checksum}"))
}

/// The part of a key that may be shown again: `pc_live_3fZq…`.
pub fn display_prefix(key: &str) -> String {
    let env_end = key.rfind('_').map_or(0, |i| i + 1);
    let end = (env_end + DISPLAY_RANDOM_CHARS).min(key.len());
    key.get(..end).unwrap_or_default().to_owned()
}

/// True when `text` has the shape of a key and its checksum holds: a cheap test that keeps
/// typos and other strings away from the database.
pub fn is_well_formed(text: &str) -> bool {
    let mut parts = text.rsplitn(3, '_');
    let (Some(random), Some(env), Some(prefix)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    if prefix.is_empty()
        || !prefix.bytes().all(|b| b.is_ascii_alphanumeric())
        || !matches!(env, "live" | "test")
        || random.len() != SECRET_CHARS + CHECKSUM_CHARS
        || !random.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = text.split_at(text.len() - CHECKSUM_CHARS);
    checksum(body) == sum
}

/// Is `prefix` usable in a key: 1 to 16 ASCII letters or digits?
pub fn is_valid_prefix(prefix: &str) -> bool {
    (1..=16).contains(&prefix.len()) && prefix.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn checksum(body: &str) -> String {
    let hash = digest::digest(&digest::SHA256, body.as_bytes());
    let first4: [u8; 4] = hash.as_ref()[..4].try_into().expect("SHA-256 is 32 bytes");
    base62_fixed(u32::from_be_bytes(first4) as u64, CHECKSUM_CHARS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_well_formed() {
        let key = generate_key("pc", KeyEnv::Live);
        let text = key.expose();
        assert!(text.starts_with("pc_live_"));
        assert_eq!(text.len(), "pc_live_".len() + SECRET_CHARS + CHECKSUM_CHARS);
        assert!(is_well_formed(text));
        assert_eq!(display_prefix(text), &text[..12]);
    }

    #[test]
    fn a_typo_breaks_the_checksum() {
        let key = generate_key("acme", KeyEnv::Test);
        let text = key.expose();
        let mut typo = text.as_bytes().to_vec();
        let i = 15;
        typo[i] = if typo[i] == b'a' { b'b' } else { b'a' };
        assert!(!is_well_formed(std::str::from_utf8(&typo).unwrap()));
        assert!(!is_well_formed(&text.replace("_test_", "_live_")));
        assert!(!is_well_formed(&text[..text.len() - 1]));
        assert!(!is_well_formed("pc_live_"));
        assert!(!is_well_formed("not a key"));
    }
}
