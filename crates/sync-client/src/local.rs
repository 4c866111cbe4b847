//! The device's copy of the server state, on sled: for each synced
//! document its last known server version (data, version, tombstone), the
//! cursor of each collection, and the device's identity. The pending edits
//! are not here: they live in the offline queue (`sync-queue`) in their own
//! directory, and the local view is recomputed from both, so a restart
//! shows exactly what was there before.
//!
//! One tree, keys by prefix: `d\0{ns}\0{collection}\0{id}` for documents,
//! `c\0{ns}\0{collection}` for cursors, `m\0{name}` for the device's
//! metadata. A document and its collection's cursor are written in one
//! atomic batch, so the cursor never runs ahead of what was applied.

use std::path::Path;
use std::time::Duration;

use sync_core::{CollectionName, Cursor, Namespace};

use crate::error::Error;
use crate::logic::ServerDoc;

/// How long `open` waits for a directory another handle still locks.
const LOCK_WAIT: Duration = Duration::from_secs(5);

/// The server state store of one client.
#[derive(Debug, Clone)]
pub(crate) struct LocalStore {
    db: sled::Db,
    tree: sled::Tree,
}

fn doc_prefix(ns: &Namespace, collection: &CollectionName) -> Vec<u8> {
    format!("d\0{ns}\0{collection}\0").into_bytes()
}

fn doc_key(ns: &Namespace, collection: &CollectionName, id: &str) -> Vec<u8> {
    let mut key = doc_prefix(ns, collection);
    key.extend_from_slice(id.as_bytes());
    key
}

fn cursor_key(ns: &Namespace, collection: &CollectionName) -> Vec<u8> {
    format!("c\0{ns}\0{collection}").into_bytes()
}

fn meta_key(name: &str) -> Vec<u8> {
    format!("m\0{name}").into_bytes()
}

impl LocalStore {
    /// Opens (or creates) the store in `path`, waiting for a previous
    /// handle of the same directory to let go of sled's lock.
    pub(crate) fn open(path: &Path) -> Result<LocalStore, Error> {
        sync_queue::wait_until_unlocked(path, LOCK_WAIT);
        let db = sled::Config::new()
            .path(path)
            .open()
            .map_err(Error::storage)?;
        let tree = db.open_tree("local").map_err(Error::storage)?;
        Ok(LocalStore { db, tree })
    }

    /// The known server state of one document.
    pub(crate) fn server_doc(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
        id: &str,
    ) -> Result<Option<ServerDoc>, Error> {
        match self
            .tree
            .get(doc_key(ns, collection, id))
            .map_err(Error::storage)?
        {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every known document of a collection, tombstones included, by id.
    pub(crate) fn server_docs(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
    ) -> Result<Vec<(String, ServerDoc)>, Error> {
        let prefix = doc_prefix(ns, collection);
        let mut docs = Vec::new();
        for item in self.tree.scan_prefix(&prefix) {
            let (key, value) = item.map_err(Error::storage)?;
            let id = String::from_utf8_lossy(&key[prefix.len()..]).into_owned();
            docs.push((id, serde_json::from_slice(&value)?));
        }
        Ok(docs)
    }

    /// Stores a document's server state and, when given, moves the
    /// collection's cursor forward to `cursor`, in one atomic batch.
    pub(crate) fn put_server_doc(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
        id: &str,
        doc: &ServerDoc,
        cursor: Option<Cursor>,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        batch.insert(doc_key(ns, collection, id), serde_json::to_vec(doc)?);
        if let Some(cursor) = cursor
            && self.advances(ns, collection, cursor)?
        {
            batch.insert(cursor_key(ns, collection), cursor.to_string().into_bytes());
        }
        self.tree.apply_batch(batch).map_err(Error::storage)?;
        Ok(())
    }

    /// Whether `cursor` is ahead of the stored one (or of another log, as
    /// after a reset).
    fn advances(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
        cursor: Cursor,
    ) -> Result<bool, Error> {
        Ok(match self.cursor(ns, collection)? {
            Some(stored) => stored.log() != cursor.log() || stored.seq() < cursor.seq(),
            None => true,
        })
    }

    /// The collection's cursor: every change up to it has been applied.
    pub(crate) fn cursor(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
    ) -> Result<Option<Cursor>, Error> {
        match self
            .tree
            .get(cursor_key(ns, collection))
            .map_err(Error::storage)?
        {
            Some(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                Ok(Cursor::parse(&text).ok())
            }
            None => Ok(None),
        }
    }

    /// Moves the collection's cursor forward (never back).
    pub(crate) fn advance_cursor(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
        cursor: Cursor,
    ) -> Result<(), Error> {
        if self.advances(ns, collection, cursor)? {
            self.tree
                .insert(cursor_key(ns, collection), cursor.to_string().into_bytes())
                .map_err(Error::storage)?;
        }
        Ok(())
    }

    /// Forgets the collection's server state and cursor (before a reset).
    pub(crate) fn clear_collection(
        &self,
        ns: &Namespace,
        collection: &CollectionName,
    ) -> Result<(), Error> {
        let mut batch = sled::Batch::default();
        for item in self.tree.scan_prefix(doc_prefix(ns, collection)) {
            let (key, _) = item.map_err(Error::storage)?;
            batch.remove(key);
        }
        batch.remove(cursor_key(ns, collection));
        self.tree.apply_batch(batch).map_err(Error::storage)?;
        Ok(())
    }

    /// A metadata value.
    pub(crate) fn meta(&self, name: &str) -> Result<Option<String>, Error> {
        Ok(self
            .tree
            .get(meta_key(name))
            .map_err(Error::storage)?
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Sets a metadata value, durably.
    pub(crate) fn set_meta(&self, name: &str, value: &str) -> Result<(), Error> {
        self.tree
            .insert(meta_key(name), value.as_bytes())
            .map_err(Error::storage)?;
        self.db.flush().map_err(Error::storage)?;
        Ok(())
    }

    /// Writes everything to disk.
    pub(crate) async fn flush(&self) -> Result<(), Error> {
        self.db.flush_async().await.map_err(Error::storage)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sync_core::{LogId, Seq};

    use super::*;

    #[test]
    fn documents_and_cursors_survive_a_reopen_and_cursors_only_advance() {
        let dir = tempfile::tempdir().unwrap();
        let ns = Namespace::default();
        let todos = CollectionName::new("todos").unwrap();
        let doc = ServerDoc {
            data: json!({"text": "a"}).as_object().cloned().unwrap(),
            version: 2,
            deleted: false,
        };
        {
            let store = LocalStore::open(dir.path()).unwrap();
            let at = |seq| Some(Cursor::new(LogId(7), Seq(seq)));
            store.put_server_doc(&ns, &todos, "a", &doc, at(5)).unwrap();
            store.put_server_doc(&ns, &todos, "b", &doc, at(3)).unwrap();
            assert_eq!(store.cursor(&ns, &todos).unwrap(), at(5));
            store.set_meta("device", "dev-1").unwrap();
        }
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(store.server_docs(&ns, &todos).unwrap().len(), 2);
        assert_eq!(store.server_doc(&ns, &todos, "a").unwrap(), Some(doc));
        assert_eq!(store.meta("device").unwrap().as_deref(), Some("dev-1"));
        store.clear_collection(&ns, &todos).unwrap();
        assert!(store.server_docs(&ns, &todos).unwrap().is_empty());
        assert_eq!(store.cursor(&ns, &todos).unwrap(), None);
    }
}
