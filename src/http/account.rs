//! `/account/api-keys`: a signed-in user lists, creates and revokes their personal API keys.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::AppState;
use super::extract::Origin;
use super::login::see_other;
use super::page_error::PageError;
use super::pages::{self, AccountKeysPage, KeyRow, with_thousands_separators};
use crate::admin::api_keys::{
    Expiry, PersonalKey, create_personal_key, list_personal_keys, personal_keys_usage_today,
    revoke_personal_key,
};
use crate::admin::{self, Actor};
use crate::api_keys::DayUsage;
use crate::clock::unix_now;
use crate::ids::ApiKeyId;
use crate::oauth::scope::Scope;
use crate::users::User;

pub const PATH: &str = "/account/api-keys";

pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    match pages::current_user(&state, &headers).await? {
        Some(user) => render(&state, &headers, &user, StatusCode::OK, None, None).await,
        None => Ok(see_other(&format!("/login?continue={PATH}"))),
    }
}

/// Creates a personal key from the form; the page shows it this once.
pub async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    origin: Origin,
    body: Bytes,
) -> Result<Response, PageError> {
    let mut csrf = None;
    let mut name = String::new();
    let mut scopes = Vec::new();
    let mut expires_in_days = String::new();
    for (field, value) in url::form_urlencoded::parse(&body) {
        match &*field {
            "csrf" => csrf = Some(value.into_owned()),
            "name" => name = value.into_owned(),
            "scope" => scopes.push(value.into_owned()),
            "expires_in_days" => expires_in_days = value.into_owned(),
            _ => {}
        }
    }
    let user = form_user(&state, &headers, csrf.as_deref()).await?;
    // The page again, saying what to change.
    let (page_state, page_headers, page_user) = (&state, &headers, &user);
    let refuse = move |message: String| async move {
        let status = StatusCode::UNPROCESSABLE_ENTITY;
        render(
            page_state,
            page_headers,
            page_user,
            status,
            None,
            Some(&message),
        )
        .await
    };
    let requested = Scope::parse(&scopes.join(" ")).unwrap_or_default();
    if !requested.is_subset_of(&state.config.api_keys.personal_key_scopes) {
        return refuse("Choose permissions from the list.".into()).await;
    }
    let chosen = match expires_in_days.as_str() {
        "" => Some(None),
        days => days.parse::<i64>().ok().map(Some),
    };
    let expiry = match chosen.filter(|c| state.config.personal_key_expiry_choices().contains(c)) {
        Some(Some(days)) => Expiry::InSecs(days * 86_400),
        Some(None) => Expiry::Never,
        None => return refuse("Choose an expiry from the list.".into()).await,
    };
    let key = PersonalKey {
        name,
        scope: requested,
        expiry,
    };
    let created = create_personal_key(
        &state.store,
        &state.config.api_keys.api_key_prefix,
        &user.id,
        key,
        state.config.personal_key_limit(),
        &origin.by(Actor::User(user.id.clone())),
    )
    .await;
    match created {
        Ok((_, secret)) => {
            render(
                &state,
                &headers,
                &user,
                StatusCode::CREATED,
                Some(secret.expose()),
                None,
            )
            .await
        }
        Err(admin::Error::Store(e)) => Err(e.into()),
        Err(refused) => {
            render(
                &state,
                &headers,
                &user,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Some(&refused.to_string()),
            )
            .await
        }
    }
}

/// Revokes one of the user's own personal keys.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<ApiKeyId>,
    origin: Origin,
    body: Bytes,
) -> Result<Response, PageError> {
    let csrf = url::form_urlencoded::parse(&body)
        .find(|(k, _)| k == "csrf")
        .map(|(_, v)| v.into_owned());
    let user = form_user(&state, &headers, csrf.as_deref()).await?;
    let by = origin.by(Actor::User(user.id.clone()));
    revoke_personal_key(&state.store, &user.id, &id, &by).await?;
    Ok(see_other(PATH))
}

/// The signed-in user a form on this page was posted by, or the page to answer instead: a
/// form whose CSRF token does not match, or no one signed in.
async fn form_user(
    state: &AppState,
    headers: &HeaderMap,
    csrf: Option<&str>,
) -> Result<User, PageError> {
    if !pages::csrf_matches(&state.config, headers, csrf) {
        return Err(PageError::refused(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form has expired. Reload the page and try again.",
        ));
    }
    pages::current_user(state, headers)
        .await?
        .ok_or_else(|| PageError::Elsewhere(see_other(&format!("/login?continue={PATH}"))))
}

async fn render(
    state: &AppState,
    headers: &HeaderMap,
    user: &User,
    status: StatusCode,
    new_key: Option<&str>,
    error: Option<&str>,
) -> Result<Response, PageError> {
    let keys = list_personal_keys(&state.store, &user.id).await?;
    let usage = personal_keys_usage_today(&state.store, &user.id).await?;
    let now = unix_now();
    let rows = keys
        .iter()
        .map(|k| KeyRow {
            id: k.id.to_string(),
            name: k.name.to_string(),
            display_prefix: k.display_prefix.clone(),
            scope: k.scope.to_string(),
            status: match (k.revoked_at, k.expires_at) {
                (Some(_), _) => "revoked".into(),
                (None, Some(at)) if at <= now => "expired".into(),
                (None, Some(at)) => format!("expires in {} days", (at - now) / 86_400),
                (None, None) => "never expires".into(),
            },
            last_used: match k.last_used_at {
                None => "never".into(),
                Some(at) if now - at < 3600 => "within the hour".into(),
                Some(at) => format!("{} days ago", (now - at) / 86_400),
            },
            usage_today: usage_in_words(usage.get(&k.id)),
            is_active: k.is_usable(now),
        })
        .collect();
    let expiry_choices = state
        .config
        .personal_key_expiry_choices()
        .into_iter()
        .map(|days| match days {
            None => (String::new(), "never".to_owned()),
            Some(365) => ("365".to_owned(), "in a year".to_owned()),
            Some(days) => (days.to_string(), format!("in {days} days")),
        })
        .collect();
    let scopes = state
        .config
        .api_keys
        .personal_key_scopes
        .tokens()
        .map(|s| (s.to_owned(), state.config.describe_scope(s)))
        .collect();
    let (csrf, new_cookie) = pages::csrf_token(&state.config, headers);
    let page = AccountKeysPage {
        username: user.username.as_str(),
        new_key,
        error,
        csrf: &csrf,
        scopes,
        expiry_choices,
        keys: rows,
    };
    Ok(pages::with_cookie(
        pages::html_page(status, &page, None, true),
        new_cookie,
    ))
}

/// "used 1,204 times today, last token request from 203.0.113.7": the address is the last
/// exchange's, since an introspection comes from the API checking the key, not from whoever
/// holds it; a key only ever checked by APIs shows no address.
fn usage_in_words(usage: Option<&DayUsage>) -> String {
    let Some(usage) = usage.filter(|usage| usage.total > 0) else {
        return "not used today".into();
    };
    let times = match usage.total {
        1 => "once".to_owned(),
        n => format!("{} times", with_thousands_separators(n)),
    };
    match &usage.last_exchange_ip {
        Some(ip) => format!("used {times} today, last token request from {ip}"),
        None => format!("used {times} today"),
    }
}
