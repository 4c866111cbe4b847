//! Applying client operations: validation, idempotency, the three-way base,
//! conflict resolution and the compare-and-swap commit. HTTP bulk sync,
//! `/v1/sync`, the WebSocket write messages, conflict resolution and
//! restore all go through [`Syncer`], so every door keeps the same
//! guarantees.
//!
//! One request's operations are decided in order against the store plus an
//! overlay of what the earlier operations of the request did, then handed
//! to the store in a single [`SyncStore::apply`] call: one group commit for
//! the whole batch instead of one flush per operation. A write that lost a
//! race with another request (version mismatch) is decided again against
//! the fresh document, together with the later operations of the request on
//! that document; operations on other documents keep their commit.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use serde_json::Value;
use sync_conflict::{
    Base, ClientEdit, ConflictConfig, ConflictEngine, Outcome, RecordContext, ResolveRequest,
};
use sync_core::store::{CommitOutcome, StoredDocument, Write, WriteEffect};
use sync_core::{
    Action, Change, ChangeOp, Clock, CollectionName, ConflictId, ConflictRecord, ConflictStatus,
    DeviceId, DocId, DocKey, Document, FieldClocks, Hlc, HlcClock, JsonObject, Namespace, NodeId,
    OpError, OpId, OpResult, OpStatus, Operation, Seq, Strategy, SyncStore, Timestamp, UserId,
    Version,
};
use sync_diff::merge_patch;

use crate::access::Access;
use crate::error::EngineError;

/// How often a write that keeps losing compare-and-swap races is decided
/// again before the operation fails with `internal` (and may be retried).
const ROUNDS_MAX: usize = 16;

/// What the client last saw, when it sent no `baseVersion`: the base of
/// its edits is the document as it was then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPoint {
    /// Unknown: last-write-wins on the client's timestamp.
    #[default]
    None,
    /// The request's cursor.
    Seq(Seq),
    /// The request's `lastSyncTimestamp`.
    Time(Timestamp),
}

/// Who sends a batch, and the request-wide settings.
#[derive(Debug, Clone)]
pub struct BatchContext<'a> {
    /// The caller: who writes, and which namespaces it may write.
    pub caller: &'a dyn Access,
    /// The sending device.
    pub device_id: Option<DeviceId>,
    /// The collection the endpoint names (bulk sync), if any.
    pub collection: Option<&'a CollectionName>,
    /// A per-request strategy.
    pub strategy: Option<Strategy>,
    /// The client's last sync point.
    pub sync_point: SyncPoint,
}

/// How one operation ended.
#[derive(Debug, Clone, PartialEq)]
pub struct OpReport {
    /// The result as bulk sync and `ack` report it.
    pub result: OpResult,
    /// The conflict it ran into, resolved or pending.
    pub conflict: Option<ConflictRecord>,
    /// Why it failed, for the `errors` list.
    pub error: Option<OpError>,
}

impl OpReport {
    fn failed(index: usize, op: Option<&Operation>, error: &EngineError) -> OpReport {
        let body = error.body();
        let mut result = OpResult::new(op.map_or(Action::Update, |op| op.action), OpStatus::Error);
        result.op_id = op.and_then(|op| op.op_id.clone());
        result.local_id = op.and_then(|op| op.local_id.clone());
        result.server_id = op.and_then(|op| op.id.clone().or_else(|| op.server_id.clone()));
        result.error = Some(body.clone());
        OpReport {
            error: Some(OpError {
                op_id: result.op_id.clone(),
                local_id: result.local_id.clone(),
                index: Some(index),
                code: body.code,
                message: body.message,
            }),
            result,
            conflict: None,
        }
    }
}

/// An operation that passed validation, with everything its decision needs.
#[derive(Debug, Clone)]
struct Prepared {
    op: Operation,
    op_id: OpId,
    key: DocKey,
}

impl Prepared {
    /// `op` bound to its document and opId, with its defaults filled in:
    /// namespace, collection, document id and opId.
    fn new(mut op: Operation, key: DocKey, op_id: OpId) -> Prepared {
        op.op_id = Some(op_id.clone());
        op.namespace = Some(key.namespace.clone());
        op.collection = Some(key.collection.clone());
        op.id = Some(key.id.clone());
        Prepared { op, op_id, key }
    }
}

#[derive(Debug)]
enum Slot {
    Done(Box<OpReport>),
    /// Same `opId` as an earlier operation of the request.
    SameAs(usize),
    Pending(Box<Prepared>),
}

/// What one operation does, decided against the document as it is.
struct Decided {
    write: Write,
    /// The document after the write, when a later operation of the round
    /// writes it too.
    after: Option<StoredDocument>,
    conflict: Option<ConflictRecord>,
}

/// Where a decided operation's write sits in the round's batch, with the
/// conflict it records.
type WriteIndex = (usize, Option<ConflictRecord>);

/// The base of a client's edit, owned.
enum OwnedBase {
    Document(JsonObject),
    ChangedSince(BTreeSet<String>),
    Unknown,
}

impl OwnedBase {
    fn as_base(&self) -> Base<'_> {
        match self {
            OwnedBase::Document(data) => Base::Document(data),
            OwnedBase::ChangedSince(fields) => Base::ChangedSince(fields),
            OwnedBase::Unknown => Base::Unknown,
        }
    }
}

/// Applies operations to the store. Shared by every request handler.
pub struct Syncer {
    store: Arc<dyn SyncStore>,
    /// Replaced whole by a configuration reload.
    engine: RwLock<Arc<ConflictEngine>>,
    clock: Arc<dyn Clock>,
    hlc: Mutex<HlcClock>,
    document_bytes_max: usize,
    /// Operations answered `duplicate` by this node since it started.
    duplicates: AtomicU64,
    /// Operations answered `error` by this node since it started.
    errors: AtomicU64,
}

impl std::fmt::Debug for Syncer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Syncer").finish_non_exhaustive()
    }
}

impl Syncer {
    /// A syncer over `store`, resolving with `engine`, stamping writes with
    /// an HLC of `node` that clamps client times more than `max_skew` ahead.
    pub fn new(
        store: Arc<dyn SyncStore>,
        engine: ConflictEngine,
        clock: Arc<dyn Clock>,
        hlc: HlcClock,
        document_bytes_max: usize,
    ) -> Syncer {
        Syncer {
            store,
            engine: RwLock::new(Arc::new(engine)),
            clock,
            hlc: Mutex::new(hlc),
            document_bytes_max,
            duplicates: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The operations this node answered `duplicate` or `error` since it
    /// started, by status. Nothing is written for them, so the store's
    /// durable counters (the other statuses) never see them.
    pub fn unwritten_counts(&self) -> BTreeMap<OpStatus, u64> {
        [
            (OpStatus::Duplicate, self.duplicates.load(Ordering::Relaxed)),
            (OpStatus::Error, self.errors.load(Ordering::Relaxed)),
        ]
        .into_iter()
        .filter(|(_, count)| *count > 0)
        .collect()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SyncStore> {
        &self.store
    }

    /// The conflict engine (as configured now).
    pub fn engine(&self) -> Arc<ConflictEngine> {
        let engine = self.engine.read().unwrap_or_else(PoisonError::into_inner);
        Arc::clone(&engine)
    }

    /// Resolves with `config` from now on, with the same custom resolvers;
    /// writes in flight finish under the settings they started with.
    pub fn reconfigure(&self, config: ConflictConfig) {
        let engine = Arc::new(self.engine().with_config(config));
        *self.engine.write().unwrap_or_else(PoisonError::into_inner) = engine;
    }

    /// The wall clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// A fresh server HLC timestamp.
    pub fn now_hlc(&self) -> Hlc {
        let wall = self.clock.now_millis();
        match self.hlc.lock() {
            Ok(mut hlc) => hlc.now(wall),
            Err(poisoned) => poisoned.into_inner().now(wall),
        }
    }

    fn observe(&self, remote: Hlc) -> (Hlc, Hlc) {
        let wall = self.clock.now_millis();
        let mut hlc = match self.hlc.lock() {
            Ok(hlc) => hlc,
            Err(poisoned) => poisoned.into_inner(),
        };
        (hlc.clamp(remote, wall), hlc.observe(remote, wall))
    }

    /// Applies `operations` in order. Each entry is an operation or the
    /// reason it could not be read; one bad operation fails alone. Fails as
    /// a whole only when the store does.
    pub async fn apply(
        &self,
        context: &BatchContext<'_>,
        operations: Vec<Result<Operation, EngineError>>,
    ) -> Result<Vec<OpReport>, EngineError> {
        let mut slots = Vec::with_capacity(operations.len());
        let mut first_by_op_id: HashMap<OpId, usize> = HashMap::new();
        for (index, operation) in operations.into_iter().enumerate() {
            let prepared = match operation {
                Err(error) => Err(OpReport::failed(index, None, &error)),
                Ok(op) => match self.target(context, &op) {
                    Ok((key, op_id)) => Ok(Prepared::new(op, key, op_id)),
                    // Reported with the operation's own ids, which the
                    // client matches its results by.
                    Err(error) => Err(OpReport::failed(index, Some(&op), &error)),
                },
            };
            let slot = match prepared {
                Err(report) => Slot::Done(Box::new(report)),
                Ok(prepared) => match first_by_op_id.get(&prepared.op_id) {
                    Some(&first) => Slot::SameAs(first),
                    None => {
                        first_by_op_id.insert(prepared.op_id.clone(), index);
                        match self.check_branch(&prepared.key).await? {
                            Ok(()) => Slot::Pending(Box::new(prepared)),
                            Err(error) => Slot::Done(Box::new(
                                self.failed_unless_applied(index, &prepared, &error).await?,
                            )),
                        }
                    }
                },
            };
            slots.push(slot);
        }
        for _ in 0..ROUNDS_MAX {
            if !self.commit_round(context, &mut slots).await? {
                break;
            }
        }
        let mut reports: Vec<OpReport> = Vec::with_capacity(slots.len());
        for (index, slot) in slots.into_iter().enumerate() {
            let report = match slot {
                Slot::Done(report) => *report,
                Slot::SameAs(first) => {
                    let first = &reports[first];
                    let mut report = first.clone();
                    if first.result.status.is_acknowledged()
                        || first.result.status == OpStatus::Conflict
                    {
                        report.result = first.result.as_duplicate();
                    }
                    report
                }
                Slot::Pending(prepared) => OpReport::failed(
                    index,
                    Some(&prepared.op),
                    &EngineError::Internal(
                        "the document kept changing under this operation; retry it".into(),
                    ),
                ),
            };
            reports.push(report);
        }
        for report in &reports {
            let counter = match report.result.status {
                OpStatus::Duplicate => &self.duplicates,
                OpStatus::Error => &self.errors,
                _ => continue,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        Ok(reports)
    }

    /// Whether a write may go to `key`: a branch address needs its branch.
    /// The outer error is the store's, the inner the operation's.
    async fn check_branch(&self, key: &DocKey) -> Result<Result<(), EngineError>, EngineError> {
        let Some(branch) = key.collection.branch() else {
            return Ok(Ok(()));
        };
        let document = DocKey::new(key.namespace.clone(), key.collection.base(), key.id.clone());
        Ok(match self.store.get_branch(&document, &branch).await? {
            Some(_) => Ok(()),
            None => Err(EngineError::NotFound(format!(
                "no branch {branch:?} of {document}; fork it first"
            ))),
        })
    }

    /// The report of an operation that cannot be applied now: the result
    /// it got the first time when it was already applied (a replay is a
    /// `duplicate`, whatever the document became since), else `error`.
    ///
    /// Only failures look the opId up: a replay that can still be applied
    /// is told apart by the store's commit, which checks the opId first.
    async fn failed_unless_applied(
        &self,
        index: usize,
        prepared: &Prepared,
        error: &EngineError,
    ) -> Result<OpReport, EngineError> {
        Ok(match self.store.lookup_op(&prepared.op_id).await? {
            Some(first) => OpReport {
                conflict: self.recorded_conflict(&first).await?,
                result: first.as_duplicate(),
                error: None,
            },
            None => OpReport::failed(index, Some(&prepared.op), error),
        })
    }

    async fn recorded_conflict(
        &self,
        result: &OpResult,
    ) -> Result<Option<ConflictRecord>, EngineError> {
        match &result.conflict_id {
            Some(id) => Ok(self.store.get_conflict(id).await?),
            None => Ok(None),
        }
    }

    /// Checks an operation (its fields fit its action, the caller may write
    /// its namespace, its data is within the size limit) and finds its
    /// document and its opId, made up when the client sent none.
    fn target(
        &self,
        context: &BatchContext<'_>,
        op: &Operation,
    ) -> Result<(DocKey, OpId), EngineError> {
        op.validate()?;
        let namespace = op.namespace.clone().unwrap_or_default();
        let collection = match (&op.collection, context.collection) {
            (Some(own), Some(endpoint)) if own != endpoint => {
                return Err(EngineError::Invalid(format!(
                    "operation names collection {own:?} but was sent to {endpoint:?}"
                )));
            }
            (Some(own), _) => own.clone(),
            (None, Some(endpoint)) => endpoint.clone(),
            (None, None) => {
                return Err(EngineError::Invalid(
                    "the operation names no collection".into(),
                ));
            }
        };
        let collection = match &op.branch {
            None => collection,
            Some(_) if collection.is_branch() => {
                return Err(EngineError::Invalid(format!(
                    "operation names branch {:?} of the branch address {collection:?}",
                    op.branch
                )));
            }
            Some(branch) => collection.with_branch(branch),
        };
        context.caller.check_write(&namespace)?;
        if let Some(data) = &op.data {
            self.check_size(data)?;
        }
        let op_id = match &op.op_id {
            Some(op_id) => op_id.clone(),
            None => derived_op_id(
                context.caller.user(),
                context.device_id.as_ref(),
                &namespace,
                &collection,
                op,
            ),
        };
        let id = match op.document_id()? {
            Some(id) => id.clone(),
            None => DocId::generate(),
        };
        Ok((DocKey::new(namespace, collection, id), op_id))
    }

    fn check_size(&self, data: &JsonObject) -> Result<(), EngineError> {
        let bytes = json_len(data);
        if bytes > self.document_bytes_max {
            return Err(EngineError::TooLarge {
                message: format!(
                    "document of {bytes} bytes; at most {} are allowed",
                    self.document_bytes_max
                ),
                limit: self.document_bytes_max as u64,
            });
        }
        Ok(())
    }

    /// Decides every pending operation against the store and commits them
    /// in one call. Returns whether some lost a race and remain pending.
    async fn commit_round(
        &self,
        context: &BatchContext<'_>,
        slots: &mut [Slot],
    ) -> Result<bool, EngineError> {
        // How many of the round's operations write each document: only a
        // document written more than once needs its state after each write,
        // kept in the overlay for the next operation on it.
        let mut writers: HashMap<&DocKey, usize> = HashMap::with_capacity(slots.len());
        for slot in slots.iter() {
            if let Slot::Pending(prepared) = slot {
                *writers.entry(&prepared.key).or_default() += 1;
            }
        }
        let mut overlay: HashMap<DocKey, StoredDocument> = HashMap::new();
        let mut writes = Vec::new();
        let mut decided: Vec<(usize, DocKey, Result<WriteIndex, EngineError>)> = Vec::new();
        for (index, slot) in slots.iter().enumerate() {
            let Slot::Pending(prepared) = slot else {
                continue;
            };
            let shared = writers.get(&prepared.key).is_some_and(|&count| count > 1);
            let earlier = overlay.remove(&prepared.key);
            let touched = earlier.is_some();
            let current = match earlier {
                Some(earlier) => Some(earlier),
                None => self.store.get(&prepared.key).await?,
            };
            let decision = self
                .decide(context, prepared, current.as_ref(), touched, shared)
                .await;
            let entry = match decision {
                Ok(Decided {
                    write,
                    after,
                    conflict,
                }) => {
                    if let Some(after) = after {
                        overlay.insert(prepared.key.clone(), after);
                    }
                    writes.push(write);
                    Ok((writes.len() - 1, conflict))
                }
                Err(error) => {
                    if let Some(current) = current.filter(|_| touched) {
                        overlay.insert(prepared.key.clone(), current);
                    }
                    Err(error)
                }
            };
            decided.push((index, prepared.key.clone(), entry));
        }
        if decided.is_empty() {
            return Ok(false);
        }
        let outcomes = if writes.is_empty() {
            Vec::new()
        } else {
            self.store.apply(writes).await?
        };
        let mut stale: HashSet<DocKey> = HashSet::new();
        for (index, key, entry) in decided {
            if stale.contains(&key) {
                continue;
            }
            let Slot::Pending(prepared) = &slots[index] else {
                continue;
            };
            let report = match entry {
                Err(error) => self.failed_unless_applied(index, prepared, &error).await?,
                Ok((write, conflict)) => match outcomes.get(write) {
                    Some(CommitOutcome::Committed(result)) => OpReport {
                        result: result.clone(),
                        conflict,
                        error: None,
                    },
                    Some(CommitOutcome::Duplicate(first)) => OpReport {
                        conflict: self.recorded_conflict(first).await?,
                        result: first.as_duplicate(),
                        error: None,
                    },
                    Some(CommitOutcome::VersionMismatch { .. }) => {
                        stale.insert(key);
                        continue;
                    }
                    Some(CommitOutcome::ConflictNotPending) => OpReport::failed(
                        index,
                        Some(&prepared.op),
                        &EngineError::Conflict("the conflict is no longer pending".into()),
                    ),
                    None => OpReport::failed(
                        index,
                        Some(&prepared.op),
                        &EngineError::Internal("the store answered fewer writes than sent".into()),
                    ),
                },
            };
            slots[index] = Slot::Done(Box::new(report));
        }
        Ok(!stale.is_empty())
    }

    /// Decides what one operation does to `current`; `shared` when a later
    /// operation of the round writes the same document and needs the
    /// document as this one leaves it.
    async fn decide(
        &self,
        context: &BatchContext<'_>,
        prepared: &Prepared,
        current: Option<&StoredDocument>,
        touched: bool,
        shared: bool,
    ) -> Result<Decided, EngineError> {
        let op = &prepared.op;
        let key = &prepared.key;
        let client_node = NodeId::from_name(
            context
                .device_id
                .as_ref()
                .map_or(context.caller.user().as_str(), DeviceId::as_str),
        );
        let (client_time, stamp) = match op.timestamp {
            Some(time) => self.observe(Hlc::from_timestamp(time, client_node)),
            None => {
                let now = self.now_hlc();
                (now, now)
            }
        };
        let live = |stored: &StoredDocument| !stored.document.deleted;
        let insert_whole = || {
            let data = op.data.clone().unwrap_or_default();
            self.insert(
                context,
                prepared,
                current,
                data,
                (client_time, stamp),
                shared,
            )
        };
        let mut decided = match (op.action, current) {
            (Action::Create, Some(stored)) if live(stored) => {
                return Err(EngineError::Conflict(format!(
                    "document {:?} already exists; update it or use upsert",
                    key.id.as_str()
                )));
            }
            (Action::Create | Action::Upsert, None) => insert_whole(),
            (Action::Create | Action::Upsert, Some(stored)) if !live(stored) => insert_whole(),
            (Action::Update | Action::Delete, None) => {
                return Err(EngineError::NotFound(format!(
                    "no document {:?} in {}/{}",
                    key.id.as_str(),
                    key.namespace,
                    key.collection
                )));
            }
            (_, Some(stored)) => {
                let base = self.base(context, prepared, stored, touched).await?;
                let patch = op.data.clone().unwrap_or_default();
                let edit = match op.action {
                    Action::Delete => ClientEdit::Delete,
                    _ => ClientEdit::Update(&patch),
                };
                let outcome = self.engine().resolve(&ResolveRequest {
                    key,
                    base: base.as_base(),
                    server: sync_conflict::ServerState {
                        data: &stored.document.data,
                        deleted: stored.document.deleted,
                        field_clocks: &stored.field_clocks,
                        updated_at: stored.document.updated_at,
                    },
                    edit,
                    client_time,
                    strategy: context.strategy,
                });
                self.check_size(&outcome.data)?;
                self.resolved(context, prepared, stored, outcome, stamp, shared)
            }
        };
        decided.write.result.op_id = Some(prepared.op_id.clone());
        decided.write.result.local_id = op.local_id.clone();
        decided.write.result.server_id = Some(key.id.clone());
        Ok(decided)
    }

    fn insert(
        &self,
        context: &BatchContext<'_>,
        prepared: &Prepared,
        current: Option<&StoredDocument>,
        data: JsonObject,
        (client_time, stamp): (Hlc, Hlc),
        shared: bool,
    ) -> Decided {
        let expected = current.map_or(Version::ZERO, |stored| stored.document.version);
        let field_clocks: FieldClocks = data.keys().map(|k| (k.clone(), client_time)).collect();
        let after = shared.then(|| {
            projected(
                &prepared.key,
                current,
                expected.next(),
                data.clone(),
                false,
                stamp,
                field_clocks.clone(),
            )
        });
        let effect = WriteEffect::Change {
            op: ChangeOp::Insert,
            delta: data.clone(),
            data,
            field_clocks,
            timestamp: stamp,
        };
        Decided {
            write: self.write(
                context,
                prepared,
                expected,
                effect,
                OpResult::new(prepared.op.action, OpStatus::Success),
                None,
            ),
            after,
            conflict: None,
        }
    }

    fn resolved(
        &self,
        context: &BatchContext<'_>,
        prepared: &Prepared,
        stored: &StoredDocument,
        outcome: Outcome,
        stamp: Hlc,
        shared: bool,
    ) -> Decided {
        let document = &stored.document;
        let conflict = outcome.conflict_record(
            &prepared.key,
            RecordContext {
                id: ConflictId::generate(),
                op_id: prepared.op_id.clone(),
                local_id: prepared.op.local_id.clone(),
                device_id: context.device_id.clone(),
                user: Some(context.caller.user().clone()),
                created_at: self.clock.now(),
            },
        );
        let mut result = OpResult::new(prepared.op.action, outcome.status);
        if let Some(record) = &conflict {
            result.conflict_id = Some(record.id.clone());
            result.strategy = Some(record.strategy);
            if record.status == ConflictStatus::Pending {
                result.conflict_data = Some(record.conflict_data.clone());
            }
        }
        if outcome.status == OpStatus::Merged {
            result.data = Some(outcome.data.clone());
        }
        let op = match (document.deleted, outcome.deleted) {
            (true, true) => None,
            (false, true) => Some(ChangeOp::Delete),
            (true, false) => Some(ChangeOp::Insert),
            (false, false) if outcome.data == document.data => None,
            (false, false) => Some(ChangeOp::Update),
        };
        let (effect, after) = match op {
            None => (WriteEffect::ResultOnly, shared.then(|| stored.clone())),
            Some(op) => {
                let delta = match op {
                    ChangeOp::Insert => outcome.data.clone(),
                    ChangeOp::Update => merge_patch::diff_objects(&document.data, &outcome.data),
                    ChangeOp::Delete => JsonObject::new(),
                };
                let after = shared.then(|| {
                    projected(
                        &prepared.key,
                        Some(stored),
                        document.version.next(),
                        outcome.data.clone(),
                        outcome.deleted,
                        stamp,
                        outcome.field_clocks.clone(),
                    )
                });
                let effect = WriteEffect::Change {
                    op,
                    delta,
                    data: outcome.data,
                    field_clocks: outcome.field_clocks,
                    timestamp: stamp,
                };
                (effect, after)
            }
        };
        Decided {
            write: self.write(
                context,
                prepared,
                document.version,
                effect,
                result,
                conflict.clone(),
            ),
            after,
            conflict,
        }
    }

    fn write(
        &self,
        context: &BatchContext<'_>,
        prepared: &Prepared,
        expected_version: Version,
        effect: WriteEffect,
        result: OpResult,
        conflict: Option<ConflictRecord>,
    ) -> Write {
        Write {
            op_id: prepared.op_id.clone(),
            key: prepared.key.clone(),
            expected_version,
            effect,
            device_id: context.device_id.clone(),
            user: Some(context.caller.user().clone()),
            result,
            conflict,
            resolves: None,
        }
    }

    /// What the client's edit was made on (`docs/protocol.md`, "Detecting
    /// conflicts").
    async fn base(
        &self,
        context: &BatchContext<'_>,
        prepared: &Prepared,
        stored: &StoredDocument,
        touched: bool,
    ) -> Result<OwnedBase, EngineError> {
        let document = &stored.document;
        if touched {
            // An earlier operation of this request wrote the document: the
            // client made this edit on top of its own earlier one.
            return Ok(OwnedBase::Document(document.data.clone()));
        }
        let since: Box<dyn Fn(&Change) -> bool + Send> =
            match (prepared.op.base_version, context.sync_point) {
                (Some(base), _) if base == document.version => {
                    return Ok(OwnedBase::Document(document.data.clone()));
                }
                (Some(base), _) if base > document.version => {
                    return Err(EngineError::Invalid(format!(
                        "baseVersion {base} is ahead of the stored version {}",
                        document.version
                    )));
                }
                (Some(base), _) => Box::new(move |change: &Change| change.version > base),
                (None, SyncPoint::Seq(seq)) if document.seq <= seq => {
                    return Ok(OwnedBase::Document(document.data.clone()));
                }
                (None, SyncPoint::Seq(seq)) => Box::new(move |change: &Change| change.seq > seq),
                (None, SyncPoint::Time(time)) if document.updated_at.timestamp() <= time => {
                    return Ok(OwnedBase::Document(document.data.clone()));
                }
                (None, SyncPoint::Time(time)) => {
                    Box::new(move |change: &Change| change.timestamp.timestamp() > time)
                }
                (None, SyncPoint::None) => return Ok(OwnedBase::Unknown),
            };
        let history = self.store.history(&prepared.key).await?;
        // Changes the same device made since its base were visible to it.
        let others: Vec<&Change> = history
            .iter()
            .filter(|change| since(change))
            .filter(|change| context.device_id.is_none() || change.device_id != context.device_id)
            .collect();
        if others.is_empty() {
            return Ok(OwnedBase::Document(document.data.clone()));
        }
        if let Some(base) = prepared.op.base_version
            && let Some(at_base) = self.store.document_at(&prepared.key, base).await?
        {
            return Ok(OwnedBase::Document(at_base.data));
        }
        let fields = others
            .iter()
            .flat_map(|change| {
                change
                    .delta
                    .keys()
                    .chain(change.data.iter().flat_map(|data| data.keys()))
            })
            .cloned()
            .collect();
        Ok(OwnedBase::ChangedSince(fields))
    }

    /// Commits one write computed by `decide` against the current document,
    /// deciding again while concurrent writers get there first.
    pub(crate) async fn commit_one<E: From<EngineError>>(
        &self,
        key: &DocKey,
        mut decide: impl FnMut(Option<&StoredDocument>) -> Result<Write, E>,
    ) -> Result<OpResult, E> {
        for _ in 0..ROUNDS_MAX {
            let current = self.store.get(key).await.map_err(EngineError::from)?;
            let write = decide(current.as_ref())?;
            let outcome = self
                .store
                .apply(vec![write])
                .await
                .map_err(EngineError::from)?
                .into_iter()
                .next();
            match outcome {
                Some(CommitOutcome::Committed(result)) => return Ok(result),
                Some(CommitOutcome::Duplicate(first)) => return Ok(first.as_duplicate()),
                Some(CommitOutcome::ConflictNotPending) => {
                    return Err(
                        EngineError::Conflict("the conflict is no longer pending".into()).into(),
                    );
                }
                Some(CommitOutcome::VersionMismatch { .. }) => continue,
                None => break,
            }
        }
        Err(
            EngineError::Internal("the document kept changing under this write; retry it".into())
                .into(),
        )
    }

    /// The effect that turns `current` into `data` (or a tombstone).
    pub(crate) fn change_to(
        &self,
        current: Option<&StoredDocument>,
        data: JsonObject,
        deleted: bool,
        client_time: Hlc,
    ) -> WriteEffect {
        let stamp = self.now_hlc();
        let field_clocks =
            |data: &JsonObject| data.keys().map(|k| (k.clone(), client_time)).collect();
        match current {
            Some(stored) if stored.document.deleted && deleted => WriteEffect::ResultOnly,
            Some(stored) if !stored.document.deleted && !deleted => {
                if stored.document.data == data {
                    return WriteEffect::ResultOnly;
                }
                let mut clocks = stored.field_clocks.clone();
                let delta = merge_patch::diff_objects(&stored.document.data, &data);
                for field in delta.keys() {
                    clocks.insert(field.clone(), client_time);
                }
                WriteEffect::Change {
                    op: ChangeOp::Update,
                    delta,
                    data,
                    field_clocks: clocks,
                    timestamp: stamp,
                }
            }
            _ if deleted => WriteEffect::Change {
                op: ChangeOp::Delete,
                delta: JsonObject::new(),
                data: JsonObject::new(),
                field_clocks: FieldClocks::new(),
                timestamp: stamp,
            },
            _ => WriteEffect::Change {
                op: ChangeOp::Insert,
                delta: data.clone(),
                field_clocks: field_clocks(&data),
                data,
                timestamp: stamp,
            },
        }
    }

    /// The largest document accepted, in bytes of JSON.
    pub(crate) fn document_bytes_max(&self) -> usize {
        self.document_bytes_max
    }

    /// Checks a document's size against the limit.
    pub(crate) fn check_document(&self, data: &JsonObject) -> Result<(), EngineError> {
        self.check_size(data)
    }
}

/// The length of `data`'s JSON text, counted without writing it out.
fn json_len(data: &JsonObject) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, data) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// The document as it will be after a write, for later operations of the
/// same request.
fn projected(
    key: &DocKey,
    current: Option<&StoredDocument>,
    version: Version,
    data: JsonObject,
    deleted: bool,
    stamp: Hlc,
    field_clocks: FieldClocks,
) -> StoredDocument {
    StoredDocument {
        document: Document {
            id: key.id.clone(),
            namespace: key.namespace.clone(),
            collection: key.collection.clone(),
            data,
            version,
            seq: current.map_or(Seq::ZERO, |stored| stored.document.seq),
            updated_at: stamp,
            deleted,
        },
        field_clocks,
    }
}

/// The opId of an operation sent without one (some clients send none), the
/// same whichever door it came through: a hash of who sent it and
/// everything it says, so the same operation sent again after a lost
/// response is recognised as a replay. Without a `localId` or a `timestamp`
/// nothing tells two equal operations apart, and each gets a fresh id. The
/// operation's `branch` counts as part of its collection, so naming a
/// branch by the field or by its address is the same operation.
pub fn derived_op_id(
    user: &UserId,
    device_id: Option<&DeviceId>,
    namespace: &Namespace,
    collection: &CollectionName,
    op: &Operation,
) -> OpId {
    if op.local_id.is_none() && op.timestamp.is_none() {
        return OpId::generate();
    }
    let data = op
        .data
        .as_ref()
        .map(|data| Value::Object(data.clone()).to_string())
        .unwrap_or_default();
    let collection = match &op.branch {
        Some(branch) => Cow::Owned(collection.with_branch(branch)),
        None => Cow::Borrowed(collection),
    };
    let parts: [&str; 9] = [
        user.as_str(),
        device_id.map_or("", DeviceId::as_str),
        namespace.as_str(),
        collection.as_str(),
        op.action.as_str(),
        op.document_id().ok().flatten().map_or("", DocId::as_str),
        op.local_id.as_deref().unwrap_or(""),
        &op.timestamp.map(|t| t.to_string()).unwrap_or_default(),
        &data,
    ];
    hashed_op_id("h", &parts)
}

/// An opId derived from `parts`: `prefix-` and 32 hex digits of their hash,
/// so the same write made again is recognised as a replay.
pub(crate) fn hashed_op_id(prefix: &str, parts: &[&str]) -> OpId {
    let (high, low) = fnv128(parts);
    OpId::new(format!("{prefix}-{high:016x}{low:016x}")).unwrap_or_else(|_| OpId::generate())
}

/// Two FNV-1a hashes with different offsets over `parts`, each part
/// followed by a separator byte.
fn fnv128(parts: &[&str]) -> (u64, u64) {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut high: u64 = 0xcbf2_9ce4_8422_2325;
    let mut low: u64 = 0x8422_2325_cbf2_9ce4;
    for part in parts {
        for &byte in part.as_bytes().iter().chain(std::iter::once(&0xff)) {
            high = (high ^ u64::from(byte)).wrapping_mul(PRIME);
            low = (low ^ u64::from(byte.rotate_left(3))).wrapping_mul(PRIME);
        }
    }
    (high, low)
}

/// A write the server makes itself (restore, conflict resolution) on
/// behalf of `user`.
pub(crate) fn server_write(
    op_id: OpId,
    key: DocKey,
    expected_version: Version,
    effect: WriteEffect,
    result: OpResult,
    user: UserId,
) -> Write {
    Write {
        op_id,
        key,
        expected_version,
        effect,
        device_id: None,
        user: Some(user),
        result,
        conflict: None,
        resolves: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_branch_by_field_or_by_address_derives_one_op_id() {
        let user = UserId::anonymous();
        let namespace = Namespace::default();
        let notes = CollectionName::new("notes").unwrap();
        let mut op = Operation::new(Action::Update);
        op.id = Some(DocId::new("n1").unwrap());
        op.local_id = Some("l1".into());
        op.data = Some(JsonObject::new());
        let plain = derived_op_id(&user, None, &namespace, &notes, &op);
        let draft = sync_core::BranchName::new("draft").unwrap();
        let address = derived_op_id(&user, None, &namespace, &notes.with_branch(&draft), &op);
        op.branch = Some(draft);
        let by_field = derived_op_id(&user, None, &namespace, &notes, &op);
        assert_eq!(address, by_field);
        assert_ne!(plain, by_field, "the branch is another document");
    }
}
