//! What every HTML page shares: templates, security headers, cookies, CSRF and the session.

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use crate::config::Config;
use crate::secrets::{SECRET_CHARS, hash_secret, random_base62};
use crate::sessions::{self, is_token_shaped};
use crate::store::StoreError;
use crate::users::User;

/// Cookie names. Over https they carry the `__Host-` prefix, which browsers accept only from
/// this very host, `Secure`, with `Path=/` and no `Domain`: a sibling subdomain cannot plant
/// or overwrite them.
const SESSION_COOKIE: [&str; 2] = ["portcullis_session", "__Host-portcullis_session"];
const CSRF_COOKIE: [&str; 2] = ["portcullis_csrf", "__Host-portcullis_csrf"];

fn cookie_name(config: &Config, names: [&'static str; 2]) -> &'static str {
    names[usize::from(config.is_https())]
}

#[derive(Template)]
#[template(path = "home.html")]
pub struct HomePage<'a> {
    pub issuer: &'a str,
}

#[derive(Template)]
#[template(path = "login.html")]
pub struct LoginPage<'a> {
    pub app_name: Option<&'a str>,
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    pub continue_to: &'a str,
    pub username: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub app_name: &'a str,
    pub username: &'a str,
    pub scopes: Vec<String>,
    pub csrf: &'a str,
    pub request: &'a str,
    pub redirect_host: &'a str,
}

#[derive(Template)]
#[template(path = "message.html")]
pub struct MessagePage<'a> {
    pub title: &'a str,
    pub message: &'a str,
    pub is_error: bool,
    pub logout_csrf: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "account_api_keys.html")]
pub struct AccountKeysPage<'a> {
    pub username: &'a str,
    pub new_key: Option<&'a str>,
    pub error: Option<&'a str>,
    pub csrf: &'a str,
    /// (scope, words) a user may give their keys.
    pub scopes: Vec<(String, String)>,
    /// (days, words) of the expiries a key may have, longest last.
    pub expiry_choices: Vec<(String, String)>,
    pub keys: Vec<KeyRow>,
}

/// One key as the account page lists it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub display_prefix: String,
    pub scope: String,
    pub status: String,
    pub last_used: String,
    /// Today's use in words: "used 1,204 times today, last token request from 203.0.113.7".
    pub usage_today: String,
    pub is_active: bool,
}

/// `GET /static/copy.js`: the copy button of the API-key page.
pub async fn copy_script() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../templates/copy.js"),
    )
}

/// `GET /static/style.css`: the one stylesheet, compiled into the binary.
pub async fn stylesheet() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        include_str!("../../templates/style.css"),
    )
}

/// An HTML response with the headers every page carries. `form_target` is the origin a form
/// on this page may end up at after redirects (the client's redirect URI), which CSP's
/// `form-action` must allow or browsers block the final redirect.
pub fn html(status: StatusCode, page: &impl Template, form_target: Option<&str>) -> Response {
    html_page(status, page, form_target, false)
}

/// [`html`], optionally allowing this server's own scripts (`script-src 'self'`).
pub fn html_page(
    status: StatusCode,
    page: &impl Template,
    form_target: Option<&str>,
    allows_script: bool,
) -> Response {
    let body = match page.render() {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "template rendering failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let form_action = match form_target {
        Some(target) => format!("'self' {target}"),
        None => "'self'".to_owned(),
    };
    let script = if allows_script {
        " script-src 'self';"
    } else {
        ""
    };
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self';{script} form-action {form_action}; \
         frame-ancestors 'none'; base-uri 'none'"
    );
    let mut response = (status, body).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if let Ok(csp) = HeaderValue::from_str(&csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page that says one thing.
pub fn message(status: StatusCode, title: &str, text: &str) -> Response {
    let page = MessagePage {
        title,
        message: text,
        is_error: status.is_client_error() || status.is_server_error(),
        logout_csrf: None,
    };
    html(status, &page, None)
}

/// The CSP source for where a redirect URI sends the browser: its origin, or its scheme for
/// a native app's private-use scheme.
pub fn csp_source(redirect_uri: &str) -> Option<String> {
    let url = url::Url::parse(redirect_uri).ok()?;
    match url.scheme() {
        "http" | "https" => Some(url.origin().ascii_serialization()),
        scheme => Some(format!("{scheme}:")),
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax (it must survive the cross-site redirect from
/// the app to the login page), Path=/, and Secure when the server is on https.
pub fn set_cookie(config: &Config, name: &str, value: &str, max_age_secs: i64) -> HeaderValue {
    let secure = if config.is_https() { "; Secure" } else { "" };
    let text =
        format!("{name}={value}; Max-Age={max_age_secs}; Path=/; HttpOnly; SameSite=Lax{secure}");
    HeaderValue::from_str(&text).expect("cookie values are base62")
}

/// The browser's CSRF token for its forms, derived from its session when it is signed in,
/// else from its pre-sign-in cookie (planted here when missing, with the `Set-Cookie`): so the
/// token changes at sign-in, and one session's token is no good in another.
pub fn csrf_token(config: &Config, headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(basis) = csrf_basis(config, headers) {
        return (derive_csrf(basis), None);
    }
    let token = random_base62(SECRET_CHARS);
    let name = cookie_name(config, CSRF_COOKIE);
    let cookie = set_cookie(config, name, &token, config.sign_in.session_absolute_secs);
    (derive_csrf(&token), Some(cookie))
}

/// A new pre-sign-in cookie, for a browser that just signed out: the token from before its
/// sign-in must not work again.
pub fn fresh_csrf_cookie(config: &Config) -> HeaderValue {
    let token = random_base62(SECRET_CHARS);
    set_cookie(
        config,
        cookie_name(config, CSRF_COOKIE),
        &token,
        config.sign_in.session_absolute_secs,
    )
}

/// The CSRF token of the session `session_token` starts.
pub fn csrf_for_session(session_token: &str) -> String {
    derive_csrf(session_token)
}

/// A form's CSRF field must be the token derived from the browser's cookies, which another site
/// can neither read nor set.
pub fn csrf_matches(config: &Config, headers: &HeaderMap, submitted: Option<&str>) -> bool {
    match (csrf_basis(config, headers), submitted) {
        (Some(basis), Some(field)) => {
            crate::secrets::secret_matches(field, &hash_secret(&derive_csrf(basis)))
        }
        _ => false,
    }
}

/// What the CSRF token derives from: the session cookie, or else the pre-sign-in cookie.
fn csrf_basis<'a>(config: &Config, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, cookie_name(config, SESSION_COOKIE))
        .filter(|v| is_token_shaped(v))
        .or_else(|| {
            cookie(headers, cookie_name(config, CSRF_COOKIE)).filter(|v| is_token_shaped(v))
        })
}

fn derive_csrf(basis: &str) -> String {
    hash_secret(&format!("portcullis csrf v1:{basis}"))
}

/// Adds a `Set-Cookie` header to a response.
pub fn with_cookie(mut response: Response, cookie: Option<HeaderValue>) -> Response {
    if let Some(cookie) = cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// The signed-in user, if the request carries a live session of an enabled user.
pub async fn current_user(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<User>, StoreError> {
    let name = cookie_name(&state.config, SESSION_COOKIE);
    match cookie(headers, name) {
        Some(token) => sessions::session_user(state, token).await,
        None => Ok(None),
    }
}

/// A session just started: the cookie that carries it, and the CSRF token of its forms.
pub struct NewSession {
    pub cookie: HeaderValue,
    pub csrf: String,
}

/// Starts a session for `user`.
pub async fn start_session(state: &AppState, user: &User) -> Result<NewSession, StoreError> {
    let token = sessions::start_session(state, user).await?;
    let cookie = set_cookie(
        &state.config,
        cookie_name(&state.config, SESSION_COOKIE),
        token.expose(),
        state.config.sign_in.session_absolute_secs,
    );
    Ok(NewSession {
        cookie,
        csrf: csrf_for_session(token.expose()),
    })
}

/// Ends the request's session, if any; returns the cookie that clears it.
pub async fn end_session(state: &AppState, headers: &HeaderMap) -> Result<HeaderValue, StoreError> {
    let name = cookie_name(&state.config, SESSION_COOKIE);
    if let Some(token) = cookie(headers, name) {
        sessions::end_session(state, token).await?;
    }
    Ok(set_cookie(&state.config, name, "", 0))
}

/// `1204` as `1,204`: counts as people read them (in English).
pub fn with_thousands_separators(n: u64) -> String {
    let digits = n.to_string();
    let mut grouped = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::with_thousands_separators;

    #[test]
    fn counts_are_grouped_by_thousands() {
        for (n, text) in [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (1_204, "1,204"),
            (123_456, "123,456"),
            (1_234_567, "1,234,567"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ] {
            assert_eq!(with_thousands_separators(n), text);
        }
    }
}
