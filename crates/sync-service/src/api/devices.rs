//! The device registry: register (`POST /v1/devices`), list the caller's
//! devices with their presence (`GET /v1/devices`), unregister
//! (`DELETE /v1/devices/{id}`). The device info: name, platform, app
//! version and capabilities (the collections it syncs, real time, bandwidth).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use sync_core::store::{DeviceCapabilities, DeviceRecord};
use sync_core::{DeviceId, Timestamp, UserId};

use super::{Caller, JsonBody, QueryPairs};
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Registration {
    #[serde(default)]
    device_id: Option<DeviceId>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    platform: String,
    #[serde(default)]
    app_version: String,
    #[serde(default)]
    capabilities: DeviceCapabilities,
}

/// A device as the API shows it: the record plus whether it is online.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DeviceView {
    #[serde(flatten)]
    record: DeviceRecord,
    online: bool,
}

#[utoipa::path(post, path = "/v1/devices", tag = "devices", security((), ("bearer" = []), ("token" = [])),
    request_body = Registration,
    responses((status = 201, description = "The device, registered to the caller", body = DeviceView), crate::openapi::Errors))]
pub(crate) async fn register(
    State(state): State<AppState>,
    Caller(principal): Caller,
    JsonBody(registration): JsonBody<Registration>,
) -> Result<(StatusCode, Json<DeviceView>), ApiError> {
    let now = state.syncer().clock().now();
    let record = DeviceRecord {
        device_id: registration.device_id.unwrap_or_else(DeviceId::generate),
        user: principal.user.clone(),
        name: registration.name,
        platform: registration.platform,
        app_version: registration.app_version,
        capabilities: registration.capabilities,
        registered_at: now,
        last_seen: now,
    };
    let record = state.devices().register(&principal, record, now).await?;
    let online = state.devices().is_online(&record.device_id);
    Ok((StatusCode::CREATED, Json(DeviceView { record, online })))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct DeviceList {
    devices: Vec<DeviceView>,
}

#[utoipa::path(get, path = "/v1/devices", tag = "devices", security((), ("bearer" = []), ("token" = [])),
    params(("user" = Option<String>, Query, description = "Another user's devices (admin only)")),
    responses((status = 200, description = "The devices with their presence", body = DeviceList), crate::openapi::Errors))]
pub(crate) async fn list(
    State(state): State<AppState>,
    Caller(principal): Caller,
    query: QueryPairs,
) -> Result<Json<DeviceList>, ApiError> {
    // An admin may list another user's devices; everyone else sees their own.
    let user = match query.first("user") {
        Some(user) if user != principal.user.as_str() => {
            principal.check_admin()?;
            UserId::new(user)?
        }
        _ => principal.user.clone(),
    };
    let devices = state.syncer().store().list_devices(&user).await?;
    Ok(Json(DeviceList {
        devices: devices
            .into_iter()
            .map(|record| DeviceView {
                online: state.devices().is_online(&record.device_id),
                record,
            })
            .collect(),
    }))
}

#[utoipa::path(delete, path = "/v1/devices/{id}", tag = "devices", security((), ("bearer" = []), ("token" = [])),
    params(("id" = sync_core::DeviceId, Path, description = "The device's id")),
    responses((status = 204, description = "Unregistered"), crate::openapi::Errors))]
pub(crate) async fn unregister(
    State(state): State<AppState>,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = DeviceId::new(id)?;
    state.devices().unregister(&principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// When a device counts as active in the stats: seen within this long.
pub(crate) const ACTIVE_WITHIN_MS: u64 = 15 * 60 * 1000;

/// Whether `record` was seen within [`ACTIVE_WITHIN_MS`] of `now`.
pub(crate) fn is_active(record: &DeviceRecord, now: Timestamp) -> bool {
    now.as_millis().saturating_sub(record.last_seen.as_millis()) <= ACTIVE_WITHIN_MS
}
