//! `GET /metrics` by Prometheus conventions, and the Grafana dashboard in
//! `deploy/grafana/` naming only metrics the server exports.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::TestServer;

/// The metric names in the samples of a Prometheus text exposition.
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

/// The `sync_*` metric names a PromQL expression reads.
fn metrics_in(expression: &str) -> Vec<String> {
    let mut names = Vec::new();
    let mut rest = expression;
    while let Some(at) = rest.find("sync_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.push(name);
    }
    names
}

async fn scrape(server: &TestServer) -> String {
    let response = server
        .session(None)
        .request(Method::GET, "/metrics")
        .send()
        .await
        .expect("metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

#[tokio::test]
async fn every_metric_the_dashboard_names_is_exported() {
    let server = TestServer::start(|_| {}).await;
    // One of everything: HTTP and WebSocket writes, a subscription and a push.
    let mut a = server.ws_client("device-A").await;
    let mut b = server.ws_client("device-B").await;
    b.subscribe(json!({"type": "subscribe", "collection": "todos"}))
        .await;
    assert_eq!(a.insert("t1", json!({"n": 1})).await["type"], "ack");
    assert_eq!(b.next().await["type"], "insert");
    server
        .session(None)
        .sync(
            json!({"operations": [{"action": "create", "collection": "todos",
                                     "id": "t2", "data": {"n": 2}}]}),
        )
        .await;
    let text = scrape(&server).await;
    let exported = sample_names(&text);

    let dashboard: Value =
        serde_json::from_str(include_str!("../../../../deploy/grafana/sync-engine.json"))
            .expect("the dashboard is JSON");
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    let mut named = BTreeSet::new();
    for panel in panels {
        for target in panel["targets"].as_array().expect("targets") {
            named.extend(metrics_in(target["expr"].as_str().expect("expr")));
        }
    }
    let templating = dashboard["templating"].to_string();
    named.extend(metrics_in(&templating));
    assert!(named.len() >= 10, "{named:?}");
    let missing: Vec<&String> = named.iter().filter(|n| !exported.contains(*n)).collect();
    assert!(missing.is_empty(), "not exported: {missing:?}\n{text}");
    server.shutdown().await;
}

#[tokio::test]
async fn metrics_follow_prometheus_conventions() {
    let server = TestServer::start(|_| {}).await;
    let mut a = server.ws_client("device-A").await;
    assert_eq!(a.insert("t1", json!({"n": 1})).await["type"], "ack");
    let text = scrape(&server).await;
    let mut kinds = Vec::new();
    for line in text.lines().filter(|l| l.starts_with("# TYPE ")) {
        let mut words = line["# TYPE ".len()..].split(' ');
        let (Some(name), Some(kind)) = (words.next(), words.next()) else {
            panic!("malformed {line:?}");
        };
        match kind {
            "counter" => assert!(name.ends_with("_total"), "{name}"),
            // Durations in seconds; the one count histogram in writes.
            "histogram" => assert!(
                name.ends_with("_seconds") || name == "sync_commit_group_writes",
                "{name}"
            ),
            "gauge" => assert!(!name.ends_with("_total"), "{name}"),
            other => panic!("{name} is a {other}"),
        }
        kinds.push((name.to_owned(), kind.to_owned()));
    }
    assert!(kinds.iter().any(|(_, kind)| kind == "histogram"), "{text}");
    // Histograms carry buckets up to +Inf; the WebSocket write was timed.
    assert!(
        text.lines()
            .any(|l| l.starts_with("sync_request_duration_seconds_bucket{")
                && l.contains("door=\"websocket\"")
                && l.contains("le=\"+Inf\"")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l == "sync_websocket_message_duration_seconds_count{type=\"insert\"} 1"),
        "{text}"
    );
    // The store reports its group commits.
    assert!(
        text.lines()
            .any(|l| l.starts_with("sync_commit_group_writes_count ") && !l.ends_with(" 0")),
        "{text}"
    );
    // Labels come from fixed sets: no ids.
    assert!(!text.contains("device-A") && !text.contains("t1"), "{text}");
    server.shutdown().await;
}
