//! The store conformance suite: what every `SyncStore` must do, written
//! once against the trait. `conformance_suite!(factory)` instantiates one
//! test per check for a store factory returning `(Arc<dyn SyncStore>, guard)`;
//! `conformance_suite!(async factory)` does the same for an async factory
//! returning `Option<(Arc<dyn SyncStore>, guard)>`, `None` meaning that its
//! backend is not available here (the test then returns). Checks that need
//! two stores (a snapshot loaded into an empty one) call the factory twice.

use serde_json::json;
use sync_core::store::{
    BranchRecord, ChangeFilter, ChangePage, CommitOutcome, ConflictQuery, DeviceCapabilities,
    DeviceRecord, RetentionPolicy, WriteEffect,
};
use sync_core::{
    ChangeOp, ConflictData, ConflictRecord, ConflictStatus, Filter, OpStatus, Seq, Strategy,
    SyncStore, Timestamp, Version,
};

use crate::support::{insert, key, obj, write};

/// The page of changes after `after`, read whole; the same page read with
/// the documents left as text must hold the same changes, in the same JSON.
async fn changes_after(
    store: &dyn SyncStore,
    after: Seq,
    filter: &ChangeFilter,
    limit: usize,
) -> ChangePage {
    let page = store.changes_after(after, filter, limit).await.unwrap();
    let raw = store.raw_changes_after(after, filter, limit).await.unwrap();
    assert_eq!((raw.last_seq, raw.has_more), (page.last_seq, page.has_more));
    let json = |changes: Vec<serde_json::Value>| serde_json::Value::Array(changes);
    assert_eq!(
        json(
            raw.changes
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect()
        ),
        json(
            page.changes
                .iter()
                .map(|c| serde_json::to_value(c).unwrap())
                .collect()
        ),
    );
    page
}

fn committed(outcome: &CommitOutcome) -> &sync_core::OpResult {
    match outcome {
        CommitOutcome::Committed(result) => result,
        other => panic!("expected a commit, got {other:?}"),
    }
}

pub(crate) async fn writes_are_readable_with_metadata(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    let outcomes = store
        .apply(vec![insert("op-1", &todo, json!({"text": "milk"}))])
        .await
        .unwrap();
    let result = committed(&outcomes[0]);
    assert_eq!(
        (result.version, result.seq),
        (Some(Version(1)), Some(Seq(1)))
    );
    let stored = store.get(&todo).await.unwrap().unwrap();
    assert_eq!(stored.document.data, obj(json!({"text": "milk"})));
    assert_eq!(
        (
            stored.document.version,
            stored.document.seq,
            stored.document.deleted
        ),
        (Version(1), Seq(1), false)
    );
    assert!(stored.field_clocks.contains_key("text"));
    assert_eq!(store.head().await.unwrap(), Seq(1));
    assert_eq!(
        store
            .lookup_op(&"op-1".parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .seq,
        Some(Seq(1))
    );
    assert!(
        store
            .get(&key("default", "todos", "none"))
            .await
            .unwrap()
            .is_none()
    );
}

/// Every reader of the log sees each change with its delta, an insert's
/// being its whole document, and a snapshot carries them as they are.
pub(crate) async fn every_reader_sees_each_change_with_its_delta(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    let empty = key("default", "todos", "t2");
    store
        .apply(vec![
            insert("op-1", &todo, json!({"text": "milk", "n": 1})),
            write(
                "op-2",
                &todo,
                1,
                ChangeOp::Update,
                json!({"n": null}),
                json!({"text": "milk"}),
            ),
            insert("op-3", &empty, json!({})),
            write("op-4", &todo, 2, ChangeOp::Delete, json!({}), json!({})),
        ])
        .await
        .unwrap();
    let deltas = vec![
        obj(json!({"text": "milk", "n": 1})),
        obj(json!({"n": null})),
        obj(json!({})),
        obj(json!({})),
    ];
    let page = changes_after(store, Seq::ZERO, &ChangeFilter::default(), 10).await;
    let read: Vec<_> = page.changes.iter().map(|c| c.delta.clone()).collect();
    assert_eq!(read, deltas);
    let raw = store
        .raw_changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
        .await
        .unwrap();
    let raw_deltas: Vec<serde_json::Value> = raw
        .changes
        .iter()
        .map(|c| serde_json::from_str(c.delta.get()).unwrap())
        .collect();
    let want: Vec<serde_json::Value> = deltas.iter().cloned().map(Into::into).collect();
    assert_eq!(raw_deltas, want);
    let history: Vec<_> = store
        .history(&todo)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.delta)
        .collect();
    assert_eq!(
        history,
        vec![deltas[0].clone(), deltas[1].clone(), deltas[3].clone()]
    );
    let snapshot = store.snapshot().await.unwrap();
    assert_eq!(snapshot.changes, page.changes);
}

pub(crate) async fn stale_versions_are_refused_and_change_nothing(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    store
        .apply(vec![insert("op-1", &todo, json!({"n": 1}))])
        .await
        .unwrap();
    let stale = write(
        "op-2",
        &todo,
        0,
        ChangeOp::Update,
        json!({"n": 2}),
        json!({"n": 2}),
    );
    let outcomes = store.apply(vec![stale]).await.unwrap();
    match &outcomes[0] {
        CommitOutcome::VersionMismatch { current } => {
            assert_eq!(current.as_ref().unwrap().document.version, Version(1));
        }
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert_eq!(
        store.get(&todo).await.unwrap().unwrap().document.data,
        obj(json!({"n": 1}))
    );
    assert_eq!(store.head().await.unwrap(), Seq(1));
    assert!(
        store
            .lookup_op(&"op-2".parse().unwrap())
            .await
            .unwrap()
            .is_none()
    );
}

pub(crate) async fn replayed_op_ids_return_the_first_result(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    let first = store
        .apply(vec![insert("op-1", &todo, json!({"n": 1}))])
        .await
        .unwrap();
    let replay = write(
        "op-1",
        &todo,
        1,
        ChangeOp::Update,
        json!({"n": 9}),
        json!({"n": 9}),
    );
    let again = store.apply(vec![replay]).await.unwrap();
    match &again[0] {
        CommitOutcome::Duplicate(result) => {
            assert_eq!(result.status, OpStatus::Duplicate);
            assert_eq!(result.seq, committed(&first[0]).seq);
        }
        other => panic!("expected a duplicate, got {other:?}"),
    }
    assert_eq!(store.head().await.unwrap(), Seq(1));
    assert_eq!(
        store.get(&todo).await.unwrap().unwrap().document.data,
        obj(json!({"n": 1}))
    );
}

pub(crate) async fn a_batch_applies_in_order(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    let outcomes = store
        .apply(vec![
            insert("op-1", &todo, json!({"n": 1})),
            write(
                "op-2",
                &todo,
                1,
                ChangeOp::Update,
                json!({"n": 2}),
                json!({"n": 2}),
            ),
            write(
                "op-3",
                &todo,
                1,
                ChangeOp::Update,
                json!({"n": 3}),
                json!({"n": 3}),
            ),
            write("op-1", &todo, 2, ChangeOp::Delete, json!({}), json!({})),
        ])
        .await
        .unwrap();
    assert_eq!(committed(&outcomes[1]).seq, Some(Seq(2)));
    assert!(matches!(outcomes[2], CommitOutcome::VersionMismatch { .. }));
    assert!(matches!(outcomes[3], CommitOutcome::Duplicate(_)));
    assert_eq!(
        store.get(&todo).await.unwrap().unwrap().document.version,
        Version(2)
    );
}

pub(crate) async fn the_change_log_is_ordered_filtered_and_paged(store: &dyn SyncStore) {
    let mut writes = Vec::new();
    for n in 0..10 {
        let namespace = if n % 2 == 0 { "a" } else { "b" };
        let collection = if n % 3 == 0 { "notes" } else { "todos" };
        writes.push(insert(
            &format!("op-{n}"),
            &key(namespace, collection, &format!("d{n}")),
            json!({"n": n}),
        ));
    }
    store.apply(writes).await.unwrap();
    let all = changes_after(store, Seq::ZERO, &ChangeFilter::default(), 100).await;
    let seqs: Vec<u64> = all.changes.iter().map(|c| c.seq.get()).collect();
    assert_eq!(seqs, (1..=10).collect::<Vec<_>>());
    assert!(!all.has_more);
    assert!(all.changes.iter().all(|c| c.data.is_some()));

    let page = changes_after(store, Seq(3), &ChangeFilter::default(), 4).await;
    assert_eq!(page.changes.first().map(|c| c.seq), Some(Seq(4)));
    assert_eq!(
        (page.changes.len(), page.last_seq, page.has_more),
        (4, Seq(7), true)
    );

    let only_a_todos = ChangeFilter {
        namespaces: Some(["a".parse().unwrap()].into()),
        collections: Some(["todos".parse().unwrap()].into()),
        skip_branches: false,
    };
    let mut after = Seq::ZERO;
    let mut found = Vec::new();
    loop {
        let page = changes_after(store, after, &only_a_todos, 1).await;
        found.extend(page.changes.iter().map(|c| c.id.to_string()));
        after = page.last_seq;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(found, ["d2", "d4", "d8"]);
    assert_eq!(after, Seq(10));
    let none = store
        .changes_after(Seq(10), &ChangeFilter::default(), 10)
        .await
        .unwrap();
    assert!(none.changes.is_empty() && !none.has_more);
}

pub(crate) async fn history_replays_every_version(store: &dyn SyncStore) {
    let doc = key("default", "visitors", "v1");
    store
        .apply(vec![insert(
            "op-1",
            &doc,
            json!({"name": "John", "title": "Manager"}),
        )])
        .await
        .unwrap();
    store
        .apply(vec![write(
            "op-2",
            &doc,
            1,
            ChangeOp::Update,
            json!({"title": "Director"}),
            json!({"name": "John", "title": "Director"}),
        )])
        .await
        .unwrap();
    store
        .apply(vec![write(
            "op-3",
            &doc,
            2,
            ChangeOp::Update,
            json!({"name": null}),
            json!({"title": "Director"}),
        )])
        .await
        .unwrap();
    store
        .apply(vec![write(
            "op-4",
            &doc,
            3,
            ChangeOp::Delete,
            json!({}),
            json!({}),
        )])
        .await
        .unwrap();

    let history = store.history(&doc).await.unwrap();
    assert_eq!(
        history.iter().map(|c| c.op).collect::<Vec<_>>(),
        [
            ChangeOp::Insert,
            ChangeOp::Update,
            ChangeOp::Update,
            ChangeOp::Delete
        ]
    );
    for change in &history {
        let rebuilt = store
            .document_at(&doc, change.version)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rebuilt.version, change.version);
        assert_eq!(
            Some(rebuilt.data.clone()).filter(|_| !rebuilt.deleted),
            change.data,
            "v{}",
            change.version
        );
    }
    assert!(store.document_at(&doc, Version(9)).await.unwrap().is_none());
    let tombstone = store.get(&doc).await.unwrap().unwrap();
    assert!(tombstone.document.deleted && tombstone.document.data.is_empty());
    assert_eq!(tombstone.document.version, Version(4));
}

pub(crate) async fn the_documents_are_the_projection_of_the_log(store: &dyn SyncStore) {
    assert_eq!(store.verify_projection().await.unwrap(), Vec::new());
    let doc = key("default", "todos", "t1");
    let other = key("default", "todos", "t2");
    store
        .apply(vec![
            insert("op-1", &doc, json!({"a": 1, "b": {"c": 2}})),
            write(
                "op-2",
                &doc,
                1,
                ChangeOp::Update,
                json!({"b": {"c": null, "d": 3}}),
                json!({"a": 1, "b": {"d": 3}}),
            ),
            insert("op-3", &other, json!({"x": true})),
            write("op-4", &other, 1, ChangeOp::Delete, json!({}), json!({})),
            write(
                "op-5",
                &other,
                2,
                ChangeOp::Insert,
                json!({"y": 1}),
                json!({"y": 1}),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(store.verify_projection().await.unwrap(), Vec::new());
    // Compaction keeps the projection: replay starts from the oldest kept change.
    let policy = RetentionPolicy {
        keep_versions: 1,
        low_water: Seq(5),
        collections: None,
    };
    assert_eq!(store.compact(&policy).await.unwrap(), 3);
    assert_eq!(store.verify_projection().await.unwrap(), Vec::new());
}

pub(crate) async fn lists_page_through_live_documents(store: &dyn SyncStore) {
    let mut writes = Vec::new();
    for n in 0..7 {
        writes.push(insert(
            &format!("op-{n}"),
            &key("default", "todos", &format!("t{n}")),
            json!({"done": n % 2 == 0}),
        ));
    }
    writes.push(insert(
        "op-other",
        &key("default", "todosx", "t0"),
        json!({"done": true}),
    ));
    writes.push(write(
        "op-del",
        &key("default", "todos", "t0"),
        1,
        ChangeOp::Delete,
        json!({}),
        json!({}),
    ));
    store.apply(writes).await.unwrap();
    let (ns, coll) = ("default".parse().unwrap(), "todos".parse().unwrap());
    let done = Filter::all().and_equals("done", true);
    let first = store.list(&ns, &coll, &done, None, 2).await.unwrap();
    let ids: Vec<String> = first.documents.iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["t2", "t4"]);
    let rest = store
        .list(&ns, &coll, &done, first.next.as_ref(), 10)
        .await
        .unwrap();
    assert_eq!(
        rest.documents
            .iter()
            .map(|d| d.id.to_string())
            .collect::<Vec<_>>(),
        ["t6"]
    );
    assert_eq!(rest.next, None);
    assert_eq!(
        store
            .list(&ns, &coll, &Filter::all(), None, 100)
            .await
            .unwrap()
            .documents
            .len(),
        6
    );
}

fn conflict(
    id: &str,
    strategy: Strategy,
    status: ConflictStatus,
    namespace: &str,
) -> ConflictRecord {
    ConflictRecord {
        id: id.parse().unwrap(),
        local_id: None,
        server_id: "v1".parse().unwrap(),
        conflict_data: ConflictData {
            client_data: obj(json!({"title": "a"})),
            server_data: obj(json!({"title": "b"})),
            conflict_fields: vec!["title".into()],
        },
        strategy,
        status,
        resolved_data: None,
        namespace: namespace.parse().unwrap(),
        collection: "visitors".parse().unwrap(),
        base_data: None,
        op_id: "op".parse().unwrap(),
        device_id: None,
        user: None,
        created_at: Timestamp::from_millis(1_000).unwrap(),
        resolved_at: None,
    }
}

pub(crate) async fn conflicts_are_recorded_and_resolved_once(store: &dyn SyncStore) {
    let doc = key("default", "visitors", "v1");
    store
        .apply(vec![insert("op-1", &doc, json!({"title": "b"}))])
        .await
        .unwrap();
    let mut pending = write("op-2", &doc, 1, ChangeOp::Update, json!({}), json!({}));
    pending.effect = WriteEffect::ResultOnly;
    pending.result.status = OpStatus::Conflict;
    pending.conflict = Some(conflict(
        "c-1",
        Strategy::Manual,
        ConflictStatus::Pending,
        "default",
    ));
    let outcome = store.apply(vec![pending]).await.unwrap();
    assert_eq!(committed(&outcome[0]).status, OpStatus::Conflict);
    assert_eq!(
        store.head().await.unwrap(),
        Seq(1),
        "a pending conflict changes no document"
    );

    let mut other = write(
        "op-x",
        &key("team", "visitors", "v9"),
        0,
        ChangeOp::Insert,
        json!({}),
        json!({}),
    );
    other.conflict = Some(conflict(
        "c-2",
        Strategy::Lww,
        ConflictStatus::Resolved,
        "team",
    ));
    store.apply(vec![other]).await.unwrap();

    let pending_only = ConflictQuery {
        status: Some(ConflictStatus::Pending),
        limit: 10,
        ..ConflictQuery::default()
    };
    let listed = store.list_conflicts(&pending_only).await.unwrap();
    assert_eq!(
        listed.iter().map(|c| c.id.to_string()).collect::<Vec<_>>(),
        ["c-1"]
    );
    let team_only = ConflictQuery {
        namespaces: Some(["team".parse().unwrap()].into()),
        limit: 10,
        ..ConflictQuery::default()
    };
    assert_eq!(store.list_conflicts(&team_only).await.unwrap().len(), 1);

    let mut resolve = write(
        "op-3",
        &doc,
        1,
        ChangeOp::Update,
        json!({"title": "c"}),
        json!({"title": "c"}),
    );
    resolve.resolves = Some("c-1".parse().unwrap());
    committed(&store.apply(vec![resolve]).await.unwrap()[0]);
    let record = store
        .get_conflict(&"c-1".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.status, ConflictStatus::Resolved);
    assert_eq!(record.resolved_data, Some(obj(json!({"title": "c"}))));

    let mut again = write(
        "op-4",
        &doc,
        2,
        ChangeOp::Update,
        json!({"title": "d"}),
        json!({"title": "d"}),
    );
    again.resolves = Some("c-1".parse().unwrap());
    assert_eq!(
        store.apply(vec![again]).await.unwrap()[0],
        CommitOutcome::ConflictNotPending
    );
    assert_eq!(
        store.get(&doc).await.unwrap().unwrap().document.data,
        obj(json!({"title": "c"}))
    );
}

pub(crate) async fn devices_belong_to_their_user(store: &dyn SyncStore) {
    let device = |id: &str, user: &str| DeviceRecord {
        device_id: id.parse().unwrap(),
        user: user.parse().unwrap(),
        name: format!("{user}'s phone"),
        platform: "iOS".into(),
        app_version: "1.0.0".into(),
        capabilities: DeviceCapabilities {
            collections: vec!["todos".parse().unwrap()],
            supports_real_time: true,
            bandwidth_limit: Some(1 << 20),
        },
        registered_at: Timestamp::from_millis(1).unwrap(),
        last_seen: Timestamp::from_millis(2).unwrap(),
    };
    store.put_device(device("d1", "alice")).await.unwrap();
    store.put_device(device("d2", "alice")).await.unwrap();
    store.put_device(device("d3", "bob")).await.unwrap();
    let alice = store.list_devices(&"alice".parse().unwrap()).await.unwrap();
    assert_eq!(alice.len(), 2);
    assert_eq!(
        store
            .get_device(&"d3".parse().unwrap())
            .await
            .unwrap()
            .unwrap()
            .user,
        "bob"
    );
    assert!(store.remove_device(&"d1".parse().unwrap()).await.unwrap());
    assert!(!store.remove_device(&"d1".parse().unwrap()).await.unwrap());
    assert_eq!(
        store
            .list_devices(&"alice".parse().unwrap())
            .await
            .unwrap()
            .len(),
        1
    );
}

fn branch(namespace: &str, id: &str, name: &str, fork_version: u64) -> BranchRecord {
    BranchRecord {
        namespace: namespace.parse().unwrap(),
        collection: "todos".parse().unwrap(),
        id: id.parse().unwrap(),
        name: name.parse().unwrap(),
        fork_version: Version(fork_version),
        created_at: Timestamp::from_millis(1).unwrap(),
        created_by: "alice".parse().unwrap(),
    }
}

pub(crate) async fn branches_are_kept_per_document_and_apart_from_it(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    store
        .apply(vec![insert("op-1", &todo, json!({"n": 1}))])
        .await
        .unwrap();
    store
        .put_branch(branch("default", "t1", "draft", 1))
        .await
        .unwrap();
    store
        .put_branch(branch("default", "t1", "alt", 1))
        .await
        .unwrap();
    store
        .put_branch(branch("default", "t10", "draft", 3))
        .await
        .unwrap();
    store
        .put_branch(branch("team", "t1", "draft", 4))
        .await
        .unwrap();
    let names = |list: Vec<BranchRecord>| {
        list.into_iter()
            .map(|b| b.name.into_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        names(store.list_branches(&todo).await.unwrap()),
        ["alt", "draft"]
    );
    let draft = "draft".parse().unwrap();
    // Replacing moves the fork point.
    store
        .put_branch(branch("default", "t1", "draft", 2))
        .await
        .unwrap();
    let found = store.get_branch(&todo, &draft).await.unwrap().unwrap();
    assert_eq!(found, branch("default", "t1", "draft", 2));
    assert_eq!(found.branch_key().collection, "todos@draft");

    // The branch's document lives under its address: not in the
    // collection's list, and its changes only reach readers that name it.
    let address = found.branch_key();
    store
        .apply(vec![insert("op-b1", &address, json!({"n": 5}))])
        .await
        .unwrap();
    let listed = store
        .list(
            &todo.namespace,
            &todo.collection,
            &Filter::default(),
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(listed.documents.len(), 1);
    assert_eq!(listed.documents[0].data, obj(json!({"n": 1})));
    let plain = ChangeFilter {
        skip_branches: true,
        ..ChangeFilter::default()
    };
    let documents = changes_after(store, Seq::ZERO, &plain, 10).await;
    assert_eq!(
        documents.changes.len(),
        1,
        "a branch is not in a client's feed"
    );
    assert_eq!(documents.last_seq, Seq(2), "but the reader moves past it");
    let everything = store
        .changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(everything.changes.len(), 2, "the whole log");
    let named = changes_after(
        store,
        Seq::ZERO,
        &ChangeFilter {
            collections: Some([address.collection.clone()].into()),
            ..plain
        },
        10,
    )
    .await;
    assert_eq!(named.changes.len(), 1);
    assert_eq!(named.changes[0].collection, "todos@draft");
    assert_eq!(store.history(&address).await.unwrap().len(), 1);

    assert!(store.remove_branch(&todo, &draft).await.unwrap());
    assert!(!store.remove_branch(&todo, &draft).await.unwrap());
    assert!(store.get_branch(&todo, &draft).await.unwrap().is_none());
    assert_eq!(names(store.list_branches(&todo).await.unwrap()), ["alt"]);
    assert_eq!(
        store
            .get_branch(&key("team", "todos", "t1"), &draft)
            .await
            .unwrap()
            .unwrap()
            .fork_version,
        Version(4)
    );
}

pub(crate) async fn counters_follow_the_writes(store: &dyn SyncStore) {
    let todo = key("default", "todos", "t1");
    store
        .apply(vec![
            insert("op-1", &todo, json!({"n": 1})),
            insert("op-2", &key("default", "todos", "t2"), json!({})),
        ])
        .await
        .unwrap();
    store
        .apply(vec![insert("op-1", &todo, json!({"n": 1}))])
        .await
        .unwrap();
    store
        .apply(vec![write(
            "op-3",
            &todo,
            1,
            ChangeOp::Delete,
            json!({}),
            json!({}),
        )])
        .await
        .unwrap();
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.operations.get(&OpStatus::Success), Some(&3));
    assert_eq!(stats.head, Seq(3));
    assert_eq!(stats.documents, 1);
    let device = &stats.devices[&"device-A".parse::<sync_core::DeviceId>().unwrap()];
    assert_eq!(device.operations.get(&OpStatus::Success), Some(&3));
    assert!(device.last_sync.is_some());
}

pub(crate) async fn compaction_keeps_the_latest_versions_and_resume_converges(
    store: &dyn SyncStore,
) {
    let doc = key("default", "todos", "t1");
    let other = key("default", "notes", "n1");
    let mut writes = vec![
        insert("op-0", &doc, json!({"n": 0})),
        insert("op-n", &other, json!({"n": 0})),
    ];
    for v in 1..6u64 {
        writes.push(write(
            &format!("op-{v}"),
            &doc,
            v,
            ChangeOp::Update,
            json!({"n": v}),
            json!({"n": v}),
        ));
    }
    store.apply(writes).await.unwrap();
    // t1 is at version 6 (seqs 1, 3..=7), n1 at version 1 (seq 2).
    let policy = RetentionPolicy {
        keep_versions: 2,
        low_water: Seq(4),
        collections: Some(["todos".parse().unwrap()].into()),
    };
    assert_eq!(
        store.compact(&policy).await.unwrap(),
        3,
        "seqs 1, 3, 4: older than the last two and not above the low-water mark"
    );
    let history = store.history(&doc).await.unwrap();
    assert_eq!(
        history.iter().map(|c| c.version.get()).collect::<Vec<_>>(),
        [4, 5, 6]
    );
    assert_eq!(
        store
            .document_at(&doc, Version(6))
            .await
            .unwrap()
            .unwrap()
            .data,
        obj(json!({"n": 5}))
    );
    assert_eq!(
        store
            .document_at(&doc, Version(4))
            .await
            .unwrap()
            .unwrap()
            .data,
        obj(json!({"n": 3}))
    );
    assert!(store.document_at(&doc, Version(2)).await.unwrap().is_none());
    assert_eq!(
        store.history(&other).await.unwrap().len(),
        1,
        "other collections untouched"
    );
    assert_eq!(store.oldest_retained().await.unwrap(), Seq(2));
    // A client resuming from the start still ends with every latest document.
    let all = store
        .changes_after(Seq::ZERO, &ChangeFilter::default(), 100)
        .await
        .unwrap();
    assert_eq!(
        all.changes.iter().map(|c| c.seq.get()).collect::<Vec<_>>(),
        [2, 5, 6, 7]
    );
    assert_eq!(all.changes.last().unwrap().data, Some(obj(json!({"n": 5}))));
    // Nothing above the low-water mark goes, however old.
    let everything = RetentionPolicy {
        keep_versions: 1,
        low_water: Seq(4),
        collections: None,
    };
    assert_eq!(store.compact(&everything).await.unwrap(), 0);
}

/// A log of many groups: compaction keeps exactly what the policy keeps
/// of each document, and history, paging, the oldest retained change and
/// the projection all agree with it.
pub(crate) async fn a_long_log_compacts_and_pages_through(store: &dyn SyncStore) {
    let docs: Vec<_> = (0..7)
        .map(|n| key("default", "todos", &format!("long-{n}")))
        .collect();
    let mut versions = vec![0u64; docs.len()];
    // Each document's seqs, oldest first.
    let mut seqs = vec![Vec::new(); docs.len()];
    // Groups of 100: more than a sled log page holds.
    for group in 0..4 {
        let mut writes = Vec::new();
        for i in 0..100 {
            let n = (group * 100 + i) * 3 % docs.len();
            let data = json!({"n": versions[n], "text": "x".repeat(40 * (i % 5))});
            let op = if versions[n] == 0 {
                ChangeOp::Insert
            } else {
                ChangeOp::Update
            };
            let op_id = format!("long-{group}-{i}");
            writes.push(write(&op_id, &docs[n], versions[n], op, data.clone(), data));
            versions[n] += 1;
        }
        for (outcome, write) in store
            .apply(writes.clone())
            .await
            .unwrap()
            .iter()
            .zip(&writes)
        {
            let n = docs.iter().position(|d| *d == write.key).unwrap();
            seqs[n].push(committed(outcome).seq.unwrap());
        }
    }
    let policy = RetentionPolicy {
        keep_versions: 2,
        low_water: Seq(300),
        collections: None,
    };
    let kept: Vec<Vec<Seq>> = seqs
        .iter()
        .map(|seqs| {
            let newest = seqs.len() - 2;
            seqs.iter()
                .enumerate()
                .filter(|(i, seq)| *i >= newest || **seq > policy.low_water)
                .map(|(_, seq)| *seq)
                .collect()
        })
        .collect();
    let kept_count: usize = kept.iter().map(Vec::len).sum();
    assert_eq!(
        store.compact(&policy).await.unwrap(),
        (400 - kept_count) as u64
    );
    for (doc, kept) in docs.iter().zip(&kept) {
        let history = store.history(doc).await.unwrap();
        assert_eq!(history.iter().map(|c| c.seq).collect::<Vec<_>>(), *kept);
    }
    let mut all: Vec<Seq> = kept.concat();
    all.sort();
    assert_eq!(store.oldest_retained().await.unwrap(), all[0]);
    let mut paged = Vec::new();
    let mut after = Seq::ZERO;
    loop {
        let page = changes_after(store, after, &ChangeFilter::default(), 37).await;
        paged.extend(page.changes.iter().map(|c| c.seq));
        after = page.last_seq;
        if !page.has_more {
            break;
        }
    }
    assert_eq!(paged, all);
    assert_eq!(store.verify_projection().await.unwrap(), Vec::new());
    assert_eq!(
        store.compact(&policy).await.unwrap(),
        0,
        "nothing more to drop"
    );
}

/// One `#[tokio::test]` per conformance check, for a store factory.
pub(crate) async fn waiting_for_the_head_wakes_on_a_commit(store: &dyn SyncStore) {
    let todo = key("default", "todos", "w1");
    let head = store.head().await.unwrap();
    if head > Seq::ZERO {
        // (Only then: with an empty log, waiting past 0 would wait forever.)
        let already = store.wait_for_head(Seq(head.get() - 1)).await;
        assert_eq!(already.unwrap(), head);
    }
    let (woken, ()) = tokio::join!(
        tokio::time::timeout(
            std::time::Duration::from_secs(10),
            store.wait_for_head(head)
        ),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            store
                .apply(vec![insert("op-wait", &todo, json!({"n": 1}))])
                .await
                .unwrap();
        }
    );
    let woken = woken.expect("a commit wakes the waiter").unwrap();
    assert_eq!(woken, head.next());
    assert_eq!(
        store.wait_for_head(head).await.unwrap(),
        head.next(),
        "a head already past returns at once"
    );
}

/// A snapshot read while writes go on is the state at its head, and loads
/// into an empty store (the second one) as an identical store: documents,
/// history, op results, conflicts, devices, counters and the log id (so
/// cursors stay valid); a load into a store holding data is refused.
pub(crate) async fn snapshots_load_into_an_empty_store(
    source: &dyn SyncStore,
    target: &dyn SyncStore,
) {
    let todo = key("default", "todos", "t1");
    source
        .apply(vec![
            insert("op-1", &todo, json!({"n": 1})),
            insert("op-2", &key("team", "notes", "n1"), json!({"text": "a"})),
        ])
        .await
        .unwrap();
    source
        .apply(vec![write(
            "op-3",
            &todo,
            1,
            ChangeOp::Update,
            json!({"n": 2}),
            json!({"n": 2}),
        )])
        .await
        .unwrap();
    let mut pending = write("op-4", &todo, 2, ChangeOp::Update, json!({}), json!({}));
    pending.effect = WriteEffect::ResultOnly;
    pending.result.status = OpStatus::Conflict;
    pending.conflict = Some(conflict(
        "c-1",
        Strategy::Manual,
        ConflictStatus::Pending,
        "default",
    ));
    source.apply(vec![pending]).await.unwrap();
    source
        .put_device(DeviceRecord {
            device_id: "d1".parse().unwrap(),
            user: "alice".parse().unwrap(),
            name: "phone".into(),
            platform: "iOS".into(),
            app_version: "1".into(),
            capabilities: DeviceCapabilities::default(),
            registered_at: Timestamp::from_millis(1).unwrap(),
            last_seen: Timestamp::from_millis(2).unwrap(),
        })
        .await
        .unwrap();
    source
        .put_branch(branch("default", "t1", "draft", 1))
        .await
        .unwrap();

    // Writes racing the snapshot: it holds exactly the state at its head.
    let racing = async {
        for n in 0..20 {
            let id = format!("r{n}");
            source
                .apply(vec![insert(
                    &format!("op-r{n}"),
                    &key("default", "todos", &id),
                    json!({"n": n}),
                )])
                .await
                .unwrap();
        }
    };
    let (snapshot, ()) = tokio::join!(source.snapshot(), racing);
    let snapshot = snapshot.unwrap();
    assert_eq!(snapshot.log_id, source.log_id());
    assert!(snapshot.head >= Seq(3));
    assert_eq!(
        snapshot.changes.iter().map(|c| c.seq).collect::<Vec<_>>(),
        (1..=snapshot.head.get()).map(Seq).collect::<Vec<_>>(),
        "every change up to the head, and none after"
    );
    assert!(
        snapshot
            .documents
            .iter()
            .all(|d| d.document.seq <= snapshot.head),
        "no document of a later commit"
    );
    assert_eq!(
        snapshot.documents.len() as u64,
        snapshot.stats.documents,
        "the counters of the same moment"
    );
    assert_eq!(snapshot.stats.head, snapshot.head);
    assert_eq!(snapshot.conflicts.len(), 1);
    assert_eq!(snapshot.devices.len(), 1);
    assert_eq!(snapshot.branches, [branch("default", "t1", "draft", 1)]);
    assert_eq!(snapshot.op_results.len() as u64, snapshot.head.get() + 1);
    let lines = snapshot.to_lines();
    let read_back = sync_core::store::StoreSnapshot::from_lines(lines.iter().cloned()).unwrap();
    assert_eq!(read_back, snapshot, "the NDJSON lines round-trip");
    assert!(
        sync_core::store::StoreSnapshot::from_lines(lines[..lines.len() - 1].iter().cloned())
            .is_err(),
        "a truncated snapshot is refused"
    );

    target.load_snapshot(snapshot.clone()).await.unwrap();
    assert_eq!(target.log_id(), snapshot.log_id, "cursors stay valid");
    assert_eq!(target.head().await.unwrap(), snapshot.head);
    let again = target.snapshot().await.unwrap();
    assert_eq!(again, snapshot, "the loaded store reads back identical");
    assert!(target.verify_projection().await.unwrap().is_empty());
    assert_eq!(
        target.history(&todo).await.unwrap(),
        source.history(&todo).await.unwrap()
    );
    assert_eq!(
        target.lookup_op(&"op-4".parse().unwrap()).await.unwrap(),
        source.lookup_op(&"op-4".parse().unwrap()).await.unwrap()
    );
    let stats = target.stats().await.unwrap();
    assert_eq!(stats, snapshot.stats);

    // The loaded store goes on from the head: the next seq follows it.
    let next = target
        .apply(vec![insert(
            "op-next",
            &key("default", "todos", "t9"),
            json!({}),
        )])
        .await
        .unwrap();
    assert_eq!(committed(&next[0]).seq, Some(snapshot.head.next()));
    assert!(matches!(
        target.load_snapshot(snapshot).await,
        Err(sync_core::StoreError::NotEmpty)
    ));
}

macro_rules! conformance_suite {
    // Every check, for the factory in brackets (either form below).
    (@checks [$($factory:tt)*]) => {
        conformance_suite!($($factory)*;
            writes_are_readable_with_metadata,
            every_reader_sees_each_change_with_its_delta,
            stale_versions_are_refused_and_change_nothing,
            replayed_op_ids_return_the_first_result,
            a_batch_applies_in_order,
            the_change_log_is_ordered_filtered_and_paged,
            history_replays_every_version,
            the_documents_are_the_projection_of_the_log,
            lists_page_through_live_documents,
            conflicts_are_recorded_and_resolved_once,
            devices_belong_to_their_user,
            branches_are_kept_per_document_and_apart_from_it,
            counters_follow_the_writes,
            compaction_keeps_the_latest_versions_and_resume_converges,
            a_long_log_compacts_and_pages_through,
            waiting_for_the_head_wakes_on_a_commit,
        );
    };
    // `async factory`: an async factory returning
    // `Option<(Arc<dyn SyncStore>, guard)>`, `None` when its backend is not
    // available (the factory says so loudly, and the test returns).
    (async $factory:path; $($check:ident),* $(,)?) => {
        mod conformance {
            $(
                #[tokio::test]
                async fn $check() {
                    let Some((store, _guard)) = $factory().await else {
                        return;
                    };
                    crate::conformance::$check(store.as_ref()).await;
                }
            )*

            #[tokio::test]
            async fn snapshots_load_into_an_empty_store() {
                let Some((source, _source_guard)) = $factory().await else {
                    return;
                };
                let Some((target, _target_guard)) = $factory().await else {
                    return;
                };
                crate::conformance::snapshots_load_into_an_empty_store(
                    source.as_ref(),
                    target.as_ref(),
                )
                .await;
            }
        }
    };
    (async $factory:path) => {
        conformance_suite!(@checks [async $factory]);
    };
    ($factory:path; $($check:ident),* $(,)?) => {
        mod conformance {
            $(
                #[tokio::test]
                async fn $check() {
                    let (store, _guard) = $factory();
                    crate::conformance::$check(store.as_ref()).await;
                }
            )*

            #[tokio::test]
            async fn snapshots_load_into_an_empty_store() {
                let (source, _source_guard) = $factory();
                let (target, _target_guard) = $factory();
                crate::conformance::snapshots_load_into_an_empty_store(
                    source.as_ref(),
                    target.as_ref(),
                )
                .await;
            }
        }
    };
    ($factory:path) => {
        conformance_suite!(@checks [$factory]);
    };
}
pub(crate) use conformance_suite;
