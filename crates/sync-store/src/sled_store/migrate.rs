//! Bringing a data directory written by an earlier build to the current
//! layout when the store opens.
//!
//! Format 1 kept six trees (`docs`, `log`, `history`, `ops`, `conflicts`,
//! `meta`) written in one multi-tree transaction per group, with a history
//! index record per change. Format 2 keeps one tree (see `layout`), and a
//! document's history is the chain of its log records. Format 3 keeps
//! each device's counters in a record of its own instead of inside the
//! `M stats` record, which every group commit rewrote whole. Format 4
//! keeps the log in pages of changes instead of one record per change.
//! Format 5 writes documents and op results in a binary form (see
//! `records`); their JSON records of format 4 are read as they are and
//! replaced as they are rewritten, so that step writes only the format
//! record (it keeps a build that reads only JSON from opening the store).
//! Format 6 stores an insert's change without its delta, which is its
//! document (see `log_change`); changes of format 5 read as they are, so
//! that step too writes only the format record.
//!
//! The migration from format 1 copies every record into the new tree, then
//! moves the devices' counters and writes the format record in one atomic
//! batch, flushes, and only then drops the old trees: a crash before the
//! format record leaves the old trees whole and the migration starts over
//! on the next open; a crash after it leaves old trees that the next open
//! drops. Records are sealed (compressed, encrypted) as the
//! store is configured; format 1's device records, in a tree of the same
//! name, are sealed in place.

use sync_core::Change;

use super::layout;
use super::pages::{self, Page, Paginator};
use super::snapshot::BatchWriter;
use crate::codec::Codec;
use crate::error::Error;

/// The trees of format 1, `devices` aside (its name and records did not
/// change).
const FORMAT_1_TREES: [&str; 6] = ["docs", "log", "history", "ops", "conflicts", "meta"];

/// Brings the data in `db` to [`layout::FORMAT`] in `tree`.
pub(super) fn to_current(
    db: &sled::Db,
    tree: &sled::Tree,
    devices: &sled::Tree,
    codec: &Codec,
) -> Result<(), Error> {
    let format = match tree.get(layout::FORMAT_KEY)? {
        Some(bytes) => {
            let format = layout::decode_seq(&bytes)
                .ok_or_else(|| Error::Corrupt {
                    tree: "meta",
                    message: "format".into(),
                })?
                .get();
            if format > layout::FORMAT {
                return Err(Error::SchemaTooNew {
                    found: i32::try_from(format).unwrap_or(i32::MAX),
                    known: layout::FORMAT as i32,
                });
            }
            format
        }
        None if has_format_1(db) => {
            copy_format_1(db, tree, devices, codec)?;
            2
        }
        None => {
            tree.insert(layout::FORMAT_KEY, &layout::encode_u64(layout::FORMAT))?;
            layout::FORMAT
        }
    };
    if format < 3 {
        split_device_stats(tree)?;
    }
    if format < 4 {
        paginate_log(tree, codec)?;
    }
    if format < layout::FORMAT {
        // Formats 5 and 6 read the records of the format before as they are.
        tree.insert(layout::FORMAT_KEY, &layout::encode_u64(layout::FORMAT))?;
    }
    db.flush()?;
    for name in FORMAT_1_TREES {
        if db
            .tree_names()
            .iter()
            .any(|existing| existing.as_ref() == name.as_bytes())
        {
            db.drop_tree(name)?;
        }
    }
    db.flush()?;
    Ok(())
}

/// Format 3: the devices' counters move out of the `M stats` record into
/// records of their own, in one atomic batch with the format record.
fn split_device_stats(tree: &sled::Tree) -> Result<(), Error> {
    let stats = layout::read_stats(tree)?;
    let mut batch = sled::Batch::default();
    for (key, value) in layout::stats_records(&stats, &stats.devices) {
        batch.insert(key, value);
    }
    batch.insert(layout::FORMAT_KEY, &layout::encode_u64(3));
    tree.apply_batch(batch)?;
    Ok(())
}

/// Pages rewritten per atomic batch while the log is paginated.
const PAGES_PER_BATCH: usize = 256;

/// Format 4: the log's one-change records become pages (see `pages`).
/// Each page replaces its records in the same atomic batch, so a migration
/// cut short leaves a log of pages then records, which the next open goes
/// on paginating; the format record comes last.
fn paginate_log(tree: &sled::Tree, codec: &Codec) -> Result<(), Error> {
    let mut paginator = Paginator::default();
    let mut batch = sled::Batch::default();
    let mut batched_pages = 0;
    // The records of the page still open.
    let mut open_records = Vec::new();
    for record in tree.scan_prefix(layout::LOG_ENTRIES) {
        let (key, sealed) = record?;
        let plain = codec.open("log", &key, &sealed)?;
        if pages::is_page(&plain) {
            continue;
        }
        let seq = layout::seq_of_log_key(&key).ok_or_else(|| corrupt_log("log key"))?;
        let (previous, change) = plain
            .split_at_checked(8)
            .ok_or_else(|| corrupt_log("short record"))?;
        let previous = layout::decode_seq(previous).unwrap_or_default();
        if let Some(page) = paginator.push_encoded(seq, previous, change) {
            replace_records(&mut batch, codec, &page, open_records.drain(..));
            batched_pages += 1;
            if batched_pages == PAGES_PER_BATCH {
                tree.apply_batch(std::mem::take(&mut batch))?;
                batched_pages = 0;
            }
        }
        open_records.push(key);
    }
    if let Some(page) = paginator.finish() {
        replace_records(&mut batch, codec, &page, open_records.drain(..));
    }
    batch.insert(layout::FORMAT_KEY, &layout::encode_u64(4));
    tree.apply_batch(batch)?;
    Ok(())
}

/// Adds to `batch` the removal of a page's one-change `records` and the
/// page, under the key of the last of them.
fn replace_records(
    batch: &mut sled::Batch,
    codec: &Codec,
    page: &Page,
    records: impl Iterator<Item = sled::IVec>,
) {
    for key in records {
        batch.remove(key);
    }
    let key = layout::log(page.last);
    batch.insert(&key, codec.seal(&key, &page.bytes));
}

fn corrupt_log(message: &str) -> Error {
    Error::Corrupt {
        tree: "log",
        message: message.into(),
    }
}

fn has_format_1(db: &sled::Db) -> bool {
    db.tree_names().iter().any(|name| name.as_ref() == b"log")
}

/// Copies format 1's records into `tree`, replacing whatever an earlier,
/// interrupted copy left there.
fn copy_format_1(
    db: &sled::Db,
    tree: &sled::Tree,
    devices: &sled::Tree,
    codec: &Codec,
) -> Result<(), Error> {
    tree.clear()?;
    let mut writer = BatchWriter::new(tree);
    let mut links = layout::Links::default();
    let mut paginator = Paginator::default();
    let mut write_page = |page: Page| {
        let key = layout::log(page.last);
        writer.insert(key.to_vec(), codec.seal(&key, &page.bytes))
    };
    for entry in db.open_tree("log")?.iter() {
        let (_, value) = entry?;
        let change: Change = layout::decode("log", &value)?;
        let previous = links.previous(&change);
        if let Some(page) = paginator.push(change.seq, previous, &change) {
            write_page(page)?;
        }
    }
    if let Some(page) = paginator.finish() {
        write_page(page)?;
    }
    // Document, op and conflict keys were the new ones without their kind.
    for (name, prefix) in [
        ("docs", layout::DOCUMENTS),
        ("ops", layout::OPS),
        ("conflicts", layout::CONFLICTS),
    ] {
        for entry in db.open_tree(name)?.iter() {
            let (key, value) = entry?;
            let key = [prefix, &key[..]].concat();
            let sealed = codec.seal(&key, &value);
            writer.insert(key, sealed)?;
        }
    }
    let meta = db.open_tree("meta")?;
    for (old, new) in [
        (&b"stats"[..], layout::STATS_KEY),
        (b"log_id", layout::LOG_ID_KEY),
    ] {
        if let Some(value) = meta.get(old)? {
            writer.insert(new.to_vec(), value.to_vec())?;
        }
    }
    writer.finish()?;
    // A device record of format 1 is a JSON object; a sealed one starts
    // with its flags, so a copy started over does not seal one twice.
    for entry in devices.iter() {
        let (key, value) = entry?;
        if value.first() == Some(&b'{') {
            devices.insert(&key, codec.seal(&key, &value))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;
    use sync_core::store::{
        ChangeFilter, StoreSnapshot, StoreStats, StoredDocument, Write, WriteEffect,
    };
    use sync_core::{
        Action, ChangeOp, DocKey, Hlc, JsonObject, NodeId, OpId, OpResult, OpStatus, Seq,
        SyncStore, Version,
    };

    use super::*;
    use crate::codec::{Encryption, EncryptionKey};
    use crate::sled_store::{SledStore, StoreConfig};

    fn key(id: &str) -> DocKey {
        DocKey::new(
            "default".parse().expect("namespace"),
            "notes".parse().expect("collection"),
            id.parse().expect("id"),
        )
    }

    fn object(value: serde_json::Value) -> JsonObject {
        value.as_object().cloned().unwrap_or_default()
    }

    fn write(op_id: &str, id: &str, version: u64, data: serde_json::Value) -> Write {
        let data = object(data);
        let mut result = OpResult::new(Action::Update, OpStatus::Success);
        result.op_id = op_id.parse().ok();
        Write {
            op_id: op_id.parse().expect("op id"),
            key: key(id),
            expected_version: Version(version),
            effect: WriteEffect::Change {
                op: if version == 0 {
                    ChangeOp::Insert
                } else {
                    ChangeOp::Update
                },
                delta: data.clone(),
                data,
                field_clocks: Default::default(),
                timestamp: Hlc::new(1_700_000_000_000 + version, 0, NodeId(1)).expect("hlc"),
            },
            // One device per document, so the counters hold devices.
            device_id: Some(format!("device-{id}").parse().expect("device id")),
            user: None,
            result,
            conflict: None,
            resolves: None,
        }
    }

    /// Writes `writes` into a data directory the way format 1 laid them
    /// out, through a store of the current format read back as a snapshot.
    async fn format_1_directory(writes: Vec<Write>) -> (tempfile::TempDir, StoreSnapshot) {
        let source = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(source.path(), StoreConfig::default()).expect("open");
        for write in writes {
            store.apply(vec![write]).await.expect("apply");
        }
        let snapshot = store.snapshot().await.expect("snapshot");
        store.close().expect("close");

        let dir = tempfile::tempdir().expect("temp dir");
        let db = sled::open(dir.path()).expect("sled");
        let trees: Vec<sled::Tree> = FORMAT_1_TREES
            .iter()
            .map(|name| db.open_tree(name).expect("tree"))
            .collect();
        let [docs, log, history, ops, conflicts, meta] = &trees[..] else {
            unreachable!("six trees");
        };
        for change in &snapshot.changes {
            log.insert(change.seq.get().to_be_bytes(), layout::encode(change))
                .expect("log");
            let mut history_key = layout::document(&change.key())[1..].to_vec();
            history_key.push(1);
            history_key.extend_from_slice(&change.version.get().to_be_bytes());
            history
                .insert(history_key, &change.seq.get().to_be_bytes())
                .expect("history");
        }
        for stored in &snapshot.documents {
            docs.insert(
                &layout::document(&stored.document.key())[1..],
                layout::encode(stored),
            )
            .expect("docs");
        }
        for (op_id, result) in &snapshot.op_results {
            ops.insert(op_id.as_str(), layout::encode(result))
                .expect("ops");
        }
        for record in &snapshot.conflicts {
            conflicts
                .insert(record.id.as_str(), layout::encode(record))
                .expect("conflicts");
        }
        meta.insert("stats", layout::encode(&snapshot.stats))
            .expect("stats");
        meta.insert("log_id", &snapshot.log_id.0.to_be_bytes())
            .expect("log id");
        db.flush().expect("flush");
        drop(trees);
        drop(db);
        (dir, snapshot)
    }

    #[tokio::test]
    async fn a_format_1_directory_opens_with_every_record_and_history() {
        let writes = vec![
            write("op-1", "a", 0, json!({"text": "one"})),
            write("op-2", "b", 0, json!({"text": "two"})),
            write("op-3", "a", 1, json!({"text": "one, edited"})),
            write("op-4", "a", 2, json!({"text": "one, edited twice"})),
        ];
        let (dir, before) = format_1_directory(writes).await;

        let store = Arc::new(SledStore::open(dir.path(), StoreConfig::default()).expect("open"));
        let after = store.snapshot().await.expect("snapshot");
        assert_eq!(after.log_id, before.log_id);
        assert_eq!(after.head, before.head);
        assert_eq!(after.changes, before.changes);
        assert_eq!(after.documents, before.documents);
        assert_eq!(after.op_results, before.op_results);
        assert_eq!(after.stats, before.stats);
        let history = store.history(&key("a")).await.expect("history");
        let versions: Vec<u64> = history.iter().map(|c| c.version.get()).collect();
        assert_eq!(versions, [1, 2, 3]);
        let first = store
            .document_at(&key("a"), Version(1))
            .await
            .expect("document at");
        assert_eq!(first.map(|d| d.data), Some(object(json!({"text": "one"}))));
        assert!(store.verify_projection().expect("verify").is_empty());
        assert!(
            store
                .lookup_op(&OpId::new("op-3").expect("op id"))
                .await
                .expect("lookup")
                .is_some()
        );
        // Writes go on from the migrated head, on the chain of `a`.
        store
            .apply(vec![write("op-5", "a", 3, json!({"text": "four"}))])
            .await
            .expect("apply");
        assert_eq!(store.history(&key("a")).await.expect("history").len(), 4);
        let page = store
            .changes_after(Seq::ZERO, &ChangeFilter::default(), 100)
            .await
            .expect("changes");
        assert_eq!(page.changes.len(), 5);
        let stats: StoreStats = store.stats().await.expect("stats");
        assert_eq!(stats.documents, 2);
        let _: Option<StoredDocument> = store.get(&key("b")).await.expect("get");
        match Arc::try_unwrap(store) {
            Ok(store) => store.close().expect("close"),
            Err(_) => unreachable!("one handle"),
        }

        // The old trees are gone, and opening again changes nothing.
        let db = sled::open(dir.path()).expect("sled");
        assert!(!has_format_1(&db));
        drop(db);
        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("reopen");
        assert_eq!(store.snapshot().await.expect("snapshot").changes.len(), 5);
        store.close().expect("close");
    }

    #[tokio::test]
    async fn a_format_2_directory_moves_the_devices_counters_into_their_own_records() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("open");
        for (op_id, id) in [("op-1", "a"), ("op-2", "b"), ("op-3", "c")] {
            store
                .apply(vec![write(op_id, id, 0, json!({"text": id}))])
                .await
                .expect("apply");
        }
        let before = store.stats().await.expect("stats");
        assert_eq!(before.devices.len(), 3);
        store.close().expect("close");
        // Format 2: every counter in `M stats`, no device record.
        {
            let db = sled::open(dir.path()).expect("sled");
            let tree = db.open_tree(layout::TREE).expect("tree");
            for entry in tree.scan_prefix(layout::DEVICES_STATS) {
                tree.remove(entry.expect("entry").0).expect("remove");
            }
            tree.insert(layout::STATS_KEY, layout::encode(&before))
                .expect("stats");
            tree.insert(layout::FORMAT_KEY, &layout::encode_u64(2))
                .expect("format");
            db.flush().expect("flush");
        }

        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("reopen");
        assert_eq!(store.stats().await.expect("stats"), before);
        store
            .apply(vec![write("op-4", "a", 1, json!({"text": "a, edited"}))])
            .await
            .expect("apply");
        let after = store.stats().await.expect("stats");
        store.close().expect("close");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree(layout::TREE).expect("tree");
        let totals: StoreStats = layout::decode(
            "meta",
            &tree.get(layout::STATS_KEY).expect("get").expect("stats"),
        )
        .expect("decode");
        assert!(totals.devices.is_empty(), "devices moved out of the totals");
        assert_eq!(tree.scan_prefix(layout::DEVICES_STATS).count(), 3);
        assert_eq!(layout::read_stats(&tree).expect("read"), after);
        let format = tree.get(layout::FORMAT_KEY).expect("get").expect("format");
        assert_eq!(layout::decode_seq(&format), Some(Seq(layout::FORMAT)));
    }

    #[tokio::test]
    async fn a_log_of_one_record_per_change_becomes_pages_even_after_a_cut_short_migration() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SledStore::open(dir.path(), StoreConfig::default()).expect("open");
        let mut versions = [0u64; 5];
        for i in 0..150 {
            let doc = i % 5;
            let id = format!("doc-{doc}");
            let text = json!({"text": format!("edit {i}")});
            let op_id = format!("op-{i}");
            store
                .apply(vec![write(&op_id, &id, versions[doc], text)])
                .await
                .expect("apply");
            versions[doc] += 1;
        }
        let before = store.snapshot().await.expect("snapshot");
        let history_before = store.history(&key("doc-3")).await.expect("history");
        store.close().expect("close");
        // Format 3: a record per change under its seq, holding its previous
        // seq and the change; the first ten already paginated, as a
        // migration cut short leaves them.
        let codec = Codec::new(Default::default(), None);
        {
            let db = sled::open(dir.path()).expect("sled");
            let tree = db.open_tree(layout::TREE).expect("tree");
            let records: Vec<_> = tree
                .scan_prefix(layout::LOG_ENTRIES)
                .map(|entry| entry.expect("entry"))
                .collect();
            for (key, sealed) in records.into_iter().skip(10) {
                let page = codec.open("log", &key, &sealed).expect("open").into_owned();
                tree.remove(&key).expect("remove");
                for entry in pages::entries(&page).expect("page") {
                    let key = layout::log(entry.seq);
                    let record = [&entry.previous.get().to_be_bytes()[..], entry.change].concat();
                    tree.insert(key, codec.seal(&key, &record)).expect("insert");
                }
            }
            tree.insert(layout::FORMAT_KEY, &layout::encode_u64(3))
                .expect("format");
            db.flush().expect("flush");
        }

        for _ in 0..2 {
            let store = SledStore::open(dir.path(), StoreConfig::default()).expect("reopen");
            let after = store.snapshot().await.expect("snapshot");
            assert_eq!(after.head, before.head);
            assert_eq!(after.changes, before.changes);
            assert_eq!(after.documents, before.documents);
            let history = store.history(&key("doc-3")).await.expect("history");
            assert_eq!(history, history_before);
            assert!(store.verify_projection().expect("verify").is_empty());
            store.close().expect("close");
            let db = sled::open(dir.path()).expect("sled");
            let tree = db.open_tree(layout::TREE).expect("tree");
            // Ten pages as they were, then 140 changes in pages of 64.
            assert_eq!(tree.scan_prefix(layout::LOG_ENTRIES).count(), 10 + 3);
            let format = tree.get(layout::FORMAT_KEY).expect("get").expect("format");
            assert_eq!(layout::decode_seq(&format), Some(Seq(layout::FORMAT)));
        }
    }

    #[tokio::test]
    async fn json_documents_and_results_of_format_4_read_as_they_are_until_rewritten() {
        format_4_json_records_read_until_rewritten(StoreConfig::default(), 10).await;
    }

    #[tokio::test]
    async fn encrypted_and_compressed_json_records_of_format_4_read_until_rewritten() {
        let key = Encryption::new(
            EncryptionKey::from_hex(&EncryptionKey::generate_hex()).expect("key"),
            [],
        );
        let config = StoreConfig {
            encryption: Some(key),
            ..StoreConfig::default()
        };
        // Past the 512 bytes from which a record is compressed.
        format_4_json_records_read_until_rewritten(config, 2_000).await;
    }

    /// Writes documents of `text_len` bytes of text, rewrites them and their
    /// op results as format 4 did (JSON, sealed with `config`'s codec), and
    /// checks the reopened store reads them and writes the binary form anew.
    async fn format_4_json_records_read_until_rewritten(config: StoreConfig, text_len: usize) {
        let dir = tempfile::tempdir().expect("temp dir");
        let codec = Codec::new(config.compression, config.encryption.clone());
        let store = SledStore::open(dir.path(), config.clone()).expect("open");
        let text = "x".repeat(text_len);
        for i in 0..6 {
            let data = json!({"n": i, "text": text});
            let write = write(&format!("op-{i}"), &format!("doc-{i}"), 0, data);
            store.apply(vec![write]).await.expect("apply");
        }
        let before = store.snapshot().await.expect("snapshot");
        store.close().expect("close");
        // Format 4 wrote every document and op result as JSON.
        {
            let db = sled::open(dir.path()).expect("sled");
            let tree = db.open_tree(layout::TREE).expect("tree");
            for stored in &before.documents {
                let key = layout::document(&stored.document.key());
                tree.insert(&key, codec.seal(&key, &layout::encode(stored)))
                    .expect("document");
            }
            for (op_id, result) in &before.op_results {
                let key = layout::op(op_id);
                tree.insert(&key, codec.seal(&key, &layout::encode(result)))
                    .expect("result");
            }
            tree.insert(layout::FORMAT_KEY, &layout::encode_u64(4))
                .expect("format");
            db.flush().expect("flush");
        }
        let store = SledStore::open(dir.path(), config).expect("reopen");
        let after = store.snapshot().await.expect("snapshot");
        assert_eq!(after.documents, before.documents);
        assert_eq!(after.op_results, before.op_results);
        let first = store.lookup_op(&OpId::new("op-0").expect("op id")).await;
        assert_eq!(first.expect("lookup"), Some(before.op_results[0].1.clone()));
        // A document written again is stored in the binary form.
        store
            .apply(vec![write(
                "op-again",
                "doc-2",
                1,
                json!({"n": 20, "text": text}),
            )])
            .await
            .expect("apply");
        store.close().expect("close");
        let db = sled::open(dir.path()).expect("sled");
        let tree = db.open_tree(layout::TREE).expect("tree");
        let first_byte = |key: &[u8]| {
            let sealed = tree.get(key).expect("get").expect("record");
            codec.open("docs", key, &sealed).expect("open")[0]
        };
        assert_eq!(first_byte(&layout::document(&key("doc-2"))), 0x01);
        assert_eq!(first_byte(&layout::document(&key("doc-3"))), b'{');
        assert_eq!(
            first_byte(&layout::op(&OpId::new("op-again").expect("op"))),
            0x01
        );
        let format = tree.get(layout::FORMAT_KEY).expect("get").expect("format");
        assert_eq!(layout::decode_seq(&format), Some(Seq(layout::FORMAT)));
    }

    #[tokio::test]
    async fn a_newer_format_is_refused() {
        let dir = tempfile::tempdir().expect("temp dir");
        {
            let db = sled::open(dir.path()).expect("sled");
            db.open_tree(layout::TREE)
                .expect("tree")
                .insert(layout::FORMAT_KEY, &layout::encode_u64(layout::FORMAT + 1))
                .expect("format");
            db.flush().expect("flush");
        }
        match SledStore::open(dir.path(), StoreConfig::default()) {
            Err(Error::SchemaTooNew { found, known }) => {
                assert_eq!(
                    (found, known),
                    (layout::FORMAT as i32 + 1, layout::FORMAT as i32)
                );
            }
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }
}
