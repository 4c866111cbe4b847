//! Several server processes on one PostgreSQL database: a change committed
//! through one node reaches WebSocket subscribers of the other, and a node
//! killed with SIGKILL mid-load loses no acknowledged write while the
//! other keeps serving. Needs `SYNC_TEST_DATABASE_URL`; without it the
//! tests say loudly that they did not run.

use crate::support::database_url;
use std::collections::BTreeSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sync_testkit::{ChildServer, run_aside};
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::Message;

/// Starts a `sync-server` node named `name` on `schema` of the database at
/// `url`.
async fn start_node(url: &str, schema: &str, name: &str) -> ChildServer {
    let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
    command
        .args(["--store", "postgres", "--database-url", url])
        .args(["--database-schema", schema, "--node-name", name])
        .env("RUST_LOG", "warn");
    ChildServer::start(command, None).await
}

/// Drops the schema when the test ends, however it ends.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        run_aside(move || async move { sync_store::PgStore::drop_schema_at(&url, &name).await });
    }
}

fn fresh_schema(url: &str) -> Schema {
    Schema {
        url: url.to_owned(),
        name: format!("t_scale_{}", uuid::Uuid::new_v4().simple()),
    }
}

async fn sync(
    client: &reqwest::Client,
    node: &ChildServer,
    operations: Vec<Value>,
) -> Option<Value> {
    let response = client
        .post(node.url("/v1/sync"))
        .json(&json!({"operations": operations}))
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .ok()?;
    response.json().await.ok()
}

#[tokio::test]
async fn a_change_through_one_node_reaches_subscribers_of_the_other() {
    let Some(url) = database_url("scale-out tests") else {
        return;
    };
    let schema = fresh_schema(&url);
    let first = start_node(&url, &schema.name, "node-1").await;
    let second = start_node(&url, &schema.name, "node-2").await;

    let (mut subscriber, _) = connect_async(format!("ws://{}/ws", second.addr()))
        .await
        .unwrap();
    subscriber
        .send(Message::Text(
            json!({"type": "subscribe", "collection": "todos"})
                .to_string()
                .into(),
        ))
        .await
        .unwrap();
    let next = |frame: Option<Result<Message, _>>| -> Value {
        match frame {
            Some(Ok(Message::Text(text))) => serde_json::from_str(&text).unwrap(),
            other => panic!("unexpected frame {other:?}"),
        }
    };
    let subscribed = next(subscriber.next().await);
    assert_eq!(subscribed["type"], "subscribed", "{subscribed}");

    let client = reqwest::Client::new();
    let written = Instant::now();
    let response = sync(
        &client,
        &first,
        vec![
            json!({"opId": "op-1", "action": "create", "collection": "todos",
                    "id": "t1", "data": {"text": "across nodes"}}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(response["results"][0]["status"], "success", "{response}");
    let change = tokio::time::timeout(Duration::from_secs(15), subscriber.next())
        .await
        .expect("the change reaches the other node's subscriber");
    let change = next(change);
    assert_eq!(change["type"], "insert", "{change}");
    assert_eq!(change["data"], json!({"text": "across nodes"}));
    assert!(
        written.elapsed() < Duration::from_secs(2),
        "took {:?}: LISTEN/NOTIFY should wake the other node at once",
        written.elapsed()
    );
    // Both nodes serve the same documents and the same opId results.
    let replay = sync(
        &client,
        &second,
        vec![
            json!({"opId": "op-1", "action": "create", "collection": "todos",
                    "id": "t1", "data": {"text": "across nodes"}}),
        ],
    )
    .await
    .unwrap();
    assert_eq!(replay["results"][0]["status"], "duplicate", "{replay}");
}

#[tokio::test]
async fn a_node_killed_mid_load_loses_no_acknowledged_write() {
    let Some(url) = database_url("scale-out tests") else {
        return;
    };
    let schema = fresh_schema(&url);
    let mut first = start_node(&url, &schema.name, "node-1").await;
    let second = Arc::new(start_node(&url, &schema.name, "node-2").await);
    let first_addr = first.addr().to_string();

    let acknowledged: Arc<Mutex<Vec<Value>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = Vec::new();
    for writer in 0..8 {
        let acknowledged = Arc::clone(&acknowledged);
        let stop = Arc::clone(&stop);
        let target = if writer % 2 == 0 {
            format!("http://{first_addr}/v1/sync")
        } else {
            second.url("/v1/sync")
        };
        writers.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut batch = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let operations: Vec<Value> = (0..20)
                    .map(|i| {
                        json!({"opId": format!("w{writer}-{batch}-{i}"), "action": "create",
                               "collection": "load", "id": format!("w{writer}-{batch}-{i}"),
                               "data": {"writer": writer, "batch": batch, "i": i}})
                    })
                    .collect();
                batch += 1;
                let sent = client
                    .post(&target)
                    .json(&json!({"operations": operations.clone()}))
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await;
                let Ok(response) = sent else {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                };
                let Ok(body) = response.json::<Value>().await else {
                    continue;
                };
                let results = body["results"].as_array().cloned().unwrap_or_default();
                let mut acknowledged = acknowledged.lock().unwrap();
                for (op, result) in operations.into_iter().zip(results) {
                    if matches!(result["status"].as_str(), Some("success" | "duplicate")) {
                        acknowledged.push(op);
                    }
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    first.kill();
    let acknowledged_at_kill = acknowledged.lock().unwrap().len();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for writer in writers {
        writer.await.unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged_at_kill > 0,
        "nothing was written before the kill"
    );
    assert!(
        acknowledged.len() > acknowledged_at_kill,
        "the surviving node stopped serving"
    );

    // Every acknowledged write is there, exactly once: sent again to the
    // surviving node, each is a duplicate.
    let client = reqwest::Client::new();
    for chunk in acknowledged.chunks(500) {
        let replay = sync(&client, &second, chunk.to_vec()).await.unwrap();
        for result in replay["results"].as_array().unwrap() {
            assert_eq!(result["status"], "duplicate", "{result}");
        }
    }
    // The shared log has no gap.
    let mut cursor = String::new();
    let mut seqs = Vec::new();
    loop {
        let query = if cursor.is_empty() {
            "/v1/changes?limit=5000".to_owned()
        } else {
            format!("/v1/changes?limit=5000&cursor={cursor}")
        };
        let page: Value = client
            .get(second.url(&query))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for change in page["changes"].as_array().unwrap() {
            seqs.push(change["seq"].as_u64().unwrap());
        }
        cursor = page["cursor"].as_str().unwrap().to_owned();
        if page["hasMore"] != true {
            break;
        }
    }
    let expected: Vec<u64> = (1..=seqs.len() as u64).collect();
    assert_eq!(seqs, expected, "the log has a gap or a repeat");
    let ids: BTreeSet<&str> = acknowledged
        .iter()
        .filter_map(|op| op["opId"].as_str())
        .collect();
    assert!(ids.len() <= seqs.len());
}
