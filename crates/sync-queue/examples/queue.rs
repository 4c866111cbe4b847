//! Persists offline edits, reopens the queue as after a crash, and drains
//! it the way a sync loop does: `cargo run -p sync-queue --example queue`.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use serde_json::json;
use sync_core::{Action, OfflineQueue, Operation};
use sync_queue::{QueueConfig, SledQueue};

fn edit(id: &str, data: serde_json::Value) -> Result<Operation, Box<dyn std::error::Error>> {
    let mut op = Operation::new(Action::Update);
    op.collection = Some("todos".parse()?);
    op.id = Some(id.parse()?);
    op.data = Some(serde_json::from_value(data)?);
    Ok(op)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("queue");

    let queue = SledQueue::open(&path, QueueConfig::default())?;
    queue
        .enqueue(edit("todo-1", json!({"text": "Buy milk"}))?)
        .await?;
    queue
        .enqueue(edit("todo-2", json!({"text": "Walk"}))?)
        .await?;
    // Not sent yet, so it coalesces with the first edit of todo-1.
    queue
        .enqueue(edit("todo-1", json!({"done": true}))?)
        .await?;
    println!("{} operations on disk", queue.pending_count().await?);
    queue.close()?; // as if the app stopped here

    let queue = SledQueue::open(&path, QueueConfig::default())?;
    let now_ms = 1_700_000_000_000;
    loop {
        let batch = queue.ready(now_ms, 100).await?;
        if batch.is_empty() {
            break;
        }
        for entry in &batch {
            println!(
                "sending {:?} {:?} {}",
                entry.id,
                entry.op.action,
                serde_json::to_string(&entry.op.data)?
            );
        }
        let ids: Vec<_> = batch.iter().map(|entry| entry.id).collect();
        queue.acknowledge(&ids).await?; // the server answered
    }
    println!("{} operations left", queue.pending_count().await?);
    Ok(())
}
