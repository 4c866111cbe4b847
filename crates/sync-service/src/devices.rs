//! Devices: ownership checks, registration on first sight, last-seen and
//! online presence, the cursor each device last synced to (its lag
//! behind the log head in the stats), and the bandwidth each device online
//! declared, which its connections are paced to.
//!
//! A device belongs to the user who registered it; any other user naming
//! its id is refused. Presence is in memory: a device is online while it
//! holds a WebSocket connection to this node.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use sync_core::store::{DeviceCapabilities, DeviceRecord};
use sync_core::{DeviceId, Seq, SyncStore, Timestamp, UserId};

use crate::auth::Principal;
use crate::error::ApiError;

/// How often a device's `lastSeen` is written back to the store at most.
const LAST_SEEN_WRITE_INTERVAL_MS: u64 = 30_000;

/// What this node knows of one device: one entry per device, since a node
/// may hold tens of thousands of them.
#[derive(Debug, Default)]
struct DeviceState {
    /// The user it belongs to, once seen.
    owner: Option<UserId>,
    /// When its `lastSeen` was last written.
    last_written_ms: Option<u64>,
    /// Its WebSocket connections to this node.
    online: usize,
    /// The cursor it last synced to.
    cursor: Option<Seq>,
    /// Pushed changes waiting in its send queues.
    unacknowledged: usize,
    /// Its declared bandwidth while online (0 for none), shared with its
    /// connections' writers.
    bandwidth: Option<Arc<AtomicU64>>,
}

impl DeviceState {
    /// Whether it holds nothing worth keeping.
    fn is_empty(&self) -> bool {
        self.owner.is_none()
            && self.last_written_ms.is_none()
            && self.online == 0
            && self.cursor.is_none()
            && self.unacknowledged == 0
            && self.bandwidth.is_none()
    }
}

#[derive(Debug, Default)]
struct State {
    devices: HashMap<DeviceId, DeviceState>,
}

impl State {
    fn device(&mut self, device: &DeviceId) -> &mut DeviceState {
        self.devices.entry(device.clone()).or_default()
    }

    fn get(&self, device: &DeviceId) -> Option<&DeviceState> {
        self.devices.get(device)
    }

    fn forget_if_empty(&mut self, device: &DeviceId) {
        if self.devices.get(device).is_some_and(DeviceState::is_empty) {
            self.devices.remove(device);
        }
    }

    /// Notes that `device` belongs to `owner`, and when its `lastSeen` was
    /// written if it just was.
    fn known(&mut self, device: &DeviceId, owner: UserId, written_ms: Option<u64>) {
        let state = self.device(device);
        state.owner = Some(owner);
        if written_ms.is_some() {
            state.last_written_ms = written_ms;
        }
    }
}

/// The device registry's live side.
pub struct Devices {
    store: Arc<dyn SyncStore>,
    state: Mutex<State>,
}

impl std::fmt::Debug for Devices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Devices").finish_non_exhaustive()
    }
}

impl Devices {
    /// Devices registered in `store`.
    pub fn new(store: Arc<dyn SyncStore>) -> Devices {
        Devices {
            store,
            state: Mutex::new(State::default()),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Checks that `device` belongs to the caller, registering it on first
    /// sight, and notes that it was seen at `now`.
    pub async fn seen(
        &self,
        principal: &Principal,
        device: &DeviceId,
        now: Timestamp,
    ) -> Result<(), ApiError> {
        let now_ms = now.as_millis();
        let (known_owner, written) = {
            let state = self.state();
            let known = state.get(device);
            (
                known.and_then(|known| known.owner.clone()),
                known.and_then(|known| known.last_written_ms),
            )
        };
        if let Some(owner) = &known_owner {
            if owner != &principal.user {
                return Err(device_forbidden(device));
            }
            if written.is_some_and(|at| now_ms.saturating_sub(at) < LAST_SEEN_WRITE_INTERVAL_MS) {
                return Ok(());
            }
        }
        let record = match self.store.get_device(device).await? {
            Some(record) if record.user != principal.user => {
                self.state().known(device, record.user, None);
                return Err(device_forbidden(device));
            }
            Some(mut record) => {
                record.last_seen = now;
                record
            }
            None => DeviceRecord {
                device_id: device.clone(),
                user: principal.user.clone(),
                name: String::new(),
                platform: String::new(),
                app_version: String::new(),
                capabilities: DeviceCapabilities::default(),
                registered_at: now,
                last_seen: now,
            },
        };
        self.store.put_device(record).await?;
        self.state()
            .known(device, principal.user.clone(), Some(now_ms));
        Ok(())
    }

    /// Registers or updates a device of the caller.
    pub async fn register(
        &self,
        principal: &Principal,
        mut record: DeviceRecord,
        now: Timestamp,
    ) -> Result<DeviceRecord, ApiError> {
        if let Some(existing) = self.store.get_device(&record.device_id).await? {
            if existing.user != principal.user {
                return Err(device_forbidden(&record.device_id));
            }
            record.registered_at = existing.registered_at;
        } else {
            record.registered_at = now;
        }
        record.user = principal.user.clone();
        record.last_seen = now;
        self.store.put_device(record.clone()).await?;
        let mut state = self.state();
        state.known(
            &record.device_id,
            principal.user.clone(),
            Some(now.as_millis()),
        );
        if let Some(cell) = &state.device(&record.device_id).bandwidth {
            let limit = record.capabilities.bandwidth_limit.unwrap_or(0);
            cell.store(limit, Ordering::Relaxed);
        }
        Ok(record)
    }

    /// Removes a device of the caller (an admin may remove any).
    pub async fn unregister(
        &self,
        principal: &Principal,
        device: &DeviceId,
    ) -> Result<(), ApiError> {
        match self.store.get_device(device).await? {
            Some(record) if record.user == principal.user || principal.admin => {
                self.store.remove_device(device).await?;
                let mut state = self.state();
                let known = state.device(device);
                if let Some(cell) = &known.bandwidth {
                    cell.store(0, Ordering::Relaxed);
                }
                known.owner = None;
                known.last_written_ms = None;
                known.cursor = None;
                state.forget_if_empty(device);
                Ok(())
            }
            _ => Err(ApiError::NotFound(format!(
                "no device {:?}",
                device.as_str()
            ))),
        }
    }

    /// A WebSocket connection of `device` opened.
    pub fn connected(&self, device: &DeviceId) {
        self.state().device(device).online += 1;
    }

    /// A WebSocket connection of `device` closed.
    pub fn disconnected(&self, device: &DeviceId) {
        let mut state = self.state();
        let Some(known) = state.devices.get_mut(device) else {
            return;
        };
        known.online = known.online.saturating_sub(1);
        if known.online == 0 {
            known.unacknowledged = 0;
            known.bandwidth = None;
            state.forget_if_empty(device);
        }
    }

    /// The declared bandwidth of `device` (bytes/s, 0 for none), as a cell
    /// its connections read before each frame; a later registration of the
    /// device updates it. Read from the store the first time.
    pub async fn bandwidth(&self, device: &DeviceId) -> Result<Arc<AtomicU64>, ApiError> {
        if let Some(cell) = self
            .state()
            .get(device)
            .and_then(|known| known.bandwidth.clone())
        {
            return Ok(cell);
        }
        let limit = self
            .store
            .get_device(device)
            .await?
            .and_then(|record| record.capabilities.bandwidth_limit)
            .unwrap_or(0);
        let mut state = self.state();
        let cell = state
            .device(device)
            .bandwidth
            .get_or_insert_with(|| Arc::new(AtomicU64::new(limit)));
        Ok(Arc::clone(cell))
    }

    /// Whether `device` holds a WebSocket connection to this node.
    pub fn is_online(&self, device: &DeviceId) -> bool {
        self.state()
            .get(device)
            .is_some_and(|known| known.online > 0)
    }

    /// How many devices are online.
    pub fn online_count(&self) -> usize {
        self.state()
            .devices
            .values()
            .filter(|known| known.online > 0)
            .count()
    }

    /// Notes the cursor `device` has synced to.
    pub fn synced_to(&self, device: &DeviceId, seq: Seq) {
        let mut state = self.state();
        let cursor = &mut state.device(device).cursor;
        *cursor = (*cursor).max(Some(seq));
    }

    /// The cursor `device` last synced to on this node.
    pub fn cursor(&self, device: &DeviceId) -> Option<Seq> {
        self.state().get(device).and_then(|known| known.cursor)
    }

    /// Sets how many pushed changes wait in `device`'s send queues.
    pub fn set_unacknowledged(&self, device: &DeviceId, count: usize) {
        let mut state = self.state();
        state.device(device).unacknowledged = count;
        state.forget_if_empty(device);
    }

    /// How many pushed changes wait in `device`'s send queues.
    pub fn unacknowledged(&self, device: &DeviceId) -> usize {
        self.state()
            .get(device)
            .map_or(0, |known| known.unacknowledged)
    }

    /// How many pushed changes wait in the send queues of every device.
    pub fn unacknowledged_total(&self) -> usize {
        self.state()
            .devices
            .values()
            .map(|known| known.unacknowledged)
            .sum()
    }

    /// The lowest cursor of the devices online: what compaction must keep.
    pub fn low_water(&self) -> Option<Seq> {
        self.state()
            .devices
            .values()
            .filter(|known| known.online > 0)
            .filter_map(|known| known.cursor)
            .min()
    }
}

fn device_forbidden(device: &DeviceId) -> ApiError {
    ApiError::Forbidden(format!(
        "device {:?} belongs to another user",
        device.as_str()
    ))
}
