//! Durability across a restart (guarantee 1 of `docs/protocol.md`): with
//! `fsync`, every write the server acknowledged is there when a new server
//! opens the same data directory: documents, versions, history, conflicts,
//! the change feed from an old cursor, and the opIds already applied.

use serde_json::{Value, json};
use sync_service::config::DurabilityMode;

use crate::support::{Session, TestServer};

/// Everything a client can read back of what was written.
async fn observe(api: &Session<'_>, cursor: &str) -> Vec<Value> {
    let mut seen = vec![
        api.get_json(&format!("/v1/changes?cursor={cursor}"))
            .await
            .ok(),
        api.get_json("/v1/changes?cursor=now").await.ok(),
        api.get_json("/v1/ns/default/todos").await.ok(),
        api.get_json("/v1/conflicts").await.ok(),
    ];
    for id in ["a", "b", "gone"] {
        seen.push(api.document("default", "todos", id).await);
        seen.push(
            api.get_json(&format!("/v1/ns/default/todos/{id}/history"))
                .await
                .ok(),
        );
        seen.push(
            api.get_json(&format!("/v1/ns/default/todos/{id}/versions/1"))
                .await
                .ok(),
        );
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_a_restart() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let fsync = |config: &mut sync_service::Config| {
        assert_eq!(config.durability, DurabilityMode::Fsync);
    };
    let server = TestServer::start_in(dir, fsync, |builder| builder).await;
    let api = server.session(None);
    api.create(
        "default",
        "todos",
        "early",
        json!({"title": "before the cursor"}),
        "d1",
    )
    .await;
    let cursor = api.head().await;
    let first = api
        .sync(json!({"deviceId": "d1", "operations": [
            {"opId": "op-a1", "action": "create", "collection": "todos", "id": "a",
             "data": {"title": "A", "tags": ["x"]}},
            {"opId": "op-b1", "action": "create", "collection": "todos", "id": "b",
             "data": {"title": "B"}},
            {"opId": "op-g1", "action": "create", "collection": "todos", "id": "gone",
             "data": {"title": "G"}},
            {"opId": "op-a2", "action": "update", "collection": "todos", "id": "a",
             "baseVersion": 1, "data": {"done": true}},
            {"opId": "op-g2", "action": "delete", "collection": "todos", "id": "gone"}
        ]}))
        .await;
    assert_eq!(first["success"], true, "{first}");
    // An online edit, then a stale offline one left pending as a conflict.
    for (device, op_id, title, strategy) in [
        ("d2", "op-b2", "online", "merge"),
        ("d1", "op-b3", "offline", "manual"),
    ] {
        let response = api
            .sync(
                json!({"deviceId": device, "strategy": strategy, "operations": [
                    {"opId": op_id, "action": "update", "collection": "todos", "id": "b",
                     "baseVersion": 1, "data": {"title": title}}
                ]}),
            )
            .await;
        assert_eq!(response["success"], true, "{response}");
    }
    let restored = api
        .post_json("/v1/ns/default/todos/a/restore/1", &json!({}))
        .await
        .ok();
    assert_eq!(restored["version"], 3);
    let before = observe(&api, &cursor).await;
    assert_eq!(
        before[0]["changes"].as_array().map(Vec::len),
        Some(7),
        "{}",
        before[0]
    );
    assert_eq!(
        before[3]["conflicts"][0]["status"], "pending",
        "{}",
        before[3]
    );

    let dir = server.shutdown().await;
    let server = TestServer::start_in(dir, fsync, |builder| builder).await;
    let api = server.session(None);
    let after = observe(&api, &cursor).await;
    for (index, (before, after)) in before.iter().zip(&after).enumerate() {
        assert_eq!(before, after, "read {index} differs after the restart");
    }
    // The opIds applied before are still known: a retry is a duplicate.
    let retry = api
        .sync(json!({"deviceId": "d1", "operations": [
            {"opId": "op-a2", "action": "update", "collection": "todos", "id": "a",
             "baseVersion": 1, "data": {"done": true}}
        ]}))
        .await;
    assert_eq!(retry["results"][0]["status"], "duplicate", "{retry}");
    assert_eq!(retry["results"][0]["version"], 2);
    // And the log goes on from where it was.
    let head = api.head().await;
    api.create("default", "todos", "late", json!({"title": "after"}), "d1")
        .await;
    let feed = api
        .get_json(&format!("/v1/changes?cursor={head}"))
        .await
        .ok();
    let change = &feed["changes"][0];
    assert_eq!(change["id"], "late");
    assert_eq!(change["seq"], 9);
    server.shutdown().await;
}
