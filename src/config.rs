//! Server settings. Flags and `PORTCULLIS_*` environment variables are read in `cli.rs`;
//! this is what the server runs with once they are resolved.

/// Default lifetime of an access token.
pub const DEFAULT_ACCESS_TOKEN_TTL_SECS: i64 = 3600;
/// Default `max-age` of the JWKS, which is also how long a rotated key waits before it signs.
pub const DEFAULT_JWKS_MAX_AGE_SECS: i64 = 300;
/// Largest request body accepted anywhere: OAuth and admin requests are small.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct Config {
    /// RFC 8414 issuer identifier: the base URL of every endpoint, no trailing slash.
    pub issuer: String,
    /// Lifetime of access tokens, in seconds.
    pub access_token_ttl_secs: i64,
    /// `aud` of tokens issued without an RFC 8707 `resource`.
    pub default_audience: String,
    /// `Cache-Control: max-age` of the JWKS, in seconds; also the publication delay of rotations.
    pub jwks_max_age_secs: i64,
    /// First part of every API key (`pc` in `pc_live_…`).
    pub api_key_prefix: String,
}

impl Config {
    /// An absolute URL of this server's endpoint `path` (which starts with `/`).
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }
}

/// Checks and normalises an issuer: an absolute http(s) URL without query or fragment
/// (RFC 8414 §2), without the trailing slash.
pub fn normalise_issuer(issuer: &str) -> Result<String, String> {
    let url =
        url::Url::parse(issuer).map_err(|e| format!("issuer {issuer:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return Err(format!("issuer {issuer:?} must be an http(s) URL"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "issuer {issuer:?} must not have a query or fragment"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issuers_are_normalised() {
        assert_eq!(
            normalise_issuer("http://localhost:8080/").unwrap(),
            "http://localhost:8080"
        );
        assert_eq!(
            normalise_issuer("https://auth.example/t1").unwrap(),
            "https://auth.example/t1"
        );
        assert!(normalise_issuer("https://auth.example/?x=1").is_err());
        assert!(normalise_issuer("ftp://auth.example").is_err());
        assert!(normalise_issuer("auth.example").is_err());
    }
}
