//! The simulated server: the real write path (`sync_engine::Syncer`)
//! over a real `SledStore` in a temporary directory, with an injected
//! `ManualClock`. A crash drops the syncer (its HLC and counters are
//! memory) and closes the store; the restart reopens it from disk.

use std::collections::BTreeMap;
use std::sync::Arc;

use sync_conflict::{CollectionConfig, ConflictConfig, ConflictEngine};
use sync_core::{
    Clock, DeviceId, HlcClock, ManualClock, NodeId, OpId, OpResult, Operation, Strategy, SyncStore,
};
use sync_engine::FullAccess;
use sync_engine::{BatchContext, OpReport, SyncPoint, Syncer};
use sync_store::{Durability, SledStore, StoreConfig};

/// The collections of the simulation, one per strategy.
pub const COLLECTIONS: [(&str, Strategy); 5] = [
    ("merge", Strategy::Merge),
    ("lww", Strategy::Lww),
    ("server_wins", Strategy::ServerWins),
    ("client_wins", Strategy::ClientWins),
    ("manual", Strategy::Manual),
];

/// The namespaces of the simulation.
pub const NAMESPACES: [&str; 2] = ["ns-a", "ns-b"];

/// The largest document the server accepts (the default limit).
const DOCUMENT_BYTES_MAX: usize = 256 * 1024;

/// The conflict engine with one collection per strategy.
fn engine() -> ConflictEngine {
    let collections = COLLECTIONS
        .iter()
        .map(|(name, strategy)| {
            (
                (*name).to_owned(),
                CollectionConfig::with_strategy(*strategy),
            )
        })
        .collect();
    ConflictEngine::new(ConflictConfig {
        default: CollectionConfig::default(),
        collections,
    })
}

/// The server node.
pub(crate) struct Server {
    dir: tempfile::TempDir,
    /// The server's wall clock.
    pub(crate) clock: Arc<ManualClock>,
    store: Option<Arc<SledStore>>,
    syncer: Option<Syncer>,
    caller: FullAccess,
    /// Every result the server answered with an acknowledged status
    /// (success, merged, duplicate), first one per opId: whether or not
    /// the answer reached the client, these must be durable.
    pub(crate) acknowledged: BTreeMap<OpId, OpResult>,
}

impl Server {
    /// A server over a fresh store in a new temporary directory.
    pub(crate) fn start(wall_ms: u64) -> Result<Server, String> {
        let dir = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
        let mut server = Server {
            dir,
            clock: Arc::new(ManualClock::new(wall_ms)),
            store: None,
            syncer: None,
            caller: FullAccess {
                user: sync_core::UserId::anonymous(),
            },
            acknowledged: BTreeMap::new(),
        };
        server.open()?;
        Ok(server)
    }

    fn open(&mut self) -> Result<(), String> {
        let config = StoreConfig {
            durability: Durability::Os,
            ..StoreConfig::default()
        };
        // `SledStore::open` waits for the lock a closed store's background
        // threads may still hold for a moment; that wait feeds no decision,
        // so the run stays deterministic.
        let store = SledStore::open(self.dir.path(), config.clone())
            .map_err(|error| format!("opening the store: {error}"))?;
        let store = Arc::new(store);
        let shared: Arc<dyn SyncStore> = store.clone();
        let clock: Arc<dyn Clock> = self.clock.clone();
        self.syncer = Some(Syncer::new(
            shared,
            engine(),
            clock,
            HlcClock::new(NodeId::from_name("server"), HlcClock::DEFAULT_MAX_SKEW),
            DOCUMENT_BYTES_MAX,
        ));
        self.store = Some(store);
        Ok(())
    }

    /// The store.
    pub(crate) fn store(&self) -> &SledStore {
        self.store
            .as_ref()
            .expect("the store is open between restarts")
    }

    /// The wall clock now.
    pub(crate) fn wall_ms(&self) -> u64 {
        self.clock.now_millis()
    }

    /// Applies one request's operations from `device`, as the WebSocket
    /// path does (no sync point: the operations carry `baseVersion`).
    pub(crate) async fn apply(
        &mut self,
        device: &DeviceId,
        ops: Vec<Operation>,
    ) -> Result<Vec<OpReport>, String> {
        let reports = self.apply_shared(device, ops).await?;
        self.record(&reports);
        Ok(reports)
    }

    /// Applies two requests concurrently (one task each, interleaved on the
    /// one thread at every await), so that they race for the same
    /// documents through the store's compare-and-swap.
    pub(crate) async fn apply_both(
        &mut self,
        first: (&DeviceId, Vec<Operation>),
        second: (&DeviceId, Vec<Operation>),
    ) -> Result<(Vec<OpReport>, Vec<OpReport>), String> {
        let (a, b) = tokio::join!(
            self.apply_shared(first.0, first.1),
            self.apply_shared(second.0, second.1)
        );
        let (a, b) = (a?, b?);
        self.record(&a);
        self.record(&b);
        Ok((a, b))
    }

    async fn apply_shared(
        &self,
        device: &DeviceId,
        ops: Vec<Operation>,
    ) -> Result<Vec<OpReport>, String> {
        let syncer = self
            .syncer
            .as_ref()
            .expect("the syncer runs between restarts");
        let context = BatchContext {
            caller: &self.caller,
            device_id: Some(device.clone()),
            collection: None,
            strategy: None,
            sync_point: SyncPoint::None,
        };
        syncer
            .apply(&context, ops.into_iter().map(Ok).collect())
            .await
            .map_err(|e| format!("Syncer::apply failed as a whole: {e}"))
    }

    fn record(&mut self, reports: &[OpReport]) {
        for report in reports {
            if report.result.status.is_acknowledged()
                && let Some(op_id) = &report.result.op_id
            {
                self.acknowledged
                    .entry(op_id.clone())
                    .or_insert_with(|| report.result.clone());
            }
        }
    }

    /// A crash and restart: the syncer's memory is gone, the store is
    /// closed and reopened from its directory.
    pub(crate) fn restart(&mut self) -> Result<(), String> {
        self.syncer = None;
        let store = self.store.take().expect("the store is open");
        let store = Arc::try_unwrap(store)
            .map_err(|_| "the store is still shared at restart".to_owned())?;
        store
            .close()
            .map_err(|e| format!("closing the store: {e}"))?;
        self.open()
    }
}
