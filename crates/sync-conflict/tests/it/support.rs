//! A small model of the server for the tests: a document with its field
//! clocks and version history, and helpers to build requests.

use serde_json::Value;
use sync_conflict::{Base, ClientEdit, ConflictEngine, Outcome, ResolveRequest, ServerState};
use sync_core::{DocKey, FieldClocks, Hlc, JsonObject, NodeId, Strategy};

pub(crate) fn obj(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap_or_default()
}

pub(crate) fn key() -> DocKey {
    DocKey::new(
        "default".parse().unwrap(),
        "visitors".parse().unwrap(),
        "uuid-456".parse().unwrap(),
    )
}

pub(crate) fn time(millis: u64, node: u64) -> Hlc {
    Hlc::new(millis, 0, NodeId(node)).unwrap()
}

/// The server's view of one document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ServerDoc {
    pub(crate) data: JsonObject,
    pub(crate) deleted: bool,
    pub(crate) clocks: FieldClocks,
    pub(crate) updated_at: Hlc,
}

impl ServerDoc {
    pub(crate) fn new(data: JsonObject, at: Hlc) -> ServerDoc {
        let clocks = data.keys().map(|k| (k.clone(), at)).collect();
        ServerDoc {
            data,
            deleted: false,
            clocks,
            updated_at: at,
        }
    }

    /// Resolves an edit against this document and adopts the outcome.
    pub(crate) fn apply(
        &mut self,
        engine: &ConflictEngine,
        base: Base<'_>,
        edit: ClientEdit<'_>,
        client_time: Hlc,
        strategy: Option<Strategy>,
    ) -> Outcome {
        let key = key();
        let outcome = engine.resolve(&ResolveRequest {
            key: &key,
            base,
            server: ServerState {
                data: &self.data,
                deleted: self.deleted,
                field_clocks: &self.clocks,
                updated_at: self.updated_at,
            },
            edit,
            client_time,
            strategy,
        });
        self.data = outcome.data.clone();
        self.deleted = outcome.deleted;
        self.clocks = outcome.field_clocks.clone();
        self.updated_at = self.updated_at.max(client_time);
        outcome
    }
}
