//! Server-generated secrets: random strings, their stored hashes, and constant-time checks.
//!
//! Every secret Portcullis hands out (client secrets, API keys) is generated here with the
//! operating system's CSPRNG, shown once, and stored only as a SHA-256 digest. A fast hash is
//! right for these: they carry 256 bits of entropy, so there is nothing to brute-force.

use std::fmt;

use aws_lc_rs::{aead, constant_time, digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Characters needed for 256 bits of entropy in base62 (log2(62) ≈ 5.95 bits each).
pub const SECRET_CHARS: usize = 43;

/// Characters needed for 128 bits of entropy in base62: enough for unguessable identifiers.
pub const ID_CHARS: usize = 22;

/// A freshly generated secret. It is never printed by `Debug` or `Display`, so it cannot leak
/// into a log line by accident; call [`Secret::expose`] where it is shown to its owner.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The secret itself, for the one response that shows it to its owner.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The digest that is stored in place of the secret.
    pub fn hash(&self) -> String {
        hash_secret(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// `len` characters drawn uniformly from the base62 alphabet.
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        rand::fill(&mut buf).expect("the operating system's random source is available");
        // Rejection sampling keeps the distribution uniform: 248 = 4 * 62.
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == len {
                break;
            }
            out.push(BASE62[(b % 62) as usize] as char);
        }
    }
    out
}

/// Encodes `value` as exactly `width` base62 characters (most significant first).
pub fn base62_fixed(mut value: u64, width: usize) -> String {
    let mut chars = vec![b'0'; width];
    for slot in chars.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(chars).expect("base62 characters are ASCII")
}

/// A random identifier with a readable prefix, e.g. `key_3fZ…`. Not a secret.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", random_base62(ID_CHARS))
}

/// Lower-case hex SHA-256 of a secret: what the database stores.
pub fn hash_secret(secret: &str) -> String {
    hex(digest::digest(&digest::SHA256, secret.as_bytes()).as_ref())
}

/// Checks a presented secret against a stored digest without leaking, through timing, how
/// much of it matched.
pub fn secret_matches(presented: &str, stored_hash: &str) -> bool {
    let presented_hash = hash_secret(presented);
    constant_time::verify_slices_are_equal(presented_hash.as_bytes(), stored_hash.as_bytes())
        .is_ok()
}

/// Seals `secret` so that only someone holding `holder`, another secret of 256 random bits,
/// can open it: AES-256-GCM under a key derived from `holder`. The database stores `holder`
/// only as its plain SHA-256, which the domain-separated derivation does not reveal, so a copy
/// of the database opens nothing. (Why: docs/decisions.md, "A refresh retry window".)
pub fn seal_for(holder: &str, secret: &str) -> String {
    let mut nonce = [0u8; aead::NONCE_LEN];
    rand::fill(&mut nonce).expect("the operating system's random source is available");
    let mut sealed = secret.as_bytes().to_vec();
    sealing_key(holder)
        .seal_in_place_append_tag(
            aead::Nonce::assume_unique_for_key(nonce),
            aead::Aad::empty(),
            &mut sealed,
        )
        .expect("AES-GCM seals any input under 64 GiB");
    let mut out = nonce.to_vec();
    out.extend_from_slice(&sealed);
    URL_SAFE_NO_PAD.encode(out)
}

/// Opens what [`seal_for`] sealed for `holder`; None for anything else.
pub fn open_sealed(holder: &str, sealed: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(sealed).ok()?;
    if bytes.len() < aead::NONCE_LEN {
        return None;
    }
    let (nonce, ciphertext) = bytes.split_at(aead::NONCE_LEN);
    let nonce = aead::Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut in_out = ciphertext.to_vec();
    let plain = sealing_key(holder)
        .open_in_place(nonce, aead::Aad::empty(), &mut in_out)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

fn sealing_key(holder: &str) -> aead::LessSafeKey {
    let mut context = digest::Context::new(&digest::SHA256);
    context.update(b"portcullis: sealed for the holder of this secret, v1\0");
    context.update(holder.as_bytes());
    let key = aead::UnboundKey::new(&aead::AES_256_GCM, context.finish().as_ref())
        .expect("a SHA-256 digest is an AES-256 key");
    aead::LessSafeKey::new(key)
}

fn hex(bytes: &[u8]) -> String {
    // Hashing is on every authenticated request: no formatting machinery per byte.
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_strings_have_the_requested_length_and_alphabet() {
        let s = random_base62(SECRET_CHARS);
        assert_eq!(s.len(), SECRET_CHARS);
        assert!(s.bytes().all(|b| b.is_ascii_alphanumeric()));
        assert_ne!(s, random_base62(SECRET_CHARS));
    }

    #[test]
    fn secrets_match_only_their_own_hash() {
        let secret = Secret::new(random_base62(SECRET_CHARS));
        let stored = secret.hash();
        assert!(secret_matches(secret.expose(), &stored));
        assert!(!secret_matches("wrong", &stored));
        assert_eq!(format!("{secret:?}"), "Secret(***)");
    }

    #[test]
    fn stored_hashes_are_lower_case_hex_sha256() {
        // Stored hashes must not change: keys and secrets already issued depend on them.
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn only_the_holder_opens_what_was_sealed_for_it() {
        let holder = random_base62(SECRET_CHARS);
        let secret = random_base62(SECRET_CHARS);
        let sealed = seal_for(&holder, &secret);
        assert!(!sealed.contains(&secret));
        assert_eq!(
            open_sealed(&holder, &sealed).as_deref(),
            Some(secret.as_str())
        );
        assert_eq!(open_sealed(&random_base62(SECRET_CHARS), &sealed), None);
        // Neither the stored hash of the holder nor a tampered seal opens it.
        assert_eq!(open_sealed(&hash_secret(&holder), &sealed), None);
        let mut tampered = sealed.into_bytes();
        let last = tampered.len() - 1;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        assert_eq!(
            open_sealed(&holder, &String::from_utf8(tampered).unwrap()),
            None
        );
        assert_eq!(open_sealed(&holder, "short"), None);
    }

    #[test]
    fn base62_fixed_pads_and_encodes() {
        assert_eq!(base62_fixed(0, 3), "000");
        assert_eq!(base62_fixed(61, 2), "0z");
        assert_eq!(base62_fixed(62, 2), "10");
    }
}
