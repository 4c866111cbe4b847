//! `sync_request`: the body of `POST /v1/sync` and of bulk sync,
//! `POST /api/{collection}/bulk-sync`, read as `sync_service::api` reads it
//! (size limit, depth check on the raw bytes, serde), then each operation
//! as the write path reads it (`Operation` from the JSON value, then
//! `validate`).

use serde::Deserialize;
use sync_core::{CollectionName, Cursor, DeviceId, Namespace, Operation, Strategy, Timestamp};
use sync_service::SyncRequest;
use sync_service::limits::Limits;

/// Reads `data` as a sync request body. Every operation is read from its
/// JSON value as the handler does, and must read the same from its text;
/// one that reads must validate without panicking and survive a round
/// trip; a cursor that parses must print as it was sent.
pub fn sync_request(data: &[u8]) {
    let limits = Limits::default();
    if data.len() > limits.request_bytes_max {
        return;
    }
    let depth_ok = limits.check_depth(data).is_ok();
    let _ = crate::split::server_json(data);
    if !depth_ok {
        return;
    }
    let Ok(request) = serde_json::from_slice::<SyncRequest>(data) else {
        return;
    };
    let _ = limits.check_operations(request.operations.len());
    let _ = (
        request.pull,
        request.limit.map(|limit| limit.clamp(1, 10_000)),
    );
    if let Some(time) = request.last_sync_timestamp {
        assert_eq!(Timestamp::parse(&time.to_string()), Ok(time));
    }
    if let Some(strategy) = request.strategy {
        let wire = serde_json::to_value(strategy).ok();
        assert_eq!(
            wire.and_then(|w| Strategy::deserialize(w).ok()),
            Some(strategy)
        );
    }
    // Names are validated as they are read: each is valid as printed.
    let mut devices = request.device_id.iter().map(DeviceId::as_str);
    assert!(devices.all(|name| DeviceId::new(name).is_ok()));
    let mut namespaces = request
        .namespace
        .iter()
        .chain(request.namespaces.iter().flatten());
    assert!(namespaces.all(|name| Namespace::new(name.as_str()).is_ok()));
    let mut collections = request.collections.iter().flatten();
    assert!(collections.all(|name| CollectionName::new(name.as_str()).is_ok()));
    if let Some(text) = &request.cursor
        && let Ok(cursor) = Cursor::parse(text)
    {
        assert_eq!(&cursor.to_string(), text, "a cursor parsed from other text");
    }
    for value in &request.operations {
        let from_value = Operation::deserialize(value);
        let text = value.to_string();
        let from_text = serde_json::from_str::<Operation>(&text);
        match (&from_value, &from_text) {
            (Ok(a), Ok(b)) => assert_eq!(a, b, "operation {text} reads differently"),
            (Err(_), Err(_)) => {}
            _ => panic!(
                "operation {text} reads from its value as {from_value:?} but from its text as {from_text:?}"
            ),
        }
        if let Ok(operation) = from_value {
            let _ = operation.validate();
            operation_round_trip(&operation);
        }
    }
}

/// An operation written to JSON reads back as the same operation, and
/// validates the same way.
pub(crate) fn operation_round_trip(operation: &Operation) {
    let wire = serde_json::to_string(operation)
        .unwrap_or_else(|error| panic!("{operation:?} does not serialise: {error}"));
    let back: Operation = serde_json::from_str(&wire)
        .unwrap_or_else(|error| panic!("operation {wire} does not read back: {error}"));
    assert_eq!(&back, operation, "operation changed in a round trip");
    assert_eq!(
        back.validate().is_ok(),
        operation.validate().is_ok(),
        "validation changed in a round trip of {wire}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_seed_004_body() {
        sync_request(
            br#"{"operations": [
                {"action": "create", "localId": "local_001", "timestamp": "2023-12-01T10:30:00.000Z",
                 "data": {"name": "Alice Johnson", "interests": ["AI", "machine learning"]}},
                {"action": "update", "localId": "local_002", "serverId": "uuid-existing-456",
                 "timestamp": "2023-12-01T11:00:00.000Z", "data": {"title": "Senior Developer"}},
                {"action": "drop"}
            ], "lastSyncTimestamp": "2023-12-01T09:00:00.000Z", "chunkInfo": {"n": 1}}"#,
        );
    }
}
