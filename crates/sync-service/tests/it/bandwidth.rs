//! Bandwidth: a device that declared a `bandwidthLimit` is sent its
//! catch-up no faster than that, measured at the client, and the stats
//! show the limit.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::TestServer;

/// The declared limit, in bytes per second.
const LIMIT: u64 = 40_000;
/// Documents in the catch-up, each about 1 KB on the wire (data and delta).
const DOCUMENTS: usize = 100;

#[tokio::test]
async fn a_device_with_a_declared_bandwidth_catches_up_no_faster_than_it() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let registered = api
        .post_json(
            "/v1/devices",
            &json!({"deviceId": "slow-phone", "name": "On a slow link",
                    "capabilities": {"collections": ["todos"], "bandwidthLimit": LIMIT}}),
        )
        .await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    let operations: Vec<_> = (0..DOCUMENTS)
        .map(|n| {
            json!({"opId": format!("op-{n}"), "action": "create", "collection": "todos",
                   "id": format!("todo-{n:03}"), "data": {"n": n, "text": "x".repeat(400)}})
        })
        .collect();
    let written = api.sync(json!({ "operations": operations })).await;
    assert_eq!(written["success"], true, "{written}");

    // The catch-up of a subscription without a cursor: every document.
    let mut slow = server.ws_client("slow-phone").await;
    let started = Instant::now();
    slow.send(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    let (mut bytes, mut largest, mut inserts) = (0usize, 0usize, 0usize);
    while inserts < DOCUMENTS {
        let text = slow
            .try_next_text(Duration::from_secs(60))
            .await
            .expect("the catch-up goes on");
        bytes += text.len();
        largest = largest.max(text.len());
        if text.contains("\"type\":\"insert\"") {
            inserts += 1;
        }
    }
    let elapsed = started.elapsed();
    // The server may send a quarter second's worth at once, and one frame
    // beyond what the rate allows; everything else waits for the rate.
    let burst = LIMIT as usize / 4;
    let paced = bytes.saturating_sub(burst + largest) as f64 / LIMIT as f64;
    assert!(
        paced > 1.5,
        "the catch-up is too small to measure: {bytes} bytes"
    );
    assert!(
        elapsed.as_secs_f64() >= paced * 0.95,
        "{bytes} bytes arrived in {elapsed:?}: faster than {LIMIT} bytes/s allows ({paced:.2} s)"
    );

    // Another device, with no limit declared, is not paced (and says so).
    let mut fast = server.ws_client("fast-laptop").await;
    fast.send(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    let mut fast_inserts = 0;
    while fast_inserts < DOCUMENTS {
        let text = fast
            .try_next_text(Duration::from_secs(60))
            .await
            .expect("the catch-up goes on");
        if text.contains("\"type\":\"insert\"") {
            fast_inserts += 1;
        }
    }

    let stats = api.get_json("/v1/stats/devices").await.ok();
    let devices = stats["devices"].as_array().unwrap();
    let of = |id: &str| {
        devices
            .iter()
            .find(|d| d["deviceId"] == id)
            .unwrap_or_else(|| panic!("no {id} in {stats}"))
            .clone()
    };
    assert_eq!(of("slow-phone")["bandwidthLimit"], LIMIT, "{stats}");
    assert!(of("fast-laptop").get("bandwidthLimit").is_none(), "{stats}");
}

#[tokio::test]
async fn a_new_registration_changes_the_pace_of_an_open_connection() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let register = |limit: Option<u64>| {
        let mut capabilities = json!({"collections": ["todos"]});
        if let Some(limit) = limit {
            capabilities["bandwidthLimit"] = json!(limit);
        }
        json!({"deviceId": "phone", "capabilities": capabilities})
    };
    assert_eq!(
        api.post_json("/v1/devices", &register(None)).await.status,
        201
    );
    let mut phone = server.ws_client("phone").await;
    phone
        .send(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    assert!(phone.try_next_text(Duration::from_secs(10)).await.is_some());
    // The device now declares a slow link: the live changes that follow
    // are paced on the connection already open.
    assert_eq!(
        api.post_json("/v1/devices", &register(Some(8_000)))
            .await
            .status,
        201
    );
    let stats = api.get_json("/v1/stats/devices").await.ok();
    assert_eq!(stats["devices"][0]["bandwidthLimit"], 8_000, "{stats}");
    let operations: Vec<_> = (0..20)
        .map(|n| {
            json!({"opId": format!("live-{n}"), "action": "create", "collection": "todos",
                   "id": format!("live-{n:02}"), "data": {"text": "y".repeat(400)}})
        })
        .collect();
    let started = Instant::now();
    let written = api.sync(json!({ "operations": operations })).await;
    assert_eq!(written["success"], true, "{written}");
    let (mut bytes, mut largest) = (0usize, 0usize);
    for _ in 0..20 {
        let text = phone
            .try_next_text(Duration::from_secs(60))
            .await
            .expect("a live change");
        bytes += text.len();
        largest = largest.max(text.len());
    }
    let paced = bytes.saturating_sub(8_000 / 4 + largest) as f64 / 8_000.0;
    assert!(
        started.elapsed().as_secs_f64() >= paced * 0.95,
        "{bytes} bytes in {:?}",
        started.elapsed()
    );
}
