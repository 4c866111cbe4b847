//! [`Collection`], the optimistic reads and writes of one collection, and
//! [`Query`], its live queries.
//!
//! A write is planned on the current local view, stamped by the client's
//! clock and queued durably before it returns; the view shows it at once
//! because it is computed from the queue. A live query re-runs whenever the
//! collection's change signal moves and yields only results that differ, so
//! it follows local writes and the server's changes alike.

use std::sync::{Arc, Weak};

use futures::stream::{BoxStream, StreamExt};
use serde::Serialize;
use serde_json::Value;
use sync_core::{
    Action, CollectionName, DocId, Filter, JsonObject, OfflineQueue, OpId, Operation, Priority,
    Timestamp, Version,
};
use tokio::sync::watch;

use crate::error::Error;
use crate::logic::{self, Order};
use crate::shared::Shared;

/// One collection of a [`SyncClient`](crate::SyncClient): optimistic reads
/// and writes.
#[derive(Clone)]
pub struct Collection {
    /// Weak, so a collection handle kept by the application does not keep
    /// the store open after the client is closed.
    shared: Weak<Shared>,
    name: CollectionName,
    /// The priority of this handle's writes; the collection's when `None`.
    priority: Option<Priority>,
}

impl std::fmt::Debug for Collection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collection")
            .field("name", &self.name)
            .finish()
    }
}

impl Collection {
    /// The handle of collection `name`: an error at once when the name is
    /// not valid or not among the client's collections.
    pub(crate) fn new(shared: &Arc<Shared>, name: &str) -> Result<Collection, Error> {
        let name = CollectionName::new(name)?;
        if !shared.changed.contains_key(&name) {
            return Err(Error::UnknownCollection(name.to_string()));
        }
        Ok(Collection {
            shared: Arc::downgrade(shared),
            name,
            priority: None,
        })
    }

    /// The same collection, whose writes carry `priority` instead of the
    /// collection's (an urgent write to a collection that usually waits).
    /// A document's operations keep their order whatever their priorities.
    pub fn with_priority(&self, priority: Priority) -> Collection {
        Collection {
            priority: Some(priority),
            ..self.clone()
        }
    }

    fn shared(&self) -> Result<Arc<Shared>, Error> {
        self.shared.upgrade().ok_or(Error::Closed)
    }

    fn name_in(&self, _shared: &Shared) -> Result<CollectionName, Error> {
        Ok(self.name.clone())
    }

    /// Saves a document and returns its id: the data's `"id"` when it has
    /// one, else a new UUIDv7. A new document is created; an existing one
    /// is updated with the fields that differ (delta only). Visible locally
    /// at once, queued durably before returning.
    ///
    /// `data` is anything that serializes to a JSON object (a
    /// `serde_json::json!({..})`, a [`JsonObject`], a struct deriving
    /// `Serialize`); anything else is [`Error::Invalid`].
    pub async fn save(&self, data: impl Serialize) -> Result<DocId, Error> {
        let mut data = json_object(data)?;
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let (id, generated) = match data.remove("id") {
            Some(Value::String(id)) => (DocId::new(id)?, false),
            Some(other) => return Err(Error::Invalid(format!("id must be a string, not {other}"))),
            None => (DocId::generate(), true),
        };
        let _guard = shared.write_lock.lock().await;
        let current = shared.view(&name, id.as_str())?;
        if let Some((action, payload)) = logic::plan_save(current.as_ref(), data, generated) {
            let priority = self.priority_in(&shared);
            enqueue(&shared, &name, action, &id, Some(payload), priority).await?;
        }
        Ok(id)
    }

    /// Changes some fields of a document (an RFC 7386 merge patch: `null`
    /// removes a field). `patch` serializes to a JSON object, as for
    /// [`save`](Self::save).
    pub async fn update(&self, id: &str, patch: impl Serialize) -> Result<(), Error> {
        let mut patch = json_object(patch)?;
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let id = DocId::new(id)?;
        patch.remove("id");
        let _guard = shared.write_lock.lock().await;
        if shared.view(&name, id.as_str())?.is_none() {
            return Err(Error::NotFound(id.to_string()));
        }
        if patch.is_empty() {
            return Ok(());
        }
        let priority = self.priority_in(&shared);
        enqueue(&shared, &name, Action::Update, &id, Some(patch), priority).await
    }

    /// Deletes a document; nothing happens when it does not exist.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        let id = DocId::new(id)?;
        let _guard = shared.write_lock.lock().await;
        if shared.view(&name, id.as_str())?.is_none() {
            return Ok(());
        }
        let priority = self.priority_in(&shared);
        enqueue(&shared, &name, Action::Delete, &id, None, priority).await
    }

    fn priority_in(&self, shared: &Shared) -> Priority {
        self.priority
            .unwrap_or_else(|| shared.priority_of(&self.name))
    }

    /// One document as the local view has it (with its `"id"`).
    pub async fn get(&self, id: &str) -> Result<Option<JsonObject>, Error> {
        let shared = self.shared()?;
        let name = self.name_in(&shared)?;
        Ok(shared.view(&name, id)?.map(|data| logic::with_id(id, data)))
    }

    /// Every document of the collection, ordered by id.
    pub async fn list(&self) -> Result<Vec<JsonObject>, Error> {
        self.query().get().await
    }

    /// A query over the collection, to refine with `where_eq` and
    /// `order_by`.
    pub fn query(&self) -> Query {
        Query {
            collection: self.clone(),
            filter: Filter::all(),
            order: Vec::new(),
            limit: None,
        }
    }

    /// The documents whose `field` equals `value`.
    pub fn where_eq(&self, field: impl Into<String>, value: impl Into<Value>) -> Query {
        self.query().where_eq(field, value)
    }

    /// The whole collection, live: see [`Query::watch`].
    pub fn watch(&self) -> BoxStream<'static, Vec<JsonObject>> {
        self.query().watch()
    }
}

/// Queues one local write durably and tells the live queries and the
/// engine.
async fn enqueue(
    shared: &Shared,
    name: &CollectionName,
    action: Action,
    id: &DocId,
    data: Option<JsonObject>,
    priority: Priority,
) -> Result<(), Error> {
    let ns = &shared.settings.namespace;
    let server = shared.local.server_doc(ns, name, id.as_str())?;
    let mut op = Operation::new(action);
    op.op_id = Some(OpId::generate());
    op.collection = Some(name.clone());
    op.namespace = Some(ns.clone());
    op.id = Some(id.clone());
    op.timestamp = Timestamp::from_millis(shared.next_write_ms());
    op.base_version = match action {
        Action::Create => None,
        _ => server
            .filter(|doc| !doc.deleted)
            .map(|doc| Version(doc.version)),
    };
    op.data = data;
    op.priority = priority;
    shared.queue.enqueue(op).await?;
    shared.touch(name);
    shared.wake.notify_one();
    Ok(())
}

/// A live query: field equalities, ordering, a limit.
#[derive(Debug, Clone)]
pub struct Query {
    collection: Collection,
    filter: Filter,
    order: Vec<(String, Order)>,
    limit: Option<usize>,
}

impl Query {
    /// Keeps the documents whose top-level `field` equals `value`.
    pub fn where_eq(mut self, field: impl Into<String>, value: impl Into<Value>) -> Query {
        self.filter = self.filter.and_equals(field, value);
        self
    }

    /// Orders by `field` (then by later `order_by`s, then by id).
    pub fn order_by(mut self, field: impl Into<String>, order: Order) -> Query {
        self.order.push((field.into(), order));
        self
    }

    /// At most `n` documents.
    pub fn limit(mut self, n: usize) -> Query {
        self.limit = Some(n);
        self
    }

    /// The current result.
    pub async fn get(&self) -> Result<Vec<JsonObject>, Error> {
        let shared = self.collection.shared()?;
        let name = self.collection.name_in(&shared)?;
        let docs = shared.view_all(&name)?;
        Ok(logic::run_query(
            docs,
            &self.filter,
            &self.order,
            self.limit,
        ))
    }

    /// The result now and after every change that alters it, local or
    /// remote. The stream ends when the client is closed or dropped; an
    /// unknown collection gives an empty stream.
    pub fn watch(self) -> BoxStream<'static, Vec<JsonObject>> {
        let Ok(shared) = self.collection.shared() else {
            return futures::stream::empty().boxed();
        };
        let Ok(name) = self.collection.name_in(&shared) else {
            return futures::stream::empty().boxed();
        };
        let Some(generations) = shared.changed.get(&name).map(watch::Sender::subscribe) else {
            return futures::stream::empty().boxed();
        };
        drop(shared);
        let state = (self, generations, None::<Vec<JsonObject>>);
        futures::stream::unfold(state, |(query, mut generations, last)| async move {
            loop {
                if last.is_some() && generations.changed().await.is_err() {
                    return None;
                }
                generations.borrow_and_update();
                let result = match query.get().await {
                    Ok(result) => result,
                    Err(error) => {
                        tracing::warn!(%error, "live query failed");
                        last.as_ref()?;
                        continue;
                    }
                };
                if last.as_ref() != Some(&result) {
                    return Some((result.clone(), (query, generations, Some(result))));
                }
            }
        })
        .boxed()
    }
}

/// `value` as a JSON object, or why it is not one.
fn json_object(value: impl Serialize) -> Result<JsonObject, Error> {
    match serde_json::to_value(value) {
        Ok(Value::Object(object)) => Ok(object),
        Ok(other) => Err(Error::Invalid(format!(
            "a document is a JSON object, not {}",
            match other {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            }
        ))),
        Err(error) => Err(Error::Invalid(format!("not serializable: {error}"))),
    }
}
