//! A change as a store keeps it in its log, and reads it back: whole, or
//! with its delta and document left as JSON text for readers that pass them
//! on unread.
//!
//! The stored JSON is the [`Change`]'s, except that an insert whose delta
//! is its whole document (every insert the engine makes) leaves the delta
//! out: the document is there already as `data`. Reading puts it back, so
//! nothing outside this module sees the difference. A change stored with
//! its delta reads as it is; any other change without one is corrupt.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sync_core::store::ChangeFilter;
use sync_core::{
    Change, ChangeOp, CollectionName, DeviceId, DocId, Hlc, JsonObject, Namespace, OpId, RawChange,
    Seq, UserId, Version,
};

/// `$change` (a [`Change`] or a [`RawChange`]) from its stored form and its
/// delta: the two hold the same fields.
macro_rules! from_stored {
    ($change:ident, $stored:expr, $delta:expr) => {{
        let stored = $stored;
        $change {
            seq: stored.seq,
            namespace: stored.namespace,
            collection: stored.collection,
            id: stored.id,
            op: stored.op,
            delta: $delta,
            version: stored.version,
            timestamp: stored.timestamp,
            op_id: stored.op_id,
            device_id: stored.device_id,
            user: stored.user,
            data: stored.data,
        }
    }};
}

/// A [`Change`] or a [`RawChange`], decoded from the change's stored JSON.
pub(crate) trait LogChange: Sized {
    /// How it holds its delta and document: built, or as JSON text.
    type Payload: DeserializeOwned + Clone;
    /// Its position in the log.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn seq(&self) -> Seq;
    /// Whether it passes `filter`.
    fn passes(&self, filter: &ChangeFilter) -> bool;
    /// The change `stored` describes, with `delta`.
    fn from_stored(stored: Stored<Self::Payload>, delta: Self::Payload) -> Self;
}

impl LogChange for Change {
    type Payload = JsonObject;

    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.matches(self)
    }

    fn from_stored(stored: Stored<JsonObject>, delta: JsonObject) -> Change {
        from_stored!(Change, stored, delta)
    }
}

impl LogChange for RawChange {
    type Payload = Box<RawValue>;

    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.admits(&self.namespace, &self.collection)
    }

    fn from_stored(stored: Stored<Box<RawValue>>, delta: Box<RawValue>) -> RawChange {
        from_stored!(RawChange, stored, delta)
    }
}

/// A change read from its stored JSON.
pub(crate) fn decode<C: LogChange>(json: &[u8]) -> serde_json::Result<C> {
    let mut stored: Stored<C::Payload> = serde_json::from_slice(json)?;
    let delta = match (stored.delta.take(), stored.op, &stored.data) {
        (Some(delta), _, _) => delta,
        (None, ChangeOp::Insert, Some(data)) => data.clone(),
        (None, _, _) => return Err(serde_json::Error::missing_field("delta")),
    };
    Ok(C::from_stored(stored, delta))
}

/// Appends `change`'s stored JSON to `out`.
pub(crate) fn encode_into(out: &mut Vec<u8>, change: &Change) {
    // Plain data with string keys: writing to a vector cannot fail.
    let _ = serde_json::to_writer(out, &StoredRef::of(change));
}

/// `change`'s stored JSON.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn encode(change: &Change) -> String {
    let mut out = Vec::with_capacity(256);
    encode_into(&mut out, change);
    // serde_json writes UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// A change as read from its stored JSON, its delta and document held as
/// `P`; the delta is `None` where it was left out.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Stored<P> {
    seq: Seq,
    namespace: Namespace,
    collection: CollectionName,
    id: DocId,
    op: ChangeOp,
    delta: Option<P>,
    version: Version,
    timestamp: Hlc,
    op_id: OpId,
    device_id: Option<DeviceId>,
    user: Option<UserId>,
    data: Option<P>,
}

/// A [`Change`] as it is stored, borrowed from it: its fields in its order
/// and with its names, the delta left out of an insert that holds its
/// whole document.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredRef<'a> {
    seq: Seq,
    namespace: &'a Namespace,
    collection: &'a CollectionName,
    id: &'a DocId,
    op: ChangeOp,
    #[serde(skip_serializing_if = "Option::is_none")]
    delta: Option<&'a JsonObject>,
    version: Version,
    timestamp: Hlc,
    op_id: &'a OpId,
    #[serde(skip_serializing_if = "Option::is_none")]
    device_id: Option<&'a DeviceId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a UserId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a JsonObject>,
}

impl<'a> StoredRef<'a> {
    fn of(change: &'a Change) -> StoredRef<'a> {
        let whole = change.op == ChangeOp::Insert && change.data.as_ref() == Some(&change.delta);
        StoredRef {
            seq: change.seq,
            namespace: &change.namespace,
            collection: &change.collection,
            id: &change.id,
            op: change.op,
            delta: (!whole).then_some(&change.delta),
            version: change.version,
            timestamp: change.timestamp,
            op_id: &change.op_id,
            device_id: change.device_id.as_ref(),
            user: change.user.as_ref(),
            data: change.data.as_ref(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    fn change(op: ChangeOp, delta: Value, data: Option<Value>) -> Change {
        let object = |value: Value| match value {
            Value::Object(object) => object,
            other => panic!("not an object: {other}"),
        };
        Change {
            seq: Seq(7),
            namespace: "ns".parse().expect("namespace"),
            collection: "todos".parse().expect("collection"),
            id: "doc-1".parse().expect("id"),
            op,
            delta: object(delta),
            version: Version(3),
            timestamp: Hlc::default(),
            op_id: OpId::new("op-1").expect("op id"),
            device_id: Some(DeviceId::new("device-1").expect("device")),
            user: Some(UserId::new("user-1").expect("user")),
            data: data.map(object),
        }
    }

    fn every_kind() -> Vec<Change> {
        vec![
            change(
                ChangeOp::Insert,
                json!({"a": 1, "b": "x"}),
                Some(json!({"a": 1, "b": "x"})),
            ),
            change(ChangeOp::Insert, json!({}), Some(json!({}))),
            // Not an insert the engine makes, but one the log must keep.
            change(ChangeOp::Insert, json!({}), Some(json!({"a": 1}))),
            change(
                ChangeOp::Update,
                json!({"a": null}),
                Some(json!({"b": "x"})),
            ),
            change(ChangeOp::Update, json!({"b": "x"}), Some(json!({"b": "x"}))),
            change(ChangeOp::Delete, json!({}), None),
        ]
    }

    #[test]
    fn every_kind_of_change_reads_back_as_written_whole_and_raw() {
        for written in every_kind() {
            let stored = encode(&written);
            let read: Change = decode(stored.as_bytes()).expect("change");
            assert_eq!(read, written, "{stored}");
            let raw: RawChange = decode(stored.as_bytes()).expect("raw change");
            assert_eq!(
                serde_json::to_value(&raw).expect("raw json"),
                serde_json::to_value(&written).expect("json"),
                "{stored}"
            );
        }
    }

    #[test]
    fn only_the_delta_of_an_insert_of_its_whole_document_is_left_out() {
        for written in every_kind() {
            let stored: Value = serde_json::from_str(&encode(&written)).expect("json");
            let whole: Value = serde_json::to_value(&written).expect("json");
            if written.op == ChangeOp::Insert && written.data.as_ref() == Some(&written.delta) {
                let mut without = whole.clone();
                without.as_object_mut().expect("object").remove("delta");
                assert_eq!(stored, without);
            } else {
                assert_eq!(stored, whole);
            }
        }
    }

    #[test]
    fn a_change_stored_with_its_delta_reads_as_it_is() {
        for written in every_kind() {
            let stored = serde_json::to_vec(&written).expect("json");
            assert_eq!(decode::<Change>(&stored).expect("change"), written);
        }
    }

    #[test]
    fn a_change_other_than_an_insert_without_its_delta_is_corrupt() {
        for written in every_kind() {
            let mut stored = serde_json::to_value(&written).expect("json");
            stored.as_object_mut().expect("object").remove("delta");
            let stored = serde_json::to_vec(&stored).expect("json");
            let read = decode::<Change>(&stored);
            let raw = decode::<RawChange>(&stored);
            if written.op == ChangeOp::Insert {
                let read = read.expect("an insert reads without its delta");
                assert_eq!(Some(&read.delta), written.data.as_ref());
                let raw = raw.expect("a raw insert reads without its delta");
                assert_eq!(
                    Some(raw.delta.get()),
                    raw.data.as_ref().map(|data| data.get())
                );
            } else {
                assert!(read.is_err() && raw.is_err(), "{written:?}");
            }
        }
    }
}
