//! The writes the server makes itself on a caller's behalf: resolving a
//! pending conflict and restoring an old version. They take the same
//! compare-and-swap commit as clients' operations ([`Syncer::commit_one`]),
//! and the resolution's document comes from the conflict engine, so every
//! strategy means the same thing whichever door applied it.

use sync_conflict::{Base, ClientEdit, ResolveRequest, ServerState};
use sync_core::store::{StoredDocument, WriteEffect};
use sync_core::{
    Action, ChangeOp, ConflictRecord, ConflictStatus, DocKey, JsonObject, OpId, OpResult, OpStatus,
    Strategy, Version,
};

use crate::access::Access;
use crate::error::EngineError;
use crate::syncer::{Syncer, server_write};

impl Syncer {
    /// Resolves the pending conflict `record` with `strategy`, or with the
    /// whole document `resolved_data` (strategy `manual`), as one new
    /// change of its document. Resolving twice is a `duplicate`: the opId
    /// derives from the conflict's id.
    pub async fn resolve_conflict(
        &self,
        caller: &dyn Access,
        record: &ConflictRecord,
        strategy: Option<Strategy>,
        resolved_data: Option<&JsonObject>,
    ) -> Result<OpResult, EngineError> {
        caller.check_write(&record.namespace)?;
        if record.status != ConflictStatus::Pending {
            return Err(EngineError::Conflict(format!(
                "conflict {:?} is already resolved",
                record.id.as_str()
            )));
        }
        let strategy = match (strategy, resolved_data) {
            (Some(strategy), _) => strategy,
            (None, Some(_)) => Strategy::Manual,
            (None, None) => {
                return Err(EngineError::Invalid(
                    "give a strategy, or resolvedData with the whole document".into(),
                ));
            }
        };
        let key = record.key();
        let op_id = OpId::new(format!("resolve-{}", record.id))?;
        let stamp = self.now_hlc();
        self.commit_one(&key, |current: Option<&StoredDocument>| {
            let current = current.ok_or_else(|| {
                EngineError::NotFound(format!("the document {key} of the conflict is gone"))
            })?;
            let data = self.resolution(record, current, strategy, resolved_data)?;
            self.check_document(&data)?;
            let effect = match self.change_to(Some(current), data.clone(), false, stamp) {
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
            let mut write = server_write(
                op_id.clone(),
                key.clone(),
                current.document.version,
                effect,
                result,
                caller.user().clone(),
            );
            write.resolves = Some(record.id.clone());
            Ok(write)
        })
        .await
    }

    /// The whole document a resolution leaves: the given one, or the
    /// conflict engine's outcome of the client's edit against the document
    /// as it is now under `strategy`.
    fn resolution(
        &self,
        record: &ConflictRecord,
        current: &StoredDocument,
        strategy: Strategy,
        given: Option<&JsonObject>,
    ) -> Result<JsonObject, EngineError> {
        if let Some(given) = given {
            return Ok(given.clone());
        }
        if strategy == Strategy::Manual {
            return Err(EngineError::Invalid(
                "strategy manual needs resolvedData with the whole document".into(),
            ));
        }
        let base = record
            .base_data
            .as_ref()
            .map_or(Base::Unknown, Base::Document);
        let outcome = self.engine().resolve(&ResolveRequest {
            key: &record.key(),
            base,
            server: ServerState {
                data: &current.document.data,
                deleted: current.document.deleted,
                field_clocks: &current.field_clocks,
                updated_at: current.document.updated_at,
            },
            edit: ClientEdit::Update(&record.conflict_data.client_data),
            client_time: self.now_hlc(),
            strategy: Some(strategy),
        });
        Ok(outcome.data)
    }

    /// Restores version `version` of `key` as a new change (a version that
    /// is a tombstone restores the deletion).
    pub async fn restore(
        &self,
        caller: &dyn Access,
        key: &DocKey,
        version: Version,
    ) -> Result<OpResult, EngineError> {
        caller.check_write(&key.namespace)?;
        let old = self
            .store()
            .document_at(key, version)
            .await?
            .ok_or_else(|| {
                EngineError::NotFound(format!("no version {version} of {key} is kept"))
            })?;
        self.check_document(&old.data)?;
        let op_id = OpId::generate();
        let stamp = self.now_hlc();
        self.commit_one(key, |current: Option<&StoredDocument>| {
            let effect = match self.change_to(current, old.data.clone(), old.deleted, stamp) {
                // Restoring the version the document is at is still a
                // change: the restore is recorded in the history.
                WriteEffect::ResultOnly => WriteEffect::Change {
                    op: if old.deleted {
                        ChangeOp::Delete
                    } else {
                        ChangeOp::Update
                    },
                    delta: JsonObject::new(),
                    data: old.data.clone(),
                    field_clocks: current.map(|c| c.field_clocks.clone()).unwrap_or_default(),
                    timestamp: stamp,
                },
                effect => effect,
            };
            let mut result = OpResult::new(Action::Update, OpStatus::Success);
            result.op_id = Some(op_id.clone());
            result.server_id = Some(key.id.clone());
            Ok::<_, EngineError>(server_write(
                op_id.clone(),
                key.clone(),
                current.map_or(Version::ZERO, |c| c.document.version),
                effect,
                result,
                caller.user().clone(),
            ))
        })
        .await
    }
}
