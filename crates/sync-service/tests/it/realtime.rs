//! The WebSocket protocol end to end: real servers, real sockets. Its
//! limits (message size, subscriptions, connections, rates, heartbeats,
//! slow consumers) are in `limits.rs`, its access rules in `auth.rs`.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Credential, TestServer, WsClient, now_secs, token};

#[tokio::test]
async fn an_insert_reaches_the_other_client_and_only_an_ack_comes_back() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    let mut b = server.ws_client("device-B").await;
    a.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;

    let ack = a
        .insert("t1", json!({"text": "Buy milk", "done": false}))
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    assert_eq!(
        (ack["status"].clone(), ack["version"].clone()),
        (json!("success"), json!(1))
    );
    let change = b.next().await;
    assert_eq!(change["type"], "insert", "{change}");
    assert_eq!(change["recordId"], "t1");
    assert_eq!(change["namespace"], "default");
    assert_eq!(change["data"], json!({"text": "Buy milk", "done": false}));
    assert_eq!(change["delta"], json!({"text": "Buy milk", "done": false}));
    assert_eq!(change["version"], 1);
    assert_eq!(change["seq"], ack["seq"]);
    assert_eq!(change["cursor"], ack["cursor"]);
    assert_eq!(
        change["origin"],
        json!({"deviceId": "device-A", "opId": "op-t1"})
    );

    a.send(
        json!({"type": "update", "collection": "todos", "recordId": "t1",
                  "opId": "op-t1-done", "baseVersion": 1, "data": {"done": true}}),
    )
    .await;
    let ack = a.next().await;
    assert_eq!(
        (ack["type"].clone(), ack["version"].clone()),
        (json!("ack"), json!(2))
    );
    let change = b.next().await;
    assert_eq!(change["type"], "update");
    assert_eq!(change["delta"], json!({"done": true}));
    assert_eq!(change["data"], json!({"text": "Buy milk", "done": true}));

    // No echo: A hears nothing more.
    a.send(json!({"type": "ping"})).await;
    assert_eq!(a.next().await["type"], "pong");
}

#[tokio::test]
async fn a_resumed_subscription_gets_exactly_the_changes_it_missed() {
    let server = TestServer::start(|_| {}).await;
    let mut b = server.ws_client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    let mut a = server.ws_client("device-A").await;
    let first = a.insert("t0", json!({"n": 0})).await;
    let seen = b.next().await;
    assert_eq!(seen["seq"], first["seq"]);
    let cursor = seen["cursor"].as_str().unwrap().to_owned();
    drop(b);

    // More than a catch-up page and a long page after it, so the pages
    // encoded apart and the short one at the end are all in order.
    let mut expected = Vec::new();
    for chunk in 0..12 {
        let operations: Vec<Value> = (0..100)
            .map(|i| {
                json!({"opId": format!("bulk-{chunk}-{i}"), "action": "upsert",
                       "collection": "todos", "id": format!("d{}", chunk * 100 + i),
                       "data": {"n": chunk * 100 + i}})
            })
            .collect();
        let response = server
            .session(None)
            .sync(json!({"operations": operations}))
            .await;
        for result in response["results"].as_array().unwrap() {
            expected.push(result["seq"].as_u64().unwrap());
        }
    }
    // Writes to another collection are not part of the subscription.
    server
        .session(None)
        .sync(json!({"operations": [{"action": "create", "collection": "notes", "data": {}}]}))
        .await;

    let mut b = server.ws_client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos", "cursor": cursor}))
        .await;
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let change = b.next().await;
        assert_eq!(change["type"], "insert", "{change}");
        assert_eq!(change["data"]["n"], received.len(), "{change}");
        assert_eq!(change["delta"], change["data"], "{change}");
        received.push(change["seq"].as_u64().unwrap());
    }
    assert_eq!(received, expected);
    assert_eq!(
        b.try_next(Duration::from_millis(300)).await,
        None,
        "nothing doubled"
    );
    // And the stream continues live.
    let live = a.insert("after", json!({"n": -1})).await;
    assert_eq!(b.next().await["seq"], live["seq"]);
}

#[tokio::test]
async fn a_subscription_without_cursor_starts_with_the_current_documents() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    a.insert("t1", json!({"n": 1})).await;
    a.insert("t2", json!({"n": 2})).await;
    let mut b = server.ws_client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    let mut ids = vec![b.next().await, b.next().await]
        .into_iter()
        .map(|m| {
            assert_eq!(m["type"], "insert");
            m["recordId"].as_str().unwrap().to_owned()
        })
        .collect::<Vec<_>>();
    ids.sort();
    assert_eq!(ids, ["t1", "t2"]);
    assert_eq!(b.try_next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn filtered_subscriptions_see_documents_arrive_and_leave() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    let mut b = server.ws_client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos", "where": {"done": false}}))
        .await;
    a.insert("open", json!({"text": "a", "done": false})).await;
    a.insert("closed", json!({"text": "b", "done": true})).await;
    let arrived = b.next().await;
    assert_eq!(
        (arrived["type"].clone(), arrived["recordId"].clone()),
        (json!("insert"), json!("open"))
    );

    let update = |id: &str, op: &str, data: Value| json!({"type": "update", "collection": "todos", "recordId": id, "opId": op, "data": data});
    a.send(update("open", "op-close", json!({"done": true})))
        .await;
    a.next().await;
    let left = b.next().await;
    assert_eq!(left["type"], "update", "{left}");
    assert_eq!(left["matches"], false);
    assert_eq!(left["recordId"], "open");
    a.send(update("open", "op-edit", json!({"text": "still closed"})))
        .await;
    a.next().await;
    a.send(update("closed", "op-reopen", json!({"done": false})))
        .await;
    a.next().await;
    let came = b.next().await;
    assert_eq!(
        (came["type"].clone(), came["recordId"].clone()),
        (json!("insert"), json!("closed"))
    );
    assert_eq!(b.try_next(Duration::from_millis(300)).await, None);
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_stays() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    for bad in [
        "{not json",
        r#"{"type": "explode"}"#,
        r#"{"type": "insert", "collection": "no spaces"}"#,
    ] {
        a.send_text(bad).await;
        let error = a.next().await;
        assert_eq!(error["type"], "error", "{bad}: {error}");
        assert_eq!(error["code"], "invalid_request");
    }
    let missing = a
        .request(
            json!({"type": "update", "collection": "todos", "recordId": "missing",
                   "opId": "op-x", "data": {"a": 1}}),
        )
        .await;
    assert_eq!(
        (missing["code"].clone(), missing["opId"].clone()),
        (json!("not_found"), json!("op-x"))
    );
    a.assert_answers().await;
    let ack = a.insert("t1", json!({"n": 1})).await;
    assert_eq!(ack["type"], "ack", "the connection stays usable");
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(a.next().await, json!({"type": "closed", "code": 1001}));
    stopping.await.unwrap();
}

#[tokio::test]
async fn writes_sent_without_waiting_are_applied_in_order_and_acked_in_order() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    for n in 0..50 {
        a.send(
            json!({"type": "update", "collection": "todos", "recordId": "counter",
                      "opId": format!("op-{n}"), "data": {"n": n}}),
        )
        .await;
        if n == 0 {
            // The first one creates the document.
            let error = a.next().await;
            assert_eq!(error["code"], "not_found", "{error}");
            a.insert("counter", json!({"n": 0})).await;
        }
    }
    let mut versions = Vec::new();
    for n in 1..50 {
        let ack = a.next().await;
        assert_eq!(ack["type"], "ack", "{ack}");
        assert_eq!(ack["opId"], format!("op-{n}"));
        versions.push(ack["version"].as_u64().unwrap());
    }
    // Version 1 is the insert; every update after it in order. The final
    // document has the last value.
    assert_eq!(versions, (2..=50).collect::<Vec<u64>>());
    let document = server
        .session(None)
        .document("default", "todos", "counter")
        .await;
    assert_eq!(document["data"]["n"], 49);
}

#[tokio::test]
async fn an_expired_token_closes_its_socket_within_a_heartbeat() {
    let server = TestServer::start_jwt_with(|config| config.heartbeat_secs = 1).await;
    // Valid for two more seconds (the server allows 5 s of leeway at the
    // upgrade, so it is still accepted then).
    let token = token(json!({"sub": "alice", "ns": "*", "exp": now_secs() + 2}));
    let mut alice =
        WsClient::connect(server.addr(), Credential::Query(&token), "alice-phone").await;
    let started = std::time::Instant::now();
    loop {
        // Keep the connection busy so only the expiry can end it.
        alice.send(json!({"type": "ping"})).await;
        match alice.try_next(Duration::from_millis(500)).await {
            Some(message) if message["type"] == "closed" => {
                assert_eq!(message["code"], 1008);
                break;
            }
            _ => assert!(started.elapsed() < Duration::from_secs(6), "never closed"),
        }
    }
}
