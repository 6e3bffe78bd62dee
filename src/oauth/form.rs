//! `application/x-www-form-urlencoded` request bodies, read by OAuth's rules.

use std::collections::HashMap;

/// A parsed form: single-valued parameters plus the repeatable `resource` (RFC 8707).
#[derive(Default)]
pub struct OAuthForm {
    params: HashMap<String, String>,
    resources: Vec<String>,
}

/// Parameters whose values are credentials: never printed, not even by `{:?}`.
const SECRET: [&str; 5] = [
    "code",
    "code_verifier",
    "refresh_token",
    "client_secret",
    "token",
];

impl std::fmt::Debug for OAuthForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&String> = self.params.keys().collect();
        names.sort();
        let mut map = f.debug_map();
        for name in names {
            let value = if SECRET.contains(&name.as_str()) {
                "<redacted>"
            } else {
                self.params[name].as_str()
            };
            map.entry(name, &value);
        }
        map.entry(&"resource", &self.resources).finish()
    }
}

/// The parameters Portcullis reads (RFC 6749, 7636, 7009, 7662, 8707, and `tenant`); any
/// other is ignored, as RFC 6749 §3.1 asks.
const KNOWN: [&str; 17] = [
    "grant_type",
    "code",
    "code_verifier",
    "redirect_uri",
    "refresh_token",
    "scope",
    "client_id",
    "client_secret",
    "token",
    "token_type_hint",
    "response_type",
    "state",
    "code_challenge",
    "code_challenge_method",
    "resource",
    "tenant",
    "response_mode",
];

impl OAuthForm {
    /// RFC 6749 §3.1: parameters sent without a value are treated as omitted, a parameter
    /// must not appear more than once (RFC 8707 §2 lets `resource` repeat), and unrecognized
    /// ones are ignored. Control characters appear in no OAuth parameter (RFC 6749 Appendix
    /// A): refused here, before any of them reaches a query.
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut form = Self::default();
        // Every name sent, empty or not: `scope=a&scope=` repeats `scope` too.
        let mut seen = std::collections::HashSet::new();
        for (name, value) in url::form_urlencoded::parse(body) {
            if !KNOWN.contains(&name.as_ref()) {
                continue;
            }
            if name.chars().chain(value.chars()).any(char::is_control) {
                return Err(format!("parameter {name:?} has a control character"));
            }
            if name != "resource" && !seen.insert(name.clone()) {
                return Err(format!("parameter {name:?} is repeated"));
            }
            if value.is_empty() {
                continue;
            }
            if name == "resource" {
                form.resources.push(value.into_owned());
            } else {
                form.params.insert(name.into_owned(), value.into_owned());
            }
        }
        Ok(form)
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    pub fn resources(&self) -> &[String] {
        &self.resources
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_values_are_omitted_and_repeats_refused() {
        let form = OAuthForm::parse(b"grant_type=client_credentials&scope=&resource=a&resource=b")
            .unwrap();
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
        assert_eq!(form.get("scope"), None);
        assert_eq!(form.resources(), ["a", "b"]);
        assert!(OAuthForm::parse(b"scope=a&scope=b").is_err());
        // RFC 6749 §3.1: an empty copy is a repeat as well.
        assert!(OAuthForm::parse(b"scope=a&scope=").is_err());
        assert!(OAuthForm::parse(b"scope=&scope=a").is_err());
    }

    #[test]
    fn unrecognized_parameters_are_ignored_even_repeated() {
        let form = OAuthForm::parse(b"grant_type=x&foo=1&foo=2&bar=%00").unwrap();
        assert_eq!(form.get("grant_type"), Some("x"));
        assert_eq!(form.get("foo"), None);
    }

    #[test]
    fn control_characters_are_refused() {
        assert!(OAuthForm::parse(b"client_id=a%00b").is_err());
        assert!(OAuthForm::parse(b"state=a%0Ab").is_err());
        assert!(
            OAuthForm::parse(b"scope%7F=1").is_ok(),
            "an unknown name is ignored"
        );
        assert!(OAuthForm::parse(b"scope=a%7F").is_err());
        assert!(OAuthForm::parse(b"state=caf%C3%A9").is_ok());
    }

    #[test]
    fn decodes_percent_and_plus() {
        let form = OAuthForm::parse(b"scope=read+write&state=%C3%A9").unwrap();
        assert_eq!(form.get("scope"), Some("read write"));
        assert_eq!(form.get("state"), Some("\u{e9}"));
    }

    #[test]
    fn debug_never_prints_a_credential() {
        let form = OAuthForm::parse(
            b"grant_type=refresh_token&refresh_token=rt-SECRET&client_secret=cs-SECRET&scope=a",
        )
        .unwrap();
        let printed = format!("{form:?}");
        assert!(!printed.contains("SECRET"), "{printed}");
        assert!(
            printed.contains("refresh_token") && printed.contains("\"a\""),
            "{printed}"
        );
    }
}
