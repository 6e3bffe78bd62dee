//! Reading the audit log: filtered, newest first, a page at a time.

use super::Error;
use crate::audit::{Action, AuditEvent};
use crate::store::Store;
use crate::store::audit::EventFilter;

/// What to list; every field optional.
#[derive(Debug, Default)]
pub struct EventQuery {
    /// An action's dotted name.
    pub action: Option<String>,
    /// An admin key id, user id, client id, `cli` or `anonymous`.
    pub actor: Option<String>,
    /// The id acted on.
    pub target: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, exclusive.
    pub until: Option<i64>,
    /// Where the previous page ended: its `next_after`.
    pub after: Option<String>,
}

/// Up to `limit` events, newest first, and the cursor of the next page when this one is full.
pub async fn list_events(
    store: &Store,
    query: EventQuery,
    limit: i64,
) -> Result<(Vec<AuditEvent>, Option<String>), Error> {
    let action = match query.action.as_deref() {
        None => None,
        Some(name) => Some(Action::parse(name).ok_or_else(|| {
            Error::Invalid(format!(
                "unknown action {name:?}; actions are dotted names such as api_key.created"
            ))
        })?),
    };
    let before = match query.after.as_deref() {
        None => None,
        Some(cursor) => Some(
            parse_cursor(cursor)
                .ok_or_else(|| Error::invalid("after must be the next_after of a previous page"))?,
        ),
    };
    let to_ms = |secs: Option<i64>| secs.map(|secs| secs.saturating_mul(1000));
    let filter = EventFilter {
        action,
        actor: query.actor,
        target: query.target,
        since_ms: to_ms(query.since),
        until_ms: to_ms(query.until),
        before,
    };
    let events = store.list_events(&filter, limit).await?;
    let next = (events.len() as i64 == limit)
        .then(|| events.last().map(cursor))
        .flatten();
    Ok((events, next))
}

/// Where a page ends: the last event's time and id, which order the log.
fn cursor(event: &AuditEvent) -> String {
    format!("{}.{}", event.at_ms, event.id)
}

fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at_ms, id) = cursor.split_once('.')?;
    Some((at_ms.parse().ok()?, id.to_owned()))
}
