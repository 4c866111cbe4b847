//! Branches of a document (`docs/protocol.md`, "Branches"): fork, list,
//! read, merge and delete. The branch's own document is read and written
//! under its branch address, `/v1/ns/{ns}/{collection}@{branch}/{id}`, and
//! by operations that name the branch.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sync_core::store::BranchRecord;
use sync_core::{BranchName, ConflictRecord, DocKey, Document, OpResult, Version};

use super::documents::key_of;
use super::{Caller, JsonBody};
use crate::error::ApiError;
use crate::state::AppState;

/// What a fork asks for.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Fork {
    /// The branch's name.
    name: BranchName,
    /// The document's version to fork at; its current one when left out.
    #[serde(default)]
    version: Option<Version>,
}

/// A branch with its document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BranchView {
    branch: BranchRecord,
    /// The branch's document, under the branch address.
    document: Document,
}

/// The branches of a document.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct BranchList {
    branches: Vec<BranchRecord>,
}

/// What a merge did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct Merged {
    /// As a write's result: `success`, `merged` (the strategy decided
    /// fields both sides changed), `conflict` (pending, for a `manual`
    /// collection) or `duplicate`.
    result: OpResult,
    /// The conflict the merge ran into, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    conflict: Option<ConflictRecord>,
    /// The document after the merge.
    document: Option<Document>,
    /// The branch after the merge.
    branch: BranchRecord,
}

/// A document and one branch's name, from a path.
async fn branch_path(
    principal: &crate::auth::Principal,
    (namespace, collection, id, name): &(String, String, String, String),
) -> Result<(DocKey, BranchName), ApiError> {
    let key = key_of(principal, namespace, collection, id).await?;
    Ok((key, BranchName::new(name.as_str())?))
}

#[utoipa::path(post, path = "/v1/ns/{ns}/{collection}/{id}/branches", tag = "branches", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::DocumentPath),
    request_body = Fork,
    responses((status = 201, description = "The branch, with its document as the document was at the fork", body = BranchView), crate::openapi::Errors))]
pub(crate) async fn fork(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id)): Path<(String, String, String)>,
    JsonBody(fork): JsonBody<Fork>,
) -> Result<(StatusCode, Json<BranchView>), ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let (branch, document) = state
        .syncer()
        .fork_branch(&principal, &key, &fork.name, fork.version)
        .await?;
    Ok((StatusCode::CREATED, Json(BranchView { branch, document })))
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}/{id}/branches", tag = "branches", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::DocumentPath),
    responses((status = 200, description = "The document's branches, by name", body = BranchList), crate::openapi::Errors))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path((namespace, collection, id)): Path<(String, String, String)>,
) -> Result<Json<BranchList>, ApiError> {
    let key = key_of(&principal, &namespace, &collection, &id).await?;
    let branches = state.syncer().store().list_branches(&key).await?;
    Ok(Json(BranchList { branches }))
}

#[utoipa::path(get, path = "/v1/ns/{ns}/{collection}/{id}/branches/{name}", tag = "branches", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::BranchPath),
    responses((status = 200, description = "The branch with its document", body = BranchView), crate::openapi::Errors))]
pub(crate) async fn one(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(path): Path<(String, String, String, String)>,
) -> Result<Json<BranchView>, ApiError> {
    let (key, name) = branch_path(&principal, &path).await?;
    let syncer = state.syncer();
    let branch = syncer.branch(&key, &name).await?;
    let document = syncer.branch_document(&branch).await?;
    Ok(Json(BranchView { branch, document }))
}

#[utoipa::path(post, path = "/v1/ns/{ns}/{collection}/{id}/branches/{name}/merge", tag = "branches", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::BranchPath),
    responses((status = 200, description = "What the merge did to the document", body = Merged), crate::openapi::Errors))]
pub(crate) async fn merge(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(path): Path<(String, String, String, String)>,
) -> Result<Json<Merged>, ApiError> {
    let (key, name) = branch_path(&principal, &path).await?;
    let report = state.syncer().merge_branch(&principal, &key, &name).await?;
    Ok(Json(Merged {
        result: report.result,
        conflict: report.conflict,
        document: report.document,
        branch: report.branch,
    }))
}

#[utoipa::path(delete, path = "/v1/ns/{ns}/{collection}/{id}/branches/{name}", tag = "branches", security((), ("bearer" = []), ("token" = [])),
    params(crate::openapi::BranchPath),
    responses((status = 204, description = "Deleted: its document is a tombstone, its history stays"), crate::openapi::Errors))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(path): Path<(String, String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (key, name) = branch_path(&principal, &path).await?;
    state
        .syncer()
        .delete_branch(&principal, &key, &name)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
