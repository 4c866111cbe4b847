//! Documents: list, one, history, one version, and restore of a version as
//! a new change.

use axum::Json;
use axum::extract::{Path, State};
use serde::Serialize;
use sync_core::{
    ChangeOp, DeviceId, DocId, DocKey, Document, Filter, Hlc, JsonObject, OpId, Seq, UserId,
    Version,
};

use super::{Caller, QueryPairs, collection_path, doc_id};
use crate::error::ApiError;
use crate::state::AppState;

const LIST_LIMIT_DEFAULT: usize = 100;
const LIST_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DocumentList {
    documents: Vec<Document>,
    next: Option<DocId>,
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::CollectionPath,
        ("where" = Option<String>, Query, description = "`field:value` equality filter; repeat for more"),
        ("limit" = Option<u64>, Query, description = "Documents per page (1 to 1,000; default 100)"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page")),
    responses((status = 200, description = "A page of live documents, in id order", body = DocumentList), crate::openapi::Errors))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection)): Path<(String, String)>,
    query: QueryPairs,
) -> Result<Json<DocumentList>, ApiError> {
    let (namespace, collection) = collection_path(&namespace, &collection)?;
    principal.check_read(&namespace)?;
    let filter = Filter::parse_query_params(query.all("where"))?;
    let after = query.first("after").map(DocId::new).transpose()?;
    let limit = query
        .number("limit")?
        .map_or(LIST_LIMIT_DEFAULT, |n| n as usize)
        .clamp(1, LIST_LIMIT_MAX);
    let page = state
        .syncer()
        .store()
        .list(&namespace, &collection, &filter, after.as_ref(), limit)
        .await?;
    Ok(Json(DocumentList {
        documents: page.documents,
        next: page.next,
    }))
}

/// The document a path names, once the caller may read its namespace.
pub(crate) async fn key_of(
    principal: &crate::auth::Principal,
    namespace: &str,
    collection: &str,
    id: &str,
) -> Result<DocKey, ApiError> {
    let (namespace, collection) = collection_path(namespace, collection)?;
    principal.check_read(&namespace)?;
    Ok(DocKey::new(namespace, collection, doc_id(id)?))
}

fn not_found(key: &DocKey) -> ApiError {
    ApiError::NotFound(format!("no document {key}"))
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}/{id}", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::DocumentPath),
    responses((status = 200, description = "The document with its metadata (a tombstone after a delete)", body = Document), crate::openapi::Errors))]
pub(crate) async fn one(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id)): Path<(String, String, String)>,
) -> Result<Json<Document>, ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let stored = state.syncer().store().get(&key).await?;
    stored
        .map(|stored| Json(stored.document))
        .ok_or_else(|| not_found(&key))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct VersionEntry {
    version: Version,
    seq: Seq,
    op: ChangeOp,
    #[schema(value_type = Object)]
    delta: JsonObject,
    timestamp: Hlc,
    device_id: Option<DeviceId>,
    op_id: OpId,
    user: Option<UserId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct History {
    versions: Vec<VersionEntry>,
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}/{id}/history", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::DocumentPath),
    responses((status = 200, description = "Its versions kept in the log, oldest first", body = History), crate::openapi::Errors))]
pub(crate) async fn history(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id)): Path<(String, String, String)>,
) -> Result<Json<History>, ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let changes = state.syncer().store().history(&key).await?;
    if changes.is_empty() {
        return Err(not_found(&key));
    }
    Ok(Json(History {
        versions: changes
            .into_iter()
            .map(|change| VersionEntry {
                version: change.version,
                seq: change.seq,
                op: change.op,
                delta: change.delta,
                timestamp: change.timestamp,
                device_id: change.device_id,
                op_id: change.op_id,
                user: change.user,
            })
            .collect(),
    }))
}

fn version_number(text: &str) -> Result<Version, ApiError> {
    text.parse::<u64>()
        .ok()
        .filter(|v| *v >= 1)
        .map(Version)
        .ok_or_else(|| ApiError::Invalid(format!("version must be a number from 1, not {text:?}")))
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}/{id}/versions/{version}", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::VersionPath),
    responses((status = 200, description = "The document as it was at that version", body = Document), crate::openapi::Errors))]
pub(crate) async fn version(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id, version)): Path<(String, String, String, String)>,
) -> Result<Json<Document>, ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let version = version_number(&version)?;
    state
        .syncer()
        .store()
        .document_at(&key, version)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no version {version} of {key} is kept")))
}

#[utoipa::path(post, path = "/v1/ns/{ns}/{collection}/{id}/restore/{version}", tag = "documents", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::VersionPath),
    responses((status = 200, description = "The document after the restore, a new version equal to the old one", body = Document), crate::openapi::Errors))]
pub(crate) async fn restore(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id, version)): Path<(String, String, String, String)>,
) -> Result<Json<Document>, ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let version = version_number(&version)?;
    let syncer = state.syncer();
    syncer.restore(&principal, &key, version).await?;
    let stored = syncer.store().get(&key).await?;
    stored
        .map(|stored| Json(stored.document))
        .ok_or_else(|| not_found(&key))
}
