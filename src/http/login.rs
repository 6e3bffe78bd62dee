//! `GET/POST /login` and `POST /logout`: signing in and out on Portcullis's own pages.

use std::net::SocketAddr;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::Origin;
use super::page_error::PageError;
use super::pages::{self, LoginPage, MessagePage};
use crate::audit::Actor;
use crate::sign_in::{SignInError, sign_in};

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
        return Ok(signed_in_page(&csrf, user.username.as_str()));
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
    origin: Origin,
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

    let anonymous = origin.by(Actor::Anonymous);
    let user = match sign_in(&state, username, password, peer.ip(), &anonymous).await {
        Ok(user) => user,
        Err(SignInError::BadCredentials) => {
            return Ok(again(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
        }
        Err(SignInError::Throttled) => return Ok(again(StatusCode::TOO_MANY_REQUESTS, THROTTLED)),
        Err(SignInError::Busy) => return Ok(again(StatusCode::SERVICE_UNAVAILABLE, BUSY)),
        Err(SignInError::Store(e)) => return Err(e.into()),
    };
    let session = pages::start_session(&state, &user).await?;
    let response = if continue_to.is_empty() {
        signed_in_page(&session.csrf, user.username.as_str())
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
