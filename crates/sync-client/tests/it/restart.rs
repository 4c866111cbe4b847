//! A server restart mid-sync: the clients reconnect with backoff and
//! resume, nothing lost, nothing doubled.

use std::time::Duration;

use serde_json::json;

use crate::support::{Node, client, connected, data_dir, eventually, local_todos, obj};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_resume_after_a_server_restart() {
    let mut node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let a = client(&node.url(), &data_dir(&root, "a")).await;
    let b = client(&node.url(), &data_dir(&root, "b")).await;
    connected(&a, 10).await;

    let writer = {
        let todos = a.collection("todos").unwrap();
        tokio::spawn(async move {
            for n in 0..200 {
                todos
                    .save(obj(json!({"id": format!("r{n:03}"), "n": n})))
                    .await
                    .unwrap();
                if n % 2 == 0 {
                    todos
                        .update(&format!("r{n:03}"), obj(json!({"even": true})))
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    node.restart().await;
    writer.await.unwrap();
    b.collection("todos")
        .unwrap()
        .save(obj(json!({"id": "from-b", "n": -1})))
        .await
        .unwrap();

    connected(&a, 15).await;
    eventually(20, "everything reaches the server and B", || async {
        a.pending_count().await.unwrap() == 0
            && b.pending_count().await.unwrap() == 0
            && local_todos(&b).await.len() == 201
            && local_todos(&a).await.len() == 201
    })
    .await;
    let server = node.todos().await;
    assert_eq!(server.len(), 201);
    for (id, data, version) in &server {
        if id == "from-b" {
            continue;
        }
        let n = data["n"].as_u64().unwrap();
        if (data["even"] == true) != (n % 2 == 0) {
            let history = node
                .get(&format!("/v1/ns/default/todos/{id}/history"))
                .await;
            let failed = a.failed().await.unwrap();
            panic!("{id}: {data}; history {history}; failed {failed:?}");
        }
        // A create and at most its one update: nothing applied twice.
        assert!(*version <= 2, "{id} at version {version}");
    }
    let want: Vec<(String, serde_json::Value)> =
        server.into_iter().map(|(id, data, _)| (id, data)).collect();
    assert_eq!(local_todos(&a).await, want);
    assert_eq!(local_todos(&b).await, want);
    a.close().await.unwrap();
    b.close().await.unwrap();
}
