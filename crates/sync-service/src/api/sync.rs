//! Bulk sync: `POST /api/{collection}/bulk-sync` and its cross-collection
//! form `POST /v1/sync`. Operations apply in order, each failing alone;
//! with `"pull": true` the response also carries the changes after the
//! request's cursor in the collections and namespaces the request is about.

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sync_core::store::ChangeFilter;
use sync_core::{
    Action, Change, CollectionName, ConflictRecord, Cursor, DeviceId, DocId, Namespace, OpError,
    OpId, OpResult, Operation, RawChange, Seq, Strategy, Timestamp,
};

use super::{Caller, JsonBody, REQUEST_ID};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::metrics::Door;
use crate::state::{AppState, SyncRequestInfo, Transport};
use sync_engine::{BatchContext, EngineError, OpReport, SyncPoint};

const CHUNK_HEADER: HeaderName = HeaderName::from_static("x-sync-chunk");

/// Changes returned by one pull unless the request asks for fewer.
const PULL_LIMIT_DEFAULT: usize = 1_000;

/// A bulk-sync request, with the fields `docs/protocol.md` lists for bulk
/// sync and `POST /v1/sync`. Unknown fields (such as `chunkInfo`) are
/// ignored.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequest {
    /// The operations, each read as an `Operation` when it is applied (a
    /// bad one fails alone).
    #[serde(default)]
    #[schema(value_type = Vec<sync_core::Operation>)]
    pub operations: Vec<Value>,
    /// The time of the client's last sync.
    #[serde(default)]
    pub last_sync_timestamp: Option<Timestamp>,
    /// Where the client's view of the log ends.
    #[serde(default)]
    pub cursor: Option<String>,
    /// The sending device.
    #[serde(default)]
    pub device_id: Option<DeviceId>,
    /// A strategy for this request's conflicts, over the collection's.
    #[serde(default)]
    pub strategy: Option<Strategy>,
    /// Whether to return the changes after `cursor`.
    #[serde(default)]
    pub pull: bool,
    /// The most changes one pull returns.
    #[serde(default)]
    pub limit: Option<usize>,
    /// Pull scope of bulk sync: the namespace (default: those of the
    /// operations, or `default`).
    #[serde(default)]
    pub namespace: Option<Namespace>,
    /// Pull scope of `/v1/sync`: namespaces (default: every readable one).
    #[serde(default)]
    pub namespaces: Option<Vec<Namespace>>,
    /// Pull scope of `/v1/sync`: collections (default: all).
    #[serde(default)]
    pub collections: Option<Vec<CollectionName>>,
}

/// The answer to a sync request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SyncResponse {
    success: bool,
    results: Vec<OpResult>,
    conflicts: Vec<ConflictRecord>,
    errors: Vec<OpError>,
    sync_timestamp: Timestamp,
    cursor: Option<Cursor>,
    // Passed on as stored: the documents are not read here.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Change>>)]
    changes: Option<Vec<RawChange>>,
    has_more: bool,
}

#[utoipa::path(post, path = "/api/{collection}/bulk-sync", tag = "sync", security((), ("bearer" = []), ("token" = [])),
    params(("collection" = sync_core::CollectionName, Path, description = "The collection every operation belongs to"),
        ("X-Sync-Chunk" = Option<String>, Header, description = "`n/total` of a chunked sync, echoed")),
    request_body = SyncRequest,
    responses((status = 200, description = "Each operation's result, the conflicts, the errors and (with `pull`) the changes after the cursor", body = SyncResponse), crate::openapi::CursorErrors))]
pub(crate) async fn bulk_sync(
    State(state): State<AppState>,
    Path(collection): Path<String>,
    Caller(principal): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SyncRequest>,
) -> Result<Response, ApiError> {
    let collection = CollectionName::new(collection)?;
    handle(
        &state,
        &principal,
        &headers,
        Some(collection),
        request,
        Transport::BulkSync,
    )
    .await
}

#[utoipa::path(post, path = "/v1/sync", tag = "sync", security((), ("bearer" = []), ("token" = [])),
    params(("X-Sync-Chunk" = Option<String>, Header, description = "`n/total` of a chunked sync, echoed")),
    request_body = SyncRequest,
    responses((status = 200, description = "Each operation's result, the conflicts, the errors and (with `pull`) the changes after the cursor", body = SyncResponse), crate::openapi::CursorErrors))]
pub(crate) async fn sync(
    State(state): State<AppState>,
    Caller(principal): Caller,
    headers: HeaderMap,
    JsonBody(request): JsonBody<SyncRequest>,
) -> Result<Response, ApiError> {
    handle(&state, &principal, &headers, None, request, Transport::Sync).await
}

async fn handle(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    collection: Option<CollectionName>,
    request: SyncRequest,
    transport: Transport,
) -> Result<Response, ApiError> {
    let started = Instant::now();
    let chunk = chunk_header(headers)?;
    let outcome = run(state, principal, headers, collection, request, transport).await;
    let ok = matches!(&outcome, Ok(response) if response.success);
    state
        .metrics()
        .record_sync(Door::Http, started.elapsed(), ok);
    let mut response = axum::Json(outcome?).into_response();
    if let Some(chunk) = chunk {
        response.headers_mut().insert(CHUNK_HEADER, chunk);
    }
    Ok(response)
}

/// The `X-Sync-Chunk: n/total` of a sync sent in chunks, checked so that
/// it can be echoed.
fn chunk_header(headers: &HeaderMap) -> Result<Option<HeaderValue>, ApiError> {
    let Some(value) = headers.get(&CHUNK_HEADER) else {
        return Ok(None);
    };
    let valid = value.to_str().ok().and_then(|text| {
        let (n, total) = text.split_once('/')?;
        let (n, total) = (
            n.trim().parse::<u64>().ok()?,
            total.trim().parse::<u64>().ok()?,
        );
        (n >= 1 && n <= total).then_some(())
    });
    match valid {
        Some(()) => Ok(Some(value.clone())),
        None => Err(ApiError::Invalid(
            "X-Sync-Chunk must be `n/total` with 1 <= n <= total".into(),
        )),
    }
}

async fn run(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    collection: Option<CollectionName>,
    request: SyncRequest,
    transport: Transport,
) -> Result<SyncResponse, ApiError> {
    let syncer = state.syncer();
    let store = syncer.store();
    state.limits().check_operations(request.operations.len())?;
    let now = syncer.clock().now();
    if let Some(device) = &request.device_id {
        state.devices().seen(principal, device, now).await?;
    }
    let cursor = request
        .cursor
        .as_deref()
        .map(|text| parse_cursor(text, store.log_id()))
        .transpose()?;
    let sync_point = match (cursor, request.last_sync_timestamp) {
        (Some(cursor), _) => SyncPoint::Seq(cursor.seq()),
        (None, Some(time)) => SyncPoint::Time(time),
        (None, None) => SyncPoint::None,
    };
    // Operations that cannot be read are kept, so that their results still
    // carry the ids the client matches them by.
    let mut unreadable: Vec<(usize, Value)> = Vec::new();
    let operations: Vec<Result<Operation, EngineError>> = request
        .operations
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            Operation::deserialize(&value).map_err(|error| {
                unreadable.push((index, value));
                EngineError::Invalid(format!("invalid operation: {error}"))
            })
        })
        .collect();
    let request_id = headers.get(&REQUEST_ID).and_then(|v| v.to_str().ok());
    state.admit(&SyncRequestInfo {
        principal,
        device_id: request.device_id.as_ref(),
        transport,
        request_id,
        operations: operations
            .iter()
            .filter_map(|op| op.as_ref().ok())
            .collect(),
    })?;
    let op_namespaces: BTreeSet<Namespace> = operations
        .iter()
        .filter_map(|op| op.as_ref().ok())
        .map(|op| op.namespace.clone().unwrap_or_default())
        .collect();
    // The pull is checked before anything is applied: a request refused
    // for what it asks to read must not have written.
    let scope = if request.pull {
        Some(match &collection {
            Some(collection) => {
                PullScope::bulk(principal, collection, request.namespace, op_namespaces)?
            }
            None => PullScope::sync(principal, request.namespaces, request.collections)?,
        })
    } else {
        None
    };
    let context = BatchContext {
        caller: principal,
        device_id: request.device_id.clone(),
        collection: collection.as_ref(),
        strategy: request.strategy,
        sync_point,
    };
    // The request waits, under load, as its most urgent operation.
    let priority = operations
        .iter()
        .filter_map(|op| op.as_ref().ok())
        .map(|op| op.priority)
        .min()
        .unwrap_or_default();
    let permit = state.enter_writes(priority).await;
    let applied = syncer.apply(&context, operations).await;
    drop(permit);
    let mut reports = applied?;
    for (index, value) in &unreadable {
        if let Some(report) = reports.get_mut(*index) {
            identify(report, value);
        }
    }

    let mut results = Vec::with_capacity(reports.len());
    let mut conflicts: Vec<ConflictRecord> = Vec::new();
    let mut errors = Vec::new();
    for report in reports {
        results.push(report.result);
        // An operation and its duplicate in the same request share one
        // conflict: it is listed once.
        if let Some(conflict) = report.conflict
            && !conflicts.iter().any(|listed| listed.id == conflict.id)
        {
            conflicts.push(conflict);
        }
        errors.extend(report.error);
    }
    let mut response = SyncResponse {
        success: errors.is_empty(),
        results,
        conflicts,
        errors,
        sync_timestamp: syncer.clock().now(),
        cursor,
        changes: None,
        has_more: false,
    };
    if let Some(scope) = scope {
        let own: HashSet<OpId> = response
            .results
            .iter()
            .filter_map(|result| result.op_id.clone())
            .collect();
        let limit = request
            .limit
            .unwrap_or(PULL_LIMIT_DEFAULT)
            .clamp(1, state.limits().changes_per_page_max);
        let after = cursor.map_or(Seq::ZERO, Cursor::seq);
        let page = store.raw_changes_after(after, &scope.filter, limit).await?;
        let since = if cursor.is_none() {
            request.last_sync_timestamp
        } else {
            None
        };
        let changes = page
            .changes
            .into_iter()
            .filter(|change| !own.contains(&change.op_id))
            .filter(|change| since.is_none_or(|time| change.timestamp.timestamp() > time))
            .collect();
        response.changes = Some(changes);
        response.cursor = Some(Cursor::new(store.log_id(), page.last_seq));
        response.has_more = page.has_more;
        if let Some(device) = &request.device_id {
            state.devices().synced_to(device, page.last_seq);
        }
    } else if let (Some(device), Some(cursor)) = (&request.device_id, cursor) {
        state.devices().synced_to(device, cursor.seq());
    }
    Ok(response)
}

/// Fills in the ids of an operation that could not be read from what of
/// them is readable: its `opId`, `localId`, document id and action.
fn identify(report: &mut OpReport, value: &Value) {
    let text = |key: &str| value.get(key).and_then(Value::as_str);
    let op_id = text("opId").and_then(|id| OpId::new(id).ok());
    let local_id = text("localId")
        .filter(|id| {
            let chars = id.chars().count();
            (1..=Operation::LOCAL_ID_MAX_CHARS).contains(&chars)
                && !id.chars().any(char::is_control)
        })
        .map(str::to_owned);
    let server_id = text("id")
        .or_else(|| text("serverId"))
        .and_then(|id| DocId::new(id).ok());
    if let Some(action) = value
        .get("action")
        .and_then(|action| Action::deserialize(action).ok())
    {
        report.result.action = action;
    }
    report.result.op_id = report.result.op_id.take().or(op_id);
    report.result.local_id = report.result.local_id.take().or(local_id);
    report.result.server_id = report.result.server_id.take().or(server_id);
    if let Some(error) = &mut report.error {
        error.op_id = report.result.op_id.clone();
        error.local_id = report.result.local_id.clone();
    }
}

/// A cursor of this store's log. One of another log (a wiped or foreign
/// store) is expired: the client must start over.
pub(crate) fn parse_cursor(text: &str, log: sync_core::LogId) -> Result<Cursor, ApiError> {
    let cursor = Cursor::parse(text)?;
    if cursor.log() != log {
        return Err(ApiError::CursorExpired(
            "the cursor belongs to another change log; sync again without it".into(),
        ));
    }
    Ok(cursor)
}

/// Which part of the log a reader may and wants to see.
#[derive(Debug, Clone)]
pub(crate) struct PullScope {
    /// The filter for `changes_after`.
    pub(crate) filter: ChangeFilter,
}

impl PullScope {
    /// Bulk sync: one collection, in the request's namespace or those its
    /// operations name.
    fn bulk(
        principal: &Principal,
        collection: &CollectionName,
        namespace: Option<Namespace>,
        op_namespaces: BTreeSet<Namespace>,
    ) -> Result<PullScope, ApiError> {
        let namespaces = match namespace {
            Some(namespace) => BTreeSet::from([namespace]),
            None if op_namespaces.is_empty() => BTreeSet::from([Namespace::default()]),
            None => op_namespaces,
        };
        for namespace in &namespaces {
            principal.check_read(namespace)?;
        }
        Ok(PullScope {
            filter: ChangeFilter {
                namespaces: Some(namespaces),
                collections: Some(BTreeSet::from([collection.clone()])),
                skip_branches: true,
            },
        })
    }

    /// `/v1/sync` and the change feed: the named namespaces (each must be
    /// readable) or every readable one, and the named collections (branch
    /// addresses included) or every collection, branches left out.
    pub(crate) fn sync(
        principal: &Principal,
        namespaces: Option<Vec<Namespace>>,
        collections: Option<Vec<CollectionName>>,
    ) -> Result<PullScope, ApiError> {
        let namespaces = match namespaces {
            Some(named) => {
                for namespace in &named {
                    principal.check_read(namespace)?;
                }
                Some(named.into_iter().collect())
            }
            None => principal.readable(),
        };
        Ok(PullScope {
            filter: ChangeFilter {
                namespaces,
                collections: collections.map(|c| c.into_iter().collect()),
                skip_branches: true,
            },
        })
    }
}
