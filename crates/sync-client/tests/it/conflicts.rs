//! Concurrent offline edits on A and B to the same documents converge on
//! A, B and the server, under `merge` and under `lww`; a pending conflict
//! (`manual`) goes to the application's resolver.

use std::time::Duration;

use serde_json::json;
use sync_client::SyncEvent;
use sync_core::Strategy;

use crate::support::{Node, client as build, data_dir, eventually, local_todos, obj};

async fn concurrent_offline_edits_converge(strategy: Strategy) {
    let mut node = Node::start(Some(strategy)).await;
    let root = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (data_dir(&root, "a"), data_dir(&root, "b"));
    let a = build(&node.url(), &dir_a).await;
    let b = build(&node.url(), &dir_b).await;
    for n in 0..10 {
        a.collection("todos")
            .unwrap()
            .save(obj(
                json!({"id": format!("d{n}"), "title": "start", "tags": ["x"], "n": n}),
            ))
            .await
            .unwrap();
    }
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    assert_eq!(local_todos(&b).await.len(), 10);
    a.close().await.unwrap();
    b.close().await.unwrap();

    // Both offline: the server is down.
    let url = node.url();
    node.stop().await;
    let a = build(&url, &dir_a).await;
    let b = build(&url, &dir_b).await;
    for n in 0..10 {
        let id = format!("d{n}");
        a.collection("todos")
            .unwrap()
            .update(
                &id,
                obj(json!({"title": format!("A{n}"), "a": true, "tags": ["x", "a"]})),
            )
            .await
            .unwrap();
        b.collection("todos")
            .unwrap()
            .update(
                &id,
                obj(json!({"title": format!("B{n}"), "b": true, "tags": ["x", "b"]})),
            )
            .await
            .unwrap();
        if n == 9 {
            b.collection("todos").unwrap().delete(&id).await.unwrap();
        }
    }
    node.restart().await;
    eventually(20, "both queues drain", || async {
        a.pending_count().await.unwrap() == 0 && b.pending_count().await.unwrap() == 0
    })
    .await;
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    let server: Vec<(String, serde_json::Value)> = node
        .todos()
        .await
        .into_iter()
        .map(|(id, data, _)| (id, data))
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (la, lb) = (local_todos(&a).await, local_todos(&b).await);
        if la == server && lb == server {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "diverged:\nserver {server:?}\nA {la:?}\nB {lb:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.len() >= 9, "{server:?}");
    // Both sides' non-conflicting fields survived.
    let d0 = &server.iter().find(|(id, _)| id == "d0").unwrap().1;
    assert_eq!(
        (d0["a"].clone(), d0["b"].clone()),
        (json!(true), json!(true)),
        "{d0}"
    );
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offline_edits_converge_under_merge() {
    concurrent_offline_edits_converge(Strategy::Merge).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_offline_edits_converge_under_lww() {
    concurrent_offline_edits_converge(Strategy::Lww).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pending_conflict_goes_to_the_resolver_hook() {
    let mut node = Node::start(Some(Strategy::Manual)).await;
    let root = tempfile::tempdir().unwrap();
    let (dir_a, dir_b) = (data_dir(&root, "a"), data_dir(&root, "b"));
    let a = build(&node.url(), &dir_a).await;
    let b = build(&node.url(), &dir_b).await;
    a.collection("todos")
        .unwrap()
        .save(obj(json!({"id": "doc", "title": "start"})))
        .await
        .unwrap();
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    b.close().await.unwrap();
    a.collection("todos")
        .unwrap()
        .update("doc", obj(json!({"title": "from A"})))
        .await
        .unwrap();
    a.sync_now().await.unwrap();

    let url = node.url();
    node.stop().await;
    let b = build(&url, &dir_b).await;
    b.on_conflict(|info| {
        let mut doc = info.conflict_data.server_data.clone();
        let both = format!(
            "{} / {}",
            info.conflict_data.server_data["title"]
                .as_str()
                .unwrap_or(""),
            info.conflict_data.client_data["title"]
                .as_str()
                .unwrap_or("")
        );
        doc.insert("title".into(), json!(both));
        Some(doc)
    });
    let mut events = b.events();
    b.collection("todos")
        .unwrap()
        .update("doc", obj(json!({"title": "from B"})))
        .await
        .unwrap();
    node.restart().await;
    b.sync_now().await.unwrap();
    let mut pending = false;
    let mut resolved = false;
    while let Some(event) = events.try_recv() {
        pending |= matches!(event, SyncEvent::ConflictPending(_));
        resolved |= matches!(event, SyncEvent::ConflictResolved { .. });
    }
    assert!(
        pending && resolved,
        "pending {pending}, resolved {resolved}"
    );
    let server = node.todos().await;
    assert_eq!(server[0].1["title"], "from A / from B", "{server:?}");
    eventually(10, "A and B see the resolution", || async {
        let want = vec![("doc".to_owned(), server[0].1.clone())];
        local_todos(&b).await == want && local_todos(&a).await == want
    })
    .await;
    a.close().await.unwrap();
    b.close().await.unwrap();
}
