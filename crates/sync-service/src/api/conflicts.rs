//! Conflicts: the history of every conflict, resolved or pending, and the
//! resolution of a pending one, `POST /v1/conflicts/{id}/resolve` with
//! `{"strategy": "server_wins|client_wins|merge|manual", "resolvedData"}`.

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use sync_conflict::{Base, ClientEdit, ResolveRequest, ServerState};
use sync_core::store::{ConflictQuery, StoredDocument, WriteEffect};
use sync_core::{
    Action, ChangeOp, CollectionName, ConflictId, ConflictRecord, ConflictStatus, Document,
    JsonObject, Namespace, OpId, OpResult, OpStatus, Strategy,
};
use sync_diff::merge_patch;

use super::{Caller, JsonBody, QueryPairs};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::state::AppState;

const LIST_LIMIT_DEFAULT: usize = 100;
const LIST_LIMIT_MAX: usize = 1_000;

#[derive(Debug, Serialize)]
pub(crate) struct ConflictList {
    conflicts: Vec<ConflictRecord>,
}

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

pub(crate) async fn one(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<Json<ConflictRecord>, ApiError> {
    readable(&state, &principal, &id).await.map(Json)
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ResolveBody {
    #[serde(default)]
    strategy: Option<Strategy>,
    #[serde(default)]
    resolved_data: Option<JsonObject>,
    #[serde(default)]
    local_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Resolved {
    conflict: ConflictRecord,
    document: Document,
}

pub(crate) async fn resolve(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<ResolveBody>,
) -> Result<Json<Resolved>, ApiError> {
    let record = readable(&state, &principal, &id).await?;
    principal.check_write(&record.namespace)?;
    if record.status != ConflictStatus::Pending {
        return Err(ApiError::Conflict(format!(
            "conflict {:?} is already resolved",
            record.id.as_str()
        )));
    }
    let strategy = match (body.strategy, &body.resolved_data) {
        (Some(strategy), _) => strategy,
        (None, Some(_)) => Strategy::Manual,
        (None, None) => {
            return Err(ApiError::Invalid(
                "give a strategy, or resolvedData with the whole document".into(),
            ));
        }
    };
    let _ = body.local_id;
    let syncer = state.syncer();
    let key = record.key();
    // A deterministic opId: resolving twice (a retry) is a duplicate.
    let op_id = OpId::new(format!("resolve-{}", record.id))?;
    let stamp = syncer.now_hlc();
    syncer
        .commit_one(&key, |current: Option<&StoredDocument>| {
            let current = current.ok_or_else(|| {
                ApiError::NotFound(format!("the document {key} of the conflict is gone"))
            })?;
            let data = resolved_data(
                syncer,
                &record,
                current,
                strategy,
                body.resolved_data.as_ref(),
            )?;
            syncer.check_document(&data)?;
            let effect = match syncer.change_to(Some(current), data.clone(), false, stamp) {
                // Keeping the server's document still records the decision
                // as a change, so every client learns of it.
                WriteEffect::ResultOnly => WriteEffect::Change {
                    op: if current.document.deleted {
                        ChangeOp::Insert
                    } else {
                        ChangeOp::Update
                    },
                    delta: if current.document.deleted {
                        data.clone()
                    } else {
                        JsonObject::new()
                    },
                    data,
                    field_clocks: current.field_clocks.clone(),
                    timestamp: stamp,
                },
                effect => effect,
            };
            let mut result = OpResult::new(Action::Update, OpStatus::Success);
            result.op_id = Some(op_id.clone());
            result.server_id = Some(key.id.clone());
            result.conflict_id = Some(record.id.clone());
            result.strategy = Some(strategy);
            let mut write = crate::sync::server_write(
                op_id.clone(),
                key.clone(),
                current.document.version,
                effect,
                result,
                principal.user.clone(),
            );
            write.resolves = Some(record.id.clone());
            Ok(write)
        })
        .await?;
    let conflict = readable(&state, &principal, record.id.as_str()).await?;
    let document = syncer
        .store()
        .get(&key)
        .await?
        .map(|stored| stored.document)
        .ok_or_else(|| ApiError::NotFound(format!("no document {key}")))?;
    Ok(Json(Resolved { conflict, document }))
}

/// The whole document a resolution leaves.
fn resolved_data(
    syncer: &crate::sync::Syncer,
    record: &ConflictRecord,
    current: &StoredDocument,
    strategy: Strategy,
    given: Option<&JsonObject>,
) -> Result<JsonObject, ApiError> {
    if let Some(given) = given {
        return Ok(given.clone());
    }
    let server = &current.document.data;
    let client = &record.conflict_data.client_data;
    match strategy {
        Strategy::ServerWins => Ok(server.clone()),
        Strategy::ClientWins => Ok(merge_patch::apply_to_object(server, client)),
        Strategy::Merge | Strategy::Lww | Strategy::Custom => {
            let base = record
                .base_data
                .as_ref()
                .map_or(Base::Unknown, Base::Document);
            let outcome = syncer.engine().resolve(&ResolveRequest {
                key: &record.key(),
                base,
                server: ServerState {
                    data: server,
                    deleted: current.document.deleted,
                    field_clocks: &current.field_clocks,
                    updated_at: current.document.updated_at,
                },
                edit: ClientEdit::Update(client),
                client_time: syncer.now_hlc(),
                strategy: Some(strategy),
            });
            Ok(outcome.data)
        }
        Strategy::Manual => Err(ApiError::Invalid(
            "strategy manual needs resolvedData with the whole document".into(),
        )),
    }
}
