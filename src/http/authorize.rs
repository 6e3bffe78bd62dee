//! `GET /authorize` and `POST /authorize` (the consent decision): RFC 6749 §4.1 with PKCE.
//!
//! The request travels in the URL (and in a hidden field on the consent page) and is checked
//! again in full at every step, so nothing a browser sends back is trusted without checking.

use axum::Form;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::extract::Origin;
use super::login::login_page;
use super::page_error::PageError;
use super::pages::{self, ConsentPage};
use crate::audit::Actor;
use crate::clients::Client;
use crate::oauth::authorize::{self, AuthorizationRequest, AuthorizeError, ErrorRedirect};
use crate::oauth::form::OAuthForm;
use crate::secrets::Secret;
use crate::users::User;

pub async fn start(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    handle(&state, &headers, &origin, &query, None)
        .await
        .into_response()
}

#[derive(Deserialize)]
pub struct DecisionForm {
    request: Option<String>,
    decision: Option<String>,
    csrf: Option<String>,
}

pub async fn decide(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    Form(form): Form<DecisionForm>,
) -> Response {
    if !pages::csrf_matches(&state.config, &headers, form.csrf.as_deref()) {
        return pages::message(
            StatusCode::FORBIDDEN,
            "Request expired",
            "This form has expired. Go back to the application and try again.",
        );
    }
    let query = form.request.unwrap_or_default();
    let decision = match form.decision.as_deref() {
        Some("allow") => Decision::Allow,
        Some("deny") => Decision::Deny,
        _ => {
            return pages::message(
                StatusCode::BAD_REQUEST,
                "Bad request",
                "Choose Allow or Deny.",
            );
        }
    };
    handle(&state, &headers, &origin, &query, Some(decision))
        .await
        .into_response()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Decision {
    Allow,
    Deny,
}

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    origin: &Origin,
    query: &str,
    decision: Option<Decision>,
) -> Result<Response, PageError> {
    let form = OAuthForm::parse(query.as_bytes()).map_err(|e| {
        PageError::refused(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            format!("The authorization request is malformed: {e}."),
        )
    })?;
    let client = authorize::requested_client(state, &form).await?;
    let request = match authorize::validate(&form, client.as_ref()) {
        Ok(request) => request,
        Err(AuthorizeError::Page(message)) => {
            return Err(PageError::refused(
                StatusCode::BAD_REQUEST,
                "Invalid request",
                message,
            ));
        }
        Err(AuthorizeError::Redirect(redirect)) => {
            return Err(PageError::Elsewhere(error_redirect(
                state,
                &redirect,
                decision.is_some(),
            )));
        }
    };
    let client = client.expect("validate succeeds only with a client");

    let Some(user) = pages::current_user(state, headers).await? else {
        let continue_to = format!("/authorize?{query}");
        let app = (client.name_or_id(), request.redirect_uri.as_str());
        return Ok(login_page(
            state,
            headers,
            StatusCode::OK,
            Some(app),
            &continue_to,
            "",
            None,
        ));
    };

    match decision {
        Some(Decision::Deny) => {
            let denied = ErrorRedirect {
                redirect_uri: request.redirect_uri.clone(),
                state: request.state.clone(),
                error: "access_denied",
                description: "the user denied the request".into(),
            };
            return Ok(error_redirect(state, &denied, true));
        }
        Some(Decision::Allow) => {
            let by = origin.by(Actor::User(user.id.clone()));
            authorize::record_consent(state, &user, &client, &request.scope, &by).await?;
        }
        None => {
            if authorize::needs_consent(state, &user, &client, &request.scope).await? {
                return Ok(consent_page(
                    state, headers, &client, &user, &request, query,
                ));
            }
        }
    }
    let code = authorize::issue_code(state, &client, &user, &request).await?;
    Ok(send_code(state, &request, &code, decision.is_some()))
}

fn consent_page(
    state: &AppState,
    headers: &HeaderMap,
    client: &Client,
    user: &User,
    request: &AuthorizationRequest,
    query: &str,
) -> Response {
    let (csrf, new_cookie) = pages::csrf_token(&state.config, headers);
    let redirect_host = url::Url::parse(&request.redirect_uri)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(str::to_owned)
                .or_else(|| Some(format!("{}:", u.scheme())))
        })
        .unwrap_or_default();
    let page = ConsentPage {
        app_name: client.name_or_id(),
        username: user.username.as_str(),
        scopes: request
            .scope
            .tokens()
            .map(|s| state.config.describe_scope(s))
            .collect(),
        csrf: &csrf,
        request: query,
        redirect_host: &redirect_host,
    };
    let form_target = pages::csp_source(&request.redirect_uri);
    pages::with_cookie(
        pages::html(StatusCode::OK, &page, form_target.as_deref()),
        new_cookie,
    )
}

/// Sends the browser back to the client with the code (RFC 6749 §4.1.2, RFC 9207 `iss`).
fn send_code(
    state: &AppState,
    request: &AuthorizationRequest,
    code: &Secret,
    after_post: bool,
) -> Response {
    let mut params = vec![("code", code.expose())];
    if let Some(s) = &request.state {
        params.push(("state", s));
    }
    // RFC 9207: the issuer, so the client can tell which server answered.
    params.push(("iss", &state.config.issuer));
    redirect(
        &authorize::redirect_with(&request.redirect_uri, &params),
        after_post,
    )
}

fn error_redirect(state: &AppState, error: &ErrorRedirect, after_post: bool) -> Response {
    let mut params = vec![
        ("error", error.error),
        ("error_description", error.description.as_str()),
    ];
    if let Some(s) = &error.state {
        params.push(("state", s));
    }
    params.push(("iss", &state.config.issuer));
    redirect(
        &authorize::redirect_with(&error.redirect_uri, &params),
        after_post,
    )
}

/// 302 after a GET; 303 after the consent POST so the browser follows with a GET.
fn redirect(location: &str, after_post: bool) -> Response {
    let status = if after_post {
        StatusCode::SEE_OTHER
    } else {
        StatusCode::FOUND
    };
    match HeaderValue::from_str(location) {
        Ok(value) => {
            let mut response = (status, [(header::LOCATION, value)]).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            response.headers_mut().insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
            response
        }
        Err(_) => pages::message(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            "The redirect address is not valid.",
        ),
    }
}
