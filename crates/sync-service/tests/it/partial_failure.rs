//! One bad operation fails alone: the valid operations of the batch apply
//! in order, the bad one answers status `error` with its code, is listed in
//! `errors` with its index, and `success` is false.

use serde_json::{Value, json};

use crate::support::{TestServer, assert_error_body, keys};

#[tokio::test]
async fn bad_operations_fail_alone() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    api.create("default", "todos", "pre", json!({"title": "before"}), "d-1")
        .await;
    let response = api
        .sync(json!({
            "operations": [
                {"opId": "op-0", "action": "create", "collection": "todos", "id": "ok-1",
                 "data": {"title": "first"}},
                {"opId": "op-1", "action": "create", "collection": "todos",
                 "localId": "local_wrong_type", "data": "not an object"},
                {"opId": "op-2", "action": "update", "collection": "todos", "id": "ok-1",
                 "data": {"done": true}},
                {"opId": "op-3", "action": "drop", "collection": "todos", "id": "ok-1",
                 "localId": "local_unknown_action"},
                {"opId": "op-4", "action": "create", "collection": "bad name!",
                 "id": "x", "data": {}},
                {"opId": "op-5", "action": "update", "collection": "todos",
                 "id": "missing-doc", "localId": "local_missing", "data": {"x": 1}},
                {"opId": "op-6", "action": "create", "collection": "todos", "id": "ok-2",
                 "data": {"title": "second"}},
                {"opId": "op-7", "action": "create", "collection": "todos", "id": "ok-1",
                 "data": {"title": "again"}},
                {"opId": "op-8", "action": "update", "collection": "todos", "id": "pre",
                 "baseVersion": 7, "data": {"title": "from the future"}}
            ]
        }))
        .await;
    assert_eq!(response["success"], false, "{response}");
    let results = response["results"].as_array().expect("results");
    // (index, status, error code)
    let expected = [
        (0, "success", None),
        (1, "error", Some("invalid_request")),
        (2, "success", None),
        (3, "error", Some("invalid_request")),
        (4, "error", Some("invalid_request")),
        (5, "error", Some("not_found")),
        (6, "success", None),
        (7, "error", Some("conflict")),
        (8, "error", Some("invalid_request")),
    ];
    assert_eq!(results.len(), expected.len(), "{response}");
    for (index, status, code) in expected {
        let result = &results[index];
        assert_eq!(result["status"], status, "operation {index}: {result}");
        assert_eq!(result["opId"], format!("op-{index}"), "operation {index}");
        match code {
            Some(code) => assert_error_body(&result["error"], code),
            None => assert_eq!(result.get("error"), None, "operation {index}"),
        }
    }
    let errors = response["errors"].as_array().expect("errors");
    let listed: Vec<(u64, &str)> = errors
        .iter()
        .map(|e| {
            assert!(!e["message"].as_str().unwrap_or("").is_empty(), "{e}");
            assert!(
                keys(e)
                    .iter()
                    .all(|k| ["code", "message", "index", "opId", "localId"].contains(&k.as_str())),
                "{e}"
            );
            (
                e["index"].as_u64().expect("an index"),
                e["code"].as_str().expect("a code"),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (1, "invalid_request"),
            (3, "invalid_request"),
            (4, "invalid_request"),
            (5, "not_found"),
            (7, "conflict"),
            (8, "invalid_request"),
        ]
    );
    // The client matches failures by its own ids.
    assert_eq!(results[1]["localId"], "local_wrong_type", "{}", results[1]);
    assert_eq!(results[1]["action"], "create", "{}", results[1]);
    assert_eq!(errors[0]["localId"], "local_wrong_type");
    assert_eq!(errors[0]["opId"], "op-1");
    assert_eq!(results[3]["localId"], "local_unknown_action");
    assert_eq!(results[5]["localId"], "local_missing");
    assert_eq!(errors[3]["localId"], "local_missing");

    // The valid ones applied, in order; the bad ones left no trace.
    let one = api.document("default", "todos", "ok-1").await;
    assert_eq!(one["data"], json!({"title": "first", "done": true}));
    assert_eq!(one["version"], 2);
    let two = api.document("default", "todos", "ok-2").await;
    assert_eq!(two["data"], json!({"title": "second"}));
    assert_eq!(two["version"], 1);
    api.get_json("/v1/ns/default/todos/missing-doc")
        .await
        .assert_error(404, "not_found");
    let feed = api.get_json("/v1/changes").await.ok();
    let ops: Vec<(&str, &str)> = feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap_or(""),
                c["op"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        ops,
        [
            ("pre", "insert"),
            ("ok-1", "insert"),
            ("ok-1", "update"),
            ("ok-2", "insert")
        ]
    );
    let pre = api.document("default", "todos", "pre").await;
    assert_eq!(pre["version"], 1);
    assert_eq!(pre["data"], json!({"title": "before"}));
    // A failed operation is not remembered as applied: fixed, it applies.
    let retry = api
        .sync(json!({"operations": [
            {"opId": "op-5", "action": "upsert", "collection": "todos",
             "id": "missing-doc", "data": {"x": 1}}
        ]}))
        .await;
    assert_eq!(retry["results"][0]["status"], "success", "{retry}");
    server.shutdown().await;
}

#[tokio::test]
async fn bulk_sync_operations_belong_to_the_endpoint_collection() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let response = api
        .post_json(
            "/api/todos/bulk-sync",
            &json!({"operations": [
                {"action": "create", "localId": "l-1", "data": {"title": "here"}},
                {"action": "create", "collection": "todos", "localId": "l-2",
                 "data": {"title": "named"}},
                {"action": "create", "collection": "notes", "localId": "l-3",
                 "data": {"title": "elsewhere"}}
            ]}),
        )
        .await
        .ok();
    let statuses: Vec<&Value> = response["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| &r["status"])
        .collect();
    assert_eq!(statuses, ["success", "success", "error"], "{response}");
    assert_error_body(&response["results"][2]["error"], "invalid_request");
    assert_eq!(response["errors"][0]["localId"], "l-3");
    assert_eq!(response["errors"][0]["index"], 2);
    let notes = api.get_json("/v1/ns/default/notes").await.ok();
    assert_eq!(notes["documents"], json!([]));
    let todos = api.get_json("/v1/ns/default/todos").await.ok();
    assert_eq!(todos["documents"].as_array().map(Vec::len), Some(2));
    server.shutdown().await;
}
