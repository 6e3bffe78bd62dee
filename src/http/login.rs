//! `GET/POST /login` and `POST /logout`: signing in and out on Portcullis's own pages.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::page_error::PageError;
use super::pages::{self, LoginPage, MessagePage};
use crate::clock::unix_now;
use crate::config::{
    LOGIN_WINDOW_SECS, MAX_LOGIN_FAILURES_PER_ADDRESS, MAX_LOGIN_FAILURES_PER_USERNAME,
};
use crate::passwords;

const BAD_CREDENTIALS: &str = "The username or password is incorrect.";
const BUSY: &str = "Too many people are signing in right now. Please try again in a moment.";
const THROTTLED: &str = "Too many failed sign-in attempts. Wait a few minutes, then try again.";

/// Where a sign-in may continue to: only back into an authorization request on this server, or
/// the account page, so the parameter cannot be used to send people elsewhere.
fn safe_continue(target: Option<&str>) -> Option<&str> {
    target.filter(|t| {
        (t.starts_with("/authorize?") || *t == super::account::PATH)
            && t.bytes().all(|b| (0x21..0x7f).contains(&b))
    })
}

#[derive(Deserialize)]
pub struct LoginQuery {
    #[serde(rename = "continue")]
    continue_to: Option<String>,
}

/// Renders the sign-in form; `status` and `error` say why it is shown again.
pub fn login_page(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    app: Option<(&str, &str)>,
    continue_to: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let (csrf, new_cookie) = pages::csrf_token(&state.config, headers);
    let page = LoginPage {
        app_name: app.map(|(name, _)| name),
        error,
        csrf: &csrf,
        continue_to,
        username,
    };
    let form_target = app.and_then(|(_, redirect_uri)| pages::csp_source(redirect_uri));
    pages::with_cookie(
        pages::html(status, &page, form_target.as_deref()),
        new_cookie,
    )
}

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    let continue_to = safe_continue(query.continue_to.as_deref()).unwrap_or("");
    if let Some(user) = pages::current_user(&state, &headers).await? {
        if !continue_to.is_empty() {
            return Ok(see_other(continue_to));
        }
        let (csrf, _) = pages::csrf_token(&state.config, &headers);
        return Ok(signed_in_page(&csrf, &user.username));
    }
    Ok(login_page(
        &state,
        &headers,
        StatusCode::OK,
        None,
        continue_to,
        "",
        None,
    ))
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
    csrf: Option<String>,
    #[serde(rename = "continue")]
    continue_to: Option<String>,
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let continue_to = safe_continue(form.continue_to.as_deref()).unwrap_or("");
    let username = form.username.as_deref().unwrap_or("").trim();
    let again = |status, error| {
        login_page(
            &state,
            &headers,
            status,
            None,
            continue_to,
            username,
            Some(error),
        )
    };
    if !pages::csrf_matches(&state.config, &headers, form.csrf.as_deref()) {
        return Ok(again(
            StatusCode::FORBIDDEN,
            "This form has expired. Please sign in again.",
        ));
    }
    let password = form.password.unwrap_or_default();
    if username.is_empty() || password.is_empty() {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Enter your username and password.",
        ));
    }

    // No username has one (see users.rs); refused before the database sees it.
    if username.chars().any(char::is_control) {
        tracing::info!(address = %peer.ip(), "failed sign-in: a control character in the username");
        return Ok(again(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    }

    let now = unix_now();
    let user_key = format!("user:{}", username.to_lowercase());
    let address_key = format!("ip:{}", throttled_network(peer.ip()));
    let store = &state.store;
    // Reserved before the password is checked, each attempt in one statement, so that however
    // many arrive at once no more than the limit are checked; while locked, even the right
    // password is refused.
    let address_attempts = store
        .reserve_login_attempt(&address_key, now, LOGIN_WINDOW_SECS)
        .await?;
    if address_attempts > MAX_LOGIN_FAILURES_PER_ADDRESS {
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    }
    let username_attempts = store
        .reserve_login_attempt(&user_key, now, LOGIN_WINDOW_SECS)
        .await?;
    if username_attempts > MAX_LOGIN_FAILURES_PER_USERNAME {
        return Ok(again(StatusCode::TOO_MANY_REQUESTS, THROTTLED));
    }

    let found = store.find_user_for_login(username).await?;
    let (user, hash) = match found {
        Some((user, hash)) if !user.is_disabled() => (Some(user), Some(hash)),
        _ => (None, None),
    };
    let Ok(valid) = passwords::verify_password(password, hash).await else {
        // Too many sign-ins being checked at once: this one was not checked at all.
        for key in [&user_key, &address_key] {
            store.release_login_attempt(key).await?;
        }
        return Ok(again(StatusCode::SERVICE_UNAVAILABLE, BUSY));
    };
    let Some(user) = user.filter(|_| valid) else {
        // Debug-formatted: what someone typed is escaped, so CR, LF or ESC in it cannot forge
        // log lines or drive a terminal.
        tracing::info!(username = ?username, address = %peer.ip(), "failed sign-in");
        return Ok(again(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    };
    // Only this attempt is given back: failures by others in this window still count, or a
    // guesser would get five more every time the owner signs in.
    for key in [&user_key, &address_key] {
        store.release_login_attempt(key).await?;
    }
    let session = pages::start_session(&state, &user).await?;
    tracing::info!(user_id = %user.id, "signed in");

    let response = if continue_to.is_empty() {
        signed_in_page(&session.csrf, &user.username)
    } else {
        see_other(continue_to)
    };
    Ok(pages::with_cookie(response, Some(session.cookie)))
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf: Option<String>,
}

pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Result<Response, PageError> {
    if !pages::csrf_matches(&state.config, &headers, form.csrf.as_deref()) {
        return Ok(pages::message(
            StatusCode::FORBIDDEN,
            "Not signed out",
            "This form has expired. Reload the page and try again.",
        ));
    }
    let cleared = pages::end_session(&state, &headers).await?;
    let page = pages::message(StatusCode::OK, "Signed out", "You are signed out.");
    let page = pages::with_cookie(page, Some(cleared));
    Ok(pages::with_cookie(
        page,
        Some(pages::fresh_csrf_cookie(&state.config)),
    ))
}

/// "You are signed in", with a sign-out form carrying the session's CSRF token.
fn signed_in_page(csrf: &str, username: &str) -> Response {
    let message = format!("You are signed in as {username}.");
    let page = MessagePage {
        title: "Signed in",
        message: &message,
        is_error: false,
        logout_csrf: Some(csrf),
    };
    pages::html(StatusCode::OK, &page, None)
}

/// The network a sign-in is throttled by: the address itself for IPv4, its /64 for IPv6, which
/// one subscriber usually holds whole (a guesser would otherwise have 2^64 addresses).
fn throttled_network(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::V6(Ipv6Addr::from(segments))
            }
        },
        v4 => v4,
    }
}

/// 303 See Other: after a form POST, the browser follows with a GET.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(value) => (StatusCode::SEE_OTHER, [(header::LOCATION, value)]).into_response(),
        Err(_) => pages::message(
            StatusCode::BAD_REQUEST,
            "Bad request",
            "The return address is not valid.",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::throttled_network;

    #[test]
    fn ipv6_sign_ins_are_throttled_by_their_64() {
        let a = throttled_network("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = throttled_network("2001:db8:1:2:bbbb::9".parse().unwrap());
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "2001:db8:1:2::");
        assert_ne!(a, throttled_network("2001:db8:1:3::1".parse().unwrap()));
        let v4 = throttled_network("192.0.2.7".parse().unwrap());
        assert_eq!(v4.to_string(), "192.0.2.7");
        assert_eq!(throttled_network("::ffff:192.0.2.7".parse().unwrap()), v4);
    }
}
