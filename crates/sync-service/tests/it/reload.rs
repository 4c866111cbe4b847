//! Settings reloaded in a running server (the binary, SIGHUP and
//! `POST /v1/admin/reload`): a collection's strategy and the limits change
//! at once, an open WebSocket stays open, and a file that does not validate
//! or changes a setting that needs a restart is refused with the running
//! settings kept.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{ChildServer, Session, WsClient};

/// The same field edited on both sides of `id`: the server's edit first,
/// then the client's from the same base; the client's result.
async fn concurrent_title_edit(api: &Session<'_>, id: &str) -> Value {
    let write = |operation: Value| async move {
        api.sync(json!({"operations": [operation]})).await["results"][0].clone()
    };
    write(json!({"action": "create", "collection": "notes", "id": id,
                 "data": {"title": "draft"}}))
    .await;
    write(
        json!({"action": "update", "collection": "notes", "id": id, "baseVersion": 1,
                 "data": {"title": "server"}}),
    )
    .await;
    write(
        json!({"action": "update", "collection": "notes", "id": id, "baseVersion": 1,
                 "data": {"title": "client"}}),
    )
    .await
}

fn settings(path: &Path, strategy: &str, operations_max: u32) {
    std::fs::write(
        path,
        format!(
            "[limits]\noperations_per_request_max = {operations_max}\n\n\
             [collections.notes]\nstrategy = \"{strategy}\"\n"
        ),
    )
    .expect("the settings file");
}

/// Sends SIGHUP and waits until `check` holds, for at most 10 s.
async fn hang_up_until(server: &ChildServer, mut check: impl AsyncFnMut() -> bool) {
    let sent = Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "not reloaded: {}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sighup_and_the_admin_endpoint_reload_strategies_and_limits() {
    let dir = tempfile::tempdir().expect("a directory");
    let file = dir.path().join("sync.toml");
    settings(&file, "server_wins", 1_000);
    let path = file.display().to_string();
    let server = ChildServer::start(&[("SYNC_CONFIG", path.as_str())]).await;
    let api = server.session(None);
    let mut socket = WsClient::open(server.addr(), crate::support::Credential::None, None)
        .await
        .expect("a WebSocket");

    let first = concurrent_title_edit(&api, "n1").await;
    assert_eq!(first["strategy"], "server_wins", "{first}");
    let three = json!({"operations": [
        {"action": "create", "collection": "other", "id": "a", "data": {}},
        {"action": "create", "collection": "other", "id": "b", "data": {}},
        {"action": "create", "collection": "other", "id": "c", "data": {}}]});
    assert_eq!(api.post_json("/v1/sync", &three).await.status, 200);

    // SIGHUP with new settings: both in force at once.
    settings(&file, "client_wins", 2);
    hang_up_until(&server, async || {
        api.post_json("/v1/sync", &three).await.status == 413
    })
    .await;
    let second = concurrent_title_edit(&api, "n2").await;
    assert_eq!(second["strategy"], "client_wins", "{second}");
    let pong = socket.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong", "the socket stayed open: {pong}");

    // Settings that do not parse, then a change that needs a restart: both
    // refused, the running settings kept.
    std::fs::write(&file, "[limits]\noperations_per_request_max = \"many\"\n").unwrap();
    let refused = api.post_json("/v1/admin/reload", &json!({})).await;
    refused.assert_error(400, "invalid_request");
    std::fs::write(
        &file,
        "node_name = \"another\"\n[collections.notes]\nstrategy = \"merge\"\n",
    )
    .unwrap();
    let refused = api.post_json("/v1/admin/reload", &json!({})).await;
    refused.assert_error(400, "invalid_request");
    assert!(
        refused.body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("node_name")),
        "{}",
        refused.body
    );
    hang_up_until(&server, async || server.output().contains("reload refused")).await;
    let third = concurrent_title_edit(&api, "n3").await;
    assert_eq!(third["strategy"], "client_wins", "{third}");

    // And through the endpoint, with valid settings.
    settings(&file, "server_wins", 1_000);
    let reloaded = api.post_json("/v1/admin/reload", &json!({})).await;
    assert_eq!(reloaded.ok(), json!({"reloaded": true}));
    assert_eq!(api.post_json("/v1/sync", &three).await.status, 200);
    let pong = socket.request(json!({"type": "ping"})).await;
    assert_eq!(pong["type"], "pong", "{pong}");
}
