//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>, "Signature scheme"):
//! `v1,` and the base64 of HMAC-SHA256 over `{webhook-id}.{webhook-timestamp}.{body}`, keyed
//! with the base64-decoded part of a `whsec_…` secret.

use std::fmt;

use aws_lc_rs::{hmac, rand};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

const PREFIX: &str = "whsec_";
/// Random bytes in a new secret: the specification asks for 24 to 64.
const SECRET_BYTES: usize = 32;

/// An endpoint's signing secret, `whsec_` and base64. Never printed by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct SigningSecret(String);

impl SigningSecret {
    /// A new secret from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = [0u8; SECRET_BYTES];
        rand::fill(&mut bytes).expect("the operating system's random source is available");
        Self(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A secret as stored.
    pub fn from_stored(text: String) -> Self {
        Self(text)
    }

    /// The secret itself: to store it, and to show it once to the operator who made it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The HMAC key: the bytes the text after `whsec_` encodes. None if it is not base64,
    /// which a stored secret made here always is.
    fn key(&self) -> Option<hmac::Key> {
        let encoded = self.0.strip_prefix(PREFIX)?;
        let bytes = STANDARD.decode(encoded).ok()?;
        Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
    }

    /// The `webhook-signature` header of a delivery with this id, timestamp (Unix seconds)
    /// and body; None for a secret that is not `whsec_` and base64.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> Option<String> {
        let key = self.key()?;
        let mut context = hmac::Context::with_key(&key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        Some(format!("v1,{}", STANDARD.encode(context.sign().as_ref())))
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The vector the Standard Webhooks reference libraries test against: a receiver using
    /// any of them accepts what is signed here.
    #[test]
    fn signs_as_the_reference_libraries_do() {
        let secret = SigningSecret::from_stored("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into());
        let signature = secret.sign(
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(
            signature.as_deref(),
            Some("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        );
    }

    #[test]
    fn new_secrets_are_whsec_and_32_random_bytes() {
        let one = SigningSecret::generate();
        let other = SigningSecret::generate();
        assert_ne!(one, other);
        let encoded = one.expose().strip_prefix("whsec_").unwrap();
        assert_eq!(STANDARD.decode(encoded).unwrap().len(), 32);
        assert!(one.sign("evt_1", 1, b"{}").is_some());
        assert_eq!(format!("{one:?}"), "SigningSecret(***)");
        assert!(
            SigningSecret::from_stored("whsec_!!".into())
                .sign("evt_1", 1, b"{}")
                .is_none()
        );
    }
}
