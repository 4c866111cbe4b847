//! Priority in the client: queued writes go to the server high first
//! (never past an older edit of their document), and a metered link holds
//! back the collections configured low until the app clears the flag.

use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sync_client::{Priority, SyncClient};

use crate::support::{Node, data_dir, dead_url, eventually, obj};

async fn client(url: &str, dir: &Path, metered: bool) -> SyncClient {
    SyncClient::builder()
        .server_url(url)
        .data_dir(dir)
        .collections(["logs", "payments"])
        .collection_priority("logs", Priority::Low)
        .collection_priority("payments", Priority::High)
        .metered(metered)
        .reconnect_delay(Duration::from_millis(100))
        .max_reconnect_attempts(None)
        .poll_wait_secs(2)
        .build()
        .await
        .unwrap()
}

/// The server's documents of `collection`: id -> (data, version, seq).
async fn server_docs(node: &Node, collection: &str) -> Vec<(String, Value, u64, u64)> {
    let page = node
        .get(&format!("/v1/ns/default/{collection}?limit=1000"))
        .await;
    page["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|doc| {
            (
                doc["id"].as_str().unwrap().to_owned(),
                doc["data"].clone(),
                doc["version"].as_u64().unwrap(),
                doc["seq"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_write_overtakes_a_backlog_of_low_ones_in_the_queue() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let dir = data_dir(&root, "a");

    // Offline: a backlog of low writes, then an urgent one.
    let a = client(&dead_url(), &dir, false).await;
    let logs = a.collection("logs").unwrap();
    for n in 0..300 {
        logs.save(obj(json!({"id": format!("log-{n:03}"), "n": n})))
            .await
            .unwrap();
    }
    a.collection("payments")
        .unwrap()
        .save(obj(json!({"id": "pay-1", "amount": 42})))
        .await
        .unwrap();
    // A low document edited once more, urgently, through a handle of its
    // own: the edit may not go before the document's create.
    logs.with_priority(Priority::High)
        .update("log-299", obj(json!({"flagged": true})))
        .await
        .unwrap();
    assert_eq!(a.pending_count().await.unwrap(), 301);
    a.close().await.unwrap();

    let a = client(&node.url(), &dir, false).await;
    a.sync_now().await.unwrap();
    assert_eq!(a.pending_count().await.unwrap(), 0);
    let payments = server_docs(&node, "payments").await;
    let logs = server_docs(&node, "logs").await;
    assert_eq!(payments.len(), 1);
    assert_eq!(logs.len(), 300);
    let pay_seq = payments[0].3;
    let overtaken = logs.iter().filter(|(_, _, _, seq)| *seq > pay_seq).count();
    // Everything but the urgent document went after the payment.
    assert!(
        overtaken >= 299,
        "the payment (seq {pay_seq}) overtook only {overtaken} low writes"
    );
    let flagged = logs.iter().find(|(id, ..)| id == "log-299").unwrap();
    assert_eq!(flagged.1, json!({"n": 299, "flagged": true}));
    a.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metered_link_holds_back_low_collections_until_cleared() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let dir = data_dir(&root, "a");

    let a = client(&node.url(), &dir, true).await;
    assert!(a.is_metered());
    a.collection("logs")
        .unwrap()
        .save(obj(json!({"id": "log-1", "n": 1})))
        .await
        .unwrap();
    a.collection("payments")
        .unwrap()
        .save(obj(json!({"id": "pay-1", "amount": 42})))
        .await
        .unwrap();
    a.sync_now().await.unwrap();
    eventually(10, "the payment on the server", || async {
        server_docs(&node, "payments").await.len() == 1
    })
    .await;
    // The low write stays queued (and visible locally) while metered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(server_docs(&node, "logs").await.is_empty());
    assert_eq!(a.pending_count().await.unwrap(), 1);
    let local = a.collection("logs").unwrap().get("log-1").await.unwrap();
    assert_eq!(
        local.map(Value::Object),
        Some(json!({"id": "log-1", "n": 1}))
    );

    // It is held durably: a restart still on a metered link keeps it.
    a.close().await.unwrap();
    let a = client(&node.url(), &dir, true).await;
    a.sync_now().await.unwrap();
    assert_eq!(a.pending_count().await.unwrap(), 1);
    assert!(server_docs(&node, "logs").await.is_empty());

    // Cleared: it goes at once, without being asked.
    a.set_metered(false);
    eventually(10, "the held-back log on the server", || async {
        server_docs(&node, "logs").await.len() == 1
    })
    .await;
    eventually(10, "an empty queue", || async {
        a.pending_count().await.unwrap() == 0
    })
    .await;
    a.close().await.unwrap();
}
