//! What the engine's two modes share: settling the server's answer to a
//! queued operation, applying the server's changes, and handing the
//! conflicts it left pending to the application.
//!
//! Whichever way an answer came (a WebSocket ack or a bulk-sync result),
//! it is settled here in the same order: the known server state moves
//! forward first and the queue entry is acknowledged after, so the local
//! view never loses an edit in between. A change, pushed or polled, is
//! applied only when its version is newer than the known one.

use std::collections::HashSet;
use std::sync::Arc;

use sync_core::queue::{QueueId, QueuedOp};
use sync_core::{
    Action, Change, ChangeOp, CollectionName, Cursor, Document, OfflineQueue, OpResult, OpStatus,
    Operation, Strategy, Version,
};

use crate::error::Error;
use crate::events::{ConflictInfo, SyncEvent};
use crate::http::Http;
use crate::logic::{self, AckEffect, Delivery, ServerDoc};
use crate::shared::Shared;

/// The engine's way to the server and the shared state it records the
/// server's answers in.
pub(super) struct Remote {
    pub(super) shared: Arc<Shared>,
    pub(super) http: Http,
}

/// The settled answers of one batch of queue entries.
#[derive(Debug, Default)]
pub(super) struct Batch {
    acked: Vec<QueueId>,
    touched: HashSet<CollectionName>,
    /// Some entry must go again later: pushing stops for this round.
    pub(super) retry: bool,
}

impl Remote {
    /// Registers the device with the server once; a failure is retried at
    /// the next connection.
    pub(super) async fn register_device(&self) {
        // Registered again when what it says changed (a new bandwidth).
        let settings = &self.shared.settings;
        let registration = match settings.bandwidth_limit {
            Some(limit) => format!("bandwidth={limit}"),
            None => "1".to_owned(),
        };
        if matches!(self.shared.local.meta("registered"), Ok(Some(done)) if done == registration) {
            return;
        }
        let registered = self
            .http
            .register_device(
                &self.shared.device_id,
                &settings.device_name,
                &settings.platform,
                &settings.collections,
                settings.bandwidth_limit,
            )
            .await;
        match registered {
            Ok(()) => {
                let _ = self.shared.local.set_meta("registered", &registration);
            }
            Err(error) => tracing::debug!(%error, "device registration postponed"),
        }
    }

    /// The operation as it goes out. An update or delete made while the
    /// document's server version was unknown (its create was still on the
    /// way) was made on the version that create produced: the known
    /// version now, since the entries of a document go out one at a time.
    /// Only the copy sent changes; the queue entry stays as it was.
    pub(super) fn outgoing(&self, op: &Operation) -> Result<Operation, Error> {
        let mut op = op.clone();
        if op.base_version.is_none()
            && matches!(op.action, Action::Update | Action::Delete)
            && let (Some(collection), Some(id)) = (&op.collection, &op.id)
        {
            let ns = op.namespace.clone().unwrap_or_default();
            op.base_version = self
                .shared
                .local
                .server_doc(&ns, collection, id.as_str())?
                .filter(|doc| !doc.deleted)
                .map(|doc| Version(doc.version));
        }
        Ok(op)
    }

    /// Acts on one answer and records its fate in `batch`: updates the
    /// server state and reports conflicts for a delivered operation,
    /// records a failure for a refused one.
    pub(super) async fn settle(
        &self,
        batch: &mut Batch,
        queued: &QueuedOp,
        delivery: Delivery,
        result: Option<OpResult>,
    ) {
        match (delivery, result) {
            (Delivery::Delivered { conflict }, Some(result)) => {
                match self.after_ack(&queued.op, &result, conflict).await {
                    Ok(()) => {
                        batch.acked.push(queued.id);
                        batch.touched.extend(queued.op.collection.clone());
                    }
                    Err(error) => {
                        // Without the outcome the view could lose the edit:
                        // send again later (the server answers `duplicate`).
                        tracing::debug!(%error, "outcome unknown; the operation goes again");
                        batch.retry = true;
                    }
                }
            }
            (Delivery::Delivered { .. }, None) | (Delivery::Retry, _) => batch.retry = true,
            (Delivery::Refused(reason), _) => {
                self.shared.emit(SyncEvent::Error {
                    message: format!(
                        "operation on {}/{} refused: {reason}",
                        queued.op.collection.as_ref().map_or("", |c| c.as_str()),
                        queued.op.id.as_ref().map_or("", |id| id.as_str()),
                    ),
                });
                if let Err(error) = self
                    .shared
                    .queue
                    .record_failure(queued.id, &reason, self.shared.now_ms())
                    .await
                {
                    self.report(&error.into());
                }
                batch.touched.extend(queued.op.collection.clone());
            }
        }
    }

    /// Acknowledges the batch's delivered entries (their server state is
    /// already stored) and tells the live queries of what changed.
    pub(super) async fn finish(&self, batch: &Batch) -> Result<(), Error> {
        if !batch.acked.is_empty() {
            self.shared.queue.acknowledge(&batch.acked).await?;
        }
        for collection in &batch.touched {
            self.shared.touch(collection);
        }
        Ok(())
    }

    /// The server state after one of our operations was answered.
    async fn after_ack(
        &self,
        op: &Operation,
        result: &OpResult,
        conflict: bool,
    ) -> Result<(), Error> {
        let ns = op.namespace.clone().unwrap_or_default();
        let (Some(collection), Some(id)) = (
            op.collection.clone(),
            op.id.clone().or(result.server_id.clone()),
        ) else {
            return Ok(());
        };
        let known = self
            .shared
            .local
            .server_doc(&ns, &collection, id.as_str())?;
        match logic::ack_effect(known.as_ref(), op, result) {
            AckEffect::Apply(doc) => {
                self.shared
                    .local
                    .put_server_doc(&ns, &collection, id.as_str(), &doc, None)?;
            }
            AckEffect::Keep => {}
            AckEffect::Fetch => self.fetch(&collection, id.as_str(), known.as_ref()).await?,
        }
        if result.status == OpStatus::Merged {
            self.shared.emit(SyncEvent::ConflictResolved {
                collection: collection.to_string(),
                id: id.to_string(),
                strategy: result.strategy,
            });
        }
        if conflict {
            self.on_pending_conflict(&collection, id.as_str(), result)
                .await;
        }
        Ok(())
    }

    /// Reads a document from the server into the known state.
    async fn fetch(
        &self,
        collection: &CollectionName,
        id: &str,
        known: Option<&ServerDoc>,
    ) -> Result<(), Error> {
        let ns = &self.shared.settings.namespace;
        if let Some(document) = self.http.document(ns, collection, id).await? {
            self.store_document(&document, known)?;
        }
        Ok(())
    }

    fn store_document(&self, document: &Document, known: Option<&ServerDoc>) -> Result<(), Error> {
        if document.version.get() <= known.map_or(0, |doc| doc.version) {
            return Ok(());
        }
        let doc = ServerDoc {
            data: if document.deleted {
                Default::default()
            } else {
                document.data.clone()
            },
            version: document.version.get(),
            deleted: document.deleted,
        };
        self.shared.local.put_server_doc(
            &document.namespace,
            &document.collection,
            document.id.as_str(),
            &doc,
            None,
        )
    }

    /// A conflict the server left pending: tell the application, and send
    /// its resolver's document when it gives one.
    async fn on_pending_conflict(&self, collection: &CollectionName, id: &str, result: &OpResult) {
        let (Some(conflict_id), Some(conflict_data)) =
            (result.conflict_id.clone(), result.conflict_data.clone())
        else {
            return;
        };
        let info = ConflictInfo {
            conflict_id: conflict_id.clone(),
            namespace: self.shared.settings.namespace.to_string(),
            collection: collection.to_string(),
            id: id.to_owned(),
            conflict_data,
        };
        self.shared.emit(SyncEvent::ConflictPending(info.clone()));
        let hook = self
            .shared
            .on_conflict
            .read()
            .ok()
            .and_then(|hook| hook.clone());
        let Some(hook) = hook else {
            return;
        };
        let Some(resolved) = hook(info) else {
            return;
        };
        match self.http.resolve_conflict(&conflict_id, &resolved).await {
            Ok(document) => {
                let ns = &self.shared.settings.namespace;
                let known = self
                    .shared
                    .local
                    .server_doc(ns, collection, id)
                    .ok()
                    .flatten();
                if let Err(error) = self.store_document(&document, known.as_ref()) {
                    self.report(&error);
                }
                self.shared.touch(collection);
                self.shared.emit(SyncEvent::ConflictResolved {
                    collection: collection.to_string(),
                    id: id.to_owned(),
                    strategy: Some(Strategy::Manual),
                });
            }
            Err(error) => self.report(&error),
        }
    }

    /// Applies a change from the server when it is newer than what is
    /// known, and moves the collection's cursor past it.
    pub(super) fn apply(&self, change: &Change, notify: bool) -> Result<(), Error> {
        let shared = &self.shared;
        let ns = &change.namespace;
        if *ns != shared.settings.namespace || !shared.changed.contains_key(&change.collection) {
            return Ok(());
        }
        let cursor = shared
            .local
            .cursor(ns, &change.collection)?
            .map(|stored| Cursor::new(stored.log(), change.seq));
        let known = shared
            .local
            .server_doc(ns, &change.collection, change.id.as_str())?;
        match logic::apply_change(known.as_ref(), change) {
            Some(doc) => {
                shared.local.put_server_doc(
                    ns,
                    &change.collection,
                    change.id.as_str(),
                    &doc,
                    cursor,
                )?;
                if notify {
                    let collection = change.collection.to_string();
                    let id = change.id.to_string();
                    shared.emit(match change.op {
                        ChangeOp::Insert => SyncEvent::Insert { collection, id },
                        ChangeOp::Update => SyncEvent::Update { collection, id },
                        ChangeOp::Delete => SyncEvent::Delete { collection, id },
                    });
                }
                shared.touch(&change.collection);
            }
            None => {
                if let Some(cursor) = cursor {
                    shared
                        .local
                        .advance_cursor(ns, &change.collection, cursor)?;
                }
            }
        }
        Ok(())
    }

    /// Forgets the known state and cursors of every collection, so the next
    /// read starts from a clean copy.
    pub(super) fn reset_collections(&self) {
        let settings = &self.shared.settings;
        for collection in &settings.collections {
            if let Err(error) = self
                .shared
                .local
                .clear_collection(&settings.namespace, collection)
            {
                self.report(&error);
            }
            self.shared.touch(collection);
        }
    }

    /// Logs an error and tells the application.
    pub(super) fn report(&self, error: &Error) {
        tracing::warn!(%error, "sync error");
        self.shared.emit(SyncEvent::Error {
            message: error.to_string(),
        });
    }
}
