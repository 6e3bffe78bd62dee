//! People who sign in: what a user is and the rules for usernames and emails.

use serde::Serialize;

/// A user as stored, without the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: crate::ids::UserId,
    pub username: Username,
    pub email: Option<String>,
    pub disabled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl User {
    pub fn is_disabled(&self) -> bool {
        self.disabled_at.is_some()
    }
}

const MAX_USERNAME_CHARS: usize = 64;
const MAX_EMAIL_CHARS: usize = 254;

/// A username that follows the rule: 1 to 64 of letters, digits, `.`, `_`, `-`, `@` (so an
/// email can be a username). Only [`Username::parse`] makes one from input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Username(String);

impl Username {
    /// Trims `username` and checks it.
    pub fn parse(username: &str) -> Result<Self, String> {
        let username = username.trim();
        let valid_chars = username
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
        if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS || !valid_chars {
            return Err(format!(
                "username must be 1 to {MAX_USERNAME_CHARS} letters, digits, '.', '_', '-' or '@'"
            ));
        }
        Ok(Self(username.to_owned()))
    }

    /// A username read back from the database, which only ever stores parsed ones.
    pub fn from_stored(username: String) -> Self {
        Self(username)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Username {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A plausible address: one `@` with text on both sides, no spaces or control characters.
pub fn check_email(email: &str) -> Result<(), String> {
    let plausible = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if !plausible {
        return Err("email must be an address like name@example.com".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_and_email_rules() {
        assert!(Username::parse("alice.smith-2@example.com").is_ok());
        assert_eq!(Username::parse(" bob ").unwrap().as_str(), "bob");
        assert!(Username::parse("").is_err());
        assert!(Username::parse("alice smith").is_err());
        assert!(Username::parse("<script>").is_err());
        assert!(check_email("a@b.example").is_ok());
        assert!(check_email("a@b@c").is_err());
        assert!(check_email("nobody").is_err());
        assert!(check_email("a @b.example").is_err());
    }
}
