//! The write path without a server: operations as a client sends them go
//! through a `Syncer` over a sled store; a stale edit meets a newer server
//! version and is merged: `cargo run -p sync-engine --example write_path`.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sync_conflict::ConflictEngine;
use sync_core::{DocKey, HlcClock, NodeId, Operation, SystemClock};
use sync_engine::{BatchContext, FullAccess, SyncPoint, Syncer};
use sync_store::{SledStore, StoreConfig};

fn operation(value: serde_json::Value) -> Result<Operation, serde_json::Error> {
    serde_json::from_value(value)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store = Arc::new(SledStore::open(dir.path(), StoreConfig::default())?);
    let syncer = Syncer::new(
        store,
        ConflictEngine::default(),
        Arc::new(SystemClock),
        HlcClock::new(NodeId::from_name("example"), Duration::from_secs(60)),
        256 * 1024,
    );
    let caller = FullAccess {
        user: "alice".parse()?,
    };
    let context = BatchContext {
        caller: &caller,
        device_id: Some("device-a".parse()?),
        collection: None,
        strategy: None,
        sync_point: SyncPoint::None,
    };
    let batches = [
        json!({"opId": "op-1", "action": "create", "collection": "todos", "id": "todo-1",
               "data": {"text": "Buy milk", "tags": ["home"]}}),
        json!({"opId": "op-2", "action": "update", "collection": "todos", "id": "todo-1",
               "baseVersion": 1, "data": {"tags": ["home", "shop"]}}),
        // Made on version 1 too, by another device: the fields merge.
        json!({"opId": "op-3", "action": "update", "collection": "todos", "id": "todo-1",
               "baseVersion": 1, "data": {"text": "Buy oat milk"}}),
        // Sent again after a lost answer: answered from the first result.
        json!({"opId": "op-3", "action": "update", "collection": "todos", "id": "todo-1",
               "baseVersion": 1, "data": {"text": "Buy oat milk"}}),
    ];
    for op in batches {
        let reports = syncer.apply(&context, vec![Ok(operation(op)?)]).await?;
        for report in reports {
            println!(
                "{:?} {:?} version={:?}",
                report.result.op_id, report.result.status, report.result.version,
            );
        }
    }
    let key = DocKey::new("default".parse()?, "todos".parse()?, "todo-1".parse()?);
    let stored = syncer.store().get(&key).await?.ok_or("the document")?;
    println!("{}", serde_json::to_string(&stored.document.data)?);
    Ok(())
}
