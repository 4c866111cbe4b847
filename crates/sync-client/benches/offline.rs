//! The client offline, as an app that keeps editing without a network
//! sees it: durable local saves per second on a fresh client (its first
//! saves) and again with thousands of edits already queued, local reads of a queued
//! document, and the reference measured in the same run: the client's
//! queue by itself, durable pushes per second. A save writes one queue
//! entry, so the queue's rate is the ceiling; a save or a read should not
//! slow down as the queue grows.
//!
//! Results are printed and written to `client.json` for `cargo xtask
//! bench` (see `sync_testkit::bench`).

use std::time::Instant;

use serde_json::{Value, json};
use sync_client::{Collection, SyncClient};
use sync_core::{Action, Operation};
use sync_queue::{QueueConfig, SledQueue};
use sync_testkit::bench::{quick, record, write_records};

/// Saves timed in each phase.
fn saves_per_phase(quick: bool) -> usize {
    if quick { 200 } else { 1_000 }
}

/// Edits queued before the second phase.
fn queued_before(quick: bool) -> usize {
    if quick { 1_000 } else { 5_000 }
}

/// A URL nothing listens on: the client stays offline.
fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{addr}")
}

/// The document the `n`th save writes.
fn document(n: usize) -> Value {
    json!({"id": format!("t{n:06}"), "n": n, "text": "an edit made offline"})
}

/// Saves `count` new documents numbered from `first`; returns saves/s.
async fn save_rate(todos: &Collection, first: usize, count: usize) -> f64 {
    let started = Instant::now();
    for n in first..first + count {
        todos.save(document(n)).await.expect("save");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

/// Durable pushes per second of the client's queue alone, of the
/// operations the same saves make.
fn queue_rate(count: usize) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let queue = SledQueue::open(dir.path(), QueueConfig::default()).expect("queue");
    let started = Instant::now();
    for n in 0..count {
        let mut data = document(n).as_object().cloned().unwrap_or_default();
        data.remove("id");
        let mut op = Operation::new(Action::Create);
        op.collection = Some("todos".parse().expect("collection"));
        op.id = Some(format!("t{n:06}").parse().expect("id"));
        op.op_id = Some(format!("op-{n}").parse().expect("op id"));
        op.data = Some(data);
        queue.push(op).expect("push");
    }
    count as f64 / started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let quick = quick();
    let per_phase = saves_per_phase(quick);
    let queued = queued_before(quick);
    let mut records = Vec::new();

    let ceiling = queue_rate(per_phase);
    records.push(record(
        "reference: the client's queue alone, durable pushes",
        ceiling,
        "pushes/s",
        None,
        true,
    ));

    let dir = tempfile::tempdir().expect("temp dir");
    let client = SyncClient::builder()
        .server_url(dead_url())
        .data_dir(dir.path())
        .collections(["todos"])
        .build()
        .await
        .expect("client");
    let todos = client.collection("todos").expect("collection");
    let fresh = save_rate(&todos, 0, per_phase).await;
    let first = format!("the first {per_phase} saves");
    records.push(record(
        &format!("client offline: {first}"),
        fresh,
        "saves/s",
        None,
        true,
    ));
    records.push(record(
        &format!("client offline: {first} / the queue alone"),
        fresh / ceiling,
        "x",
        None,
        true,
    ));
    save_rate(&todos, per_phase, queued - per_phase).await;
    let label = format!("with {queued} edits queued");
    let loaded = save_rate(&todos, queued, per_phase).await;
    records.push(record(
        &format!("client offline: saves {label}"),
        loaded,
        "saves/s",
        None,
        true,
    ));
    records.push(record(
        &format!("client offline: saves {label} / {first}"),
        loaded / fresh,
        "x",
        None,
        true,
    ));

    let reads = per_phase * 10;
    let started = Instant::now();
    for n in 0..reads {
        let id = format!("t{:06}", n % queued);
        assert!(todos.get(&id).await.expect("get").is_some(), "{id}");
    }
    records.push(record(
        &format!("client offline: reads of queued documents {label}"),
        reads as f64 / started.elapsed().as_secs_f64(),
        "reads/s",
        None,
        true,
    ));
    client.close().await.expect("close");

    write_records("client.json", &records);
}
