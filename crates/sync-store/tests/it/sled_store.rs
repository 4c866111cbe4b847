//! The sled store: the conformance suite, persistence across reopen,
//! concurrent writers and the projection check.

use std::sync::Arc;

use serde_json::json;
use sync_core::store::CommitOutcome;
use sync_core::{ChangeOp, Seq, SyncStore, Version};
use sync_store::{SledStore, StoreConfig};

use crate::conformance::conformance_suite;
use crate::support::{insert, key, sled_store, write};

conformance_suite!(crate::support::sled_store);

#[tokio::test]
async fn acknowledged_writes_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let log_id;
    {
        let store = SledStore::open(dir.path(), StoreConfig::default()).unwrap();
        log_id = store.log_id();
        store
            .apply(vec![insert(
                "op-1",
                &key("default", "todos", "t1"),
                json!({"n": 1}),
            )])
            .await
            .unwrap();
        store.close().unwrap();
    }
    let store = SledStore::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.log_id(), log_id, "the log keeps its identity");
    assert_eq!(store.head().await.unwrap(), Seq(1));
    let next = store
        .apply(vec![insert(
            "op-2",
            &key("default", "todos", "t2"),
            json!({}),
        )])
        .await
        .unwrap();
    assert!(matches!(&next[0], CommitOutcome::Committed(r) if r.seq == Some(Seq(2))));
    assert!(
        store
            .lookup_op(&"op-1".parse().unwrap())
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_keep_versions_and_seqs_consistent() {
    let (store, _guard) = sled_store();
    let docs = 4;
    let writers = 16;
    let edits_per_writer = 25;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let store: Arc<dyn SyncStore> = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for edit in 0..edits_per_writer {
                let doc = key("default", "todos", &format!("d{}", (writer + edit) % docs));
                let op_id = format!("w{writer}-e{edit}");
                loop {
                    let current = store.get(&doc).await.unwrap();
                    let version = current.map_or(0, |c| c.document.version.get());
                    let data = json!({"last": op_id.clone(), "version": version + 1});
                    let op = if version == 0 {
                        ChangeOp::Insert
                    } else {
                        ChangeOp::Update
                    };
                    let outcome = store
                        .apply(vec![write(&op_id, &doc, version, op, data.clone(), data)])
                        .await
                        .unwrap();
                    match &outcome[0] {
                        CommitOutcome::Committed(_) => break,
                        CommitOutcome::VersionMismatch { .. } => continue,
                        other => panic!("unexpected {other:?}"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let total = (writers * edits_per_writer) as u64;
    assert_eq!(store.head().await.unwrap(), Seq(total));
    let page = store
        .changes_after(Seq::ZERO, &Default::default(), usize::MAX)
        .await
        .unwrap();
    let seqs: Vec<u64> = page.changes.iter().map(|c| c.seq.get()).collect();
    assert_eq!(
        seqs,
        (1..=total).collect::<Vec<_>>(),
        "gap-free and ordered"
    );
    let mut versions_seen = std::collections::BTreeSet::new();
    for change in &page.changes {
        assert!(
            versions_seen.insert((change.id.to_string(), change.version)),
            "version reused"
        );
        assert_eq!(
            change.data.as_ref().unwrap()["version"],
            json!(change.version.get())
        );
    }
    let mut per_doc_total = 0;
    for d in 0..docs {
        let stored = store
            .get(&key("default", "todos", &format!("d{d}")))
            .await
            .unwrap()
            .unwrap();
        per_doc_total += stored.document.version.get();
        assert_eq!(
            store.history(&stored.document.key()).await.unwrap().len() as u64,
            stored.document.version.get()
        );
        assert!(stored.document.version >= Version(1));
    }
    assert_eq!(per_doc_total, total);
}
