//! Documents through the read API: one document with its metadata, lists
//! with `where` and pagination, history, a past version, and restore of a
//! version as a new change.

use serde_json::{Value, json};

use crate::support::{TestServer, keys};

#[tokio::test]
async fn history_versions_and_restore() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let edits = [
        json!({"title": "Buy milk", "done": false}),
        json!({"done": true}),
        json!({"title": "Buy oat milk", "note": "2 l"}),
        json!({"note": null}),
    ];
    for (index, data) in edits.iter().enumerate() {
        let action = if index == 0 { "create" } else { "update" };
        let mut op = json!({"opId": format!("op-{}", index + 1), "action": action,
                            "collection": "todos", "id": "t1", "data": data});
        if index > 0 {
            op["baseVersion"] = json!(index);
        }
        let response = api
            .sync(json!({"deviceId": "phone", "operations": [op]}))
            .await;
        assert_eq!(response["results"][0]["status"], "success", "{response}");
        assert_eq!(response["results"][0]["version"], index + 1);
    }
    let doc = api.document("default", "todos", "t1").await;
    assert_eq!(
        keys(&doc),
        [
            "collection",
            "data",
            "deleted",
            "id",
            "namespace",
            "seq",
            "updatedAt",
            "version"
        ]
    );
    assert_eq!(doc["data"], json!({"title": "Buy oat milk", "done": true}));
    assert_eq!(
        [
            &doc["id"],
            &doc["namespace"],
            &doc["collection"],
            &doc["version"],
            &doc["seq"],
            &doc["deleted"]
        ],
        [
            &json!("t1"),
            &json!("default"),
            &json!("todos"),
            &json!(4),
            &json!(4),
            &json!(false)
        ]
    );
    assert!(doc["updatedAt"].is_string(), "{doc}");

    let history = api.get_json("/v1/ns/default/todos/t1/history").await.ok();
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 4);
    for (index, entry) in versions.iter().enumerate() {
        assert_eq!(
            keys(entry),
            [
                "delta",
                "deviceId",
                "op",
                "opId",
                "seq",
                "timestamp",
                "user",
                "version"
            ]
        );
        assert_eq!(entry["version"], index + 1);
        assert_eq!(entry["seq"], index + 1);
        assert_eq!(entry["op"], if index == 0 { "insert" } else { "update" });
        assert_eq!(entry["delta"], edits[index], "version {}", index + 1);
        assert_eq!(entry["opId"], format!("op-{}", index + 1));
        assert_eq!(entry["deviceId"], "phone");
        assert_eq!(entry["user"], "anonymous");
    }
    for (version, data) in [
        (1, json!({"title": "Buy milk", "done": false})),
        (2, json!({"title": "Buy milk", "done": true})),
        (
            3,
            json!({"title": "Buy oat milk", "done": true, "note": "2 l"}),
        ),
        (4, json!({"title": "Buy oat milk", "done": true})),
    ] {
        let old = api
            .get_json(&format!("/v1/ns/default/todos/t1/versions/{version}"))
            .await
            .ok();
        assert_eq!(old["data"], data, "version {version}");
        assert_eq!(old["version"], version);
        assert_eq!(old["deleted"], false);
    }
    api.get_json("/v1/ns/default/todos/t1/versions/5")
        .await
        .assert_error(404, "not_found");

    // Restore is a new change, in the history and the feed.
    let head = api.head().await;
    let restored = api
        .post_json("/v1/ns/default/todos/t1/restore/1", &json!({}))
        .await
        .ok();
    assert_eq!(restored["version"], 5);
    assert_eq!(
        restored["data"],
        json!({"title": "Buy milk", "done": false})
    );
    assert_eq!(api.document("default", "todos", "t1").await, restored);
    let feed = api
        .get_json(&format!("/v1/changes?cursor={head}"))
        .await
        .ok();
    let change = &feed["changes"][0];
    assert_eq!(change["op"], "update");
    assert_eq!(change["version"], 5);
    assert_eq!(change["delta"], json!({"title": "Buy milk", "done": false}));
    assert_eq!(change["data"], restored["data"]);

    // A deleted document keeps its history and can be brought back.
    let deleted = api
        .sync(
            json!({"operations": [{"action": "delete", "collection": "todos", "id": "t1",
                                     "baseVersion": 5}]}),
        )
        .await;
    assert_eq!(deleted["results"][0]["version"], 6, "{deleted}");
    let tombstone = api.document("default", "todos", "t1").await;
    assert_eq!(
        [
            &tombstone["deleted"],
            &tombstone["data"],
            &tombstone["version"]
        ],
        [&json!(true), &json!({}), &json!(6)]
    );
    // Lists show live documents only.
    let list = api.get_json("/v1/ns/default/todos").await.ok();
    assert_eq!(list, json!({"documents": [], "next": null}));
    let back = api
        .post_json("/v1/ns/default/todos/t1/restore/3", &json!({}))
        .await
        .ok();
    assert_eq!(back["version"], 7);
    assert_eq!(back["deleted"], false);
    assert_eq!(
        back["data"],
        json!({"title": "Buy oat milk", "done": true, "note": "2 l"})
    );
    let history = api.get_json("/v1/ns/default/todos/t1/history").await.ok();
    let ops: Vec<&Value> = history["versions"]
        .as_array()
        .expect("versions")
        .iter()
        .map(|v| &v["op"])
        .collect();
    assert_eq!(
        ops,
        [
            "insert", "update", "update", "update", "update", "delete", "insert"
        ]
    );
    for path in [
        "/v1/ns/default/todos/nobody/history",
        "/v1/ns/default/todos/nobody/versions/1",
    ] {
        api.get_json(path).await.assert_error(404, "not_found");
    }
    api.post_json("/v1/ns/default/todos/nobody/restore/1", &json!({}))
        .await
        .assert_error(404, "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn lists_filter_and_paginate() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let operations: Vec<Value> = (0..7)
        .map(|i| {
            json!({"action": "create", "collection": "todos", "id": format!("t-{i}"),
                   "data": {"n": i, "done": i % 2 == 0, "room": if i < 3 { "r42" } else { "r7" }}})
        })
        .collect();
    let created = api.sync(json!({"operations": operations})).await;
    assert_eq!(created["success"], true);
    api.create("default", "notes", "elsewhere", json!({"done": false}), "d")
        .await;
    api.create("other", "todos", "elsewhere", json!({"done": false}), "d")
        .await;
    let ids = |list: &Value| -> Vec<String> {
        list["documents"]
            .as_array()
            .expect("documents")
            .iter()
            .map(|d| d["id"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    for (query, expected) in [
        ("", vec![0, 1, 2, 3, 4, 5, 6]),
        ("?where=done:false", vec![1, 3, 5]),
        ("?where=done:true&where=room:r42", vec![0, 2]),
        ("?where=n:3", vec![3]),
        ("?where=room:%22r42%22", vec![0, 1, 2]),
        // A JSON scalar is read as JSON: 42 is a number, not "r42".
        ("?where=room:42", vec![]),
        ("?where=missing:null", vec![0, 1, 2, 3, 4, 5, 6]),
        ("?where=n:99", vec![]),
    ] {
        let list = api
            .get_json(&format!("/v1/ns/default/todos{query}"))
            .await
            .ok();
        let expected: Vec<String> = expected.iter().map(|i| format!("t-{i}")).collect();
        assert_eq!(ids(&list), expected, "{query}");
        assert_eq!(list["next"], Value::Null, "{query}");
    }
    // Pages of 3, following `next`.
    let mut seen = Vec::new();
    let mut after: Option<String> = None;
    for _ in 0..5 {
        let query = match &after {
            Some(after) => format!("?limit=3&after={after}"),
            None => "?limit=3".to_owned(),
        };
        let page = api
            .get_json(&format!("/v1/ns/default/todos{query}"))
            .await
            .ok();
        let page_ids = ids(&page);
        assert!(page_ids.len() <= 3);
        seen.extend(page_ids);
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    let all: Vec<String> = (0..7).map(|i| format!("t-{i}")).collect();
    assert_eq!(seen, all);
    let page = api
        .get_json("/v1/ns/default/todos?limit=2&where=done:true")
        .await
        .ok();
    assert_eq!(ids(&page), ["t-0", "t-2"]);
    assert_eq!(page["next"], "t-2");
    server.shutdown().await;
}
