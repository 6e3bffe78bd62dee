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
/// Key ids start with this; client ids never contain `_`, so the two cannot be confused.
pub const API_KEY_ID_PREFIX: &str = "key_";
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
    /// May only register clients at `/register` (an RFC 7591 initial access token for a
    /// partner), without first-party flags; no admin API, no tokens.
    Registrar,
    Personal,
    Organization,
    Service,
}

impl ApiKeyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Registrar => "registrar",
            Self::Personal => "personal",
            Self::Organization => "organization",
            Self::Service => "service",
        }
    }

    /// Whether a key of this kind may have `owner`: a personal key is owned by a user, an
    /// organization key by an organization, the others by no one.
    pub fn fits(self, owner: &KeyOwner) -> bool {
        match self {
            Self::Admin | Self::Registrar | Self::Service => *owner == KeyOwner::Nobody,
            kind => owner.kind() == kind,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "registrar" => Some(Self::Registrar),
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
    pub id: crate::ids::ApiKeyId,
    pub kind: ApiKeyKind,
    pub name: crate::names::DisplayName,
    pub display_prefix: String,
    pub scope: crate::oauth::scope::Scope,
    pub env: KeyEnv,
    /// Free-form JSON object, returned by introspection.
    pub metadata: serde_json::Value,
    pub owner: KeyOwner,
    /// Who made it: a user (on the self-service page, or the member an organization key was
    /// made for), or the admin key (`key_…`) that made it through the admin API. None when
    /// made by the CLI, which has no identity beyond access to the database.
    pub created_by: Option<String>,
    pub revoke_when_creator_leaves: bool,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub revoked_at: Option<i64>,
    pub last_used_at: Option<i64>,
    /// The rate-limit plan it is held to; None for the servers' default.
    pub rate_limit_plan: Option<crate::rate_limit::plan::PlanName>,
}

/// How much a key was used on one UTC day, added up over every server: token exchanges at
/// `/token` and introspections of the key at `/introspect`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayUsage {
    pub day: crate::clock::UtcDay,
    pub exchanges: u64,
    pub introspections: u64,
    /// Exchanges and introspections.
    pub total: u64,
    /// The last use of either kind (None on a day without use).
    pub last_used_at: Option<i64>,
    pub last_exchange_at: Option<i64>,
    /// Where the last exchange came from: the key holder's address as this server saw it (a
    /// proxy's, behind one). Introspections say nothing of it: their caller is the resource
    /// server.
    pub last_exchange_ip: Option<String>,
}

impl DayUsage {
    /// A day without use.
    pub fn none(day: crate::clock::UtcDay) -> Self {
        Self {
            day,
            exchanges: 0,
            introspections: 0,
            total: 0,
            last_used_at: None,
            last_exchange_at: None,
            last_exchange_ip: None,
        }
    }
}

/// Who a key acts for: a user (personal), an organization, or no one (service, admin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOwner {
    User {
        user_id: crate::ids::UserId,
    },
    Org {
        org_id: crate::ids::OrgId,
    },
    #[serde(untagged)]
    Nobody,
}

impl KeyOwner {
    /// The kind of key this owner makes (admin keys are service-like but chosen explicitly).
    pub fn kind(&self) -> ApiKeyKind {
        match self {
            Self::User { .. } => ApiKeyKind::Personal,
            Self::Org { .. } => ApiKeyKind::Organization,
            Self::Nobody => ApiKeyKind::Service,
        }
    }
}

impl ApiKey {
    /// Neither revoked nor expired at `now`.
    pub fn is_usable(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| now < at)
    }

    /// `sub` of the tokens it gets: its owner, or the key itself when it has none.
    pub fn subject(&self) -> &str {
        match &self.owner {
            KeyOwner::User { user_id } => user_id.as_str(),
            KeyOwner::Org { org_id } => org_id.as_str(),
            KeyOwner::Nobody => self.id.as_str(),
        }
    }
}

impl KeyEnv {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "live" => Some(Self::Live),
            "test" => Some(Self::Test),
            _ => None,
        }
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

/// Largest metadata object accepted, serialized.
const MAX_METADATA_BYTES: usize = 8 * 1024;

/// Metadata is a JSON object of at most 8 KiB.
pub fn check_metadata(metadata: &serde_json::Value) -> Result<(), String> {
    if !metadata.is_object() {
        return Err("metadata must be a JSON object".into());
    }
    if metadata.to_string().len() > MAX_METADATA_BYTES {
        return Err(format!(
            "metadata must be at most {MAX_METADATA_BYTES} bytes"
        ));
    }
    Ok(())
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
