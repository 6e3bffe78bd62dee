//! Scope strings (RFC 6749 §3.3): parsing, validation and the subset rule.

use std::collections::BTreeSet;
use std::fmt;

/// A set of scope tokens, kept sorted so that equal sets print the same way.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

/// The scope string did not follow RFC 6749 §3.3.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidScope(pub String);

impl Scope {
    /// Parses a space-delimited scope string. An empty string is the empty scope.
    ///
    /// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), delimited by spaces.
    pub fn parse(text: &str) -> Result<Self, InvalidScope> {
        let mut tokens = BTreeSet::new();
        for token in text.split(' ').filter(|t| !t.is_empty()) {
            let valid = token
                .bytes()
                .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b));
            if !valid {
                return Err(InvalidScope(format!("invalid scope token {token:?}")));
            }
            tokens.insert(token.to_owned());
        }
        Ok(Self(tokens))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// True when every token of `self` is also in `allowed`.
    pub fn is_subset_of(&self, allowed: &Scope) -> bool {
        self.0.is_subset(&allowed.0)
    }

    /// The tokens in both.
    pub fn intersection(&self, other: &Scope) -> Scope {
        Self(self.0.intersection(&other.0).cloned().collect())
    }

    /// Adds every token of `other`.
    pub fn extend(&mut self, other: &Scope) {
        self.0.extend(other.0.iter().cloned());
    }

    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

/// Serialized as RFC 6749 §3.3 writes it: one space-delimited string.
impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for token in &self.0 {
            if !first {
                f.write_str(" ")?;
            }
            f.write_str(token)?;
            first = false;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalises() {
        let scope = Scope::parse("write  read read").unwrap();
        assert_eq!(scope.to_string(), "read write");
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn rejects_characters_outside_the_grammar() {
        assert!(Scope::parse("a\"b").is_err());
        assert!(Scope::parse("a\\b").is_err());
        assert!(Scope::parse("caf\u{e9}").is_err());
        assert!(Scope::parse("a\tb").is_err());
    }

    #[test]
    fn subset_rule() {
        let allowed = Scope::parse("read write").unwrap();
        assert!(Scope::parse("read").unwrap().is_subset_of(&allowed));
        assert!(!Scope::parse("read admin").unwrap().is_subset_of(&allowed));
    }
}
