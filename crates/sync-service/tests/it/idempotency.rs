//! Exactly-once application (guarantee 2 of `docs/protocol.md`): a request
//! replayed with the same `opId`s answers `duplicate` with the first
//! results and changes nothing, not the documents and not the change log;
//! operations sent without an `opId` are recognised by `localId` and
//! timestamp.

use serde_json::{Value, json};

use crate::support::TestServer;

fn batch() -> Value {
    json!({
        "deviceId": "phone-1",
        "operations": [
            {"opId": "op-create-a", "action": "create", "collection": "todos",
             "id": "a", "data": {"title": "Buy milk", "done": false}},
            {"opId": "op-update-a", "action": "update", "collection": "todos",
             "id": "a", "baseVersion": 1, "data": {"done": true}},
            {"opId": "op-create-b", "action": "create", "collection": "todos",
             "localId": "local_b", "data": {"title": "Walk the dog"}},
            {"opId": "op-delete-a", "action": "delete", "collection": "todos",
             "id": "a", "baseVersion": 2}
        ]
    })
}

#[tokio::test]
async fn a_replayed_request_is_all_duplicates_and_changes_nothing() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let first = api.sync(batch()).await;
    let statuses: Vec<&Value> = first["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, [&json!("success"); 4], "{first}");
    let b_id = first["results"][2]["serverId"]
        .as_str()
        .expect("b's id")
        .to_owned();
    let head = api.head().await;
    let a = api.document("default", "todos", "a").await;
    let b = api.document("default", "todos", &b_id).await;

    for attempt in 0..2 {
        let replay = api.sync(batch()).await;
        assert_eq!(replay["success"], true, "{replay}");
        let (results, originals) = (
            replay["results"].as_array().expect("results"),
            first["results"].as_array().expect("results"),
        );
        assert_eq!(results.len(), 4);
        for (result, original) in results.iter().zip(originals) {
            let mut expected = original.clone();
            expected["status"] = json!("duplicate");
            assert_eq!(result, &expected, "attempt {attempt}");
        }
        assert_eq!(api.head().await, head, "the log head moved");
        assert_eq!(api.document("default", "todos", "a").await, a);
        assert_eq!(api.document("default", "todos", &b_id).await, b);
    }
    let feed = api.get_json("/v1/changes").await.ok();
    assert_eq!(feed["changes"].as_array().expect("changes").len(), 4);
    assert_eq!(feed["cursor"], head.as_str());
    server.shutdown().await;
}

#[tokio::test]
async fn a_replay_after_later_writes_does_not_undo_them() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let set = |op_id: &str, title: &str| {
        json!({"operations": [{"opId": op_id, "action": "upsert", "collection": "todos",
                               "id": "x", "data": {"title": title}}]})
    };
    let first = api.sync(set("op-1", "first")).await;
    assert_eq!(first["results"][0]["version"], 1);
    let second = api.sync(set("op-2", "second")).await;
    assert_eq!(second["results"][0]["version"], 2);
    let replay = api.sync(set("op-1", "first")).await;
    assert_eq!(replay["results"][0]["status"], "duplicate");
    assert_eq!(replay["results"][0]["version"], 1);
    let stored = api.document("default", "todos", "x").await;
    assert_eq!(stored["data"], json!({"title": "second"}));
    assert_eq!(stored["version"], 2);
    // The same opId twice in one request: the second is its duplicate.
    let twice = api
        .sync(json!({"operations": [
            {"opId": "op-3", "action": "update", "collection": "todos", "id": "x",
             "baseVersion": 2, "data": {"n": 1}},
            {"opId": "op-3", "action": "update", "collection": "todos", "id": "x",
             "baseVersion": 2, "data": {"n": 1}}
        ]}))
        .await;
    assert_eq!(twice["results"][0]["status"], "success", "{twice}");
    assert_eq!(twice["results"][1]["status"], "duplicate", "{twice}");
    assert_eq!(twice["results"][1]["version"], 3);
    assert_eq!(api.document("default", "todos", "x").await["version"], 3);
    // ... and when it runs into a conflict, the conflict is listed once.
    let stale = json!({"opId": "op-4", "action": "update", "collection": "todos",
                       "id": "x", "baseVersion": 1, "data": {"title": "stale"}});
    let twice = api
        .sync(json!({"strategy": "manual", "operations": [stale, stale]}))
        .await;
    assert_eq!(twice["results"][0]["status"], "conflict", "{twice}");
    assert_eq!(twice["results"][1]["status"], "duplicate", "{twice}");
    let conflicts = twice["conflicts"].as_array().expect("conflicts");
    assert_eq!(conflicts.len(), 1, "{twice}");
    assert_eq!(conflicts[0]["id"], twice["results"][1]["conflictId"]);
    server.shutdown().await;
}

#[tokio::test]
async fn a_replay_the_document_has_moved_past_is_still_a_duplicate() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let op = |op_id: &str, action: &str, id: &str, extra: Value| {
        let mut op = json!({"opId": op_id, "action": action, "collection": "todos", "id": id});
        if let (Some(op), Value::Object(extra)) = (op.as_object_mut(), extra) {
            op.extend(extra);
        }
        json!({"operations": [op]})
    };
    let create_z = op("z-1", "create", "z", json!({"data": {"n": 1}}));
    let create_y = op("y-1", "create", "y", json!({"data": {"n": 1}}));
    let update_y = op(
        "y-2",
        "update",
        "y",
        json!({"baseVersion": 1, "data": {"n": 2}}),
    );
    let delete_y = op("y-3", "delete", "y", json!({"baseVersion": 2}));
    for (request, version) in [
        (&create_z, 1),
        (&create_y, 1),
        (&update_y, 2),
        (&delete_y, 3),
    ] {
        let response = api.sync(request.clone()).await;
        assert_eq!(response["results"][0]["status"], "success", "{response}");
        assert_eq!(response["results"][0]["version"], version, "{response}");
    }
    let z_update = api
        .sync(op(
            "z-2",
            "update",
            "z",
            json!({"baseVersion": 1, "data": {"n": 2}}),
        ))
        .await;
    assert_eq!(z_update["results"][0]["status"], "success");
    let head = api.head().await;
    // Each replay would fail if applied now (the document exists, is
    // deleted, or moved on), or would write again: each is a duplicate.
    for (request, version) in [
        (&create_z, 1),
        (&create_y, 1),
        (&update_y, 2),
        (&delete_y, 3),
    ] {
        let replay = api.sync(request.clone()).await;
        assert_eq!(replay["results"][0]["status"], "duplicate", "{replay}");
        assert_eq!(replay["results"][0]["version"], version, "{replay}");
    }
    assert_eq!(api.head().await, head, "a replay wrote");
    assert_eq!(api.document("default", "todos", "z").await["version"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn seed_style_operations_without_op_id_are_recognised_when_replayed() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    // As some clients send it: no opId, but a localId and a timestamp.
    let request = json!({
        "deviceId": "tablet-7",
        "operations": [{
            "action": "create", "localId": "local_123456",
            "timestamp": "2023-12-01T10:30:00.000Z",
            "data": {"name": "John Smith", "company": "Tech Corp"}
        }],
        "lastSyncTimestamp": "2023-12-01T09:00:00.000Z"
    });
    let first = server
        .post_json("/api/visitors/bulk-sync", &request)
        .await
        .ok();
    let result = first["results"][0].clone();
    assert_eq!(result["status"], "success", "{first}");
    let head = api.head().await;
    let replay = server
        .post_json("/api/visitors/bulk-sync", &request)
        .await
        .ok();
    let mut expected = result.clone();
    expected["status"] = json!("duplicate");
    assert_eq!(replay["results"][0], expected, "{replay}");
    assert_eq!(api.head().await, head);
    let list = api.get_json("/v1/ns/default/visitors").await.ok();
    assert_eq!(list["documents"].as_array().expect("documents").len(), 1);

    // Another localId is another operation.
    let mut other = request.clone();
    other["operations"][0]["localId"] = json!("local_654321");
    let other = server
        .post_json("/api/visitors/bulk-sync", &other)
        .await
        .ok();
    assert_eq!(other["results"][0]["status"], "success", "{other}");
    assert_ne!(other["results"][0]["serverId"], result["serverId"]);
    let list = api.get_json("/v1/ns/default/visitors").await.ok();
    assert_eq!(list["documents"].as_array().expect("documents").len(), 2);
    server.shutdown().await;
}

#[tokio::test]
async fn an_operation_without_op_id_is_the_same_operation_through_either_door() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    api.create("default", "todos", "d1", json!({"text": "milk"}), "phone-9")
        .await;
    let timestamp = "2023-12-01T10:30:00.000Z";
    let over_http = api
        .sync(json!({"deviceId": "phone-9", "operations": [
            {"action": "update", "collection": "todos", "id": "d1",
             "timestamp": timestamp, "data": {"done": true}}
        ]}))
        .await;
    assert_eq!(over_http["results"][0]["status"], "success", "{over_http}");
    let head = api.head().await;

    // The same write, sent again over WebSocket by the same device after
    // a lost answer: recognised, not applied twice.
    let mut ws = server.ws_client("phone-9").await;
    let again = ws
        .request(
            json!({"type": "update", "collection": "todos", "recordId": "d1",
                        "timestamp": timestamp, "data": {"done": true}}),
        )
        .await;
    assert_eq!(
        (&again["type"], &again["status"], &again["opId"]),
        (
            &json!("ack"),
            &json!("duplicate"),
            &over_http["results"][0]["opId"]
        ),
        "{again}"
    );
    assert_eq!(api.head().await, head, "nothing was written again");
    assert_eq!(api.document("default", "todos", "d1").await["version"], 2);
}
