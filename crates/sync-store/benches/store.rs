//! Store benchmarks: durable (fsync) acknowledged writes per second with
//! 1, 8 and 64 concurrent writers (budget: over 20,000/s at 64), the disk
//! the 64-writer run left per change, and the time to read 100,000
//! changes of catch-up (budget: under 250 ms). The reference rows, measured in
//! the same run on the same disk: sled by itself, durable records per
//! second in batches of 100 (one `apply_batch` and one flush each), the
//! ceiling the store's write path is compared with; and sled by itself
//! writing the three records the store writes per write (log entry,
//! document, op result), the ceiling of that layout. The compression and
//! encryption rows repeat the 64-writer run with 68-byte and 2 KB
//! documents. The disk row writes 1,000,000 changes of 100-byte documents
//! (half of them updates) and compares the data directory with the disk
//! budget: three times the live JSON plus 200 bytes per retained change.
//!
//! When `SYNC_BENCH_DATABASE_URL` (or `SYNC_TEST_DATABASE_URL`) names a
//! PostgreSQL database, the same write and catch-up figures are measured
//! for the PostgreSQL store too, in a fresh schema dropped afterwards, and
//! the 64-writer run once more on two nodes (two stores on one schema, 32
//! writers each).
//!
//! Results are printed and written as JSON records to
//! `$SYNC_BENCH_OUT/store.json` for `cargo xtask bench`.

#![allow(clippy::print_stdout)]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sync_core::store::{ChangeFilter, CommitOutcome, Write, WriteEffect};
use sync_core::{
    Action, ChangeOp, DocKey, Hlc, JsonObject, NodeId, OpResult, OpStatus, Seq, SyncStore, Version,
};
use sync_store::{
    Compression, Durability, Encryption, EncryptionKey, PgConfig, PgStore, SledStore, StoreConfig,
};
use sync_testkit::bench::{quick, record, write_records};

/// The server's allocator (see `sync-service`'s `main.rs`), so the store
/// is measured as the server runs it: under glibc's allocator the same
/// catch-up read took about twice as long, most of it in `malloc` and
/// `free` of the decoded changes.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// The 68-byte document most rows write.
fn todo() -> JsonObject {
    json!({"text": "Buy milk", "done": false, "tags": ["home"]})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

/// A 2 KB note: words drawn at random (seeded) from a vocabulary of 64,
/// so it compresses about as well as prose does.
fn note() -> JsonObject {
    let vocabulary: Vec<String> = (0..64u64)
        .map(|n| {
            let length = 3 + (n * 7) % 6;
            (0..length)
                .map(|i| char::from(b'a' + ((n * 31 + i * 17 + n * i) % 26) as u8))
                .collect()
        })
        .collect();
    let mut state = 0x2545_f491_4f6c_dd1d_u64;
    let mut text = String::new();
    while text.len() < 2_000 {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        text.push_str(&vocabulary[(state % 64) as usize]);
        text.push(if state.is_multiple_of(11) { '\n' } else { ' ' });
    }
    json!({"title": "Weekly sync", "text": text, "tags": ["work", "notes"]})
        .as_object()
        .cloned()
        .unwrap_or_default()
}

fn insert(op_id: String, id: String) -> Write {
    insert_document(op_id, id, todo())
}

fn insert_document(op_id: String, id: String, data: JsonObject) -> Write {
    write_document(op_id, id, data, Version::ZERO)
}

/// A document of exactly `bytes` bytes of JSON, its text made of `fill`.
fn document_of(bytes: usize, fill: char) -> JsonObject {
    let mut data = json!({"text": "", "done": false, "tags": ["home"]})
        .as_object()
        .cloned()
        .unwrap_or_default();
    let empty = serde_json::to_vec(&data).map_or(0, |json| json.len());
    let text: String = std::iter::repeat_n(fill, bytes.saturating_sub(empty)).collect();
    data.insert("text".into(), text.into());
    data
}

/// The write of `data` into the document `id` at `version` (an insert at
/// `Version::ZERO`, else an update).
fn write_document(op_id: String, id: String, data: JsonObject, version: Version) -> Write {
    let key = DocKey::new(
        "default".parse().expect("namespace"),
        "todos".parse().expect("collection"),
        id.parse().expect("id"),
    );
    let (action, op) = if version == Version::ZERO {
        (Action::Create, ChangeOp::Insert)
    } else {
        (Action::Update, ChangeOp::Update)
    };
    let mut result = OpResult::new(action, OpStatus::Success);
    result.op_id = op_id.parse().ok();
    Write {
        op_id: op_id.parse().expect("op id"),
        key,
        expected_version: version,
        effect: WriteEffect::Change {
            op,
            delta: data.clone(),
            data,
            field_clocks: Default::default(),
            timestamp: Hlc::new(1_700_000_000_000, 0, NodeId(1)).expect("hlc"),
        },
        device_id: None,
        user: None,
        result,
        conflict: None,
        resolves: None,
    }
}

/// Acknowledged writes per second of `writers` durable writers, and the
/// bytes the data directory holds per change afterwards.
async fn durable_writes(
    writers: usize,
    run_for: Duration,
    config: StoreConfig,
    document: JsonObject,
) -> (f64, f64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let sled = Arc::new(SledStore::open(dir.path(), config).expect("open"));
    let store: Arc<dyn SyncStore> = sled.clone();
    let rate = acked_writes(Arc::clone(&store), writers, run_for, document).await;
    store.flush().await.expect("flush");
    let changes = store.head().await.expect("head").get().max(1);
    (rate, directory_bytes(dir.path()) as f64 / changes as f64)
}

/// The size of the budget's disk run: `writes` durable writes of
/// 100-byte documents, the first half inserting documents and the second
/// updating each once, by 64 writers. The data directory's bytes after
/// it, and the budget for them: three times the live documents' JSON plus
/// 200 bytes per change the log retains (every change: nothing is
/// compacted). Also the bytes of the records themselves (keys and values,
/// as sealed), which tell the store's encoding from sled's overhead.
async fn disk_after(writes: u64) -> DiskRun {
    const WRITERS: u64 = 64;
    const DOCUMENT_BYTES: usize = 100;
    let dir = tempfile::tempdir().expect("temp dir");
    let sled = Arc::new(SledStore::open(dir.path(), StoreConfig::default()).expect("open"));
    let store: Arc<dyn SyncStore> = sled.clone();
    let per_writer = writes / 2 / WRITERS;
    for (version, fill) in [(Version::ZERO, 'a'), (Version(1), 'b')] {
        let mut tasks = Vec::new();
        for writer in 0..WRITERS {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                for n in 0..per_writer {
                    let id = format!("d{writer}-{n}");
                    let op_id = format!("{id}-v{}", version.get());
                    let data = document_of(DOCUMENT_BYTES, fill);
                    let outcome = store
                        .apply(vec![write_document(op_id, id, data, version)])
                        .await
                        .expect("apply");
                    assert!(
                        matches!(outcome.first(), Some(CommitOutcome::Committed(_))),
                        "every write commits"
                    );
                }
            }));
        }
        for task in tasks {
            task.await.expect("writer");
        }
    }
    let changes = store.head().await.expect("head").get();
    let documents = per_writer * WRITERS;
    drop(store);
    match Arc::try_unwrap(sled) {
        Ok(sled) => sled.close().expect("close"),
        Err(_) => unreachable!("one handle"),
    }
    let directory = directory_bytes(dir.path());
    let db = sled::open(dir.path()).expect("reopen with sled");
    let records = db
        .tree_names()
        .into_iter()
        .map(|name| db.open_tree(name).expect("tree"))
        .flat_map(|tree| tree.iter().map(|entry| entry.expect("record")))
        .map(|(key, value)| (key.len() + value.len()) as u64)
        .sum();
    DiskRun {
        directory,
        records,
        budget: 3.0 * (documents as f64 * DOCUMENT_BYTES as f64) + 200.0 * changes as f64,
    }
}

/// What [`disk_after`] measured, in bytes.
struct DiskRun {
    /// The data directory.
    directory: u64,
    /// The keys and values of every record.
    records: u64,
    /// What the budget allows.
    budget: f64,
}

/// The bytes of every file under `dir`.
fn directory_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(meta) if meta.is_dir() => directory_bytes(&entry.path()),
            Ok(meta) => meta.len(),
            Err(_) => 0,
        })
        .sum()
}

/// sled by itself in a temporary directory, on the store's settings.
fn raw_sled() -> (tempfile::TempDir, sled::Db) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = sled::Config::new()
        .path(dir.path())
        .mode(sled::Mode::HighThroughput)
        .open()
        .expect("open sled");
    (dir, db)
}

/// Durable records per second of sled alone: batches of 100 records the
/// size of a stored change, each applied and flushed (fsync), on the same
/// settings as the store.
fn raw_sled_ceiling(run_for: Duration) -> f64 {
    let (_dir, db) = raw_sled();
    let tree = db.open_tree("log").expect("tree");
    let document = json!({"text": "Buy milk", "done": false, "tags": ["home"]});
    // An insert's change, stored without its delta (its whole document).
    let value = serde_json::to_vec(&json!({
        "seq": 1, "namespace": "default", "collection": "todos", "id": "w0-0",
        "op": "insert", "version": 1,
        "timestamp": "2023-11-14T22:13:20.000Z-00000000-0000000000000001",
        "opId": "w0-0", "data": document,
    }))
    .expect("a record");
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < run_for {
        let mut batch = sled::Batch::default();
        for _ in 0..100 {
            written += 1;
            batch.insert(&written.to_be_bytes(), value.as_slice());
        }
        tree.apply_batch(batch).expect("apply");
        db.flush().expect("flush");
    }
    written as f64 / started.elapsed().as_secs_f64()
}

/// Durable writes per second of sled alone laid out as the store lays out
/// a write: a document and an op result (random keys), and a log page of
/// the 64 changes of a batch (sequential key), in batches of 64 writes with
/// one flush each, after a read of the document and the op id as the store
/// decides a write.
fn raw_sled_store_layout(run_for: Duration) -> f64 {
    let (_dir, db) = raw_sled();
    let tree = db.open_tree("store").expect("tree");
    let document = serde_json::to_vec(&json!({"document": {"id": "w0-0", "namespace": "default",
        "collection": "todos", "data": {"text": "Buy milk", "done": false, "tags": ["home"]},
        "version": 1, "seq": 1, "updatedAt": "2023-11-14T22:13:20.000Z-00000000-0000000000000001",
        "deleted": false}, "fieldClocks": {}}))
    .expect("a record");
    let change = serde_json::to_vec(
        &json!({"seq": 1, "namespace": "default", "collection": "todos",
        "id": "w0-0", "op": "insert",
        "version": 1, "timestamp": "2023-11-14T22:13:20.000Z-00000000-0000000000000001",
        "opId": "w0-0", "data": {"text": "Buy milk", "done": false, "tags": ["home"]}}),
    )
    .expect("a record");
    let result = br#"{"opId":"w0-0","action":"create","status":"success","version":1,"seq":1}"#;
    let started = Instant::now();
    let mut written = 0u64;
    while started.elapsed() < run_for {
        let mut batch = sled::Batch::default();
        let mut page = Vec::with_capacity(64 * (change.len() + 20));
        for _ in 0..64 {
            written += 1;
            let name = format!("w{}-{}", written % 64, written / 64);
            let document_key = format!("Ddefault\0todos\0{name}");
            let op_key = format!("O{name}");
            let _ = tree.get(&document_key).expect("read");
            let _ = tree.get(&op_key).expect("read");
            page.extend_from_slice(&[0; 20]);
            page.extend_from_slice(&change);
            batch.insert(document_key.as_bytes(), document.as_slice());
            batch.insert(op_key.as_bytes(), &result[..]);
        }
        let mut log_key = b"L".to_vec();
        log_key.extend_from_slice(&written.to_be_bytes());
        batch.insert(log_key, page);
        tree.apply_batch(batch).expect("apply");
        db.flush().expect("flush");
    }
    written as f64 / started.elapsed().as_secs_f64()
}

/// Acknowledged writes per second of `writers` concurrent writers, each
/// waiting for its write before sending the next.
async fn acked_writes(
    store: Arc<dyn SyncStore>,
    writers: usize,
    run_for: Duration,
    document: JsonObject,
) -> f64 {
    acked_writes_on(&[store], writers, run_for, document).await
}

/// As [`acked_writes`], the writers taking `stores` in turn (writer `w`
/// writes through `stores[w % stores.len()]`).
async fn acked_writes_on(
    stores: &[Arc<dyn SyncStore>],
    writers: usize,
    run_for: Duration,
    document: JsonObject,
) -> f64 {
    let acked = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store = Arc::clone(&stores[writer % stores.len()]);
        let acked = Arc::clone(&acked);
        let document = document.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while started.elapsed() < run_for {
                let id = format!("w{writer}-{n}");
                let outcome = store
                    .apply(vec![insert_document(id.clone(), id, document.clone())])
                    .await
                    .expect("apply");
                assert_eq!(outcome.len(), 1);
                acked.fetch_add(1, Ordering::Relaxed);
                n += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("writer");
    }
    acked.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn catch_up(changes: u64) -> f64 {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = StoreConfig {
        durability: Durability::Os,
        ..StoreConfig::default()
    };
    let store = SledStore::open(dir.path(), config).expect("open");
    read_back(&store, changes).await
}

/// Writes `changes` inserts in batches, then the seconds to read them all
/// back in pages of 1,000 as a subscriber's catch-up does (their documents
/// left as JSON text).
async fn read_back(store: &dyn SyncStore, changes: u64) -> f64 {
    let batch = 1_000;
    for start in (0..changes).step_by(batch) {
        let writes = (start..(start + batch as u64).min(changes))
            .map(|n| insert(format!("op-{n}"), format!("doc-{n}")))
            .collect();
        store.apply(writes).await.expect("apply");
    }
    store.flush().await.expect("flush");
    let started = Instant::now();
    let mut after = Seq::ZERO;
    let mut read = 0u64;
    loop {
        let page = store
            .raw_changes_after(after, &ChangeFilter::default(), 1_000)
            .await
            .expect("read");
        read += page.changes.len() as u64;
        after = page.last_seq;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(read, changes);
    started.elapsed().as_secs_f64()
}

/// The PostgreSQL store in a fresh schema of the database at `url`.
async fn pg_store(url: &str, schema: &str) -> PgStore {
    PgStore::connect(url, PgConfig::with_schema(schema))
        .await
        .expect("connect to the benchmark database")
}

/// The PostgreSQL figures, in a schema per measurement (dropped after).
async fn postgres(url: &str, run_for: Duration, records: &mut Vec<Value>) {
    for writers in [1, 8, 64] {
        let schema = format!("sync_bench_{}_{writers}", std::process::id());
        let store = Arc::new(pg_store(url, &schema).await);
        let rate = acked_writes(store.clone(), writers, run_for, todo()).await;
        store
            .drop_schema()
            .await
            .expect("drop the benchmark schema");
        records.push(record(
            &format!("store (postgres): durable acked writes, {writers} writer(s)"),
            rate,
            "writes/s",
            None,
            true,
        ));
    }
    // Two nodes: two stores (each its own pool and committer) on one
    // schema, the 64 writers split between them.
    let schema = format!("sync_bench_{}_two_nodes", std::process::id());
    let first = Arc::new(pg_store(url, &schema).await);
    let second: Arc<dyn SyncStore> = Arc::new(pg_store(url, &schema).await);
    let nodes: [Arc<dyn SyncStore>; 2] = [first.clone(), second];
    let rate = acked_writes_on(&nodes, 64, run_for, todo()).await;
    first
        .drop_schema()
        .await
        .expect("drop the benchmark schema");
    records.push(record(
        "store (postgres): durable acked writes, 64 writers, 2 nodes",
        rate,
        "writes/s",
        None,
        true,
    ));
    let schema = format!("sync_bench_{}_catch_up", std::process::id());
    let store = pg_store(url, &schema).await;
    let seconds = read_back(&store, 100_000).await;
    store
        .drop_schema()
        .await
        .expect("drop the benchmark schema");
    records.push(record(
        "store (postgres): catch-up read of 100,000 changes",
        seconds,
        "s",
        Some(0.25),
        false,
    ));
}

#[tokio::main]
async fn main() {
    let quick = quick();
    let run_for = Duration::from_secs(if quick { 1 } else { 3 });
    let mut records = Vec::new();
    let ceiling = raw_sled_ceiling(run_for);
    records.push(record(
        "reference: sled alone, durable records in batches of 100",
        ceiling,
        "records/s",
        None,
        true,
    ));
    let layout_ceiling = raw_sled_store_layout(run_for);
    records.push(record(
        "reference: sled alone, the store's records per write, batches of 64 writes",
        layout_ceiling,
        "writes/s",
        None,
        true,
    ));
    for (writers, budget) in [(1, None), (8, None), (64, Some(20_000.0))] {
        let (rate, bytes_per_change) =
            durable_writes(writers, run_for, StoreConfig::default(), todo()).await;
        records.push(record(
            &format!("store: durable acked writes, {writers} writer(s)"),
            rate,
            "writes/s",
            budget,
            true,
        ));
        if writers == 64 {
            records.push(record(
                "store vs sled alone: 64 writers' acked writes / the batched ceiling",
                rate / ceiling,
                "x",
                Some(0.5),
                true,
            ));
            records.push(record(
                "store vs sled alone: 64 writers' acked writes / the same records per write",
                rate / layout_ceiling,
                "x",
                None,
                true,
            ));
            records.push(record(
                "store: disk per change after the 64-writer run (68-byte documents)",
                bytes_per_change,
                "bytes",
                None,
                false,
            ));
        }
    }
    let key = || EncryptionKey::from_hex(&EncryptionKey::generate_hex()).expect("a key");
    let sealed = [
        (
            "encrypted",
            "68-byte",
            Compression::default(),
            Some(key()),
            todo(),
        ),
        ("uncompressed", "2 KB", Compression::None, None, note()),
        ("zstd", "2 KB", Compression::Zstd, None, note()),
        (
            "zstd, encrypted",
            "2 KB",
            Compression::Zstd,
            Some(key()),
            note(),
        ),
    ];
    for (name, size, compression, key, document) in sealed {
        let config = StoreConfig {
            compression,
            encryption: key.map(|key| Encryption::new(key, [])),
            ..StoreConfig::default()
        };
        let (rate, bytes_per_change) = durable_writes(64, run_for, config, document).await;
        records.push(record(
            &format!("store ({name}): durable acked writes, 64 writers, {size} documents"),
            rate,
            "writes/s",
            None,
            true,
        ));
        records.push(record(
            &format!("store ({name}): disk per change, {size} documents"),
            bytes_per_change,
            "bytes",
            None,
            false,
        ));
    }
    let writes = if quick { 100_000 } else { 1_000_000 };
    let disk = disk_after(writes).await;
    let label = format!(
        "store: disk after {} writes of 100-byte documents (half updates)",
        if quick { "100,000" } else { "1,000,000" }
    );
    records.push(record(
        &label,
        disk.directory as f64 / 1e6,
        "MB",
        None,
        false,
    ));
    records.push(record(
        &format!("{label} / the budget (3x the live JSON + 200 bytes per retained change)"),
        disk.directory as f64 / disk.budget,
        "x",
        Some(1.0),
        false,
    ));
    records.push(record(
        &format!("{label}: the records' own keys and values"),
        disk.records as f64 / 1e6,
        "MB",
        None,
        false,
    ));
    let seconds = catch_up(100_000).await;
    records.push(record(
        "store: catch-up read of 100,000 changes",
        seconds,
        "s",
        Some(0.25),
        false,
    ));
    let database = ["SYNC_BENCH_DATABASE_URL", "SYNC_TEST_DATABASE_URL"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|url| !url.is_empty()));
    match database {
        Some(url) => postgres(&url, run_for, &mut records).await,
        None => println!("store (postgres): skipped, SYNC_BENCH_DATABASE_URL is not set"),
    }

    write_records("store.json", &records);
}
