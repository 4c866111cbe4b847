//! Conflicts: the history of every conflict, resolved or pending, and the
//! resolution of a pending one, `POST /v1/conflicts/{id}/resolve` with
//! `{"strategy": "server_wins|client_wins|merge|manual", "resolvedData"}`.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sync_core::store::ConflictQuery;
use sync_core::{
    CollectionName, ConflictId, ConflictRecord, ConflictStatus, Document, JsonObject, Namespace,
    Strategy,
};

use super::{Caller, JsonBody, QueryPairs};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

const LIST_LIMIT_DEFAULT: usize = 100;
const LIST_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ConflictList {
    conflicts: Vec<ConflictRecord>,
}

#[utoipa::path(get, path = "/v1/conflicts", tag = "conflicts", security((), ("bearer" = []), ("token" = [])),
    params(
        ("status" = Option<sync_core::ConflictStatus>, Query, description = "Only this status"),
        ("namespace" = Option<String>, Query, description = "Only this namespace"),
        ("collection" = Option<String>, Query, description = "Only this collection"),
        ("limit" = Option<u64>, Query, description = "At most this many (default 100, at most 1,000)")),
    responses((status = 200, description = "Conflicts, pending first, newest first", body = ConflictList), crate::openapi::Errors))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: QueryPairs,
) -> Result<Json<ConflictList>, ApiError> {
    let status = match query.first("status") {
        None => None,
        Some("pending") => Some(ConflictStatus::Pending),
        Some("resolved") => Some(ConflictStatus::Resolved),
        Some(other) => {
            return Err(ApiError::Invalid(format!(
                "status must be pending or resolved, not {other:?}"
            )));
        }
    };
    let namespaces = match query.first("namespace") {
        Some(name) => {
            let namespace = Namespace::new(name)?;
            principal.check_read(&namespace)?;
            Some(BTreeSet::from([namespace]))
        }
        None => principal.readable(),
    };
    let collection = query
        .first("collection")
        .map(CollectionName::new)
        .transpose()?;
    let limit = query
        .number("limit")?
        .map_or(LIST_LIMIT_DEFAULT, |n| n as usize)
        .clamp(1, LIST_LIMIT_MAX);
    let conflicts = state
        .syncer()
        .store()
        .list_conflicts(&ConflictQuery {
            status,
            namespaces,
            collection,
            limit,
        })
        .await?;
    Ok(Json(ConflictList { conflicts }))
}

/// The conflict, if the caller may read its namespace; otherwise it does
/// not exist for the caller.
async fn readable(
    state: &AppState,
    principal: &Principal,
    id: &str,
) -> Result<ConflictRecord, ApiError> {
    let id = ConflictId::new(id)?;
    let missing = || ApiError::NotFound(format!("no conflict {:?}", id.as_str()));
    let record = state
        .syncer()
        .store()
        .get_conflict(&id)
        .await?
        .ok_or_else(missing)?;
    if !principal.can_read(&record.namespace) {
        return Err(missing());
    }
    Ok(record)
}

#[utoipa::path(get, path = "/v1/conflicts/{id}", tag = "conflicts", security((), ("bearer" = []), ("token" = [])),
    params(("id" = sync_core::ConflictId, Path, description = "The conflict's id")),
    responses((status = 200, description = "The conflict", body = ConflictRecord), crate::openapi::Errors))]
pub(crate) async fn one(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<ConflictRecord>, ApiError> {
    readable(&state, &principal, &id).await.map(Json)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ResolveBody {
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    resolved_data: Option<JsonObject>,
    #[serde(default)]
    local_id: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Resolved {
    conflict: ConflictRecord,
    document: Document,
}

#[utoipa::path(post, path = "/v1/conflicts/{id}/resolve", tag = "conflicts", security((), ("bearer" = []), ("token" = [])),
    params(("id" = sync_core::ConflictId, Path, description = "The conflict's id")),
    request_body = ResolveBody,
    responses((status = 200, description = "The resolved conflict and the document after it", body = Resolved), crate::openapi::Errors))]
pub(crate) async fn resolve(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<Resolved>, ApiError> {
    let record = readable(&state, &principal, &id).await?;
    let _ = body.local_id;
    let syncer = state.syncer();
    syncer
        .resolve_conflict(
            &principal,
            &record,
            body.strategy,
            body.resolved_data.as_ref(),
        )
        .await?;
    let key = record.key();
    let conflict = readable(&state, &principal, record.id.as_str()).await?;
    let document = syncer
        .store()
        .get(&key)
        .await?
        .map(|stored| stored.document)
        .ok_or_else(|| ApiError::NotFound(format!("no document {key}")))?;
    Ok(Json(Resolved { conflict, document }))
}
