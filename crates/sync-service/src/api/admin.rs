//! The store's snapshot for operators (`syncctl backup` and `restore`):
//! `GET /v1/admin/snapshot` streams everything the store holds at one
//! position of its log as NDJSON ([`SnapshotLine`]s: a header with the log
//! id and head, the records, an end line counting them), and `POST` loads
//! such a stream into a server whose store is still empty (409 otherwise),
//! keeping the log id so the clients' cursors stay valid. Admin only.
//!
//! The snapshot is read whole by the store (sled pauses its commits for
//! the read; PostgreSQL reads one repeatable-read transaction) and held in
//! memory while it streams, so its size is bounded by the server's memory;
//! a load is bounded by [`LOAD_BYTES_MAX`].

use std::convert::Infallible;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sync_core::StoreError;
use sync_core::store::{SnapshotLine, StoreSnapshot};

use super::Caller;
use crate::error::ApiError;
use crate::state::AppState;

/// The largest snapshot body `POST` accepts.
pub(crate) const LOAD_BYTES_MAX: usize = 1 << 30;

/// The snapshot as NDJSON, one line per record.
#[utoipa::path(get, path = "/v1/admin/snapshot", tag = "operations", security((), ("bearer" = []), ("token" = [])),
    responses((status = 200, description = "Everything the store holds at one log position, as NDJSON (admin)", body = String, content_type = "application/x-ndjson",
        headers(("X-Sync-Snapshot-Head" = u64, description = "The log position of the snapshot"))), crate::openapi::Errors))]
pub(crate) async fn snapshot(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    principal.check_admin()?;
    let snapshot = state.syncer().store().snapshot().await?;
    let head = snapshot.head;
    let lines = snapshot.to_lines().into_iter().map(|line| {
        let mut bytes = serde_json::to_vec(&line).unwrap_or_default();
        bytes.push(b'\n');
        Ok::<_, Infallible>(bytes::Bytes::from(bytes))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (
                header::HeaderName::from_static("x-sync-snapshot-head"),
                head.get().to_string(),
            ),
        ],
        Body::from_stream(futures::stream::iter(lines)),
    )
        .into_response())
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Loaded {
    head: sync_core::Seq,
    changes: usize,
    documents: usize,
}

/// Loads an NDJSON snapshot into the empty store.
#[utoipa::path(post, path = "/v1/admin/snapshot", tag = "operations", security((), ("bearer" = []), ("token" = [])),
    request_body(content = String, content_type = "application/x-ndjson", description = "A snapshot as `GET` gives it"),
    responses((status = 200, description = "Loaded into the empty store (admin)", body = Loaded), crate::openapi::Errors))]
pub(crate) async fn load(
    State(state): State<AppState>,
    Caller(principal): Caller,
    request: Request,
) -> Result<axum::Json<Loaded>, ApiError> {
    principal.check_admin()?;
    let bytes = super::read_body(request, LOAD_BYTES_MAX).await?;
    let mut lines = Vec::new();
    for (index, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let line: SnapshotLine = serde_json::from_slice(line)
            .map_err(|error| ApiError::Invalid(format!("snapshot line {}: {error}", index + 1)))?;
        lines.push(line);
    }
    let snapshot = StoreSnapshot::from_lines(lines).map_err(ApiError::Invalid)?;
    let loaded = Loaded {
        head: snapshot.head,
        changes: snapshot.changes.len(),
        documents: snapshot.documents.len(),
    };
    match state.syncer().store().load_snapshot(snapshot).await {
        Ok(()) => Ok(axum::Json(loaded)),
        Err(StoreError::NotEmpty) => Err(ApiError::Conflict(
            "the server's store is not empty: a snapshot loads only into an empty store".into(),
        )),
        Err(error) => Err(error.into()),
    }
}

/// What a reload answers.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub(crate) struct Reloaded {
    reloaded: bool,
}

/// Reads the server's configuration source again and puts the reloadable
/// settings in force (the same as SIGHUP). Admin only.
#[utoipa::path(post, path = "/v1/admin/reload", tag = "operations",
    security((), ("bearer" = []), ("token" = [])),
    responses((status = 200, description = "The new settings are in force", body = Reloaded),
        crate::openapi::Errors))]
pub(crate) async fn reload(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<axum::Json<Reloaded>, ApiError> {
    principal.check_admin()?;
    state
        .reload_from_source()
        .map_err(|error| ApiError::Invalid(format!("reload refused: {error}")))?;
    Ok(axum::Json(Reloaded { reloaded: true }))
}
