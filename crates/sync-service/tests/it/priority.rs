//! Priority under load: with the writes in flight to the store bounded, a
//! high-priority write that arrives behind a backlog of low ones is let in
//! before them, and one connection's writes to a document keep their
//! order.

use std::time::{Duration, Instant};

use futures::StreamExt;
use serde_json::{Value, json};

use crate::support::TestServer;

/// Low requests sent at once, and operations in each.
const LOW_REQUESTS: usize = 24;
const LOW_OPS: usize = 400;

/// The waiting batches of `priority` the node's metrics show.
async fn waiting(server: &TestServer, priority: &str) -> u64 {
    let text = server
        .request(reqwest::Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics answer")
        .text()
        .await
        .expect("metrics text");
    let series = format!("sync_writes_waiting{{priority=\"{priority}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test]
async fn a_high_write_overtakes_a_backlog_of_low_ones_at_the_store() {
    let server = TestServer::start(|config| {
        // One batch at the store at a time: everything else waits at the
        // gate, where priority decides.
        config.limits.writes_in_flight_max = 1;
        config.limits.operations_per_second = 1_000_000;
        config.limits.operations_burst = 1_000_000;
    })
    .await;
    let client = reqwest::Client::new();
    let sync_url = server.url("/v1/sync");
    let mut writer = server.ws_client("device-urgent").await;

    // The backlog: low requests, all sent at once.
    let lows = futures::stream::iter(0..LOW_REQUESTS)
        .map(move |request| {
            let operations: Vec<Value> = (0..LOW_OPS)
                .map(|n| {
                    json!({"opId": format!("low-{request}-{n}"), "action": "create",
                           "collection": "logs", "id": format!("log-{request}-{n}"),
                           "priority": "low", "data": {"n": n, "pad": "x".repeat(200)}})
                })
                .collect();
            let request = client
                .post(&sync_url)
                .json(&json!({ "operations": operations }));
            async move {
                let response = request.send().await.expect("the sync answers");
                response.json::<Value>().await.expect("a JSON answer")
            }
        })
        .buffer_unordered(LOW_REQUESTS);
    let lows = tokio::spawn(async move { lows.collect::<Vec<Value>>().await });

    // Wait until most of the backlog waits at the gate.
    let deadline = Instant::now() + Duration::from_secs(60);
    while waiting(&server, "low").await < (LOW_REQUESTS / 2) as u64 {
        assert!(
            Instant::now() < deadline,
            "the low requests never queued up at the gate"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }

    // On another connection: a low then a high write of one document, and
    // a high write of another, without waiting for answers.
    writer
        .send(
            json!({"type": "insert", "collection": "payments", "recordId": "pay-1",
                     "opId": "pay-draft", "priority": "low", "data": {"state": "draft"}}),
        )
        .await;
    writer
        .send(
            json!({"type": "update", "collection": "payments", "recordId": "pay-1",
                     "opId": "pay-send", "priority": "high", "data": {"state": "sent"}}),
        )
        .await;
    writer
        .send(
            json!({"type": "insert", "collection": "alerts", "recordId": "alert-1",
                     "opId": "alert", "priority": "high", "data": {"on": true}}),
        )
        .await;
    let mut acks = Vec::new();
    while acks.len() < 3 {
        let message = writer.next().await;
        assert_eq!(message["type"], "ack", "{message}");
        acks.push(message);
    }
    // One connection's writes come back in the order they were sent, and
    // the document's edits were applied in that order.
    let op_ids: Vec<&str> = acks.iter().map(|a| a["opId"].as_str().unwrap()).collect();
    assert_eq!(op_ids, ["pay-draft", "pay-send", "alert"]);
    assert_eq!(acks[0]["version"], 1);
    assert_eq!(acks[1]["version"], 2);
    let high_seq = acks[2]["seq"].as_u64().expect("a seq");

    let responses = tokio::time::timeout(Duration::from_secs(120), lows)
        .await
        .expect("the backlog drains")
        .expect("the backlog task");
    let mut low_after = 0;
    for response in &responses {
        assert_eq!(response["success"], true, "{response}");
        for result in response["results"].as_array().unwrap() {
            if result["seq"].as_u64().unwrap() > high_seq {
                low_after += 1;
            }
        }
    }
    // At least a quarter of the backlog (which waited before the high
    // writes arrived) was committed after them: first come, first served
    // would have put every waiting low request first.
    assert!(
        low_after >= LOW_REQUESTS / 4 * LOW_OPS,
        "only {low_after} low writes were committed after the high ones"
    );
    assert_eq!(waiting(&server, "low").await, 0);
    assert_eq!(waiting(&server, "high").await, 0);
}
