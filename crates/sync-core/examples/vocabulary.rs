//! The vocabulary every layer shares: names validated once, an operation
//! read from the wire, a cursor, and the hybrid logical clock ordering
//! events of two nodes: `cargo run -p sync-core --example vocabulary`.

// An example prints what it shows.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::time::Duration;

use serde_json::json;
use sync_core::{CollectionName, Cursor, DocId, HlcClock, NodeId, Operation, Seq};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // A name is checked when it is made, so a value of the type is valid.
    let todos: CollectionName = "todos".parse()?;
    let bad = "no spaces".parse::<CollectionName>();
    println!(
        "{todos} is a collection; {:?}",
        bad.map_err(|e| e.to_string())
    );
    let id: DocId = "todo-1".parse()?;

    // The client's operation as it travels (docs/protocol.md).
    let op: Operation = serde_json::from_value(json!({
        "opId": "0192b6c2-op", "action": "update", "collection": "todos",
        "id": id, "baseVersion": 3, "data": {"done": true}
    }))?;
    println!(
        "{:?} of {:?} on version {:?}",
        op.action, op.id, op.base_version
    );

    // A cursor is opaque to clients: a position in one server's log.
    let cursor = Cursor::new(sync_core::LogId(7), Seq(42));
    println!(
        "cursor {cursor} reads back as {:?}",
        cursor.to_string().parse::<Cursor>()?
    );

    // Two nodes' clocks: a receive moves the receiver past the sender.
    let mut a = HlcClock::new(NodeId::from_name("a"), Duration::from_secs(60));
    let mut b = HlcClock::new(NodeId::from_name("b"), Duration::from_secs(60));
    let sent = a.now(1_000);
    let received = b.observe(sent, 900); // b's wall clock is behind
    assert!(received > sent);
    println!("sent {sent:?}, received {received:?}");
    Ok(())
}
