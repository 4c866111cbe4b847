//! The WebSocket protocol end to end: real servers, real sockets.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sync_service::config::{AuthMode, DurabilityMode, JwtAlgorithm};
use sync_service::{Config, Server, ServerBuilder};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async};

struct Node {
    server: Server,
    _dir: TempDir,
}

impl Node {
    async fn start(tweak: impl FnOnce(&mut Config)) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("store"),
            durability: DurabilityMode::Os,
            compaction_interval_secs: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let server = ServerBuilder::new(config).start().await.unwrap();
        Node { server, _dir: dir }
    }

    fn ws_url(&self) -> String {
        format!("ws://{}/ws", self.server.local_addr())
    }

    async fn client(&self, device: &str) -> Client {
        Client::connect(&self.ws_url(), device).await
    }

    async fn bulk(&self, body: Value) -> Value {
        reqwest::Client::new()
            .post(format!("http://{}/v1/sync", self.server.local_addr()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

struct Client {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Client {
    async fn connect(url: &str, device: &str) -> Client {
        let (socket, _) = connect_async(url).await.unwrap();
        let mut client = Client { socket };
        client
            .send(json!({"type": "hello", "deviceId": device}))
            .await;
        let welcome = client.next().await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        assert!(
            welcome["heartbeatSecs"]
                .as_u64()
                .is_some_and(|secs| secs > 0),
            "{welcome}"
        );
        client
    }

    async fn send(&mut self, message: Value) {
        self.socket
            .send(Message::Text(message.to_string().into()))
            .await
            .unwrap();
    }

    /// The next JSON message (pings skipped), failing after 10 s.
    async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match frame.unwrap() {
                Message::Text(text) => return Some(serde_json::from_str(&text).unwrap()),
                Message::Close(frame) => {
                    return Some(
                        json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))}),
                    );
                }
                _ => continue,
            }
        }
    }

    async fn subscribe(&mut self, message: Value) -> Value {
        self.send(message).await;
        let subscribed = self.next().await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        subscribed
    }

    async fn insert(&mut self, id: &str, data: Value) -> Value {
        self.send(
            json!({"type": "insert", "collection": "todos", "recordId": id,
                         "opId": format!("op-{id}"), "data": data}),
        )
        .await;
        self.next().await
    }
}

#[tokio::test]
async fn an_insert_reaches_the_other_client_and_only_an_ack_comes_back() {
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
    let mut b = node.client("device-B").await;
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
    let node = Node::start(|_| {}).await;
    let mut b = node.client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    let mut a = node.client("device-A").await;
    let first = a.insert("t0", json!({"n": 0})).await;
    let seen = b.next().await;
    assert_eq!(seen["seq"], first["seq"]);
    let cursor = seen["cursor"].as_str().unwrap().to_owned();
    drop(b);

    let mut expected = Vec::new();
    for chunk in 0..2 {
        let operations: Vec<Value> = (0..100)
            .map(|i| {
                json!({"opId": format!("bulk-{chunk}-{i}"), "action": "upsert",
                       "collection": "todos", "id": format!("d{}", chunk * 100 + i),
                       "data": {"n": chunk * 100 + i}})
            })
            .collect();
        let response = node.bulk(json!({"operations": operations})).await;
        for result in response["results"].as_array().unwrap() {
            expected.push(result["seq"].as_u64().unwrap());
        }
    }
    // Writes to another collection are not part of the subscription.
    node.bulk(json!({"operations": [{"action": "create", "collection": "notes", "data": {}}]}))
        .await;

    let mut b = node.client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos", "cursor": cursor}))
        .await;
    let mut received = Vec::new();
    while received.len() < 200 {
        let change = b.next().await;
        assert_eq!(change["type"], "insert", "{change}");
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
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
    a.insert("t1", json!({"n": 1})).await;
    a.insert("t2", json!({"n": 2})).await;
    let mut b = node.client("device-B").await;
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
async fn a_slow_subscriber_is_told_to_resync_and_catches_up_with_nothing_missing() {
    let node = Node::start(|config| config.limits.send_queue_frames_max = 16).await;
    let mut slow = node.client("device-slow").await;
    let subscribed = slow
        .subscribe(json!({"type": "subscribe", "id": "all", "collection": "todos"}))
        .await;
    let mut start_cursor = subscribed["cursor"].as_str().unwrap().to_owned();
    // Enough data that the socket buffers fill while the client reads nothing.
    let padding = "x".repeat(8 * 1024);
    let total = 1_500;
    for chunk in 0..(total / 100) {
        let operations: Vec<Value> = (0..100)
            .map(|i| {
                json!({"opId": format!("slow-{chunk}-{i}"), "action": "upsert",
                       "collection": "todos", "id": format!("d{}", chunk * 100 + i),
                       "data": {"n": chunk * 100 + i, "padding": padding}})
            })
            .collect();
        node.bulk(json!({"operations": operations})).await;
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut resyncs = 0;
    while seen.len() < total {
        let message = slow.next().await;
        match message["type"].as_str().unwrap() {
            "insert" => {
                let seq = message["seq"].as_u64().unwrap();
                assert!(
                    seen.insert(seq) || resyncs > 0,
                    "seq {seq} twice without a resync"
                );
            }
            "resync" => {
                resyncs += 1;
                assert_eq!(message["id"], "all");
                start_cursor = message["cursor"].as_str().unwrap().to_owned();
                slow.subscribe(
                    json!({"type": "subscribe", "id": "all", "collection": "todos",
                                      "cursor": start_cursor}),
                )
                .await;
            }
            other => panic!("unexpected {other}: {message}"),
        }
    }
    assert!(
        resyncs >= 1,
        "the subscriber was never slow enough to resync"
    );
    assert_eq!(seen.len(), total);
    let _ = start_cursor;
}

#[tokio::test]
async fn filtered_subscriptions_see_documents_arrive_and_leave() {
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
    let mut b = node.client("device-B").await;
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
async fn bad_messages_get_errors_and_oversize_ones_close_with_1009() {
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
    for bad in [
        "{not json",
        r#"{"type": "explode"}"#,
        r#"{"type": "insert", "collection": "no spaces"}"#,
    ] {
        a.socket.send(Message::Text(bad.into())).await.unwrap();
        let error = a.next().await;
        assert_eq!(error["type"], "error", "{bad}: {error}");
        assert_eq!(error["code"], "invalid_request");
    }
    a.send(
        json!({"type": "update", "collection": "todos", "recordId": "missing",
                  "opId": "op-x", "data": {"a": 1}}),
    )
    .await;
    let missing = a.next().await;
    assert_eq!(
        (missing["code"].clone(), missing["opId"].clone()),
        (json!("not_found"), json!("op-x"))
    );
    a.send(json!({"type": "ping"})).await;
    assert_eq!(
        a.next().await["type"],
        "pong",
        "the connection stays usable"
    );

    let mut big = node.client("device-big").await;
    let oversize = format!(r#"{{"type":"ping","pad":"{}"}}"#, "x".repeat(1024 * 1024));
    big.socket
        .send(Message::Text(oversize.into()))
        .await
        .unwrap();
    let closed = big.next().await;
    assert_eq!(closed, json!({"type": "closed", "code": 1009}));

    let ack = a.insert("t1", json!({"n": 1})).await;
    assert_eq!(ack["type"], "ack", "others keep being served");
}

#[tokio::test]
async fn the_upgrade_needs_a_valid_token_and_namespaces_are_enforced() {
    let secret = "realtime-test-secret-0123456789";
    let node = Node::start(|config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.algorithm = JwtAlgorithm::HS256;
        config.auth.secret = Some(secret.into());
    })
    .await;
    let refused = connect_async(node.ws_url()).await.unwrap_err();
    assert!(refused.to_string().contains("401"), "{refused}");
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "ns": ["team-a"], "exp": 4_102_444_800u64}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let mut alice =
        Client::connect(&format!("{}?token={token}", node.ws_url()), "alice-phone").await;
    alice
        .send(json!({"type": "subscribe", "collection": "todos", "namespace": "team-b"}))
        .await;
    let error = alice.next().await;
    assert_eq!(
        (error["type"].clone(), error["code"].clone()),
        (json!("error"), json!("forbidden"))
    );
    alice
        .send(
            json!({"type": "insert", "collection": "todos", "namespace": "team-b",
                     "recordId": "x", "opId": "op-b", "data": {}}),
        )
        .await;
    assert_eq!(alice.next().await["code"], "forbidden");
    alice
        .subscribe(json!({"type": "subscribe", "collection": "todos", "namespace": "team-a"}))
        .await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
    let Node { server, _dir } = node;
    let stopping = tokio::spawn(server.shutdown());
    assert_eq!(a.next().await, json!({"type": "closed", "code": 1001}));
    stopping.await.unwrap().unwrap();
}

#[tokio::test]
async fn connections_per_user_are_limited_and_freed_on_close() {
    let node = Node::start(|config| config.limits.connections_per_user_max = 1).await;
    let first = node.client("device-A").await;
    let refused = connect_async(node.ws_url()).await.unwrap_err();
    assert!(refused.to_string().contains("429"), "{refused}");
    drop(first);
    // The slot comes back once the server has seen the close.
    let mut reconnected = None;
    for _ in 0..50 {
        if let Ok((socket, _)) = connect_async(node.ws_url()).await {
            reconnected = Some(socket);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        reconnected.is_some(),
        "the closed connection's slot was not freed"
    );
}

#[tokio::test]
async fn writes_sent_without_waiting_are_applied_in_order_and_acked_in_order() {
    let node = Node::start(|_| {}).await;
    let mut a = node.client("device-A").await;
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
    let document: Value = reqwest::get(format!(
        "http://{}/v1/ns/default/todos/counter",
        node.server.local_addr()
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(document["data"]["n"], 49);
}

#[tokio::test]
async fn the_subscription_past_the_limit_is_refused() {
    let node = Node::start(|config| config.limits.subscriptions_per_connection_max = 3).await;
    let mut a = node.client("device-A").await;
    for n in 0..3 {
        a.subscribe(json!({"type": "subscribe", "id": format!("s{n}"), "collection": "todos"}))
            .await;
    }
    a.send(json!({"type": "subscribe", "id": "s3", "collection": "todos"}))
        .await;
    let refused = a.next().await;
    assert_eq!(
        (refused["type"].clone(), refused["code"].clone()),
        (json!("error"), json!("too_large"))
    );
    // Replacing an existing subscription is not a new one.
    a.subscribe(json!({"type": "subscribe", "id": "s0", "collection": "notes"}))
        .await;
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let node = Node::start(|config| config.limits.idle_timeout_secs = 1).await;
    let mut a = node.client("device-A").await;
    let started = std::time::Instant::now();
    assert_eq!(a.next().await, json!({"type": "closed", "code": 1000}));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn an_expired_token_closes_its_socket_within_a_heartbeat() {
    let secret = "realtime-test-secret-0123456789";
    let node = Node::start(|config| {
        config.auth.mode = AuthMode::Jwt;
        config.auth.algorithm = JwtAlgorithm::HS256;
        config.auth.secret = Some(secret.into());
        config.heartbeat_secs = 1;
    })
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // Valid for two more seconds (the server allows 5 s of leeway at the
    // upgrade, so it is still accepted then).
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "alice", "ns": "*", "exp": now + 2}),
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap();
    let mut alice =
        Client::connect(&format!("{}?token={token}", node.ws_url()), "alice-phone").await;
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
