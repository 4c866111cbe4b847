//! Authentication and access in `jwt` mode (SPEC section 6): bad tokens
//! are refused with 401, a token sees nothing of a namespace it was not
//! granted (403, or simply absent from lists), read-only namespaces refuse
//! writes, operator endpoints need `admin`, and a device belongs to the
//! user who registered it.

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    Session, TestServer, assert_error_body, now_secs, send, token, token_signed_with,
    unsigned_token,
};

fn admin() -> String {
    token(json!({"sub": "ops", "ns": ["*"], "admin": true}))
}

fn alice() -> String {
    token(json!({"sub": "alice", "ns": ["a"], "ro": ["pub"]}))
}

fn bob() -> String {
    // A single namespace may be a string.
    token(json!({"sub": "bob", "ns": "b"}))
}

/// A pending conflict on `ns/notes/id`, made by two devices of the admin.
async fn pending_conflict(api: &Session<'_>, ns: &str, id: &str) -> String {
    api.create(ns, "notes", id, json!({"title": "v1"}), "ops-1")
        .await;
    for (device, title) in [("ops-2", "online"), ("ops-1", "offline")] {
        api.sync(json!({
            "deviceId": device, "strategy": "manual",
            "operations": [{"action": "update", "namespace": ns, "collection": "notes",
                            "id": id, "baseVersion": 1, "data": {"title": title}}]
        }))
        .await;
    }
    let conflicts = api
        .get_json(&format!("/v1/conflicts?status=pending&namespace={ns}"))
        .await
        .ok();
    let conflict = &conflicts["conflicts"][0];
    assert_eq!(conflict["serverId"], id, "{conflicts}");
    conflict["id"].as_str().expect("a conflict id").to_owned()
}

/// The `(namespace, id)` of each change in a feed.
fn seen(feed: &Value) -> Vec<(String, String)> {
    feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["namespace"].as_str().unwrap_or_default().to_owned(),
                c["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn bad_credentials_are_refused() {
    let server = TestServer::start_jwt().await;
    let claims = || json!({"sub": "alice", "ns": ["a"]});
    let expired = token(json!({"sub": "alice", "ns": ["a"], "exp": now_secs() - 3_600}));
    let wrong_key = token_signed_with(claims(), "another-secret-of-enough-length");
    let unsigned = unsigned_token(claims());
    // `exp` is required: a token without it would never expire.
    let no_exp = token(json!({"sub": "alice", "ns": ["a"], "exp": null}));
    let altered = {
        let mut parts: Vec<String> = token(claims()).split('.').map(str::to_owned).collect();
        parts[1] = unsigned_token(json!({"sub": "alice", "ns": ["*"], "admin": true}))
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        parts.join(".")
    };
    let paths = [
        (Method::GET, "/v1/changes"),
        (Method::GET, "/v1/ns/a/notes"),
        (Method::POST, "/v1/sync"),
        (Method::POST, "/api/notes/bulk-sync"),
        (Method::GET, "/v1/conflicts"),
        (Method::GET, "/v1/devices"),
    ];
    let bearer = |t: &str| format!("Bearer {t}");
    let credentials: Vec<(&str, Option<String>)> = vec![
        ("no token", None),
        ("an expired token", Some(bearer(&expired))),
        ("a token signed with another key", Some(bearer(&wrong_key))),
        ("an unsigned token (alg none)", Some(bearer(&unsigned))),
        ("a token without exp", Some(bearer(&no_exp))),
        ("a token whose claims were altered", Some(bearer(&altered))),
        ("not a token", Some(bearer("not.a.token"))),
        (
            "basic credentials",
            Some("Basic YWxpY2U6c2VjcmV0".to_owned()),
        ),
    ];
    for (method, path) in &paths {
        for (what, header) in &credentials {
            let mut request = server.request(method.clone(), path);
            if let Some(header) = header {
                request = request.header("authorization", header);
            }
            if *method == Method::POST {
                request = request.json(&json!({"operations": []}));
            }
            let reply = send(request).await;
            assert_eq!(reply.status, 401, "{what} on {path}: {}", reply.body);
            assert_error_body(&reply.body["error"], "unauthorized");
        }
    }
    let reply = server.session(Some(&no_exp)).get_json("/v1/changes").await;
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("claim is missing"), "{message}");
    // The token in the query, for clients that cannot set headers.
    let query = format!("/v1/ns/a/notes?token={}", alice());
    let list = server.get_json(&query).await.ok();
    assert_eq!(list["documents"], json!([]));
    server
        .get_json(&format!("/v1/ns/a/notes?token={expired}"))
        .await
        .assert_error(401, "unauthorized");
    // A good header wins over a bad query token, and liveness needs none.
    let reply = server
        .session(Some(&alice()))
        .get_json("/v1/ns/a/notes?token=garbage")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(server.get_json("/health").await.ok()["status"], "ok");
    assert_eq!(server.get_json("/ready").await.ok()["status"], "ready");
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_sees_nothing_of_a_namespace_it_was_not_granted() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    let ops = server.session(Some(&admin));
    let a_conflict = pending_conflict(&ops, "a", "a-doc").await;
    let b_conflict = pending_conflict(&ops, "b", "b-doc").await;
    ops.create("pub", "notes", "p-doc", json!({"title": "news"}), "ops-1")
        .await;
    let api = server.session(Some(&alice));

    // Writes in b fail, each alone.
    for (path, mine) in [("/v1/sync", "mine-1"), ("/api/notes/bulk-sync", "mine-2")] {
        let response = api
            .post_json(
                path,
                &json!({"operations": [
                    {"action": "create", "namespace": "b", "collection": "notes",
                     "id": "intruder", "localId": "local-intruder", "data": {"x": 1}},
                    {"action": "create", "namespace": "a", "collection": "notes",
                     "id": mine, "data": {"x": 1}}
                ]}),
            )
            .await
            .ok();
        assert_eq!(response["success"], false, "{path}: {response}");
        assert_eq!(response["results"][0]["status"], "error");
        assert_error_body(&response["results"][0]["error"], "forbidden");
        assert_eq!(response["errors"][0]["code"], "forbidden");
        assert_eq!(response["errors"][0]["index"], 0);
        assert_eq!(response["errors"][0]["localId"], "local-intruder");
        assert_eq!(response["results"][0]["serverId"], "intruder");
        assert_eq!(
            response["results"][1]["status"], "success",
            "{path}: {response}"
        );
    }
    ops.get_json("/v1/ns/b/notes/intruder")
        .await
        .assert_error(404, "not_found");

    // Pulls of b are refused, and a refused pull applies nothing.
    api.post_json(
        "/v1/sync",
        &json!({"pull": true, "namespaces": ["b"], "operations": []}),
    )
    .await
    .assert_error(403, "forbidden");
    let head = api.head().await;
    api.post_json(
        "/api/notes/bulk-sync",
        &json!({"pull": true, "namespace": "b",
                "operations": [{"action": "create", "namespace": "a", "id": "sneaky",
                                "data": {"x": 1}}]}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(api.head().await, head, "a refused request wrote");
    api.get_json("/v1/ns/a/notes/sneaky")
        .await
        .assert_error(404, "not_found");

    // Every read of b.
    for path in [
        "/v1/ns/b/notes",
        "/v1/ns/b/notes/b-doc",
        "/v1/ns/b/notes/b-doc/history",
        "/v1/ns/b/notes/b-doc/versions/1",
        "/v1/ns/b/notes/missing",
        "/v1/changes?namespace=b",
        "/v1/changes?namespace=a,b",
        "/v1/conflicts?namespace=b",
    ] {
        api.get_json(path).await.assert_error(403, "forbidden");
    }
    api.post_json("/v1/ns/b/notes/b-doc/restore/1", &json!({}))
        .await
        .assert_error(403, "forbidden");
    // Its conflicts do not exist for alice.
    api.get_json(&format!("/v1/conflicts/{b_conflict}"))
        .await
        .assert_error(404, "not_found");
    api.post_json(
        &format!("/v1/conflicts/{b_conflict}/resolve"),
        &json!({"strategy": "server_wins"}),
    )
    .await
    .assert_error(404, "not_found");
    let conflicts = api.get_json("/v1/conflicts").await.ok();
    let ids: Vec<&Value> = conflicts["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&json!(a_conflict)]);
    // The feed and pulls without a namespace show only a and pub.
    let namespaces_seen = |feed: &Value| {
        let mut namespaces: Vec<String> = seen(feed).into_iter().map(|(ns, _)| ns).collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    };
    let feed = api.get_json("/v1/changes").await.ok();
    assert_eq!(namespaces_seen(&feed), ["a", "pub"], "{feed}");
    assert_eq!(
        seen(&feed).len(),
        2 + 1 + 2,
        "a-doc's 2 versions, p-doc, mine-1 and -2"
    );
    let pull = api.sync(json!({"pull": true, "operations": []})).await;
    assert_eq!(seen(&pull), seen(&feed));
    // The admin still sees b, and b is unchanged.
    let b_doc = ops.document("b", "notes", "b-doc").await;
    assert_eq!(b_doc["version"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn read_only_namespaces_can_be_read_but_not_written() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    let ops = server.session(Some(&admin));
    let conflict = pending_conflict(&ops, "pub", "p-doc").await;
    let api = server.session(Some(&alice));
    let list = api.get_json("/v1/ns/pub/notes").await.ok();
    assert_eq!(list["documents"][0]["id"], "p-doc");
    assert_eq!(api.document("pub", "notes", "p-doc").await["version"], 2);
    for path in [
        "/v1/ns/pub/notes/p-doc/history",
        "/v1/ns/pub/notes/p-doc/versions/1",
        "/v1/changes?namespace=pub",
        "/v1/conflicts?namespace=pub",
    ] {
        let reply = api.get_json(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let pull = api
        .sync(json!({"pull": true, "namespaces": ["pub"], "operations": []}))
        .await;
    assert_eq!(pull["changes"].as_array().map(Vec::len), Some(2));
    api.get_json(&format!("/v1/conflicts/{conflict}"))
        .await
        .ok();

    let head = api.head().await;
    let write = api
        .sync(json!({"operations": [
            {"action": "update", "namespace": "pub", "collection": "notes", "id": "p-doc",
             "data": {"title": "mine now"}}
        ]}))
        .await;
    assert_eq!(write["results"][0]["status"], "error", "{write}");
    let error = &write["results"][0]["error"];
    assert_error_body(error, "forbidden");
    assert!(
        error["message"]
            .as_str()
            .unwrap_or("")
            .contains("read-only"),
        "{error}"
    );
    api.post_json("/v1/ns/pub/notes/p-doc/restore/1", &json!({}))
        .await
        .assert_error(403, "forbidden");
    api.post_json(
        &format!("/v1/conflicts/{conflict}/resolve"),
        &json!({"strategy": "client_wins"}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(api.head().await, head);
    let p_doc = ops.document("pub", "notes", "p-doc").await;
    assert_eq!(p_doc["data"], json!({"title": "online"}));
    server.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints_need_an_admin_token() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    for path in [
        "/v1/stats",
        "/metrics",
        "/v1/devices?user=bob",
        "/v1/stats/devices?user=bob",
    ] {
        server
            .session(Some(&alice))
            .get_json(path)
            .await
            .assert_error(403, "forbidden");
        let reply = server.session(Some(&admin)).get_json(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let own = server
        .session(Some(&alice))
        .get_json("/v1/stats/devices")
        .await
        .ok();
    assert_eq!(own, json!({"devices": []}));
    server.shutdown().await;
}

#[tokio::test]
async fn a_device_belongs_to_the_user_who_registered_it() {
    let server = TestServer::start_jwt().await;
    let (alice_token, bob_token) = (alice(), bob());
    let (alice, bob) = (
        server.session(Some(&alice_token)),
        server.session(Some(&bob_token)),
    );
    let registered = alice
        .post_json(
            "/v1/devices",
            &json!({"deviceId": "alice-phone", "name": "Alice's iPhone"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    // First seen in a sync: registered to alice as well.
    alice
        .sync(json!({"deviceId": "alice-laptop", "operations": []}))
        .await;

    let head = bob.head().await;
    for device in ["alice-phone", "alice-laptop"] {
        bob.post_json(
            "/v1/sync",
            &json!({"deviceId": device, "operations": [
                {"action": "create", "namespace": "b", "collection": "notes", "id": "x",
                 "data": {"x": 1}}
            ]}),
        )
        .await
        .assert_error(403, "forbidden");
        bob.post_json(
            "/api/notes/bulk-sync",
            &json!({"deviceId": device, "namespace": "b", "pull": true, "operations": []}),
        )
        .await
        .assert_error(403, "forbidden");
        bob.get_json(&format!("/v1/changes?deviceId={device}"))
            .await
            .assert_error(403, "forbidden");
        bob.post_json("/v1/devices", &json!({"deviceId": device, "name": "mine"}))
            .await
            .assert_error(403, "forbidden");
        bob.delete(&format!("/v1/devices/{device}"))
            .await
            .assert_error(404, "not_found");
    }
    assert_eq!(bob.head().await, head);
    let bobs = bob.get_json("/v1/devices").await.ok();
    assert_eq!(bobs, json!({"devices": []}));
    let alices = alice.get_json("/v1/devices").await.ok();
    let mut ids: Vec<&str> = alices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["deviceId"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice-laptop", "alice-phone"]);
    let phone = alices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["deviceId"] == "alice-phone")
        .cloned()
        .expect("alice-phone");
    assert_eq!(phone["name"], "Alice's iPhone", "bob renamed it");
    assert_eq!(phone["user"], "alice");
    server.shutdown().await;
}
