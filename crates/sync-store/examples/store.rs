//! Commits two writes to a sled store in a temporary directory and reads
//! them back from the change log: `cargo run -p sync-store --example store`.
//!
//! A server computes writes with `sync-engine`; here they are made by hand
//! to show what the store keeps: the document, its change, its history.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::sync::Arc;

use serde_json::json;
use sync_core::store::{ChangeFilter, CommitOutcome, Write, WriteEffect};
use sync_core::{
    Action, ChangeOp, DocKey, FieldClocks, Hlc, JsonObject, NodeId, OpResult, OpStatus, Seq,
    SyncStore, Version,
};
use sync_store::{SledStore, StoreConfig};

fn write(
    op_id: &str,
    key: &DocKey,
    expected: u64,
    op: ChangeOp,
    delta: serde_json::Value,
    data: serde_json::Value,
) -> Result<Write, Box<dyn std::error::Error>> {
    let action = if op == ChangeOp::Insert {
        Action::Create
    } else {
        Action::Update
    };
    let mut result = OpResult::new(action, OpStatus::Success);
    result.op_id = Some(op_id.parse()?);
    result.server_id = Some(key.id.clone());
    let timestamp = Hlc::new(1_700_000_000_000 + expected, 0, NodeId(1)).ok_or("time")?;
    let data: JsonObject = serde_json::from_value(data)?;
    let field_clocks: FieldClocks = data.keys().map(|k| (k.clone(), timestamp)).collect();
    Ok(Write {
        op_id: op_id.parse()?,
        key: key.clone(),
        expected_version: Version(expected),
        effect: WriteEffect::Change {
            op,
            delta: serde_json::from_value(delta)?,
            data,
            field_clocks,
            timestamp,
        },
        device_id: Some("device-a".parse()?),
        user: Some("alice".parse()?),
        result,
        conflict: None,
        resolves: None,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let store: Arc<dyn SyncStore> = Arc::new(SledStore::open(dir.path(), StoreConfig::default())?);
    let key = DocKey::new("default".parse()?, "todos".parse()?, "todo-1".parse()?);

    let first = json!({"text": "Buy milk", "done": false});
    let outcomes = store
        .apply(vec![write(
            "op-1",
            &key,
            0,
            ChangeOp::Insert,
            first.clone(),
            first,
        )?])
        .await?;
    assert!(matches!(outcomes[0], CommitOutcome::Committed(_)));
    // Made against version 1: committed, durable when `apply` returns.
    let outcomes = store
        .apply(vec![write(
            "op-2",
            &key,
            1,
            ChangeOp::Update,
            json!({"done": true}),
            json!({"text": "Buy milk", "done": true}),
        )?])
        .await?;
    assert!(matches!(outcomes[0], CommitOutcome::Committed(_)));

    let page = store
        .changes_after(Seq(0), &ChangeFilter::default(), 100)
        .await?;
    for change in &page.changes {
        println!(
            "seq {} {:?} {} v{} {}",
            change.seq.0,
            change.op,
            change.id,
            change.version.0,
            serde_json::to_string(&change.delta)?
        );
    }
    let document = store.get(&key).await?.ok_or("the document")?;
    println!(
        "now v{}: {}",
        document.document.version.0,
        serde_json::to_string(&document.document.data)?
    );
    Ok(())
}
