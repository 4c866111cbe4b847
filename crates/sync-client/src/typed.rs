//! [`TypedCollection`]: a collection read and written as values of a
//! [`SyncEntity`] type instead of JSON objects.
//!
//! It is a thin layer over [`Collection`]: the document's `"id"` is kept
//! apart from the value, and a document that does not read as the type is
//! an error for `get` and `list` and skipped by `watch`, so one malformed
//! document does not end a live query.

use std::marker::PhantomData;

use futures::stream::{BoxStream, StreamExt};
use serde_json::Value;
use sync_core::{DocId, JsonObject, SyncEntity};

use crate::collection::Collection;
use crate::error::Error;

/// A collection read and written as values of an entity type.
pub struct TypedCollection<T> {
    inner: Collection,
    _type: PhantomData<fn() -> T>,
}

impl<T> TypedCollection<T> {
    /// `inner` read and written as values of `T`.
    pub(crate) fn new(inner: Collection) -> TypedCollection<T> {
        TypedCollection {
            inner,
            _type: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for TypedCollection<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl<T: SyncEntity> TypedCollection<T> {
    /// Saves `value` (as [`Collection::save`]); `id` names the document, or
    /// `None` generates one.
    pub async fn save(&self, id: Option<&str>, value: &T) -> Result<DocId, Error> {
        let mut data = value.to_data()?;
        match id {
            Some(id) => {
                data.insert("id".to_owned(), Value::String(id.to_owned()));
            }
            None => {
                data.remove("id");
            }
        }
        self.inner.save(data).await
    }

    /// One value.
    pub async fn get(&self, id: &str) -> Result<Option<T>, Error> {
        match self.inner.get(id).await? {
            Some(mut data) => {
                data.remove("id");
                Ok(Some(T::from_data(&data)?))
            }
            None => Ok(None),
        }
    }

    /// Every value with its id, ordered by id.
    pub async fn list(&self) -> Result<Vec<(String, T)>, Error> {
        self.inner
            .list()
            .await?
            .into_iter()
            .map(entity_of)
            .collect()
    }

    /// Deletes a value.
    pub async fn delete(&self, id: &str) -> Result<(), Error> {
        self.inner.delete(id).await
    }

    /// The values with their ids, live (see [`Query::watch`](crate::Query::watch)); documents
    /// that do not read as `T` are skipped.
    pub fn watch(&self) -> BoxStream<'static, Vec<(String, T)>> {
        self.inner
            .watch()
            .map(|docs| {
                docs.into_iter()
                    .filter_map(|doc| entity_of(doc).ok())
                    .collect()
            })
            .boxed()
    }
}

fn entity_of<T: SyncEntity>(mut data: JsonObject) -> Result<(String, T), Error> {
    let id = match data.remove("id") {
        Some(Value::String(id)) => id,
        _ => String::new(),
    };
    Ok((id, T::from_data(&data)?))
}
