//! Builders for writes and a temp-dir sled store.

use std::sync::Arc;

use serde_json::Value;
use sync_core::store::{Write, WriteEffect};
use sync_core::{
    Action, ChangeOp, DocKey, FieldClocks, Hlc, JsonObject, NodeId, OpResult, OpStatus, SyncStore,
    Version,
};
use sync_store::{Durability, Encryption, EncryptionKey, SledStore, StoreConfig};

pub(crate) fn obj(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

pub(crate) fn key(namespace: &str, collection: &str, id: &str) -> DocKey {
    DocKey::new(
        namespace.parse().unwrap(),
        collection.parse().unwrap(),
        id.parse().unwrap(),
    )
}

pub(crate) fn at(millis: u64) -> Hlc {
    Hlc::new(millis, 0, NodeId(1)).unwrap()
}

/// A write of `op` making the document `data`, computed against `expected`.
pub(crate) fn write(
    op_id: &str,
    key: &DocKey,
    expected: u64,
    op: ChangeOp,
    delta: Value,
    data: Value,
) -> Write {
    let action = match op {
        ChangeOp::Insert => Action::Create,
        ChangeOp::Update => Action::Update,
        ChangeOp::Delete => Action::Delete,
    };
    let mut result = OpResult::new(action, OpStatus::Success);
    result.op_id = Some(op_id.parse().unwrap());
    result.server_id = Some(key.id.clone());
    let data = obj(data);
    let field_clocks: FieldClocks = data
        .keys()
        .map(|k| (k.clone(), at(1_000 + expected)))
        .collect();
    Write {
        op_id: op_id.parse().unwrap(),
        key: key.clone(),
        expected_version: Version(expected),
        effect: WriteEffect::Change {
            op,
            delta: obj(delta),
            data,
            field_clocks,
            timestamp: at(1_000 + expected),
        },
        device_id: Some("device-A".parse().unwrap()),
        user: Some("alice".parse().unwrap()),
        result,
        conflict: None,
        resolves: None,
    }
}

pub(crate) fn insert(op_id: &str, key: &DocKey, data: Value) -> Write {
    write(op_id, key, 0, ChangeOp::Insert, data.clone(), data)
}

/// Opens a sled store in a fresh temp dir (kept alive by the returned guard).
pub(crate) fn sled_store() -> (Arc<dyn SyncStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(
        dir.path(),
        StoreConfig {
            durability: Durability::Os,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    (Arc::new(store), dir)
}

/// A key for encryption at rest, new each call.
pub(crate) fn encryption_key() -> EncryptionKey {
    EncryptionKey::from_hex(&EncryptionKey::generate_hex()).unwrap()
}

/// A sled store in a temporary directory, encrypted under a new key.
pub(crate) fn encrypted_sled_store() -> (Arc<dyn SyncStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(
        dir.path(),
        StoreConfig {
            durability: Durability::Os,
            encryption: Some(Encryption::new(encryption_key(), [])),
            ..StoreConfig::default()
        },
    )
    .unwrap();
    (Arc::new(store), dir)
}
