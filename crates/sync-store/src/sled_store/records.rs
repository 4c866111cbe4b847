//! How each kind of record is encoded into its value (before the codec
//! seals it) and decoded from it.
//!
//! Documents and op results, the two records every write stores, have a
//! compact binary form: a tag byte [`BINARY`], then their fields as
//! varints and length-prefixed bytes, leaving out what their key already
//! says (a document's namespace, collection and id; an op result's opId).
//! With their keys, a 100-byte document's record went from 324 bytes to
//! 139, an op result's from 93 to 20.
//!
//! A record the binary form cannot hold exactly (an op result with a
//! conflict, merged data or an error; a field that disagrees with its key)
//! is written as JSON, as every record was up to format 4; a JSON record
//! starts with `{`, so both forms are read wherever they are found.
//! Conflicts, branches and devices are always JSON.

use sync_core::store::{BranchRecord, DeviceRecord, StoredDocument};
use sync_core::{
    Action, ConflictRecord, DocId, Document, FieldClocks, Hlc, JsonObject, NodeId, OpResult,
    OpStatus, Seq, Version,
};

use super::layout;
use crate::error::Error;

/// The first byte of a record in binary form (JSON starts with `{`).
const BINARY: u8 = 0x01;

/// A kind of record the sled store keeps.
pub(crate) trait Record: Sized {
    /// The record's bytes at `key`.
    fn encode(&self, key: &[u8]) -> Vec<u8>;

    /// The record of the kind `what` from its bytes at `key`.
    fn decode(what: &'static str, key: &[u8], bytes: &[u8]) -> Result<Self, Error>;
}

/// Records kept as JSON only.
macro_rules! json_records {
    ($($kind:ty),*) => {$(
        impl Record for $kind {
            fn encode(&self, _key: &[u8]) -> Vec<u8> {
                layout::encode(self)
            }

            fn decode(what: &'static str, _key: &[u8], bytes: &[u8]) -> Result<Self, Error> {
                layout::decode(what, bytes)
            }
        }
    )*};
}

json_records!(ConflictRecord, BranchRecord, DeviceRecord);

impl Record for StoredDocument {
    fn encode(&self, key: &[u8]) -> Vec<u8> {
        // Every field named, so a new one cannot be left out unseen.
        let StoredDocument {
            document:
                Document {
                    id,
                    namespace,
                    collection,
                    data,
                    version,
                    seq,
                    updated_at,
                    deleted,
                },
            field_clocks,
        } = self;
        if !layout::is_document_key(key, namespace, collection, id) {
            return layout::encode(self);
        }
        let data = layout::encode(data);
        let mut out = Vec::with_capacity(32 + data.len() + 24 * field_clocks.len());
        out.push(BINARY);
        out.push(u8::from(*deleted));
        put_u64(&mut out, version.get());
        put_u64(&mut out, seq.get());
        put_hlc(&mut out, *updated_at);
        put_bytes(&mut out, &data);
        put_u64(&mut out, field_clocks.len() as u64);
        for (field, clock) in field_clocks {
            put_bytes(&mut out, field.as_bytes());
            put_hlc(&mut out, *clock);
        }
        out
    }

    fn decode(what: &'static str, key: &[u8], bytes: &[u8]) -> Result<Self, Error> {
        let Some(body) = binary(bytes) else {
            return layout::decode(what, bytes);
        };
        let corrupt = |message: &str| corrupt(what, message);
        let doc_key = layout::document_key_of(key).ok_or_else(|| corrupt("document key"))?;
        let mut reader = Reader { what, bytes: body };
        let deleted = match reader.byte()? {
            0 => false,
            1 => true,
            _ => return Err(corrupt("deleted flag")),
        };
        let version = Version(reader.u64()?);
        let seq = Seq(reader.u64()?);
        let updated_at = reader.hlc()?;
        let data: JsonObject = layout::decode(what, reader.bytes()?)?;
        let mut field_clocks = FieldClocks::new();
        for _ in 0..reader.u64()? {
            let field = reader.text()?.to_owned();
            // Written in the map's order: anything else is damage.
            if field_clocks
                .last_key_value()
                .is_some_and(|(last, _)| *last >= field)
            {
                return Err(corrupt("field clocks out of order"));
            }
            field_clocks.insert(field, reader.hlc()?);
        }
        reader.end()?;
        Ok(StoredDocument {
            document: Document {
                id: doc_key.id,
                namespace: doc_key.namespace,
                collection: doc_key.collection,
                data,
                version,
                seq,
                updated_at,
                deleted,
            },
            field_clocks,
        })
    }
}

/// Which optional fields of an op result its binary form holds.
const OP_ID: u8 = 1;
const LOCAL_ID: u8 = 2;
const SERVER_ID: u8 = 4;
const VERSION: u8 = 8;
const SEQ: u8 = 16;

impl Record for OpResult {
    fn encode(&self, key: &[u8]) -> Vec<u8> {
        // Every field named, so a new one cannot be left out unseen.
        let OpResult {
            op_id,
            local_id,
            server_id,
            action,
            status,
            version,
            seq,
            conflict_id,
            strategy,
            conflict_data,
            data,
            error,
        } = self;
        let has_more = conflict_id.is_some()
            || strategy.is_some()
            || conflict_data.is_some()
            || data.is_some()
            || error.is_some();
        let op_id_is_the_keys = op_id
            .as_ref()
            .is_none_or(|op_id| layout::op_id_bytes_of_key(key) == Some(op_id.as_str().as_bytes()));
        if has_more || !op_id_is_the_keys {
            return layout::encode(self);
        }
        let present = [
            (OP_ID, op_id.is_some()),
            (LOCAL_ID, local_id.is_some()),
            (SERVER_ID, server_id.is_some()),
            (VERSION, version.is_some()),
            (SEQ, seq.is_some()),
        ]
        .into_iter()
        .filter(|(_, present)| *present)
        .fold(0, |flags, (flag, _)| flags | flag);
        let mut out = Vec::with_capacity(48);
        out.push(BINARY);
        out.push(action_byte(*action));
        out.push(status_byte(*status));
        out.push(present);
        if let Some(local_id) = local_id {
            put_bytes(&mut out, local_id.as_bytes());
        }
        if let Some(server_id) = server_id {
            put_bytes(&mut out, server_id.as_str().as_bytes());
        }
        if let Some(version) = version {
            put_u64(&mut out, version.get());
        }
        if let Some(seq) = seq {
            put_u64(&mut out, seq.get());
        }
        out
    }

    fn decode(what: &'static str, key: &[u8], bytes: &[u8]) -> Result<Self, Error> {
        let Some(body) = binary(bytes) else {
            return layout::decode(what, bytes);
        };
        let corrupt = |message: &str| corrupt(what, message);
        let mut reader = Reader { what, bytes: body };
        let action = action_of(reader.byte()?).ok_or_else(|| corrupt("action"))?;
        let status = status_of(reader.byte()?).ok_or_else(|| corrupt("status"))?;
        let present = reader.byte()?;
        if present & !(OP_ID | LOCAL_ID | SERVER_ID | VERSION | SEQ) != 0 {
            return Err(corrupt("fields"));
        }
        let mut result = OpResult::new(action, status);
        if present & OP_ID != 0 {
            result.op_id = Some(layout::op_id_of_key(key).ok_or_else(|| corrupt("op key"))?);
        }
        if present & LOCAL_ID != 0 {
            result.local_id = Some(reader.text()?.to_owned());
        }
        if present & SERVER_ID != 0 {
            let id = reader.text()?;
            result.server_id = Some(DocId::new(id).map_err(|_| corrupt("server id"))?);
        }
        if present & VERSION != 0 {
            result.version = Some(Version(reader.u64()?));
        }
        if present & SEQ != 0 {
            result.seq = Some(Seq(reader.u64()?));
        }
        reader.end()?;
        Ok(result)
    }
}

/// The fields after the tag of a record in binary form; `None` for JSON.
fn binary(bytes: &[u8]) -> Option<&[u8]> {
    bytes.strip_prefix(&[BINARY])
}

fn corrupt(what: &'static str, message: &str) -> Error {
    Error::Corrupt {
        tree: what,
        message: format!("binary record: {message}"),
    }
}

// The bytes of each action and status: fixed forever, whatever order the
// enums' variants take.

fn action_byte(action: Action) -> u8 {
    match action {
        Action::Create => 0,
        Action::Update => 1,
        Action::Delete => 2,
        Action::Upsert => 3,
    }
}

fn action_of(byte: u8) -> Option<Action> {
    Some(match byte {
        0 => Action::Create,
        1 => Action::Update,
        2 => Action::Delete,
        3 => Action::Upsert,
        _ => return None,
    })
}

fn status_byte(status: OpStatus) -> u8 {
    match status {
        OpStatus::Success => 0,
        OpStatus::Merged => 1,
        OpStatus::Conflict => 2,
        OpStatus::Duplicate => 3,
        OpStatus::Error => 4,
    }
}

fn status_of(byte: u8) -> Option<OpStatus> {
    Some(match byte {
        0 => OpStatus::Success,
        1 => OpStatus::Merged,
        2 => OpStatus::Conflict,
        3 => OpStatus::Duplicate,
        4 => OpStatus::Error,
        _ => return None,
    })
}

/// `value` as a LEB128 varint: seven bits a byte, low first.
fn put_u64(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// `bytes` after their length.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_hlc(out: &mut Vec<u8>, hlc: Hlc) {
    put_u64(out, hlc.physical_ms());
    put_u64(out, u64::from(hlc.logical()));
    put_u64(out, hlc.node().0);
}

/// Reads the fields of a binary record of the kind `what` in order.
struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn truncated(&self) -> Error {
        corrupt(self.what, "truncated")
    }

    fn byte(&mut self) -> Result<u8, Error> {
        let (&first, rest) = self.bytes.split_first().ok_or_else(|| self.truncated())?;
        self.bytes = rest;
        Ok(first)
    }

    fn u64(&mut self) -> Result<u64, Error> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                // The encoder never ends a varint on a zero byte after the first.
                if byte == 0 && shift > 0 {
                    return Err(corrupt(self.what, "varint longer than its value"));
                }
                return Ok(value);
            }
        }
        Err(corrupt(self.what, "varint over 64 bits"))
    }

    fn bytes(&mut self) -> Result<&'a [u8], Error> {
        let len = usize::try_from(self.u64()?).map_err(|_| self.truncated())?;
        if len > self.bytes.len() {
            return Err(self.truncated());
        }
        let (taken, rest) = self.bytes.split_at(len);
        self.bytes = rest;
        Ok(taken)
    }

    fn text(&mut self) -> Result<&'a str, Error> {
        let what = self.what;
        std::str::from_utf8(self.bytes()?).map_err(|_| corrupt(what, "text"))
    }

    fn hlc(&mut self) -> Result<Hlc, Error> {
        let physical_ms = self.u64()?;
        let logical = u32::try_from(self.u64()?).map_err(|_| corrupt(self.what, "clock"))?;
        let node = NodeId(self.u64()?);
        Hlc::new(physical_ms, logical, node).ok_or_else(|| corrupt(self.what, "clock"))
    }

    fn end(&self) -> Result<(), Error> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(corrupt(self.what, "bytes after the last field"))
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;
    use sync_core::{ConflictId, DocKey, ErrorBody};

    use super::*;

    fn doc_key(namespace: &str, collection: &str, id: &str) -> DocKey {
        DocKey::new(
            namespace.parse().expect("namespace"),
            collection.parse().expect("collection"),
            id.parse().expect("id"),
        )
    }

    fn hlc((physical_ms, logical, node): (u64, u32, u64)) -> Hlc {
        Hlc::new(physical_ms, logical, NodeId(node)).expect("hlc")
    }

    fn clock() -> impl Strategy<Value = (u64, u32, u64)> {
        (
            0..=sync_core::Timestamp::MAX_MILLIS,
            any::<u32>(),
            any::<u64>(),
        )
    }

    fn document(
        key: &DocKey,
        (version, seq, deleted): (u64, u64, bool),
        updated_at: (u64, u32, u64),
        data: JsonObject,
        clocks: Vec<(String, (u64, u32, u64))>,
    ) -> StoredDocument {
        StoredDocument {
            document: Document {
                id: key.id.clone(),
                namespace: key.namespace.clone(),
                collection: key.collection.clone(),
                data,
                version: Version(version),
                seq: Seq(seq),
                updated_at: hlc(updated_at),
                deleted,
            },
            field_clocks: clocks.into_iter().map(|(f, c)| (f, hlc(c))).collect(),
        }
    }

    fn data() -> impl Strategy<Value = JsonObject> {
        proptest::collection::btree_map(
            "[a-zé_]{0,8}",
            prop_oneof![
                any::<i64>().prop_map(|n| json!(n)),
                ".{0,20}".prop_map(|s| json!(s)),
                any::<bool>().prop_map(|b| json!({"nested": b, "list": [b, null]})),
            ],
            0..6,
        )
        .prop_map(|map| map.into_iter().collect())
    }

    fn op_result() -> impl Strategy<Value = OpResult> {
        (
            0..4u8,
            0..5u8,
            proptest::option::of("[a-z0-9_]{0,12}"),
            proptest::option::of("[a-z0-9-]{1,12}"),
            proptest::option::of(any::<u64>()),
            proptest::option::of(any::<u64>()),
            any::<bool>(),
        )
            .prop_map(
                |(action, status, local_id, server_id, version, seq, op_id)| {
                    let mut result = OpResult::new(
                        action_of(action).expect("action"),
                        status_of(status).expect("status"),
                    );
                    result.op_id = op_id.then(|| "op-1".parse().expect("op id"));
                    result.local_id = local_id;
                    result.server_id = server_id.map(|id| id.parse().expect("id"));
                    result.version = version.map(Version);
                    result.seq = seq.map(Seq);
                    result
                },
            )
    }

    proptest! {
        #[test]
        fn a_document_reads_back_as_it_was_written_in_either_form(
            id in "[a-zA-Z0-9_-]{1,20}",
            numbers in (any::<u64>(), any::<u64>(), any::<bool>()),
            updated_at in clock(),
            data in data(),
            clocks in proptest::collection::vec(("[a-z_]{0,6}", clock()), 0..5),
        ) {
            let key = doc_key("default", "todos", &id);
            let stored = document(&key, numbers, updated_at, data, clocks);
            let at = layout::document(&key);
            let bytes = stored.encode(&at);
            prop_assert_eq!(bytes[0], BINARY);
            prop_assert_eq!(StoredDocument::decode("docs", &at, &bytes).expect("decode"), stored.clone());
            // JSON, as format 4 wrote it, still reads.
            let json = layout::encode(&stored);
            prop_assert_eq!(StoredDocument::decode("docs", &at, &json).expect("json"), stored.clone());
            // At a key that is not its own, it stays whole as JSON.
            let elsewhere = layout::document(&doc_key("default", "notes", &id));
            let bytes = stored.encode(&elsewhere);
            prop_assert_eq!(bytes[0], b'{');
            prop_assert_eq!(StoredDocument::decode("docs", &elsewhere, &bytes).expect("decode"), stored);
        }

        #[test]
        fn an_op_result_reads_back_as_it_was_written_in_either_form(result in op_result()) {
            let at = layout::op(&"op-1".parse().expect("op id"));
            let bytes = result.encode(&at);
            prop_assert_eq!(bytes[0], BINARY);
            prop_assert_eq!(OpResult::decode("ops", &at, &bytes).expect("decode"), result.clone());
            let json = layout::encode(&result);
            prop_assert_eq!(OpResult::decode("ops", &at, &json).expect("json"), result.clone());
            // One whose opId is not its key's stays whole as JSON.
            let elsewhere = layout::op(&"op-2".parse().expect("op id"));
            let bytes = result.encode(&elsewhere);
            prop_assert_eq!(bytes[0] == b'{', result.op_id.is_some());
            prop_assert_eq!(OpResult::decode("ops", &elsewhere, &bytes).expect("decode"), result);
        }

        #[test]
        fn a_cut_or_damaged_binary_record_is_corrupt_not_a_panic(
            result in op_result(),
            data in data(),
            flip in any::<(usize, u8)>(),
        ) {
            let key = doc_key("default", "todos", "doc-1");
            let stored = document(&key, (3, 9, false), (1, 2, 3), data, vec![("a".into(), (4, 5, 6))]);
            let document_at = layout::document(&key);
            let op_at = layout::op(&"op-1".parse().expect("op id"));
            let document_bytes = stored.encode(&document_at);
            let op_bytes = result.encode(&op_at);
            for len in 0..document_bytes.len() {
                prop_assert!(StoredDocument::decode("docs", &document_at, &document_bytes[..len]).is_err());
            }
            for len in 0..op_bytes.len() {
                prop_assert!(OpResult::decode("ops", &op_at, &op_bytes[..len]).is_err());
            }
            let damage = |mut bytes: Vec<u8>| {
                let at = 1 + flip.0 % (bytes.len() - 1);
                bytes[at] ^= flip.1.max(1);
                bytes
            };
            let decoded = StoredDocument::decode("docs", &document_at, &damage(document_bytes));
            prop_assert!(matches!(decoded, Ok(_) | Err(Error::Corrupt { .. })), "damage is corrupt, never another error");
            if op_bytes.len() > 1 {
                let decoded = OpResult::decode("ops", &op_at, &damage(op_bytes));
                prop_assert!(matches!(decoded, Ok(_) | Err(Error::Corrupt { .. })), "damage is corrupt, never another error");
            }
        }
    }

    fn read<'a, T>(
        bytes: &'a [u8],
        field: impl FnOnce(&mut Reader<'a>) -> Result<T, Error>,
    ) -> Result<T, Error> {
        let mut reader = Reader {
            what: "test",
            bytes,
        };
        let value = field(&mut reader)?;
        reader.end()?;
        Ok(value)
    }

    fn varint(value: u64) -> Vec<u8> {
        let mut out = Vec::new();
        put_u64(&mut out, value);
        out
    }

    #[test]
    fn varints_hold_every_u64_in_their_shortest_form_only() {
        for value in [
            0,
            1,
            127,
            128,
            16_383,
            16_384,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let bytes = varint(value);
            assert_eq!(read(&bytes, Reader::u64).expect("varint"), value);
        }
        assert_eq!(varint(u64::MAX).len(), 10);
        let corrupt = |bytes: &[u8]| matches!(read(bytes, Reader::u64), Err(Error::Corrupt { .. }));
        // A tenth byte may carry only the 64th bit.
        let mut over = vec![0xff; 9];
        over.push(0x02);
        assert!(corrupt(&over));
        let mut eleven = vec![0x80; 10];
        eleven.push(0x01);
        assert!(corrupt(&eleven));
        assert!(corrupt(&[0x80, 0x00]), "zero in two bytes");
        assert!(corrupt(&[0x81, 0x80, 0x00]), "one in three bytes");
        assert!(corrupt(&[0x80]), "cut after a continuation");
    }

    #[test]
    fn a_length_past_the_record_or_a_clock_past_its_range_is_corrupt() {
        let mut huge = varint(u64::MAX);
        huge.extend_from_slice(b"abc");
        assert!(matches!(
            read(&huge, Reader::bytes),
            Err(Error::Corrupt { .. })
        ));
        let mut clock = varint(sync_core::Timestamp::MAX_MILLIS + 1);
        clock.extend(varint(0));
        clock.extend(varint(7));
        assert!(matches!(
            read(&clock, Reader::hlc),
            Err(Error::Corrupt { .. })
        ));
        let mut logical_too_big = varint(0);
        logical_too_big.extend(varint(u64::from(u32::MAX) + 1));
        logical_too_big.extend(varint(7));
        assert!(matches!(
            read(&logical_too_big, Reader::hlc),
            Err(Error::Corrupt { .. })
        ));
        let newest = hlc((sync_core::Timestamp::MAX_MILLIS, u32::MAX, u64::MAX));
        let mut out = Vec::new();
        put_hlc(&mut out, newest);
        assert_eq!(read(&out, Reader::hlc).expect("clock"), newest);
    }

    #[test]
    fn a_result_with_a_conflict_merged_data_or_an_error_is_kept_as_json() {
        let at = layout::op(&"op-1".parse().expect("op id"));
        let plain = OpResult::new(Action::Update, OpStatus::Conflict);
        let mut with_conflict = plain.clone();
        with_conflict.conflict_id = Some(ConflictId::new("c-1").expect("id"));
        with_conflict.strategy = Some(sync_core::Strategy::Manual);
        let mut merged = OpResult::new(Action::Update, OpStatus::Merged);
        merged.data = Some(json!({"title": "x"}).as_object().cloned().expect("object"));
        let mut failed = OpResult::new(Action::Create, OpStatus::Error);
        failed.error = Some(ErrorBody::new(sync_core::ErrorCode::InvalidRequest, "no"));
        for result in [with_conflict, merged, failed] {
            let bytes = result.encode(&at);
            assert_eq!(bytes[0], b'{');
            assert_eq!(
                OpResult::decode("ops", &at, &bytes).expect("decode"),
                result
            );
        }
    }

    #[test]
    fn a_small_document_and_its_result_take_a_fraction_of_their_json() {
        let key = doc_key("default", "todos", "d12-3456");
        let data = json!({"text": "a".repeat(60), "done": false, "tags": ["home"]});
        let clock = (1_700_000_000_000, 0, 0x1234_5678_9abc_def0);
        let clocks = ["done", "tags", "text"]
            .map(|f| (f.to_owned(), clock))
            .to_vec();
        let stored = document(
            &key,
            (2, 49_985, false),
            clock,
            data.as_object().cloned().expect("object"),
            clocks,
        );
        let binary = stored.encode(&layout::document(&key)).len();
        let json = layout::encode(&stored).len();
        assert!(binary * 2 < json, "{binary} bytes against {json} of JSON");
        let op_id = "d12-3456-v1".parse().expect("op id");
        let mut result = OpResult::new(Action::Update, OpStatus::Success);
        result.op_id = Some(op_id);
        result.server_id = Some(key.id.clone());
        result.version = Some(Version(2));
        result.seq = Some(Seq(49_985));
        let at = layout::op(result.op_id.as_ref().expect("op id"));
        let binary = result.encode(&at).len();
        let json = layout::encode(&result).len();
        assert!(binary * 5 < json, "{binary} bytes against {json} of JSON");
    }
}
