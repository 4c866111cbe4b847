//! The limits of `docs/protocol.md` end to end, each with its error:
//! message size (1009), document size, subscriptions per connection,
//! connections per user, operations per second (429 with `Retry-After`),
//! missed heartbeats, the idle timeout, and the bounded send queue of a
//! subscriber that does not read (`resync`, never a silent drop). Each test
//! also checks that the server is still up and that a bystander is still
//! served. Request bodies (size, gzip, depth, operations per request) are
//! in `bad_input.rs`.

// The tests report what they measured on stderr (`--nocapture` shows it).
#![allow(clippy::print_stderr)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use sync_testkit::ws::{OP_CLOSE, OP_PING, RawEvent, RawWs, close_code, ws_fragments};

use crate::support::{Credential, TestServer, WsClient, memory_kib, send, token, upgrade_request};

const MIB: usize = 1024 * 1024;

/// Checks that the server is up and still serves `bystander`: its ping is
/// answered and its write (`bystanders/<id>`) acknowledged.
async fn still_serving(server: &TestServer, bystander: &mut WsClient, id: &str) {
    let health = server.get_json("/health").await.ok();
    assert_eq!(health, json!({"status": "ok"}));
    bystander.assert_answers().await;
    let ack = bystander
        .request(
            json!({"type": "insert", "collection": "bystanders", "recordId": id,
                        "opId": format!("op-{id}"), "data": {}}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
}

/// The ids of the documents changed after `cursor`.
async fn changed_since(server: &TestServer, cursor: &str) -> Vec<String> {
    let feed = server
        .get_json(&format!("/v1/changes?cursor={cursor}"))
        .await
        .ok();
    feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|change| change["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// An `insert` of `todos/<id>` with a small document, padded with a field
/// the server ignores to exactly `size` bytes: without the size limit it
/// would be applied.
fn padded_insert(id: &str, size: usize) -> Vec<u8> {
    let message = |pad: &str| {
        format!(
            r#"{{"type":"insert","collection":"todos","recordId":"{id}","opId":"op-{id}","data":{{"n":1}},"pad":"{pad}"}}"#
        )
    };
    let pad = "x".repeat(size - message("").len());
    message(&pad).into_bytes()
}

#[tokio::test]
async fn an_oversize_websocket_message_closes_only_its_connection_with_1009() {
    let server = TestServer::start(|_| {}).await;
    let mut bystander = server.ws_client("bystander").await;
    let head = server.session(None).head().await;

    // A document over its limit in a message within its own: an error for
    // that write alone, and the connection stays.
    let document = bystander
        .request(
            json!({"type": "insert", "collection": "todos", "recordId": "doc-big",
                   "opId": "op-doc-big", "data": {"pad": "d".repeat(300 * 1024)}}),
        )
        .await;
    assert_eq!(
        (&document["type"], &document["code"], &document["opId"]),
        (&json!("error"), &json!("too_large"), &json!("op-doc-big")),
        "{document}"
    );
    bystander.assert_answers().await;

    // (case, message size, fragment size, whether it is accepted)
    let cases = [
        ("exactly 1 MiB in one frame", MIB, MIB, true),
        ("exactly 1 MiB in 64 frames", MIB, MIB / 64, true),
        ("1 MiB + 1 in one frame", MIB + 1, MIB + 1, false),
        ("1 MiB + 1 in 17 frames", MIB + 1, MIB / 16, false),
        ("1 MiB + 1 in 257 frames of 4 KiB", MIB + 1, 4 * 1024, false),
        ("4 MiB in frames of 64 KiB", 4 * MIB, 64 * 1024, false),
    ];
    let mut accepted = Vec::new();
    for (n, (case, size, fragment, ok)) in cases.into_iter().enumerate() {
        let id = format!("msg-{n}");
        let mut raw = RawWs::connect(server.addr(), &format!("device-{n}")).await;
        let frames = ws_fragments(&padded_insert(&id, size), fragment);
        let event = raw.send_and_read(&frames, Duration::from_secs(20)).await;
        match (ok, event) {
            (true, RawEvent::Frame(_, text)) => {
                let ack: Value = serde_json::from_slice(&text).expect("JSON");
                assert_eq!(ack["type"], "ack", "{case}: {ack}");
                accepted.push(id.clone());
            }
            (false, RawEvent::Frame(OP_CLOSE, payload)) => {
                assert_eq!(close_code(&payload), Some(1009), "{case}");
                assert_eq!(
                    raw.next(Duration::from_secs(5)).await,
                    RawEvent::Ended,
                    "{case}: the connection ends after the close"
                );
            }
            (_, other) => panic!("{case}: {other:?}"),
        }
        still_serving(&server, &mut bystander, &format!("bystander-{n}")).await;
    }
    // Only the bystander's writes and the messages within the limit were
    // applied.
    let mut changed = changed_since(&server, &head).await;
    changed.retain(|id| !id.starts_with("bystander-"));
    assert_eq!(changed, accepted);
}

#[tokio::test]
async fn the_101st_subscription_on_a_connection_is_refused() {
    let server = TestServer::start(|_| {}).await;
    let head = server.session(None).head().await;
    let mut a = server.ws_client("device-A").await;
    let subscribe = |n: usize, collection: &str| {
        json!({"type": "subscribe", "id": format!("s{n}"), "collection": collection,
               "cursor": head})
    };
    for n in 0..100 {
        a.subscribe(subscribe(n, &format!("c{n}"))).await;
    }
    let refused = a.request(subscribe(100, "c100")).await;
    assert_eq!(
        (&refused["type"], &refused["code"]),
        (&json!("error"), &json!("too_large")),
        "{refused}"
    );
    assert!(
        refused["message"].as_str().unwrap_or("").contains("100"),
        "{refused}"
    );
    // Replacing a subscription is not a new one, and ending one frees its
    // slot.
    a.subscribe(subscribe(0, "c0-again")).await;
    let ended = a.request(json!({"type": "unsubscribe", "id": "s1"})).await;
    assert_eq!(ended, json!({"type": "unsubscribed", "id": "s1"}));
    a.subscribe(subscribe(100, "c100")).await;

    // The connection's subscriptions are all served; so are others.
    let mut bystander = server.ws_client("bystander").await;
    for collection in ["c99", "c100"] {
        let ack = bystander
            .request(json!({"type": "insert", "collection": collection,
                            "recordId": "x", "opId": format!("op-{collection}"),
                            "data": {}}))
            .await;
        assert_eq!(ack["type"], "ack", "{ack}");
        let change = a.next().await;
        assert_eq!(
            (&change["type"], &change["collection"]),
            (&json!("insert"), &json!(collection))
        );
    }
    still_serving(&server, &mut bystander, "bystander").await;
}

#[tokio::test]
async fn connections_per_user_are_limited_and_freed_on_close() {
    let server =
        TestServer::start_jwt_with(|config| config.limits.connections_per_user_max = 2).await;
    let alice = token(json!({"sub": "alice", "ns": ["a"]}));
    let bob = token(json!({"sub": "bob", "ns": ["b"]}));
    let mut first = WsClient::connect(server.addr(), Credential::Query(&alice), "alice-1").await;
    let second = WsClient::connect(server.addr(), Credential::Header(&alice), "alice-2").await;

    // The third is refused before the upgrade, however the token comes.
    for credential in [Credential::Query(&alice), Credential::Header(&alice)] {
        let refused = WsClient::open(server.addr(), credential, None).await;
        assert_eq!(refused.err(), Some(429), "{credential:?}");
    }
    let reply = send(upgrade_request(
        server.request(Method::GET, "/ws").bearer_auth(&alice),
    ))
    .await;
    reply.assert_error(429, "rate_limited");
    let retry_after = reply.headers.get("retry-after").map(|v| v.as_bytes());
    assert!(
        retry_after.is_some_and(|secs| secs.iter().all(u8::is_ascii_digit)),
        "{:?}",
        reply.headers
    );

    // Another user is not affected, nor are alice's open connections.
    let mut bobs = WsClient::connect(server.addr(), Credential::Header(&bob), "bob-1").await;
    bobs.assert_answers().await;
    first.assert_answers().await;

    // Once the server has seen a close, the slot is free again.
    drop(second);
    let started = Instant::now();
    let mut third = loop {
        match WsClient::open(server.addr(), Credential::Query(&alice), None).await {
            Ok(client) => break client,
            Err(status) => {
                assert_eq!(status, 429);
                assert!(
                    started.elapsed() < Duration::from_secs(5),
                    "the closed connection's slot was not freed"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let welcome = third.hello("alice-3").await;
    assert_eq!(welcome["type"], "welcome", "{welcome}");
    let health = server.get_json("/health").await.ok();
    assert_eq!(health, json!({"status": "ok"}));
}

#[tokio::test]
async fn over_the_rate_limit_is_429_with_retry_after_then_passes_after_the_wait() {
    let server = TestServer::start(|config| {
        // A token a second: a refill between two writes of the test would
        // take a second, far longer than the writes take.
        config.limits.operations_per_second = 1;
        config.limits.operations_burst = 2;
    })
    .await;
    let api = server.session(None);
    let create = |id: &str| {
        json!({"operations": [{"action": "create", "collection": "todos", "id": id,
                               "data": {}}]})
    };
    for id in ["one", "two"] {
        assert_eq!(api.sync(create(id)).await["success"], true);
    }
    let head = api.head().await;
    let reply = api.post_json("/v1/sync", &create("three")).await;
    reply.assert_error(429, "rate_limited");
    assert_eq!(reply.headers["retry-after"], "1");
    assert_eq!(reply.body["error"]["details"], json!({"retryAfterSecs": 1}));
    assert_eq!(api.head().await, head, "a refused request applied nothing");
    api.get_json("/v1/ns/default/todos/three")
        .await
        .assert_error(404, "not_found");
    // Reads are not charged; after the wait the same request passes.
    assert_eq!(api.document("default", "todos", "one").await["version"], 1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let passed = api.sync(create("three")).await;
    assert_eq!(passed["results"][0]["status"], "success", "{passed}");

    // The bucket is the user's, whatever the door: the request that just
    // passed emptied it, so a WebSocket write of the same user is refused
    // too, on every connection of the user, with an error naming the
    // operation and the wait; the connection stays, and after the wait the
    // same operation is applied once.
    let mut ws = server.ws_client("device-ws").await;
    let mut other = server.ws_client("other-connection").await;
    let limited = ws.insert("ws-1", json!({})).await;
    assert_eq!(
        (&limited["type"], &limited["code"], &limited["opId"]),
        (&json!("error"), &json!("rate_limited"), &json!("op-ws-1")),
        "{limited}"
    );
    let message = limited["message"].as_str().unwrap_or_default();
    assert!(message.contains("retry after 1 s"), "{message}");
    assert_eq!(
        limited["details"],
        json!({"retryAfterSecs": 1}),
        "{limited}"
    );
    let also = other.insert("other-1", json!({})).await;
    assert_eq!(
        (&also["type"], &also["code"]),
        (&json!("error"), &json!("rate_limited")),
        "{also}"
    );
    api.get_json("/v1/ns/default/todos/ws-1")
        .await
        .assert_error(404, "not_found");
    ws.assert_answers().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let ack = ws.insert("ws-1", json!({})).await;
    assert_eq!(
        (&ack["type"], &ack["status"]),
        (&json!("ack"), &json!("success"))
    );
    assert_eq!(api.document("default", "todos", "ws-1").await["version"], 1);
    // And the WebSocket write emptied it for HTTP.
    api.post_json("/v1/sync", &create("four"))
        .await
        .assert_error(429, "rate_limited");
}

/// What happened to a client that stopped answering pings.
#[derive(Debug)]
struct Silence {
    /// Pings it was sent before the close.
    pings: usize,
    /// The close code.
    code: Option<u16>,
    /// From its `welcome` to the close.
    closed_after: Duration,
}

/// A client that says `hello` and then never answers a ping, beside one
/// that answers every ping (tungstenite does as it reads), with
/// heartbeats of 1 s; checks that the server stays up and keeps the one
/// that answers.
async fn heartbeat_without_answers() -> Silence {
    let server = TestServer::start(|config| config.heartbeat_secs = 1).await;
    let mut answering = server.ws_client("answering").await;
    let mut silent = RawWs::connect(server.addr(), "silent").await;
    let connected = Instant::now();
    let silent_side = async {
        let mut pings = 0;
        loop {
            match silent.next(Duration::from_secs(10)).await {
                RawEvent::Frame(OP_PING, _) => pings += 1,
                RawEvent::Frame(OP_CLOSE, payload) => {
                    return Silence {
                        pings,
                        code: close_code(&payload),
                        closed_after: connected.elapsed(),
                    };
                }
                other => panic!("the silent client got {other:?}"),
            }
        }
    };
    let (silence, answering_heard) =
        tokio::join!(silent_side, answering.try_next(Duration::from_secs(5)));
    assert_eq!(
        answering_heard, None,
        "the client that answers its pings stays connected"
    );
    still_serving(&server, &mut answering, "answering").await;
    silence
}

#[tokio::test]
async fn a_client_is_closed_only_after_missing_two_pings() {
    let silence = heartbeat_without_answers().await;
    // Two pings go unanswered (at one and two heartbeats); the third tick
    // closes, with some slack for a busy machine.
    assert_eq!(silence.pings, 2, "{silence:?}");
    let after = silence.closed_after;
    assert!(after >= Duration::from_millis(2_950), "{silence:?}");
    assert!(after < Duration::from_millis(4_500), "{silence:?}");
    assert_eq!(silence.code, Some(1000), "{silence:?}");
}

#[tokio::test]
async fn an_idle_connection_is_closed() {
    let server = TestServer::start(|config| config.limits.idle_timeout_secs = 1).await;
    let mut idle = server.ws_client("idle").await;
    let mut busy = server.ws_client("busy").await;
    let started = Instant::now();
    let busy_side = async {
        while started.elapsed() < Duration::from_millis(2_500) {
            busy.assert_answers().await;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let (closed, ()) = tokio::join!(idle.next(), busy_side);
    assert_eq!(closed, json!({"type": "closed", "code": 1000}));
    assert!(started.elapsed() < Duration::from_secs(5));
    // A connection that keeps talking is not idle.
    still_serving(&server, &mut busy, "busy").await;
}

/// The value of a Prometheus counter without labels.
fn counter(metrics: &str, name: &str) -> f64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in the metrics"))
}

#[tokio::test]
async fn a_subscriber_that_never_reads_gets_a_resync_and_catches_up_with_nothing_missing() {
    const TOTAL: usize = 100_000;
    const BATCH: usize = 1_000;
    const QUEUE: usize = 16;
    // More connections that never read. The store's own growth for 100,000
    // changes is most of the peak; unbounded send queues would add the
    // changes' frames (about 35 MB, shared) and a queue entry per change
    // and connection (about 4 MB per connection), 290 MB or so in all.
    const IDLE: usize = 64;
    let server = TestServer::start(|config| {
        config.limits.send_queue_frames_max = QUEUE;
        // Every client here reads only after the writes, which take minutes
        // on a loaded machine; none may be closed for missed heartbeats.
        config.heartbeat_secs = 3_600;
        config.limits.operations_per_second = 1_000_000;
        config.limits.operations_burst = 1_000_000;
    })
    .await;
    let api = server.session(None);
    let subscribe = json!({"type": "subscribe", "id": "all", "collection": "todos"});
    let mut slow = server.ws_client("device-slow").await;
    let subscribed = slow.subscribe(subscribe.clone()).await;
    let mut idle = Vec::new();
    for n in 0..IDLE {
        let mut client = server.ws_client(&format!("device-idle-{n}")).await;
        client.subscribe(subscribe.clone()).await;
        idle.push(client);
    }
    let mut bystander = server.ws_client("bystander").await;
    bystander
        .subscribe(json!({"type": "subscribe", "collection": "notes"}))
        .await;

    let peak_before = memory_kib("VmHWM");
    let started = Instant::now();
    let mut batches = futures::stream::iter(0..TOTAL / BATCH)
        .map(|chunk| {
            let operations: Vec<Value> = (chunk * BATCH..(chunk + 1) * BATCH)
                .map(|n| {
                    json!({"opId": format!("w-{n}"), "action": "create",
                           "collection": "todos", "id": format!("d{n}"), "data": {"n": n}})
                })
                .collect();
            api.sync(json!({ "operations": operations }))
        })
        // Two requests in flight: one is decided while the other commits.
        .buffer_unordered(2);
    let mut expected = BTreeSet::new();
    while let Some(response) = batches.next().await {
        assert_eq!(response["success"], true);
        for result in response["results"].as_array().expect("results") {
            expected.insert(result["seq"].as_u64().expect("a seq"));
        }
    }
    drop(batches);
    assert_eq!(expected.len(), TOTAL);
    let wrote = started.elapsed();
    let grown_mib = memory_kib("VmHWM").saturating_sub(peak_before) / 1024;
    let metrics = send(api.request(Method::GET, "/metrics")).await;
    let metrics = metrics.body.as_str().unwrap_or_default().to_owned();
    let (deliveries, resyncs) = (
        counter(&metrics, "sync_deliveries_total"),
        counter(&metrics, "sync_resyncs_total"),
    );
    eprintln!(
        "{TOTAL} changes written in {wrote:?}; peak resident memory grew {grown_mib} MiB; \
         {deliveries} live deliveries, {resyncs} resyncs"
    );
    // Every connection that does not read had its live stream dropped, and
    // was given what its queue and socket hold, on average under a tenth
    // of the changes (unbounded queues would have taken all of them).
    assert!(resyncs >= (IDLE + 1) as f64, "{resyncs} resyncs");
    assert!(
        deliveries <= ((IDLE + 1) * TOTAL / 10) as f64,
        "{deliveries} deliveries"
    );
    assert!(grown_mib < 288, "peak resident memory grew {grown_mib} MiB");
    drop(idle);

    // The bystander is live meanwhile.
    still_serving(&server, &mut bystander, "bystander").await;
    api.create("default", "notes", "n1", json!({}), "writer")
        .await;
    let live = bystander.next().await;
    assert_eq!(
        (&live["type"], &live["recordId"]),
        (&json!("insert"), &json!("n1"))
    );

    // Reading at last: a prefix of the changes, then `resync` from the last
    // one given, then the rest from there: each change once, up to the head.
    let caught_up = Instant::now();
    let mut seen = BTreeSet::new();
    let mut last_cursor = subscribed["cursor"].clone();
    let mut resynced = 0;
    while seen.len() < expected.len() {
        let message = slow.next().await;
        match message["type"].as_str().unwrap_or_default() {
            "insert" => {
                let seq = message["seq"].as_u64().expect("a seq");
                assert!(seen.insert(seq), "seq {seq} twice");
                last_cursor = message["cursor"].clone();
            }
            "resync" => {
                resynced += 1;
                assert_eq!(message["id"], "all", "{message}");
                assert_eq!(
                    message["cursor"], last_cursor,
                    "resync from the last change given"
                );
                let mut again = subscribe.clone();
                again["cursor"] = message["cursor"].clone();
                slow.subscribe(again).await;
            }
            other => panic!("unexpected {other}: {message}"),
        }
    }
    eprintln!(
        "caught up in {:?} after {resynced} resync(s)",
        caught_up.elapsed()
    );
    assert!(
        resynced >= 1,
        "the slow subscriber was never told to resync"
    );
    assert_eq!(seen, expected, "each change once, none missing");
    assert_eq!(slow.try_next(Duration::from_millis(300)).await, None);
    still_serving(&server, &mut bystander, "bystander-after").await;
}
