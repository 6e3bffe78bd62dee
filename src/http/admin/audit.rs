//! `GET /admin/audit-events`: the audit log, filtered, newest first, a page at a time.

use axum::Json;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};

use super::paging::Page;
use crate::admin::audit::{self, EventQuery};
use crate::error::AdminError;
use crate::http::AppState;
use crate::http::extract::AdminKey;

#[derive(Deserialize)]
pub struct Filters {
    action: Option<String>,
    actor: Option<String>,
    target: Option<String>,
    since: Option<i64>,
    until: Option<i64>,
}

/// `?action=&actor=&target=&since=&until=` (Unix seconds) `&limit=&after=`; answers
/// `{"events": [...], "next_after": cursor or null}`.
pub async fn list(
    _: AdminKey,
    State(state): State<AppState>,
    page: Page,
    filters: Result<Query<Filters>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, AdminError> {
    let Query(filters) = filters.map_err(|e| AdminError::invalid_input(e.body_text()))?;
    let query = EventQuery {
        action: filters.action,
        actor: filters.actor,
        target: filters.target,
        since: filters.since,
        until: filters.until,
        after: page.after,
    };
    let (events, next) = audit::list_events(&state.store, query, page.limit).await?;
    Ok(Json(json!({ "events": events, "next_after": next })))
}
