//! A change as a store keeps it in its log, and reads it back: whole, or
//! with its delta and document left as JSON text for readers that pass them
//! on unread.
//!
//! The stored JSON is the [`Change`]'s, except that an insert's delta, which
//! is its whole document, is left out: the document is there already as
//! `data`. Reading puts it back, so nothing outside this module sees the
//! difference. A change stored with its delta reads as it is.

use serde::Serialize;
use serde::de::DeserializeOwned;
use sync_core::store::ChangeFilter;
use sync_core::{
    Change, ChangeOp, CollectionName, DeviceId, DocId, Hlc, JsonObject, Namespace, OpId, RawChange,
    Seq, UserId, Version,
};

/// A [`Change`] or a [`RawChange`], decoded from the change's JSON.
pub(crate) trait LogChange: DeserializeOwned {
    /// Its position in the log.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn seq(&self) -> Seq;
    /// Whether it passes `filter`.
    fn passes(&self, filter: &ChangeFilter) -> bool;
    /// Puts back the delta of an insert stored without it.
    fn restore_delta(&mut self);
}

impl LogChange for Change {
    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.matches(self)
    }

    fn restore_delta(&mut self) {
        if self.op == ChangeOp::Insert
            && self.delta.is_empty()
            && let Some(data) = &self.data
        {
            self.delta.clone_from(data);
        }
    }
}

impl LogChange for RawChange {
    fn seq(&self) -> Seq {
        self.seq
    }

    fn passes(&self, filter: &ChangeFilter) -> bool {
        filter.admits(&self.namespace, &self.collection)
    }

    fn restore_delta(&mut self) {
        // A missing delta reads as JSON `null`; a stored one is an object.
        if self.op == ChangeOp::Insert
            && self.delta.get() == "null"
            && let Some(data) = &self.data
        {
            self.delta.clone_from(data);
        }
    }
}

/// A change read from its stored JSON.
pub(crate) fn decode<C: LogChange>(json: &[u8]) -> serde_json::Result<C> {
    let mut change: C = serde_json::from_slice(json)?;
    change.restore_delta();
    Ok(change)
}

/// Appends `change`'s stored JSON to `out`.
pub(crate) fn encode_into(out: &mut Vec<u8>, change: &Change) {
    // Plain data with string keys: writing to a vector cannot fail.
    let _ = serde_json::to_writer(out, &Stored::of(change));
}

/// `change`'s stored JSON.
#[cfg_attr(not(feature = "postgres"), allow(dead_code))]
pub(crate) fn encode(change: &Change) -> String {
    let mut out = Vec::with_capacity(256);
    encode_into(&mut out, change);
    // serde_json writes UTF-8.
    String::from_utf8(out).unwrap_or_default()
}

/// The fields of a [`Change`] as stored, in its order and with its names.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Stored<'a> {
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

impl<'a> Stored<'a> {
    fn of(change: &'a Change) -> Stored<'a> {
        let whole = change.op == ChangeOp::Insert && change.data.as_ref() == Some(&change.delta);
        Stored {
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
    fn only_an_inserts_delta_is_left_out() {
        for written in every_kind() {
            let stored: Value = serde_json::from_str(&encode(&written)).expect("json");
            let whole: Value = serde_json::to_value(&written).expect("json");
            if written.op == ChangeOp::Insert {
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
}
