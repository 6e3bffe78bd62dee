//! Keyset paging shared by the admin lists: `?limit=50&after=ID`, answered with the page and
//! `next_after`, the id to pass for the next page (null on the last one).

use axum::Json;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::AdminError;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// A checked `?limit=&after=`.
pub struct Page {
    pub limit: i64,
    /// The last id of the previous page.
    pub after: Option<String>,
}

#[derive(Deserialize)]
struct RawPage {
    limit: Option<i64>,
    after: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Page {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AdminError> {
        let Query(raw) = Query::<RawPage>::from_request_parts(parts, state)
            .await
            .map_err(|e| AdminError::invalid_input(e.body_text()))?;
        let limit = raw.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AdminError::invalid_input(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        Ok(Self {
            limit,
            after: raw.after,
        })
    }
}

impl Page {
    /// `{"<field>": [view of each item], "next_after": id of the last item if the page is full}`.
    pub fn respond<T>(
        &self,
        field: &str,
        items: &[T],
        id: impl Fn(&T) -> &str,
        view: impl Fn(&T) -> Value,
    ) -> Json<Value> {
        let next_after = (items.len() as i64 == self.limit)
            .then(|| items.last().map(&id))
            .flatten();
        let mut body = Map::new();
        body.insert(field.to_owned(), items.iter().map(view).collect());
        body.insert("next_after".to_owned(), next_after.into());
        Json(Value::Object(body))
    }
}
