//! The WebSocket messages: text frames of one JSON object each, `type`
//! first. The wire shapes are those of `docs/protocol.md` ("WebSocket
//! protocol"), whose examples parse as these types; the tests at the bottom
//! pin them, including the minimal messages of clients that send no
//! `hello`.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, de};
use serde_json::value::RawValue;
use sync_core::{
    Action, BranchName, Change, ChangeOp, CollectionName, ConflictRecord, Cursor, DeviceId, DocId,
    ErrorBody, ErrorCode, Filter, Hlc, JsonObject, LogId, Namespace, OpId, OpStatus, Operation,
    Priority, RawChange, Seq, Timestamp, Version,
};

/// A client's write: `insert`, `update` or `delete` of one document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteMessage {
    /// The collection.
    pub collection: CollectionName,
    /// The branch of the document to write instead of the document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<BranchName>,
    /// The document (`recordId`, or `id` as some clients write it).
    #[serde(alias = "id")]
    pub record_id: Option<DocId>,
    /// The whole document (insert) or the changed fields (update).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<JsonObject>,
    /// The idempotency key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<OpId>,
    /// The version the edit was made on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_version: Option<Version>,
    /// When the client made the edit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Timestamp>,
    /// The namespace; `default` when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<Namespace>,
    /// How urgent the write is; `normal` when omitted.
    #[serde(default, skip_serializing_if = "Priority::is_normal")]
    pub priority: Priority,
}

impl WriteMessage {
    /// The operation this message asks for. An `insert` is an upsert: a
    /// client that saves a document it created offline writes it whether
    /// or not the server has it already.
    pub fn into_operation(self, action: Action) -> Operation {
        let mut op = Operation::new(action);
        op.op_id = self.op_id;
        op.collection = Some(self.collection);
        op.branch = self.branch;
        op.namespace = self.namespace;
        op.id = self.record_id;
        op.base_version = self.base_version;
        op.timestamp = self.timestamp;
        op.data = self.data;
        op.priority = self.priority;
        op
    }
}

/// What a client sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum ClientMessage {
    /// Introduces the connection: its device and default cursor.
    Hello {
        /// The device, for presence and the stats.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device_id: Option<DeviceId>,
        /// Where subscriptions without their own cursor resume.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
        /// Free-form client description (name, version).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<serde_json::Value>,
    },
    /// Starts a subscription to one collection.
    Subscribe {
        /// The client's name for it (default: the collection).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The collection.
        collection: CollectionName,
        /// A branch of the collection's documents instead of the documents.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        branch: Option<BranchName>,
        /// The namespace; `default` when omitted.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        namespace: Option<Namespace>,
        /// Top-level field equalities.
        #[serde(default, rename = "where", skip_serializing_if = "Option::is_none")]
        filter: Option<Filter>,
        /// Resume after this cursor; without one the current documents
        /// arrive as inserts first.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<String>,
    },
    /// Ends a subscription, named by id or collection.
    Unsubscribe {
        /// The subscription's id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Or its collection.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        collection: Option<CollectionName>,
    },
    /// Creates or replaces a document.
    Insert(WriteMessage),
    /// Changes fields of a document.
    Update(WriteMessage),
    /// Deletes a document.
    Delete(WriteMessage),
    /// Asks for a `pong`.
    Ping,
}

impl ClientMessage {
    /// Reads one message's JSON text. A write whose `type` is its first
    /// key, as clients send it, is read in one pass; any other message, and
    /// any text that pass refuses, is read by the derived reader, whose
    /// answer (and error) is the message's.
    pub fn from_json(text: &str) -> Result<ClientMessage, serde_json::Error> {
        match serde_json::from_str::<WriteTypeFirst>(text) {
            Ok(WriteTypeFirst(message)) => Ok(message),
            Err(_) => serde_json::from_str(text),
        }
    }
}

/// A write message whose `type` comes first, read without buffering it
/// whole as the derived reader of an internally tagged enum does. Refuses
/// everything else, without reading further than the first key.
struct WriteTypeFirst(ClientMessage);

impl<'de> Deserialize<'de> for WriteTypeFirst {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(WriteTypeFirstVisitor)
    }
}

struct WriteTypeFirstVisitor;

impl<'de> de::Visitor<'de> for WriteTypeFirstVisitor {
    type Value = WriteTypeFirst;

    fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("a write message with its type first")
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<WriteTypeFirst, A::Error> {
        let not_a_write = || de::Error::custom("not a write message with its type first");
        match map.next_key::<Text<'de>>()? {
            Some(Text(key)) if key == "type" => {}
            _ => return Err(not_a_write()),
        }
        let Text(kind) = map.next_value()?;
        let variant: fn(WriteMessage) -> ClientMessage = match &*kind {
            "insert" => ClientMessage::Insert,
            "update" => ClientMessage::Update,
            "delete" => ClientMessage::Delete,
            _ => return Err(not_a_write()),
        };
        let write =
            WriteMessage::deserialize(de::value::MapAccessDeserializer::new(WriteFields(map)))?;
        Ok(WriteTypeFirst(variant(write)))
    }
}

/// A string borrowed from the message's text where it has no escapes.
struct Text<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> de::Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                formatter.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, value: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(value)))
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(value.to_owned())))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// The keys after a write's `type`, where a second `type` is refused as
/// the derived reader refuses it.
struct WriteFields<A>(A);

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for WriteFields<A> {
    type Error = A::Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.0.next_key::<Text<'de>>()? {
            None => Ok(None),
            Some(Text(key)) if key == "type" => Err(de::Error::duplicate_field("type")),
            Some(Text(key)) => seed
                .deserialize(de::value::CowStrDeserializer::new(key))
                .map(Some),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(seed)
    }
}

/// Where a change came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Origin {
    /// The device that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<DeviceId>,
    /// Its operation.
    pub op_id: OpId,
}

/// A change pushed to a subscriber; its document and delta are
/// [`JsonObject`]s, or JSON text (`Box<RawValue>`) passed on unread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerChange<Body = JsonObject> {
    /// The collection.
    pub collection: CollectionName,
    /// The namespace.
    pub namespace: Namespace,
    /// The document.
    pub record_id: DocId,
    /// The whole document after the change (absent for a delete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Body>,
    /// The changed fields only.
    pub delta: Body,
    /// The document's version after the change.
    pub version: Version,
    /// The change's position in the log.
    pub seq: Seq,
    /// The cursor to resume after this change.
    pub cursor: Cursor,
    /// When the write was made.
    pub timestamp: Hlc,
    /// Who made it (absent when a current document is sent as an insert).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
    /// `false` when the document stopped matching the subscription's filter
    /// with this change (it is sent once more, then no longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matches: Option<bool>,
}

impl ServerChange {
    /// A current document sent as an insert (a subscription without a
    /// cursor, or after a reset).
    pub fn from_document(document: &sync_core::Document, log: LogId) -> ServerChange {
        ServerChange {
            collection: document.collection.clone(),
            namespace: document.namespace.clone(),
            record_id: document.id.clone(),
            data: Some(document.data.clone()),
            delta: document.data.clone(),
            version: document.version,
            seq: document.seq,
            cursor: Cursor::new(log, document.seq),
            timestamp: document.updated_at,
            origin: None,
            matches: None,
        }
    }

    /// The message for `change` of the log `log`; the document and delta
    /// are moved, not copied.
    pub fn from_change(change: Change, log: LogId) -> ServerChange {
        ServerChange {
            collection: change.collection,
            namespace: change.namespace,
            record_id: change.id,
            data: change.data,
            delta: change.delta,
            version: change.version,
            seq: change.seq,
            cursor: Cursor::new(log, change.seq),
            timestamp: change.timestamp,
            origin: Some(Origin {
                device_id: change.device_id,
                op_id: change.op_id,
            }),
            matches: None,
        }
    }
}

impl ServerChange<Box<RawValue>> {
    /// The message for `change` of the log `log`, its document and delta
    /// left as the JSON text they are.
    pub fn from_raw_change(change: RawChange, log: LogId) -> ServerChange<Box<RawValue>> {
        ServerChange {
            collection: change.collection,
            namespace: change.namespace,
            record_id: change.id,
            data: change.data,
            delta: change.delta,
            version: change.version,
            seq: change.seq,
            cursor: Cursor::new(log, change.seq),
            timestamp: change.timestamp,
            origin: Some(Origin {
                device_id: change.device_id,
                op_id: change.op_id,
            }),
            matches: None,
        }
    }
}

impl ServerChange {
    /// The JSON text of the `insert`, `update` or `delete` message (by
    /// `op`) of this change: [`ServerMessage::change`]'s text, without
    /// moving or copying the change into a message.
    pub fn message_json(&self, op: ChangeOp) -> String {
        change_message_json(self, op, 0)
    }
}

impl ServerChange<Box<RawValue>> {
    /// The JSON text of the `insert`, `update` or `delete` message (by
    /// `op`) of this change, its document and delta copied as they are.
    pub fn message_json(&self, op: ChangeOp) -> String {
        let bodies = self.delta.get().len() + self.data.as_ref().map_or(0, |data| data.get().len());
        change_message_json(self, op, bodies)
    }
}

/// The text of a change message, written into one buffer sized for the
/// `bodies` bytes of its document and delta and the fields around them.
fn change_message_json<Body: Serialize>(
    change: &ServerChange<Body>,
    op: ChangeOp,
    bodies: usize,
) -> String {
    /// [`ServerMessage`]'s change variants over a borrowed change.
    #[derive(Serialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum ChangeMessage<'a, Body> {
        Insert(&'a ServerChange<Body>),
        Update(&'a ServerChange<Body>),
        Delete(&'a ServerChange<Body>),
    }
    /// The message's fields other than the document and delta, with room
    /// for typical names.
    const FIELDS_LEN: usize = 320;
    let message = match op {
        ChangeOp::Insert => ChangeMessage::Insert(change),
        ChangeOp::Update => ChangeMessage::Update(change),
        ChangeOp::Delete => ChangeMessage::Delete(change),
    };
    let mut text = Vec::with_capacity(FIELDS_LEN + bodies);
    // Plain data with string keys: serialisation cannot fail, and
    // serde_json writes UTF-8.
    match serde_json::to_writer(&mut text, &message) {
        Ok(()) => String::from_utf8(text).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// The answer to an applied write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ack {
    /// The write's idempotency key.
    pub op_id: OpId,
    /// `success`, `merged` or `duplicate`.
    pub status: OpStatus,
    /// The document.
    pub record_id: DocId,
    /// Its version after the write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<Version>,
    /// The change's position in the log (none when nothing changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<Seq>,
    /// The cursor after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Cursor>,
    /// The whole document, when a conflict was resolved automatically.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<JsonObject>,
}

/// An error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorMessage {
    /// The protocol code.
    pub code: ErrorCode,
    /// What went wrong.
    pub message: String,
    /// The write it is about, when it is about one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub op_id: Option<String>,
    /// Structured context, as in an HTTP error body: `{"limit"}` for
    /// `too_large`, `{"retryAfterSecs"}` for `rate_limited`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorMessage {
    /// The WebSocket form of an error body, about `op_id` when given.
    pub fn from_body(body: ErrorBody, op_id: Option<String>) -> Self {
        ErrorMessage {
            code: body.code,
            message: body.message,
            op_id,
            details: body.details,
        }
    }
}

/// What the server sends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum ServerMessage {
    /// The answer to `hello`.
    Welcome {
        /// The server's clock.
        server_time: Timestamp,
        /// The head of the log.
        cursor: Cursor,
        /// Seconds between the server's pings.
        heartbeat_secs: u64,
    },
    /// A subscription started; its catch-up follows.
    Subscribed {
        /// Its id.
        id: String,
        /// Where its stream starts.
        cursor: Cursor,
    },
    /// A subscription ended.
    Unsubscribed {
        /// Its id.
        id: String,
    },
    /// A document was created (or started matching the filter).
    Insert(ServerChange),
    /// A document changed.
    Update(ServerChange),
    /// A document was deleted.
    Delete(ServerChange),
    /// A write was applied.
    Ack(Ack),
    /// A write was left pending as a conflict (`manual`): the conflict as
    /// bulk sync lists it, whose `opId` is the write's.
    Conflict(Box<ConflictRecord>),
    /// A request failed; the connection stays open.
    Error(ErrorMessage),
    /// The live stream of a subscription was dropped (too slow a consumer):
    /// subscribe again from `cursor`; with `reset`, replace the local copy
    /// with the current documents that follow.
    Resync {
        /// The subscription concerned.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// Where to resume.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cursor: Option<Cursor>,
        /// Whether the local copy must be replaced.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        reset: bool,
    },
    /// The answer to `ping`.
    Pong,
}

impl ServerMessage {
    /// The change message for `change`: `insert`, `update` or `delete` by
    /// its op.
    pub fn change(change: ServerChange, op: ChangeOp) -> ServerMessage {
        match op {
            ChangeOp::Insert => ServerMessage::Insert(change),
            ChangeOp::Update => ServerMessage::Update(change),
            ChangeOp::Delete => ServerMessage::Delete(change),
        }
    }

    /// The message as the JSON text of one frame.
    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::*;

    fn parse(value: serde_json::Value) -> ClientMessage {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn reads_seed_001_messages_as_written() {
        assert!(matches!(
            parse(json!({"type": "subscribe", "collection": "todos"})),
            ClientMessage::Subscribe { ref collection, .. } if collection == "todos"
        ));
        let ClientMessage::Insert(insert) = parse(json!({
            "type": "insert", "collection": "todos", "recordId": "t1",
            "data": {"text": "Buy groceries", "done": false},
            "timestamp": "2023-12-01T10:30:00.000Z"
        })) else {
            panic!("not an insert");
        };
        let op = insert.into_operation(Action::Upsert);
        assert_eq!(op.id.unwrap(), "t1");
        assert_eq!(op.data.unwrap()["text"], "Buy groceries");
        assert!(matches!(
            parse(json!({"type": "delete", "collection": "todos", "id": "t1"})),
            ClientMessage::Delete(WriteMessage { record_id: Some(ref id), .. }) if id == "t1"
        ));
        assert_eq!(parse(json!({"type": "ping"})), ClientMessage::Ping);
        assert!(serde_json::from_value::<ClientMessage>(json!({"type": "drop"})).is_err());
    }

    #[test]
    fn subscribe_takes_where_and_cursor() {
        let ClientMessage::Subscribe {
            filter,
            cursor,
            namespace,
            id,
            ..
        } = parse(json!({
            "type": "subscribe", "id": "s1", "collection": "messages", "namespace": "room-42",
            "where": {"roomId": "42"}, "cursor": "c1.0000000000000abc.7"
        }))
        else {
            panic!("not a subscribe");
        };
        assert_eq!(id.as_deref(), Some("s1"));
        assert_eq!(namespace.unwrap(), "room-42");
        assert_eq!(
            serde_json::to_value(filter.unwrap()).unwrap(),
            json!({"roomId": "42"})
        );
        assert_eq!(cursor.as_deref(), Some("c1.0000000000000abc.7"));
    }

    #[test]
    fn a_borrowed_change_encodes_as_its_message() {
        let mut change = ServerChange::from_change(
            serde_json::from_value(json!({
                "seq": 7, "namespace": "default", "collection": "todos", "id": "doc-1",
                "op": "insert", "delta": {"text": "\"milk\" \u{e9}"}, "version": 1,
                "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
                "opId": "op-1", "deviceId": "device-A", "data": {"text": "\"milk\" \u{e9}"}
            }))
            .unwrap(),
            LogId(0xabc),
        );
        change.matches = Some(false);
        for op in [ChangeOp::Insert, ChangeOp::Update, ChangeOp::Delete] {
            assert_eq!(
                change.message_json(op),
                ServerMessage::change(change.clone(), op).to_json()
            );
        }
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        let leaf = prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::from),
            any::<i64>().prop_map(serde_json::Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(serde_json::Value::from),
            "[a-z\"\\\\\n\t\u{1}\u{e9}\u{1F600}]{0,6}".prop_map(serde_json::Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
                proptest::collection::btree_map("[a-c\"\u{e9}]{1,3}", inner, 0..4)
                    .prop_map(|map| serde_json::Value::Object(map.into_iter().collect())),
            ]
        })
    }

    fn json_object() -> impl Strategy<Value = JsonObject> {
        proptest::collection::btree_map("[a-z\"\\\\]{1,4}", json_value(), 0..5)
            .prop_map(|map| map.into_iter().collect())
    }

    /// One member of a generated client message: its key and value as JSON
    /// text, drawn from the write fields, their look-alikes and bad values.
    fn message_member() -> impl Strategy<Value = (String, String)> {
        let member = |keys: &'static [&'static str], values: &'static [&'static str]| {
            (
                proptest::sample::select(keys),
                proptest::sample::select(values),
            )
                .prop_map(|(key, value)| (key.to_owned(), value.to_owned()))
        };
        prop_oneof![
            member(
                &[r#""type""#, r#""\u0074ype""#],
                &[
                    r#""insert""#,
                    r#""update""#,
                    r#""delete""#,
                    r#""ping""#,
                    r#""subscribe""#,
                    r#""Insert""#,
                    "5"
                ],
            ),
            member(
                &[r#""collection""#, r#""coll\u0065ction""#],
                &[
                    r#""todos""#,
                    r#""todos@draft""#,
                    r#""to dos""#,
                    "null",
                    "[]"
                ],
            ),
            member(
                &[
                    r#""recordId""#,
                    r#""id""#,
                    r#""opId""#,
                    r#""namespace""#,
                    r#""branch""#
                ],
                &[r#""doc-1""#, r#""bad id""#, r#""""#, "7", "null"],
            ),
            member(
                &[
                    r#""baseVersion""#,
                    r#""priority""#,
                    r#""timestamp""#,
                    r#""localId""#
                ],
                &[
                    "3",
                    "-1",
                    r#""high""#,
                    r#""2023-12-01T10:30:00.000Z""#,
                    "null",
                    "{}"
                ],
            ),
            json_value().prop_map(|value| (r#""data""#.to_owned(), value.to_string())),
        ]
    }

    proptest! {
        /// The one-pass reader of writes answers every text as the derived
        /// reader does: the same message, or the same error.
        #[test]
        fn the_write_reader_agrees_with_the_derived_reader(
            write in proptest::sample::select(&["insert", "update", "delete"][..]),
            members in proptest::collection::vec(message_member(), 0..7),
            type_first in any::<bool>(),
        ) {
            let mut all: Vec<String> = members
                .iter()
                .map(|(key, value)| format!("{key}:{value}"))
                .collect();
            if type_first {
                all.insert(0, format!(r#""type":"{write}""#));
            }
            let text = format!("{{{}}}", all.join(","));
            let derived = serde_json::from_str::<ClientMessage>(&text).map_err(|e| e.to_string());
            prop_assert_eq!(
                ClientMessage::from_json(&text).map_err(|e| e.to_string()),
                derived,
                "{}", text
            );
        }

        /// The catch-up passes a stored change's document and delta on as
        /// text: its message must be the one the decoded change gives.
        #[test]
        fn a_raw_change_encodes_as_the_change_it_was_stored_from(
            data in json_object(),
            delta in json_object(),
            op in prop_oneof![Just(ChangeOp::Insert), Just(ChangeOp::Update), Just(ChangeOp::Delete)],
            device in proptest::option::of("[a-z.:_-]{1,5}"),
            seq in 1u64..u64::MAX / 2,
        ) {
            let change: Change = serde_json::from_value(json!({
                "seq": seq, "namespace": "default", "collection": "todos", "id": "doc-1:a@b",
                "op": op, "delta": delta, "version": 3,
                "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
                "opId": "op-1", "deviceId": device,
                "data": (op != ChangeOp::Delete).then_some(data),
            }))
            .unwrap();
            let stored = serde_json::to_vec(&change).unwrap();
            let raw: RawChange = serde_json::from_slice(&stored).unwrap();
            let log = LogId(0xabc);
            prop_assert_eq!(
                ServerChange::from_raw_change(raw.clone(), log).message_json(op),
                ServerChange::from_change(change.clone(), log).message_json(op)
            );
            prop_assert_eq!(
                ServerChange::from_raw_change(RawChange::from(change.clone()), log).message_json(op),
                ServerChange::from_change(change, log).message_json(op)
            );
        }
    }

    #[test]
    fn server_messages_have_the_spec_shape() {
        let change: Change = serde_json::from_value(json!({
            "seq": 1234, "namespace": "default", "collection": "todos", "id": "doc-1",
            "op": "update", "delta": {"done": true}, "version": 4,
            "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
            "opId": "op-9", "deviceId": "device-A",
            "data": {"text": "milk", "done": true}
        }))
        .unwrap();
        let op = change.op;
        let message = ServerMessage::change(ServerChange::from_change(change, LogId(0xabc)), op);
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&message.to_json()).unwrap(),
            json!({
                "type": "update", "collection": "todos", "namespace": "default",
                "recordId": "doc-1", "data": {"text": "milk", "done": true},
                "delta": {"done": true}, "version": 4, "seq": 1234,
                "cursor": "c1.0000000000000abc.1234",
                "timestamp": "2023-12-01T10:30:00.000Z-00000000-0000000000000001",
                "origin": {"deviceId": "device-A", "opId": "op-9"}
            })
        );
        assert_eq!(ServerMessage::Pong.to_json(), r#"{"type":"pong"}"#);
        let resync = ServerMessage::Resync {
            id: None,
            cursor: None,
            reset: true,
        };
        assert_eq!(resync.to_json(), r#"{"type":"resync","reset":true}"#);
        let mut limited = ErrorBody::new(ErrorCode::RateLimited, "slow down");
        limited.details = Some(json!({"retryAfterSecs": 2}));
        let error = ServerMessage::Error(ErrorMessage::from_body(limited, Some("op-1".into())));
        assert_eq!(
            error.to_json(),
            r#"{"type":"error","code":"rate_limited","message":"slow down","opId":"op-1","details":{"retryAfterSecs":2}}"#
        );
        let plain = ErrorMessage::from_body(ErrorBody::new(ErrorCode::InvalidRequest, "bad"), None);
        assert_eq!(
            ServerMessage::Error(plain).to_json(),
            r#"{"type":"error","code":"invalid_request","message":"bad"}"#
        );
        let ack = ServerMessage::Ack(Ack {
            op_id: "op-1".parse().unwrap(),
            status: OpStatus::Success,
            record_id: "doc-1".parse().unwrap(),
            version: Some(Version(1)),
            seq: Some(Seq(5)),
            cursor: Some(Cursor::new(LogId(1), Seq(5))),
            data: None,
        });
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&ack.to_json()).unwrap(),
            json!({"type": "ack", "opId": "op-1", "status": "success", "recordId": "doc-1",
                   "version": 1, "seq": 5, "cursor": "c1.0000000000000001.5"})
        );
        let back: ServerMessage = serde_json::from_str(&ack.to_json()).unwrap();
        assert_eq!(back, ack);
    }
}
