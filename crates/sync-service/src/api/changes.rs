//! The change feed, `GET /v1/changes?cursor=&limit=&wait=`: the changes
//! after a cursor in the namespaces the caller may read, long-polling up to
//! `wait` seconds when nothing is new (the fallback when WebSocket is
//! unavailable). `cursor=now` answers at once with the head cursor.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use sync_core::{Change, CollectionName, Cursor, DeviceId, Namespace, RawChange, Seq};
use tokio::time::Instant;

use super::sync::parse_cursor;
use super::{Caller, PullScope, QueryPairs};
use crate::error::ApiError;
use crate::state::AppState;

const LIMIT_DEFAULT: usize = 1_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Feed {
    // Passed on as stored: the documents are not read here.
    #[schema(value_type = Vec<Change>)]
    changes: Vec<RawChange>,
    cursor: Cursor,
    has_more: bool,
}

/// Comma-separated or repeated values of `key`, each parsed.
fn list<T>(
    query: &QueryPairs,
    key: &str,
    parse: impl Fn(&str) -> Result<T, ApiError>,
) -> Result<Option<Vec<T>>, ApiError> {
    let values: Vec<T> = query
        .all(key)
        .flat_map(|value| value.split(','))
        .filter(|value| !value.is_empty())
        .map(parse)
        .collect::<Result<_, _>>()?;
    Ok((!values.is_empty()).then_some(values))
}

#[utoipa::path(get, path = "/v1/changes", tag = "changes", security((), ("bearer" = []), ("token" = [])),
    params(
        ("cursor" = Option<String>, Query, description = "Changes after this cursor; `now` answers the head and no changes; none reads from the start"),
        ("limit" = Option<u64>, Query, description = "Most changes in the page (default 1,000)"),
        ("wait" = Option<u64>, Query, description = "Seconds to wait for a change when none is new (long poll, at most 60)"),
        ("namespace" = Option<String>, Query, description = "Only these namespaces (comma-separated or repeated)"),
        ("collection" = Option<String>, Query, description = "Only these collections (comma-separated or repeated)"),
        ("deviceId" = Option<String>, Query, description = "The reading device, for its lag")),
    responses((status = 200, description = "The changes after the cursor", body = Feed), crate::openapi::CursorErrors))]
pub(crate) async fn feed(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: QueryPairs,
) -> Result<Json<Feed>, ApiError> {
    let store = state.syncer().store();
    let log = store.log_id();
    let namespaces = list(&query, "namespace", |v| Ok(Namespace::new(v)?))?;
    let collections = list(&query, "collection", |v| Ok(CollectionName::new(v)?))?;
    let scope = PullScope::sync(&principal, namespaces, collections)?;
    let device = query.first("deviceId").map(DeviceId::new).transpose()?;
    if let Some(device) = &device {
        state
            .devices()
            .seen(&principal, device, state.syncer().clock().now())
            .await?;
    }
    let after = match query.first("cursor") {
        Some("now") => {
            let head = store.head().await?;
            return Ok(Json(Feed {
                changes: Vec::new(),
                cursor: Cursor::new(log, head),
                has_more: false,
            }));
        }
        Some(text) => parse_cursor(text, log)?.seq(),
        None => Seq::ZERO,
    };
    let limit = query
        .number("limit")?
        .map_or(LIMIT_DEFAULT, |n| n as usize)
        .clamp(1, state.limits().changes_per_page_max);
    let wait_secs = query
        .number("wait")?
        .unwrap_or(0)
        .min(state.limits().long_poll_secs_max);
    let mut deadline = Instant::now() + Duration::from_secs(wait_secs);
    let mut after = after;
    loop {
        let page = store.raw_changes_after(after, &scope.filter, limit).await?;
        let done = !page.changes.is_empty() || page.has_more || Instant::now() >= deadline;
        if done {
            if let Some(device) = &device {
                state.devices().synced_to(device, page.last_seq);
            }
            return Ok(Json(Feed {
                changes: page.changes,
                cursor: Cursor::new(log, page.last_seq),
                has_more: page.has_more,
            }));
        }
        after = page.last_seq;
        // Woken by the next commit (on any node); the deadline bounds it.
        tokio::select! {
            _ = tokio::time::timeout_at(deadline, store.wait_for_head(after)) => {}
            () = state.shutting_down() => {}
        }
        if state.is_shutting_down() {
            deadline = Instant::now();
        }
    }
}
