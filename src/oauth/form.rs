//! `application/x-www-form-urlencoded` request bodies, read by OAuth's rules.

use std::collections::HashMap;

/// A parsed form: single-valued parameters plus the repeatable `resource` (RFC 8707).
#[derive(Debug, Default)]
pub struct OAuthForm {
    params: HashMap<String, String>,
    resources: Vec<String>,
}

impl OAuthForm {
    /// RFC 6749 §3.1: parameters sent without a value are treated as omitted; §3.2: a
    /// parameter must not appear more than once (RFC 8707 §2 lets `resource` repeat).
    pub fn parse(body: &[u8]) -> Result<Self, String> {
        let mut form = Self::default();
        for (name, value) in url::form_urlencoded::parse(body) {
            if value.is_empty() {
                continue;
            }
            if name == "resource" {
                form.resources.push(value.into_owned());
            } else if form
                .params
                .insert(name.clone().into_owned(), value.into_owned())
                .is_some()
            {
                return Err(format!("parameter {name:?} is repeated"));
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
    }

    #[test]
    fn decodes_percent_and_plus() {
        let form = OAuthForm::parse(b"scope=read+write&x=%C3%A9").unwrap();
        assert_eq!(form.get("scope"), Some("read write"));
        assert_eq!(form.get("x"), Some("\u{e9}"));
    }
}
