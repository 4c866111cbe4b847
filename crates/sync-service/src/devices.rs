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

#[derive(Debug, Default)]
struct State {
    owners: HashMap<DeviceId, UserId>,
    last_written_ms: HashMap<DeviceId, u64>,
    online: HashMap<DeviceId, usize>,
    cursors: HashMap<DeviceId, Seq>,
    unacknowledged: HashMap<DeviceId, usize>,
    /// The declared bandwidth of each device online (0 for none), shared
    /// with its connections' writers.
    bandwidth: HashMap<DeviceId, Arc<AtomicU64>>,
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
            (
                state.owners.get(device).cloned(),
                state.last_written_ms.get(device).copied(),
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
                self.state().owners.insert(device.clone(), record.user);
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
        let mut state = self.state();
        state.owners.insert(device.clone(), principal.user.clone());
        state.last_written_ms.insert(device.clone(), now_ms);
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
        if let Some(cell) = state.bandwidth.get(&record.device_id) {
            let limit = record.capabilities.bandwidth_limit.unwrap_or(0);
            cell.store(limit, Ordering::Relaxed);
        }
        state
            .owners
            .insert(record.device_id.clone(), principal.user.clone());
        state
            .last_written_ms
            .insert(record.device_id.clone(), now.as_millis());
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
                if let Some(cell) = state.bandwidth.get(device) {
                    cell.store(0, Ordering::Relaxed);
                }
                state.owners.remove(device);
                state.last_written_ms.remove(device);
                state.cursors.remove(device);
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
        *self.state().online.entry(device.clone()).or_default() += 1;
    }

    /// A WebSocket connection of `device` closed.
    pub fn disconnected(&self, device: &DeviceId) {
        let mut state = self.state();
        if let Some(count) = state.online.get_mut(device) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.online.remove(device);
                state.unacknowledged.remove(device);
                state.bandwidth.remove(device);
            }
        }
    }

    /// The declared bandwidth of `device` (bytes/s, 0 for none), as a cell
    /// its connections read before each frame; a later registration of the
    /// device updates it. Read from the store the first time.
    pub async fn bandwidth(&self, device: &DeviceId) -> Result<Arc<AtomicU64>, ApiError> {
        if let Some(cell) = self.state().bandwidth.get(device) {
            return Ok(Arc::clone(cell));
        }
        let limit = self
            .store
            .get_device(device)
            .await?
            .and_then(|record| record.capabilities.bandwidth_limit)
            .unwrap_or(0);
        let mut state = self.state();
        let cell = state
            .bandwidth
            .entry(device.clone())
            .or_insert_with(|| Arc::new(AtomicU64::new(limit)));
        Ok(Arc::clone(cell))
    }

    /// Whether `device` holds a WebSocket connection to this node.
    pub fn is_online(&self, device: &DeviceId) -> bool {
        self.state().online.contains_key(device)
    }

    /// How many devices are online.
    pub fn online_count(&self) -> usize {
        self.state().online.len()
    }

    /// Notes the cursor `device` has synced to.
    pub fn synced_to(&self, device: &DeviceId, seq: Seq) {
        let mut state = self.state();
        let entry = state.cursors.entry(device.clone()).or_default();
        *entry = (*entry).max(seq);
    }

    /// The cursor `device` last synced to on this node.
    pub fn cursor(&self, device: &DeviceId) -> Option<Seq> {
        self.state().cursors.get(device).copied()
    }

    /// Sets how many pushed changes wait in `device`'s send queues.
    pub fn set_unacknowledged(&self, device: &DeviceId, count: usize) {
        self.state().unacknowledged.insert(device.clone(), count);
    }

    /// How many pushed changes wait in `device`'s send queues.
    pub fn unacknowledged(&self, device: &DeviceId) -> usize {
        self.state()
            .unacknowledged
            .get(device)
            .copied()
            .unwrap_or_default()
    }

    /// How many pushed changes wait in the send queues of every device.
    pub fn unacknowledged_total(&self) -> usize {
        self.state().unacknowledged.values().sum()
    }

    /// The lowest cursor of the devices online: what compaction must keep.
    pub fn low_water(&self) -> Option<Seq> {
        let state = self.state();
        state
            .online
            .keys()
            .filter_map(|device| state.cursors.get(device))
            .min()
            .copied()
    }
}

fn device_forbidden(device: &DeviceId) -> ApiError {
    ApiError::Forbidden(format!(
        "device {:?} belongs to another user",
        device.as_str()
    ))
}
