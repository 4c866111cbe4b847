//! `GET /v1/collections`: the (namespace, collection) pairs that hold
//! documents, among those the caller may read; the console's document
//! browser offers them.
//!
//! The store has no index of collections, but its log does: compaction
//! always keeps a document's latest change, so every collection with a
//! document appears in the retained log. Each node reads the log once and
//! then only what was appended since its last answer, at most
//! `CHANGES_PER_CALL_MAX` changes a call (the answer says `complete:
//! false` until it has caught up).

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use sync_core::store::ChangeFilter;
use sync_core::{CollectionName, Namespace, Seq};
use tokio::sync::Mutex;

use super::Caller;
use crate::error::ApiError;
use crate::state::AppState;

const PAGE: usize = 1_000;
/// The most changes one call reads, so a long log is read over a few calls.
const CHANGES_PER_CALL_MAX: usize = 100_000;

/// What this node has learnt from the log so far.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    read_to: Seq,
    seen: BTreeSet<(Namespace, CollectionName)>,
}

/// The catalog shared by the route's calls.
pub(crate) type SharedCatalog = Arc<Mutex<Catalog>>;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Entry {
    namespace: Namespace,
    collection: CollectionName,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Collections {
    collections: Vec<Entry>,
    /// Whether the whole log has been read.
    complete: bool,
}

#[utoipa::path(get, path = "/v1/collections", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    responses((status = 200, description = "The collections the caller can read, by namespace", body = Collections), crate::openapi::Errors))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Extension(catalog): Extension<SharedCatalog>,
    Caller(principal): Caller,
) -> Result<Json<Collections>, ApiError> {
    let store = state.syncer().store();
    let mut catalog = catalog.lock().await;
    let mut read = 0;
    let mut complete = false;
    while read < CHANGES_PER_CALL_MAX {
        let page = store
            .changes_after(catalog.read_to, &ChangeFilter::default(), PAGE)
            .await?;
        read += page.changes.len().max(1);
        for change in page.changes {
            catalog.seen.insert((change.namespace, change.collection));
        }
        catalog.read_to = page.last_seq;
        if !page.has_more {
            complete = true;
            break;
        }
    }
    let collections = catalog
        .seen
        .iter()
        .filter(|(namespace, _)| principal.can_read(namespace))
        .map(|(namespace, collection)| Entry {
            namespace: namespace.clone(),
            collection: collection.clone(),
        })
        .collect();
    Ok(Json(Collections {
        collections,
        complete,
    }))
}
