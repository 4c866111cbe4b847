//! The three conflict scenarios of the bulk-sync examples end to end: a
//! real concurrent edit (device A creates, device B edits on version 1,
//! then A edits on the stale version 1) through
//! `POST /api/visitors/bulk-sync`, decided by each strategy, and the manual
//! case resolved with `POST /v1/conflicts/{id}/resolve`; and the clamp that
//! keeps a device with a fast clock from winning every last-write-wins race
//! (`docs/protocol.md`, "Timestamps (HLC)").

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::{Value, json};
use sync_conflict::FieldRule;
use sync_core::ManualClock;
use sync_service::config::CollectionSettings;

use crate::support::{Session, TestServer, at};

/// Device A creates `id` with `base`; device B changes it to `server_edit`
/// at 10:25; then A, still on version 1, sends `client_edit` made at
/// 10:30. Returns A's bulk-sync response.
async fn concurrent_edit(
    api: &Session<'_>,
    id: &str,
    base: Value,
    server_edit: Value,
    client_edit: Value,
    strategy: Option<&str>,
) -> Value {
    let create = api
        .post_json(
            "/api/visitors/bulk-sync",
            &json!({
                "deviceId": "device-a",
                "operations": [{"action": "create", "id": id, "localId": "local_123",
                                "timestamp": "2023-12-01T10:00:00.000Z", "data": base}]
            }),
        )
        .await
        .ok();
    assert_eq!(create["results"][0]["version"], 1, "{create}");
    let online = api
        .post_json(
            "/api/visitors/bulk-sync",
            &json!({
                "deviceId": "device-b",
                "operations": [{"action": "update", "serverId": id, "baseVersion": 1,
                                "timestamp": "2023-12-01T10:25:00.000Z", "data": server_edit}]
            }),
        )
        .await
        .ok();
    assert_eq!(online["results"][0]["status"], "success", "{online}");
    assert_eq!(online["results"][0]["version"], 2, "{online}");
    let mut request = json!({
        "deviceId": "device-a",
        "operations": [{"action": "update", "localId": "local_123", "serverId": id,
                        "baseVersion": 1, "timestamp": "2023-12-01T10:30:00.000Z",
                        "data": client_edit}]
    });
    if let Some(strategy) = strategy {
        request["strategy"] = json!(strategy);
    }
    let response = api
        .post_json("/api/visitors/bulk-sync", &request)
        .await
        .ok();
    assert_eq!(response["success"], true, "{response}");
    assert_eq!(response["errors"], json!([]), "{response}");
    response
}

fn scenario_1_base() -> Value {
    json!({"name": "John Smith", "title": "Manager", "company": "Tech Corp"})
}

/// Scenario 1 under `strategy`, as document `id`.
async fn simple_field_conflict(api: &Session<'_>, id: &str, strategy: &str) -> Value {
    concurrent_edit(
        api,
        id,
        scenario_1_base(),
        json!({"title": "Director of Operations"}),
        json!({"title": "Senior Manager"}),
        Some(strategy),
    )
    .await
}

#[tokio::test]
async fn scenario_1_simple_field_conflict_under_each_strategy() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let conflict_data = json!({
        "clientData": {"title": "Senior Manager"},
        "serverData": {"title": "Director of Operations"},
        "conflictFields": ["title"]
    });
    // (strategy, resulting title, result status, version after)
    for (strategy, title, status, version) in [
        ("server_wins", "Director of Operations", "merged", 2),
        ("client_wins", "Senior Manager", "merged", 3),
        // The client's edit (10:30) is later than the server's (10:25).
        ("lww", "Senior Manager", "merged", 3),
        // The client added a word before the one the server replaced:
        // the text merge keeps both edits.
        ("merge", "Senior Director of Operations", "merged", 3),
        ("manual", "Director of Operations", "conflict", 2),
    ] {
        let id = format!("uuid-456-{strategy}");
        let response = simple_field_conflict(&api, &id, strategy).await;
        let result = &response["results"][0];
        assert_eq!(result["status"], status, "{strategy}: {response}");
        assert_eq!(result["strategy"], strategy, "{strategy}");
        assert_eq!(result["version"], version, "{strategy}");
        assert_eq!(result["localId"], "local_123", "{strategy}");
        assert_eq!(result["serverId"], id.as_str(), "{strategy}");
        let expected = json!({"name": "John Smith", "title": title, "company": "Tech Corp"});
        let conflicts = response["conflicts"].as_array().expect("conflicts");
        assert_eq!(conflicts.len(), 1, "{strategy}: {response}");
        let conflict = &conflicts[0];
        assert_eq!(conflict["conflictData"], conflict_data, "{strategy}");
        assert_eq!(conflict["baseData"], scenario_1_base(), "{strategy}");
        assert_eq!(conflict["deviceId"], "device-a", "{strategy}");
        assert_eq!(conflict["id"], result["conflictId"], "{strategy}");
        if strategy == "manual" {
            assert_eq!(conflict["status"], "pending");
            assert_eq!(conflict["resolvedData"], Value::Null);
            assert_eq!(result["conflictData"], conflict_data);
            assert_eq!(result.get("data"), None);
        } else {
            assert_eq!(conflict["status"], "resolved", "{strategy}");
            assert_eq!(conflict["resolvedData"], expected, "{strategy}");
            assert_eq!(conflict["strategy"], strategy, "{strategy}");
            assert_eq!(result["data"], expected, "{strategy}");
            assert_eq!(result.get("conflictData"), None, "{strategy}");
        }
        let stored = api.document("default", "visitors", &id).await;
        assert_eq!(stored["data"], expected, "{strategy}");
        assert_eq!(stored["version"], version, "{strategy}");
    }

    // Four were resolved by their strategy, the manual one is pending.
    let resolved = api.get_json("/v1/conflicts?status=resolved").await.ok();
    let mut strategies: Vec<&str> = resolved["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| c["strategy"].as_str().unwrap_or_default())
        .collect();
    strategies.sort_unstable();
    assert_eq!(strategies, ["client_wins", "lww", "merge", "server_wins"]);
    let pending = api.get_json("/v1/conflicts?status=pending").await.ok();
    let pending = pending["conflicts"].as_array().expect("conflicts").clone();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["serverId"], "uuid-456-manual");
    let id = pending[0]["id"].as_str().expect("an id").to_owned();
    let one = api.get_json(&format!("/v1/conflicts/{id}")).await.ok();
    assert_eq!(one, pending[0]);

    // Option 3, manual resolution with a user-chosen compromise.
    let resolved_data = json!({
        "name": "John Smith",
        "title": "Senior Director",
        "company": "Tech Corp",
        "notes": "Previous titles: Senior Manager (client), Director of Operations (server)"
    });
    let answer = api
        .post_json(
            &format!("/v1/conflicts/{id}/resolve"),
            &json!({"strategy": "manual", "resolvedData": resolved_data}),
        )
        .await
        .ok();
    assert_eq!(answer["conflict"]["status"], "resolved", "{answer}");
    assert_eq!(answer["conflict"]["resolvedData"], resolved_data);
    assert_eq!(answer["document"]["data"], resolved_data);
    assert_eq!(answer["document"]["version"], 3);
    let stored = api.document("default", "visitors", "uuid-456-manual").await;
    assert_eq!(stored["data"], resolved_data);
    let resolved = api.get_json("/v1/conflicts?status=resolved").await.ok();
    let entry = resolved["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .cloned()
        .expect("the resolved conflict is listed");
    assert_eq!(entry["resolvedData"], resolved_data);
    assert!(entry["resolvedAt"].is_string(), "{entry}");
    let pending = api.get_json("/v1/conflicts?status=pending").await.ok();
    assert_eq!(pending["conflicts"], json!([]));
    // It cannot be resolved twice.
    api.post_json(
        &format!("/v1/conflicts/{id}/resolve"),
        &json!({"strategy": "server_wins"}),
    )
    .await
    .assert_error(409, "conflict");
    // The resolution is a change every client learns of.
    let history = api
        .get_json("/v1/ns/default/visitors/uuid-456-manual/history")
        .await
        .ok();
    let versions = history["versions"].as_array().expect("versions");
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[2]["opId"], format!("resolve-{id}").as_str());
    // Resolved when the resolving change was made.
    let resolved_at = entry["resolvedAt"].as_str().expect("resolvedAt");
    assert!(
        versions[2]["timestamp"]
            .as_str()
            .is_some_and(|time| time.starts_with(resolved_at)),
        "{entry} {}",
        versions[2]
    );
    server.shutdown().await;
}

#[tokio::test]
async fn scenario_1_pending_conflicts_resolved_by_server_wins_and_client_wins() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    // Options 1 and 2: the server computes the document from the strategy.
    for (strategy, title) in [
        ("server_wins", "Director of Operations"),
        ("client_wins", "Senior Manager"),
    ] {
        let id = format!("uuid-456-resolve-{strategy}");
        let response = simple_field_conflict(&api, &id, "manual").await;
        let conflict_id = response["conflicts"][0]["id"].as_str().expect("an id");
        let answer = api
            .post_json(
                &format!("/v1/conflicts/{conflict_id}/resolve"),
                &json!({"strategy": strategy}),
            )
            .await
            .ok();
        let expected = json!({"name": "John Smith", "title": title, "company": "Tech Corp"});
        assert_eq!(answer["conflict"]["status"], "resolved", "{strategy}");
        assert_eq!(answer["conflict"]["resolvedData"], expected, "{strategy}");
        assert_eq!(answer["document"]["data"], expected, "{strategy}");
        // Keeping the server's side is still recorded as a new version.
        assert_eq!(answer["document"]["version"], 3, "{strategy}");
    }
    // `manual` without the document, and an unknown conflict.
    let response = simple_field_conflict(&api, "uuid-456-bad-resolve", "manual").await;
    let conflict_id = response["conflicts"][0]["id"].as_str().expect("an id");
    api.post_json(
        &format!("/v1/conflicts/{conflict_id}/resolve"),
        &json!({"strategy": "manual"}),
    )
    .await
    .assert_error(400, "invalid_request");
    api.post_json(
        "/v1/conflicts/no-such-conflict/resolve",
        &json!({"strategy": "server_wins"}),
    )
    .await
    .assert_error(404, "not_found");
    server.shutdown().await;
}

#[tokio::test]
async fn scenario_2_array_merge() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let response = concurrent_edit(
        &api,
        "uuid-789",
        json!({"name": "John Smith", "interests": ["technology", "innovation"]}),
        json!({"interests": ["technology", "innovation", "leadership", "management"]}),
        json!({"interests": ["technology", "innovation", "AI", "blockchain"]}),
        None,
    )
    .await;
    let interests = json!([
        "technology",
        "innovation",
        "AI",
        "blockchain",
        "leadership",
        "management"
    ]);
    let result = &response["results"][0];
    assert_eq!(result["status"], "merged", "{response}");
    assert_eq!(result["strategy"], "merge");
    assert_eq!(result["data"]["interests"], interests);
    let conflict = &response["conflicts"][0];
    assert_eq!(
        conflict["conflictData"]["conflictFields"],
        json!(["interests"])
    );
    assert_eq!(conflict["status"], "resolved");
    let stored = api.document("default", "visitors", "uuid-789").await;
    assert_eq!(
        stored["data"],
        json!({"name": "John Smith", "interests": interests})
    );
    assert_eq!(stored["version"], 3);
    server.shutdown().await;
}

#[tokio::test]
async fn scenario_3_complex_multi_field_conflict_with_field_rules() {
    let server = TestServer::start(|config| {
        config.collections.insert(
            "visitors".into(),
            CollectionSettings {
                fields: BTreeMap::from([
                    ("title".to_owned(), FieldRule::ServerWins),
                    ("phone".to_owned(), FieldRule::ClientWins),
                    ("interests".to_owned(), FieldRule::Union),
                    ("notes".to_owned(), FieldRule::Concat),
                ]),
                ..CollectionSettings::default()
            },
        );
    })
    .await;
    let api = server.session(None);
    let client = json!({
        "title": "VP Marketing",
        "phone": "+1-555-0123",
        "interests": ["marketing", "digital", "analytics"],
        "notes": "Follow up on Q1 campaign discussion"
    });
    let online = json!({
        "title": "Chief Marketing Officer",
        "phone": "+1-555-0124",
        "interests": ["marketing", "strategy", "branding"],
        "notes": "Interested in our new product line"
    });
    let response = concurrent_edit(
        &api,
        "uuid-101112",
        json!({"name": "Dana Scott", "title": "Marketing Manager", "phone": "+1-555-0100",
               "interests": ["marketing"], "notes": ""}),
        online.clone(),
        client.clone(),
        None,
    )
    .await;
    let resolved = json!({
        "name": "Dana Scott",
        "title": "Chief Marketing Officer",
        "phone": "+1-555-0123",
        "interests": ["marketing", "digital", "analytics", "strategy", "branding"],
        "notes": "Follow up on Q1 campaign discussion. Interested in our new product line"
    });
    let result = &response["results"][0];
    assert_eq!(result["status"], "merged", "{response}");
    assert_eq!(result["data"], resolved);
    let conflict = &response["conflicts"][0];
    assert_eq!(
        conflict["conflictData"],
        json!({
            "clientData": client,
            "serverData": online,
            "conflictFields": ["interests", "notes", "phone", "title"]
        })
    );
    assert_eq!(conflict["status"], "resolved");
    assert_eq!(conflict["resolvedData"], resolved);
    let stored = api.document("default", "visitors", "uuid-101112").await;
    assert_eq!(stored["data"], resolved);
    server.shutdown().await;
}

#[tokio::test]
async fn a_clock_far_ahead_does_not_win_last_write_wins() {
    let clock = Arc::new(ManualClock::new(at("2023-12-01T12:00:00.000Z")));
    let server = TestServer::start_at(&clock, |_| {}).await;
    let api = server.session(None);
    api.create(
        "default",
        "visitors",
        "v-1",
        json!({"title": "Manager"}),
        "device-a",
    )
    .await;
    // A device whose clock runs an hour ahead: clamped to the server's time.
    let ahead = api
        .sync(json!({"deviceId": "device-fast", "operations": [
            {"action": "update", "collection": "visitors", "id": "v-1", "baseVersion": 1,
             "timestamp": "2023-12-01T13:00:00.000Z", "data": {"title": "from the future"}}
        ]}))
        .await;
    assert_eq!(ahead["results"][0]["status"], "success", "{ahead}");
    // Two minutes later an honest device's concurrent edit is the later one.
    clock.set(at("2023-12-01T12:02:00.000Z"));
    let honest = api
        .sync(
            json!({"deviceId": "device-b", "strategy": "lww", "operations": [
                {"action": "update", "collection": "visitors", "id": "v-1", "baseVersion": 1,
                 "timestamp": "2023-12-01T12:02:00.000Z", "data": {"title": "honest"}}
            ]}),
        )
        .await;
    assert_eq!(honest["results"][0]["status"], "merged", "{honest}");
    let stored = api.document("default", "visitors", "v-1").await;
    assert_eq!(stored["data"], json!({"title": "honest"}));
    server.shutdown().await;
}
