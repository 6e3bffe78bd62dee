//! Display names that people give things (organizations, API keys): one rule for all.

use std::fmt;

use serde::Serialize;

const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// A name that follows the rule: 1 to 200 characters after trimming, without control
/// characters. Only [`DisplayName::parse`] makes one from input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisplayName(String);

impl DisplayName {
    /// Trims `name` and checks it.
    pub fn parse(name: &str) -> Result<Self, String> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_DISPLAY_NAME_CHARS
            || name.chars().any(char::is_control)
        {
            return Err(format!(
                "name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters, without control characters"
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// A name read back from the database, which only ever stores parsed ones.
    pub fn from_stored(name: String) -> Self {
        Self(name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert_eq!(
            DisplayName::parse("  Acme CI ").unwrap().as_str(),
            "Acme CI"
        );
        assert!(DisplayName::parse("  ").is_err());
        assert!(DisplayName::parse("a\nb").is_err());
        assert!(DisplayName::parse(&"x".repeat(201)).is_err());
    }
}
