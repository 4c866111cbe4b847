//! Branches of a document (`docs/protocol.md`, "Branches"): a copy forked
//! at one of the document's versions, edited on its own under the branch
//! address `collection@branch`, and merged back as one write of the
//! document whose base is the fork point, so the collection's strategy
//! decides the merge as it decides any concurrent edit (`manual` leaves a
//! pending conflict).
//!
//! The branch's document is an ordinary document under its address: it has
//! its own versions, history and change feed, and its writes never touch
//! the document or reach the document's subscribers. The store's branch
//! record keeps the fork point, the base of the next merge.
//!
//! Fork writes the branch's document first and the record second, so a
//! crash between them leaves a document without a record, which the next
//! fork of that name takes over; writes to a branch address need the
//! record.

use sync_core::store::{BranchRecord, StoredDocument, WriteEffect};
use sync_core::{
    Action, BranchName, ChangeOp, ConflictRecord, DocKey, Document, ErrorCode, JsonObject, OpError,
    OpResult, OpStatus, Operation, Version,
};
use sync_diff::merge_patch;

use crate::access::Access;
use crate::error::EngineError;
use crate::syncer::{BatchContext, SyncPoint, Syncer, hashed_op_id, server_write};

/// What a merge did to the document.
#[derive(Debug, Clone, PartialEq)]
pub struct MergeReport {
    /// The merge's result, as a write's: `success` when no field changed
    /// on both sides, `merged` when the strategy decided fields both
    /// changed, `conflict` when a `manual` collection left the merge
    /// pending.
    pub result: OpResult,
    /// The conflict the merge ran into, resolved or pending.
    pub conflict: Option<ConflictRecord>,
    /// The document after the merge.
    pub document: Option<Document>,
    /// The branch after the merge: its fork point moves to the merged
    /// version once the branch holds the merged document too.
    pub branch: BranchRecord,
}

impl Syncer {
    /// Forks the branch `name` of the document at `key` at `version` (its
    /// current version when `None`): the branch's document starts as the
    /// document was then. Fails with `conflict` when the branch exists,
    /// `not_found` when the document (or that version of it) does not.
    pub async fn fork_branch(
        &self,
        caller: &dyn Access,
        key: &DocKey,
        name: &BranchName,
        version: Option<Version>,
    ) -> Result<(BranchRecord, Document), EngineError> {
        caller.check_write(&key.namespace)?;
        if key.collection.is_branch() {
            return Err(EngineError::Invalid(format!(
                "{} is a branch address; fork the document itself",
                key.collection
            )));
        }
        if self.store().get_branch(key, name).await?.is_some() {
            return Err(EngineError::Conflict(format!(
                "the document {key} has a branch {name:?} already"
            )));
        }
        let current = self
            .store()
            .get(key)
            .await?
            .filter(|stored| !stored.document.deleted)
            .ok_or_else(|| EngineError::NotFound(format!("no document {key}")))?;
        let fork_version = version.unwrap_or(current.document.version);
        let forked = if fork_version == current.document.version {
            current.document
        } else if fork_version > current.document.version {
            return Err(EngineError::NotFound(format!(
                "the document {key} is at version {}; there is no version {fork_version}",
                current.document.version
            )));
        } else {
            self.store()
                .document_at(key, fork_version)
                .await?
                .filter(|document| !document.deleted)
                .ok_or_else(|| {
                    EngineError::NotFound(format!(
                        "version {fork_version} of {key} is not kept or is a deletion"
                    ))
                })?
        };
        let record = BranchRecord {
            namespace: key.namespace.clone(),
            collection: key.collection.clone(),
            id: key.id.clone(),
            name: name.clone(),
            fork_version,
            created_at: self.clock().now(),
            created_by: caller.user().clone(),
        };
        self.write_branch(
            caller,
            &record.branch_key(),
            "fork",
            None,
            forked.data,
            false,
        )
        .await?;
        self.store().put_branch(record.clone()).await?;
        let document = self.branch_document(&record).await?;
        Ok((record, document))
    }

    /// The branch's own document (a tombstone once deleted).
    pub async fn branch_document(&self, branch: &BranchRecord) -> Result<Document, EngineError> {
        let key = branch.branch_key();
        self.store()
            .get(&key)
            .await?
            .map(|stored| stored.document)
            .ok_or_else(|| EngineError::NotFound(format!("no document {key}")))
    }

    /// The branch `name` of the document at `key`, or `not_found`.
    pub async fn branch(
        &self,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<BranchRecord, EngineError> {
        self.store()
            .get_branch(key, name)
            .await?
            .ok_or_else(|| EngineError::NotFound(format!("no branch {name:?} of {key}")))
    }

    /// Merges the branch `name` into the document at `key`: the branch's
    /// edits since its fork point are written to the document with the
    /// fork point as their base, through the same path as a client's
    /// operation. A merge of the same branch state again is a `duplicate`.
    pub async fn merge_branch(
        &self,
        caller: &dyn Access,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<MergeReport, EngineError> {
        caller.check_write(&key.namespace)?;
        let mut record = self.branch(key, name).await?;
        let branch_key = record.branch_key();
        let branch = self.branch_document(&record).await?;
        let fork = self
            .store()
            .document_at(key, record.fork_version)
            .await?
            .ok_or_else(|| {
                EngineError::Conflict(format!(
                    "version {} of {key}, where the branch took the document in, is no longer kept; fork the branch again",
                    record.fork_version
                ))
            })?;
        let mut op = Operation::new(if branch.deleted {
            Action::Delete
        } else {
            Action::Update
        });
        op.op_id = Some(hashed_op_id(
            "merge",
            &[
                &branch_key.to_string(),
                &branch.version.to_string(),
                &record.fork_version.to_string(),
            ],
        ));
        op.namespace = Some(key.namespace.clone());
        op.collection = Some(key.collection.clone());
        op.id = Some(key.id.clone());
        op.base_version = Some(record.fork_version);
        op.timestamp = Some(branch.updated_at.timestamp());
        if !branch.deleted {
            op.data = Some(merge_patch::diff_objects(&fork.data, &branch.data));
        }
        let context = BatchContext {
            caller,
            device_id: None,
            collection: None,
            strategy: None,
            sync_point: SyncPoint::None,
        };
        let report = self
            .apply(&context, vec![Ok(op)])
            .await?
            .pop()
            .ok_or_else(|| EngineError::Internal("the merge has no result".into()))?;
        if let Some(error) = &report.error {
            return Err(self.operation_error(error));
        }
        let document = self.store().get(key).await?.map(|stored| stored.document);
        let took_effect = matches!(
            report.result.status,
            OpStatus::Success | OpStatus::Merged | OpStatus::Duplicate
        );
        if let (true, Some(version), Some(merged)) = (took_effect, report.result.version, &document)
            && version > record.fork_version
            && merged.version == version
            && self
                .catch_up_branch(caller, &branch_key, &branch, merged)
                .await?
        {
            record.fork_version = version;
            self.store().put_branch(record.clone()).await?;
        }
        Ok(MergeReport {
            result: report.result,
            conflict: report.conflict,
            document,
            branch: record,
        })
    }

    /// The error an operation's report names, as the write path's own.
    fn operation_error(&self, error: &OpError) -> EngineError {
        let message = error.message.clone();
        match error.code {
            ErrorCode::InvalidRequest => EngineError::Invalid(message),
            ErrorCode::Forbidden => EngineError::Forbidden(message),
            ErrorCode::NotFound => EngineError::NotFound(message),
            ErrorCode::Conflict => EngineError::Conflict(message),
            ErrorCode::TooLarge => EngineError::TooLarge {
                message,
                limit: self.document_bytes_max() as u64,
            },
            _ => EngineError::Internal(message),
        }
    }

    /// Brings the branch's document to the merged document, so the next
    /// merge's base is the merged version. Whether the branch holds it now:
    /// not when the branch was written since the merge read it, nor when
    /// the document is deleted (a live branch is not deleted by a merge);
    /// the fork point then stays, and the next merge takes in both.
    async fn catch_up_branch(
        &self,
        caller: &dyn Access,
        branch_key: &DocKey,
        merged_from: &Document,
        merged: &Document,
    ) -> Result<bool, EngineError> {
        if merged.data == merged_from.data && merged.deleted == merged_from.deleted {
            return Ok(true);
        }
        if merged.deleted {
            return Ok(false);
        }
        let written = self
            .write_branch(
                caller,
                branch_key,
                "catch-up",
                Some(merged_from.version),
                merged.data.clone(),
                merged.deleted,
            )
            .await;
        match written {
            Ok(_) => Ok(true),
            Err(EngineError::Conflict(_)) => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Deletes the branch `name` of the document at `key`: its document
    /// becomes a tombstone (its subscribers learn of it) and its record
    /// goes. The branch's history stays under its address.
    pub async fn delete_branch(
        &self,
        caller: &dyn Access,
        key: &DocKey,
        name: &BranchName,
    ) -> Result<(), EngineError> {
        caller.check_write(&key.namespace)?;
        let record = self.branch(key, name).await?;
        self.write_branch(
            caller,
            &record.branch_key(),
            "delete",
            None,
            JsonObject::new(),
            true,
        )
        .await?;
        self.store().remove_branch(key, name).await?;
        Ok(())
    }

    /// Writes a branch's whole document (or its deletion) as the server's
    /// own write. With `expected`, only if the branch is still at that
    /// version (`conflict` otherwise); without, over whatever it holds.
    async fn write_branch(
        &self,
        caller: &dyn Access,
        branch_key: &DocKey,
        what: &str,
        expected: Option<Version>,
        data: JsonObject,
        deleted: bool,
    ) -> Result<OpResult, EngineError> {
        self.check_document(&data)?;
        let stamp = self.now_hlc();
        self.commit_one(branch_key, |current: Option<&StoredDocument>| {
            let at = current.map_or(Version::ZERO, |c| c.document.version);
            if expected.is_some_and(|expected| expected != at) {
                return Err(EngineError::Conflict(format!(
                    "{branch_key} changed meanwhile"
                )));
            }
            let effect = self.change_to(current, data.clone(), deleted, stamp);
            let action = match &effect {
                WriteEffect::Change {
                    op: ChangeOp::Delete,
                    ..
                } => Action::Delete,
                _ => Action::Upsert,
            };
            let op_id = hashed_op_id(what, &[&branch_key.to_string(), &at.to_string()]);
            let mut result = OpResult::new(action, OpStatus::Success);
            result.op_id = Some(op_id.clone());
            result.server_id = Some(branch_key.id.clone());
            Ok(server_write(
                op_id,
                branch_key.clone(),
                at,
                effect,
                result,
                caller.user().clone(),
            ))
        })
        .await
    }
}
