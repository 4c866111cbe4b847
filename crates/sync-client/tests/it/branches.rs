//! A branch of a document through the Rust SDK: the branch address
//! `notes@draft` is a collection like any other; the document's collection
//! does not see the branch's edits until a merge brings them in.

use std::time::Duration;

use serde_json::{Value, json};
use sync_client::SyncClient;

use crate::support::{Node, data_dir, eventually, obj};

async fn post(node: &Node, path: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}{path}", node.url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_branch_syncs_under_its_address_and_reaches_the_document_when_merged() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let client = SyncClient::builder()
        .server_url(node.url())
        .data_dir(data_dir(&root, "a"))
        .collections(["notes", "notes@draft"])
        .reconnect_delay(Duration::from_millis(100))
        .poll_wait_secs(2)
        .build()
        .await
        .unwrap();
    let notes = client.collection("notes").unwrap();
    let draft = client.collection("notes@draft").unwrap();
    notes
        .save(obj(json!({"id": "n1", "title": "Plan", "body": "one"})))
        .await
        .unwrap();
    eventually(10, "the note on the server", || async {
        node.get("/v1/ns/default/notes/n1").await["version"] == 1
    })
    .await;

    let (status, forked) = post(
        &node,
        "/v1/ns/default/notes/n1/branches",
        json!({"name": "draft"}),
    )
    .await;
    assert_eq!(status, 201, "{forked}");
    eventually(10, "the branch on the client", || async {
        draft
            .get("n1")
            .await
            .unwrap()
            .is_some_and(|doc| doc["title"] == "Plan")
    })
    .await;

    draft
        .update("n1", json!({"body": "one, rewritten"}))
        .await
        .unwrap();
    eventually(10, "the branch edit on the server", || async {
        node.get("/v1/ns/default/notes@draft/n1").await["version"] == 2
    })
    .await;
    assert_eq!(
        node.get("/v1/ns/default/notes/n1").await["data"]["body"],
        "one"
    );
    assert_eq!(notes.get("n1").await.unwrap().unwrap()["body"], "one");

    let (status, merged) = post(
        &node,
        "/v1/ns/default/notes/n1/branches/draft/merge",
        json!({}),
    )
    .await;
    assert_eq!(
        (status, &merged["result"]["status"]),
        (200, &json!("success")),
        "{merged}"
    );
    eventually(10, "the merge on the client", || async {
        notes
            .get("n1")
            .await
            .unwrap()
            .is_some_and(|doc| doc["body"] == "one, rewritten")
    })
    .await;
    client.close().await.unwrap();
}
