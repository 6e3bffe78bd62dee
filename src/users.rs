//! People who sign in: what a user is and the rules for usernames and emails.

use serde::Serialize;

/// A user as stored, without the password hash.
#[derive(Debug, Clone, Serialize)]
pub struct User {
    pub id: String,
    pub username: String,
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

/// 1 to 64 of: letters, digits, `.`, `_`, `-`, `@` (so an email can be a username).
pub fn check_username(username: &str) -> Result<(), String> {
    let valid_chars = username
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if username.is_empty() || username.chars().count() > MAX_USERNAME_CHARS || !valid_chars {
        return Err(format!(
            "username must be 1 to {MAX_USERNAME_CHARS} letters, digits, '.', '_', '-' or '@'"
        ));
    }
    Ok(())
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
        assert!(check_username("alice.smith-2@example.com").is_ok());
        assert!(check_username("").is_err());
        assert!(check_username("alice smith").is_err());
        assert!(check_username("<script>").is_err());
        assert!(check_email("a@b.example").is_ok());
        assert!(check_email("a@b@c").is_err());
        assert!(check_email("nobody").is_err());
        assert!(check_email("a @b.example").is_err());
    }
}
