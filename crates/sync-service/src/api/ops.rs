//! Operator endpoints: sync analytics (`/v1/stats`, `/v1/stats/devices`),
//! Prometheus metrics (`/metrics`), liveness and readiness.
//!
//! The global figures aggregate every namespace, so in `jwt` mode they are
//! for admin tokens only; per-device stats show the caller's own devices
//! (an admin sees everyone's with `?user=`).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sync_core::store::{DeviceStats, StoreStats};
use sync_core::{DeviceId, OpStatus, Seq, Strategy, Timestamp, UserId};

use super::{Caller, QueryPairs};
use crate::error::ApiError;
use crate::metrics::{self, Scrape, SyncSummary};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stats {
    #[serde(flatten)]
    syncs: SyncSummary,
    operations: BTreeMap<OpStatus, u64>,
    conflicts_by_strategy: BTreeMap<Strategy, u64>,
    active_connections: u64,
    active_subscriptions: usize,
    devices_online: usize,
    documents: u64,
    head: Seq,
}

#[utoipa::path(get, path = "/v1/stats", tag = "operations", security((), ("bearer" = []), ("token" = [])),
    responses((status = 200, description = "Sync analytics of the node and the store (admin)", body = Stats), crate::openapi::Errors))]
pub(crate) async fn stats(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Json<Stats>, ApiError> {
    principal.check_admin()?;
    let store = stats_of(&state).await?;
    Ok(Json(Stats {
        syncs: state.metrics().summary(),
        operations: store.operations,
        conflicts_by_strategy: store.conflicts,
        active_connections: state.metrics().connections(),
        active_subscriptions: state.realtime().subscription_count(),
        devices_online: state.devices().online_count(),
        documents: store.documents,
        head: store.head,
    }))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeviceStatsView {
    device_id: DeviceId,
    name: String,
    online: bool,
    active: bool,
    last_seen: Timestamp,
    last_sync: Option<Timestamp>,
    /// Changes in the log after the device's last cursor, when known.
    lag: Option<u64>,
    /// Pushed changes waiting in its send queues on this node.
    unacknowledged_pushes: usize,
    /// The bandwidth it declared (bytes/s), which pushes to it are paced
    /// to; absent when it declared none.
    #[serde(skip_serializing_if = "Option::is_none")]
    bandwidth_limit: Option<u64>,
    operations: BTreeMap<OpStatus, u64>,
    conflicts: u64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceStatsList {
    devices: Vec<DeviceStatsView>,
}

#[utoipa::path(get, path = "/v1/stats/devices", tag = "operations", security((), ("bearer" = []), ("token" = [])),
    params(("user" = Option<String>, Query, description = "Another user's devices (admin only)")),
    responses((status = 200, description = "Per device: last sync, lag, unacknowledged pushes, operations, conflicts", body = DeviceStatsList), crate::openapi::Errors))]
pub(crate) async fn device_stats(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: QueryPairs,
) -> Result<Json<DeviceStatsList>, ApiError> {
    let user = match query.first("user") {
        Some(user) if user != principal.user.as_str() => {
            principal.check_admin()?;
            UserId::new(user)?
        }
        _ => principal.user.clone(),
    };
    let store = state.syncer().store();
    let records = store.list_devices(&user).await?;
    let counters = store.stats().await?;
    let now = state.syncer().clock().now();
    let devices = records
        .into_iter()
        .map(|record| {
            let device = &record.device_id;
            let counts = counters
                .devices
                .get(device)
                .cloned()
                .unwrap_or(DeviceStats::default());
            DeviceStatsView {
                online: state.devices().is_online(device),
                active: super::devices::is_active(&record, now),
                lag: state
                    .devices()
                    .cursor(device)
                    .map(|seq| counters.head.get().saturating_sub(seq.get())),
                unacknowledged_pushes: state.devices().unacknowledged(device),
                bandwidth_limit: record.capabilities.bandwidth_limit,
                last_seen: record.last_seen,
                last_sync: counts.last_sync,
                operations: counts.operations,
                conflicts: counts.conflicts,
                name: record.name,
                device_id: record.device_id,
            }
        })
        .collect();
    Ok(Json(DeviceStatsList { devices }))
}

#[utoipa::path(get, path = "/metrics", tag = "operations", security((), ("bearer" = []), ("token" = [])),
    responses((status = 200, description = "The node's metrics in the Prometheus text format (admin)", body = String, content_type = "text/plain; version=0.0.4; charset=utf-8"), crate::openapi::Errors))]
pub(crate) async fn metrics(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> Result<Response, ApiError> {
    principal.check_admin()?;
    let store = stats_of(&state).await?;
    let text = state.metrics().prometheus(Scrape {
        store: &store,
        devices_online: state.devices().online_count(),
        subscriptions: state.realtime().subscription_count(),
        queued_pushes: state.devices().unacknowledged_total(),
        writes: state.write_gate().load(),
    });
    Ok(([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

/// The store's counters, with the operations nothing was written for
/// (duplicates and errors, counted by this node) added to those by status.
async fn stats_of(state: &AppState) -> Result<StoreStats, ApiError> {
    let mut stats = state.syncer().store().stats().await?;
    for (status, count) in state.syncer().unwritten_counts() {
        *stats.operations.entry(status).or_default() += count;
    }
    Ok(stats)
}

#[utoipa::path(get, path = "/health", tag = "operations",
    responses((status = 200, description = "The process serves requests", body = Object, example = json!({"status": "ok"}))))]
pub(crate) async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/ready", tag = "operations",
    responses(
        (status = 200, description = "A write could commit now", body = Object, example = json!({"status": "ready", "head": 8})),
        (status = 503, description = "It could not, and why", body = Object,
            headers(("Retry-After" = u64, description = "Seconds to wait before asking again")),
            example = json!({"status": "unavailable", "reason": "the store is closed",
                             "error": {"code": "internal", "message": "the store failed; the request may be retried"}}))))]
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let store = state.syncer().store();
    let checked = async {
        let head = store.head().await?;
        store.check_writable().await?;
        Ok::<_, ApiError>(head)
    };
    match checked.await {
        Ok(head) => Json(serde_json::json!({ "status": "ready", "head": head })).into_response(),
        Err(error) => {
            if let ApiError::Store(cause) = &error {
                tracing::warn!(%cause, "not ready");
            }
            let reason = match &error {
                ApiError::Store(cause) => cause.to_string(),
                other => other.to_string(),
            };
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "unavailable",
                    "reason": reason,
                    "error": error.body(),
                })),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(2u64));
            response
        }
    }
}
