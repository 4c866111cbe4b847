//! Two clients converge: what A writes shows up in B's live queries.

use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use sync_client::{Order, SyncEvent};

use crate::support::{Node, client, connected, data_dir, local_todos, obj};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_a_appear_in_bs_watch_stream() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let a = client(&node.url(), &data_dir(&root, "a")).await;
    let b = client(&node.url(), &data_dir(&root, "b")).await;
    let mut events = b.events();
    connected(&b, 10).await;

    let mut room = b
        .collection("todos")
        .unwrap()
        .where_eq("room", "42")
        .order_by("n", Order::Descending)
        .watch();
    assert_eq!(
        room.next().await.unwrap(),
        Vec::<sync_client::JsonObject>::new()
    );

    let todos = a.collection("todos").unwrap();
    let first = todos
        .save(obj(json!({"text": "Buy milk", "room": "42", "n": 1})))
        .await
        .unwrap();
    todos
        .save(obj(json!({"text": "elsewhere", "room": "7", "n": 5})))
        .await
        .unwrap();
    let second = todos
        .save(obj(
            json!({"id": "fixed", "text": "Walk", "room": "42", "n": 2}),
        ))
        .await
        .unwrap();
    assert_eq!(second.as_str(), "fixed");
    // A sees its own writes at once.
    assert_eq!(todos.list().await.unwrap().len(), 3);

    let result = wait(&mut room, vec!["Walk", "Buy milk"]).await;
    assert_eq!(result[0]["id"], "fixed");

    todos
        .update(first.as_str(), obj(json!({"text": "Buy oat milk", "n": 3})))
        .await
        .unwrap();
    wait(&mut room, vec!["Buy oat milk", "Walk"]).await;
    todos.delete("fixed").await.unwrap();
    wait(&mut room, vec!["Buy oat milk"]).await;

    let mut saw_insert = false;
    while let Some(event) = events.try_recv() {
        saw_insert |= matches!(event, SyncEvent::Insert { ref id, .. } if id == "fixed");
    }
    assert!(saw_insert, "B heard of A's insert");
    a.sync_now().await.unwrap();
    b.sync_now().await.unwrap();
    assert_eq!(local_todos(&a).await, local_todos(&b).await);
    assert_eq!(a.pending_count().await.unwrap(), 0);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_polling_carries_the_sync_when_there_is_no_websocket() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let build = |name: &str| {
        sync_client::SyncClient::builder()
            .server_url(node.url())
            .data_dir(data_dir(&root, name))
            .collections(["todos"])
            .realtime(false)
            .poll_wait_secs(2)
            .chunk_size(7)
            .build()
    };
    let a = build("a").await.unwrap();
    let b = build("b").await.unwrap();
    let mut progress = a.events();
    for n in 0..20 {
        a.collection("todos")
            .unwrap()
            .save(obj(json!({"id": format!("t{n:02}"), "n": n})))
            .await
            .unwrap();
    }
    a.sync_now().await.unwrap();
    let mut totals = Vec::new();
    while let Some(event) = progress.try_recv() {
        if let SyncEvent::SyncProgress { done, total } = event {
            totals.push((done, total));
        }
    }
    // The background push may start while the saves still arrive, so the
    // 20 can go out in more than one push: each reports chunk by chunk (at
    // most 7 operations a chunk) up to its own total, and the last one
    // finishes what it started.
    assert!(totals.len() >= 3, "chunked in sevens: {totals:?}");
    assert!(
        totals
            .windows(2)
            .all(|pair| pair[1].0 <= pair[0].0 || pair[1].0 - pair[0].0 <= 7),
        "chunked in sevens: {totals:?}"
    );
    assert!(
        totals.iter().all(|(done, total)| done <= total),
        "{totals:?}"
    );
    assert_eq!(
        totals.last().map(|(done, total)| done == total),
        Some(true),
        "{totals:?}"
    );
    assert_eq!(a.pending_count().await.unwrap(), 0);
    crate::support::eventually(10, "B polls A's todos", || async {
        local_todos(&b).await.len() == 20
    })
    .await;
    assert_eq!(local_todos(&a).await, local_todos(&b).await);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

async fn wait(
    room: &mut futures::stream::BoxStream<'static, Vec<sync_client::JsonObject>>,
    want: Vec<&'static str>,
) -> Vec<sync_client::JsonObject> {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let result = room.next().await.unwrap();
            let texts: Vec<&str> = result
                .iter()
                .map(|doc| doc["text"].as_str().unwrap_or(""))
                .collect();
            if texts == want {
                return result;
            }
        }
    })
    .await
    .expect("the live query caught up")
}

/// A document saved is in the local view at once and stays there while its
/// acknowledgement moves it from the queue to the known state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_document_stays_visible_while_its_ack_lands() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let a = client(&node.url(), &data_dir(&root, "a")).await;
    connected(&a, 10).await;
    let todos = a.collection("todos").unwrap();
    let (saved, mut latest) = tokio::sync::watch::channel(None::<String>);
    // Reads the latest saved document without pause, racing the engine as
    // it stores each acknowledgement.
    let reader = tokio::spawn({
        let todos = todos.clone();
        async move {
            let mut reads = 0u64;
            loop {
                let id = latest.borrow_and_update().clone();
                match id {
                    Some(id) if id == "done" => return reads,
                    Some(id) => {
                        let found = todos.get(&id).await.unwrap();
                        assert!(found.is_some(), "{id} vanished after {reads} reads");
                        reads += 1;
                    }
                    None => latest.changed().await.unwrap(),
                }
                tokio::task::yield_now().await;
            }
        }
    });
    for n in 0..300 {
        let id = format!("v{n:03}");
        todos.save(obj(json!({"id": id, "n": n}))).await.unwrap();
        saved.send_replace(Some(id));
        let acked = async {
            while a.pending_count().await.unwrap() > 0 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), acked)
            .await
            .expect("the save is acknowledged");
    }
    saved.send_replace(Some("done".to_owned()));
    let reads = reader.await.unwrap();
    assert!(reads > 300, "the reader read {reads} times");
    assert_eq!(todos.list().await.unwrap().len(), 300);
    a.close().await.unwrap();
}
