//! The operator and protocol surface: the device registry, sync analytics
//! (`/v1/stats`, `/v1/stats/devices`), Prometheus metrics, liveness and
//! readiness, `X-Sync-Chunk`, gzip both ways and request ids.

use std::io::Read as _;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{ChildServer, TestServer, gzip, keys, send};

#[tokio::test]
async fn devices_register_list_and_unregister() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let phone = json!({
        "deviceId": "phone-1", "name": "Alice's iPhone", "platform": "iOS",
        "appVersion": "2.3.1",
        "capabilities": {"collections": ["todos"], "supportsRealTime": true,
                         "bandwidthLimit": 50000}
    });
    let registered = api.post_json("/v1/devices", &phone).await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let record = registered.body;
    assert_eq!(
        keys(&record),
        [
            "appVersion",
            "capabilities",
            "deviceId",
            "lastSeen",
            "name",
            "online",
            "platform",
            "registeredAt",
            "user"
        ]
    );
    for field in ["deviceId", "name", "platform", "appVersion", "capabilities"] {
        assert_eq!(record[field], phone[field], "{field}");
    }
    assert_eq!(record["user"], "anonymous");
    assert_eq!(record["online"], false);
    let generated = api
        .post_json("/v1/devices", &json!({"name": "Laptop"}))
        .await;
    assert_eq!(generated.status, 201, "{}", generated.body);
    let laptop = generated.body["deviceId"]
        .as_str()
        .expect("an id")
        .to_owned();
    assert_eq!(laptop.len(), 36, "a generated UUID: {laptop}");
    assert_eq!(generated.body["capabilities"]["collections"], json!([]));

    // Registering again updates, and keeps when it was first registered.
    let mut renamed = phone.clone();
    renamed["name"] = json!("Alice's old iPhone");
    let again = api.post_json("/v1/devices", &renamed).await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body["name"], "Alice's old iPhone");
    assert_eq!(again.body["registeredAt"], record["registeredAt"]);

    let list = api.get_json("/v1/devices").await.ok();
    let mut listed: Vec<(String, Value)> = list["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            (
                d["deviceId"].as_str().unwrap_or("").to_owned(),
                d["online"].clone(),
            )
        })
        .collect();
    listed.sort_by(|a, b| a.0.cmp(&b.0));
    let mut expected = vec![
        (laptop.clone(), json!(false)),
        ("phone-1".to_owned(), json!(false)),
    ];
    expected.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(listed, expected);

    let removed = api.delete("/v1/devices/phone-1").await;
    assert_eq!(removed.status, 204);
    assert_eq!(removed.body, Value::Null);
    let list = api.get_json("/v1/devices").await.ok();
    assert_eq!(list["devices"].as_array().map(Vec::len), Some(1));
    assert_eq!(list["devices"][0]["deviceId"], laptop.as_str());
    api.delete("/v1/devices/phone-1")
        .await
        .assert_error(404, "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn stats_and_metrics_count_what_happened() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let fresh = api.get_json("/v1/stats").await.ok();
    assert_eq!(fresh["totalSyncs"], 0);
    assert_eq!(fresh["successRate"], 1.0);

    let first = json!({"deviceId": "dev-1", "operations": [
        {"opId": "op-x", "action": "create", "collection": "todos", "id": "x",
         "data": {"title": "x"}},
        {"opId": "op-y", "action": "create", "collection": "todos", "id": "y",
         "data": {"title": "y", "tags": ["a"]}}
    ]});
    let edit = |device: &str, id: &str, data: Value, strategy: &str| {
        json!({"deviceId": device, "strategy": strategy, "operations": [
            {"action": "update", "collection": "todos", "id": id, "baseVersion": 1,
             "data": data}
        ]})
    };
    let requests = [
        first.clone(),
        edit("dev-2", "x", json!({"title": "x online"}), "merge"),
        edit("dev-1", "x", json!({"title": "x offline"}), "manual"),
        edit("dev-2", "y", json!({"tags": ["a", "b"]}), "merge"),
        edit("dev-1", "y", json!({"tags": ["a", "c"]}), "merge"),
        first,
        json!({"operations": [{"action": "update", "collection": "todos", "id": "nope",
                               "data": {"n": 1}}]}),
    ];
    let mut statuses = Vec::new();
    for request in &requests {
        let response = api.sync(request.clone()).await;
        statuses.extend(
            response["results"]
                .as_array()
                .expect("results")
                .iter()
                .map(|r| r["status"].as_str().unwrap_or_default().to_owned()),
        );
    }
    assert_eq!(
        statuses,
        [
            "success",
            "success",
            "success",
            "conflict",
            "success",
            "merged",
            "duplicate",
            "duplicate",
            "error"
        ]
    );
    // A request refused as a whole counts as a failed sync.
    let too_many: Vec<Value> = (0..1_001)
        .map(|i| json!({"action": "create", "collection": "todos", "data": {"i": i}}))
        .collect();
    api.post_json("/v1/sync", &json!({"operations": too_many}))
        .await
        .assert_error(413, "too_large");

    let stats = api.get_json("/v1/stats").await.ok();
    assert_eq!(stats["totalSyncs"], 8, "{stats}");
    assert_eq!(stats["successRate"], 0.75, "{stats}");
    assert_eq!(
        stats["operations"],
        json!({"success": 4, "merged": 1, "conflict": 1, "duplicate": 2, "error": 1}),
        "{stats}"
    );
    assert_eq!(
        stats["conflictsByStrategy"],
        json!({"merge": 1, "manual": 1}),
        "{stats}"
    );
    let average = stats["averageDurationMs"].as_f64().expect("a mean");
    let p99 = stats["p99DurationMs"].as_f64().expect("a p99");
    assert!(average > 0.0 && p99 >= average * 0.99, "{stats}");
    assert_eq!(stats["activeConnections"], 0);
    assert_eq!(stats["devicesOnline"], 0);
    assert_eq!(stats["documents"], 2);
    assert_eq!(stats["head"], 5);

    let devices = api.get_json("/v1/stats/devices").await.ok();
    let mut by_device: Vec<(String, Value, Value)> = devices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| {
            assert_eq!(d["online"], false, "{d}");
            (
                d["deviceId"].as_str().unwrap_or("").to_owned(),
                d["operations"].clone(),
                d["conflicts"].clone(),
            )
        })
        .collect();
    by_device.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        by_device,
        [
            (
                "dev-1".to_owned(),
                json!({"success": 2, "merged": 1, "conflict": 1}),
                json!(2)
            ),
            ("dev-2".to_owned(), json!({"success": 2}), json!(0)),
        ]
    );

    let metrics = api
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics");
    assert_eq!(metrics.status(), 200);
    assert_eq!(
        metrics.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = metrics.text().await.expect("text");
    let sum = |prefix: &str| -> f64 {
        text.lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(sum("sync_requests_total{"), 8.0, "{text}");
    assert_eq!(
        sum("sync_requests_total{door=\"http\",outcome=\"error\"}"),
        2.0,
        "{text}"
    );
    assert_eq!(sum("sync_request_duration_seconds_count{"), 8.0, "{text}");
    for line in [
        "# TYPE sync_requests_total counter",
        "# TYPE sync_request_duration_seconds histogram",
        "sync_operations_total{status=\"success\"} 4",
        "sync_operations_total{status=\"merged\"} 1",
        "sync_operations_total{status=\"conflict\"} 1",
        "sync_operations_total{status=\"duplicate\"} 2",
        "sync_operations_total{status=\"error\"} 1",
        "sync_conflicts_total{strategy=\"manual\"} 1",
        "sync_conflicts_total{strategy=\"merge\"} 1",
        "# TYPE sync_log_head gauge",
        "sync_log_head 5",
        "sync_documents 2",
        "sync_connections 0",
        "sync_devices_online 0",
        "sync_subscriptions 0",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn health_readiness_chunks_and_request_ids() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    assert_eq!(
        server.get_json("/health").await.ok(),
        json!({"status": "ok"})
    );
    assert_eq!(
        server.get_json("/ready").await.ok(),
        json!({"status": "ready", "head": 0})
    );
    api.create("default", "todos", "a", json!({}), "d").await;
    assert_eq!(server.get_json("/ready").await.ok()["head"], 1);

    // A sync sent in chunks: the header is echoed; chunkInfo is accepted.
    for path in ["/api/todos/bulk-sync", "/v1/sync"] {
        let reply = send(
            api.request(Method::POST, path)
                .header("x-sync-chunk", "2/5")
                .json(&json!({"operations": [], "chunkInfo": {"number": 2, "total": 5}})),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.headers["x-sync-chunk"], "2/5", "{path}");
        let plain = api.post_json(path, &json!({"operations": []})).await;
        assert_eq!(plain.headers.get("x-sync-chunk"), None, "{path}");
    }

    // Every response carries a request id; a given one is kept.
    let reply = api.get_json("/health").await;
    let id = reply.headers["x-request-id"].to_str().expect("text");
    assert_eq!(id.len(), 36, "{id}");
    let reply = send(
        api.request(Method::GET, "/health")
            .header("x-request-id", "trace-me-42"),
    )
    .await;
    assert_eq!(reply.headers["x-request-id"], "trace-me-42");
    server.shutdown().await;
}

#[tokio::test]
async fn gzip_requests_are_accepted_and_gzip_responses_offered() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let body = json!({"operations": [
        {"action": "create", "collection": "todos", "id": "zipped",
         "data": {"title": "sent compressed", "padding": "z".repeat(2_000)}}
    ]});
    let reply = send(
        api.request(Method::POST, "/v1/sync")
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .body(gzip(body.to_string().as_bytes())),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["results"][0]["status"], "success");
    let stored = api.document("default", "todos", "zipped").await;
    assert_eq!(stored["data"], body["operations"][0]["data"]);

    // A client that does not decode by itself sees the encoding.
    let raw = reqwest::Client::builder()
        .no_gzip()
        .build()
        .expect("a client");
    let url = server.url("/v1/changes");
    let compressed = raw
        .get(&url)
        .header("accept-encoding", "gzip")
        .send()
        .await
        .expect("an answer");
    assert_eq!(compressed.status(), 200);
    assert_eq!(compressed.headers()["content-encoding"], "gzip");
    let bytes = compressed.bytes().await.expect("a body");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&bytes[..])
        .read_to_string(&mut text)
        .expect("valid gzip");
    let decoded: Value = serde_json::from_str(&text).expect("JSON");
    assert!(bytes.len() < text.len(), "compression made it no smaller");
    let plain = raw.get(&url).send().await.expect("an answer");
    assert_eq!(plain.headers().get("content-encoding"), None);
    let plain: Value = plain.json().await.expect("JSON");
    assert_eq!(decoded, plain);
    assert_eq!(decoded["changes"][0]["id"], "zipped");
    server.shutdown().await;
}

#[tokio::test]
async fn cors_allows_the_configured_origins_only() {
    let server = TestServer::start(|config| {
        config.cors.allowed_origins = vec!["https://app.example".into()];
    })
    .await;
    let preflight = |origin: &'static str| {
        send(
            server
                .request(Method::OPTIONS, "/v1/sync")
                .header("origin", origin)
                .header("access-control-request-method", "POST")
                .header(
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
        )
    };
    let allowed = preflight("https://app.example").await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example"
    );
    let methods = allowed.headers["access-control-allow-methods"]
        .to_str()
        .expect("text");
    assert!(methods.contains("POST"), "{methods}");
    let refused = preflight("https://evil.example").await;
    assert_eq!(refused.headers.get("access-control-allow-origin"), None);
    let simple = send(
        server
            .request(Method::GET, "/health")
            .header("origin", "https://app.example"),
    )
    .await;
    assert_eq!(
        simple.headers["access-control-allow-origin"],
        "https://app.example"
    );
    server.shutdown().await;
}

/// The per-operation audit line is off by default and on when `RUST_LOG`
/// asks for it; `--log-format json` (here `SYNC_LOG_FORMAT`) writes JSON.
#[tokio::test]
async fn the_audit_line_is_off_unless_asked_for_and_logs_can_be_json() {
    let write = json!({"operations": [{"action": "create", "collection": "todos",
                                       "id": "t1", "data": {"n": 1}}]});
    let quiet = ChildServer::start(&[]).await;
    quiet.session(None).sync(write.clone()).await;
    let asked = ChildServer::start(&[
        ("RUST_LOG", "info,sync::audit=info"),
        ("SYNC_LOG_FORMAT", "json"),
    ])
    .await;
    asked.session(None).sync(write).await;

    let quiet_log = quiet.output();
    assert!(quiet_log.contains("sync server listening"), "{quiet_log}");
    assert!(!quiet_log.contains("sync operation"), "{quiet_log}");
    let asked_log = asked.output();
    let lines: Vec<Value> = asked_log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let audit = lines
        .iter()
        .find(|line| line["fields"]["message"] == "sync operation")
        .unwrap_or_else(|| panic!("no audit line in {asked_log}"));
    assert_eq!(audit["target"], "sync::audit", "{audit}");
    assert_eq!(audit["fields"]["action"], "create", "{audit}");
}
