//! Display names that people give things (organizations, API keys): one rule for all.

const MAX_DISPLAY_NAME_CHARS: usize = 200;

/// 1 to 200 characters after trimming, without control characters.
pub fn check_display_name(name: &str) -> Result<(), String> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_DISPLAY_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "name must be 1 to {MAX_DISPLAY_NAME_CHARS} characters, without control characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_names() {
        assert!(check_display_name("Acme CI").is_ok());
        assert!(check_display_name("  ").is_err());
        assert!(check_display_name("a\nb").is_err());
        assert!(check_display_name(&"x".repeat(201)).is_err());
    }
}
