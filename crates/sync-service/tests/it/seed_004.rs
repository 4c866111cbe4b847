//! Seed 004's two bulk-sync requests, sent as the seed writes them to
//! `POST /api/visitors/bulk-sync`, and its responses checked field by
//! field. The server's clock is set to the seed's times so that even
//! `syncTimestamp` is the seed's.
//!
//! The seed shows the update of `uuid-existing-456` coming back with status
//! `conflict` and both sides: that is the `manual` strategy (every other
//! strategy resolves the conflict and answers `merged`). It is reached
//! either by configuring the collection or by the request's `strategy`.

use std::sync::Arc;

use serde_json::{Value, json};
use sync_core::{ManualClock, Strategy};
use sync_service::config::CollectionSettings;

use crate::support::{TestServer, at, keys};

/// "Simple Create Operation": the request, with the seed's `localId`.
fn simple_create_request() -> Value {
    json!({
      "operations": [{
        "action": "create",
        "localId": "local_123456",
        "timestamp": "2023-12-01T10:30:00.000Z",
        "data": {
          "name": "John Smith",
          "company": "Tech Corp",
          "email": "john@techcorp.com",
          "interests": ["technology", "innovation"],
          "captureMethod": "business_card",
          "capturedAt": "2023-12-01T10:30:00.000Z"
        }
      }],
      "lastSyncTimestamp": "2023-12-01T09:00:00.000Z"
    })
}

/// "Bulk Mixed Operations": the request.
fn bulk_mixed_request() -> Value {
    json!({
      "operations": [
        {
          "action": "create",
          "localId": "local_001",
          "timestamp": "2023-12-01T10:30:00.000Z",
          "data": {
            "name": "Alice Johnson",
            "company": "Innovation Labs",
            "interests": ["AI", "machine learning"],
            "captureMethod": "event_badge",
            "capturedAt": "2023-12-01T10:30:00.000Z"
          }
        },
        {
          "action": "update",
          "localId": "local_002",
          "serverId": "uuid-existing-456",
          "timestamp": "2023-12-01T11:00:00.000Z",
          "data": {
            "title": "Senior Developer",
            "interests": ["technology", "programming", "AI"]
          }
        },
        {
          "action": "delete",
          "localId": "local_003",
          "serverId": "uuid-to-delete-789",
          "timestamp": "2023-12-01T11:15:00.000Z"
        }
      ],
      "lastSyncTimestamp": "2023-12-01T09:00:00.000Z"
    })
}

/// The seed's conflict data; `conflictFields` come sorted.
fn seed_conflict_data() -> Value {
    json!({
      "clientData": {
        "title": "Senior Developer",
        "interests": ["technology", "programming", "AI"]
      },
      "serverData": {
        "title": "Lead Developer",
        "interests": ["technology", "leadership"]
      },
      "conflictFields": ["interests", "title"]
    })
}

/// Checks that `actual` carries every field of the seed's `seed` with the
/// seed's value, and beside them exactly the `extensions` this server adds
/// (`docs/protocol.md`, "Bulk sync").
fn check_entry(actual: &Value, seed: &Value, extensions: &[&str]) {
    for (key, value) in seed.as_object().expect("an object") {
        assert_eq!(&actual[key], value, "{key} in {actual}");
    }
    let mut expected: Vec<String> = keys(seed);
    expected.extend(extensions.iter().map(|k| (*k).to_owned()));
    expected.sort();
    assert_eq!(keys(actual), expected, "{actual}");
}

/// Checks a whole response: the envelope, then each result and conflict.
fn check_response(
    actual: &Value,
    seed: &Value,
    result_extensions: &[&[&str]],
    conflict_extensions: &[&str],
) {
    let envelope = |value: &Value| {
        let mut value = value.clone();
        let object = value.as_object_mut().expect("an object");
        object.remove("results");
        object.remove("conflicts");
        value
    };
    check_entry(&envelope(actual), &envelope(seed), &["cursor", "hasMore"]);
    assert_eq!(actual["cursor"], Value::Null, "no cursor was sent");
    assert_eq!(actual["hasMore"], false);
    let results = actual["results"].as_array().expect("results");
    let seed_results = seed["results"].as_array().expect("seed results");
    assert_eq!(results.len(), seed_results.len(), "{actual}");
    for ((result, seed), extensions) in results.iter().zip(seed_results).zip(result_extensions) {
        check_entry(result, seed, extensions);
    }
    let conflicts = actual["conflicts"].as_array().expect("conflicts");
    let seed_conflicts = seed["conflicts"].as_array().expect("seed conflicts");
    assert_eq!(conflicts.len(), seed_conflicts.len(), "{actual}");
    for (conflict, seed) in conflicts.iter().zip(seed_conflicts) {
        check_entry(conflict, seed, conflict_extensions);
    }
}

/// The documents the seed's update and delete refer to, written at 08:00
/// (before the client's last sync at 09:00), then the update's document
/// edited online by another device at 10:00.
async fn prepare(server: &TestServer, clock: &ManualClock) {
    let api = server.session(None);
    clock.set(at("2023-12-01T08:00:00.000Z"));
    api.create(
        "default",
        "visitors",
        "uuid-existing-456",
        json!({"name": "Bob Lee", "company": "Acme", "title": "Developer",
               "interests": ["technology"]}),
        "kiosk-1",
    )
    .await;
    api.create(
        "default",
        "visitors",
        "uuid-to-delete-789",
        json!({"name": "Carol White", "company": "Old Corp"}),
        "kiosk-1",
    )
    .await;
    clock.set(at("2023-12-01T10:00:00.000Z"));
    let edit = api
        .sync(json!({
            "deviceId": "office-desktop",
            "operations": [{
                "action": "update", "collection": "visitors", "id": "uuid-existing-456",
                "baseVersion": 1,
                "data": {"title": "Lead Developer", "interests": ["technology", "leadership"]}
            }]
        }))
        .await;
    assert_eq!(edit["results"][0]["status"], "success", "{edit}");
    assert_eq!(edit["results"][0]["version"], 2, "{edit}");
}

/// Runs both seed requests against a server where `manual` comes from the
/// collection's settings (`per_request` false) or from the request.
async fn seed_requests(per_request: bool) {
    let clock = Arc::new(ManualClock::new(at("2023-12-01T08:00:00.000Z")));
    let server = TestServer::start_at(&clock, |config| {
        if !per_request {
            config.collections.insert(
                "visitors".into(),
                CollectionSettings {
                    strategy: Some(Strategy::Manual),
                    ..CollectionSettings::default()
                },
            );
        }
    })
    .await;
    prepare(&server, &clock).await;
    let api = server.session(None);

    // 1. Simple Create Operation, answered at the seed's 10:35.
    clock.set(at("2023-12-01T10:35:00.000Z"));
    let response = server
        .post_json("/api/visitors/bulk-sync", &simple_create_request())
        .await
        .ok();
    let server_id = response["results"][0]["serverId"]
        .as_str()
        .expect("a server id for the create")
        .to_owned();
    assert_eq!(server_id.len(), 36, "a generated UUID: {server_id}");
    check_response(
        &response,
        &json!({
          "success": true,
          "results": [{
            "localId": "local_123456",
            "serverId": server_id,
            "action": "create",
            "status": "success"
          }],
          "conflicts": [],
          "errors": [],
          "syncTimestamp": "2023-12-01T10:35:00.000Z"
        }),
        &[&["opId", "version", "seq"]],
        &[],
    );
    assert_eq!(response["results"][0]["version"], 1);
    let created = api.document("default", "visitors", &server_id).await;
    assert_eq!(
        created["data"],
        simple_create_request()["operations"][0]["data"]
    );

    // 2. Bulk Mixed Operations, answered at the seed's 11:20.
    clock.set(at("2023-12-01T11:20:00.000Z"));
    let mut request = bulk_mixed_request();
    if per_request {
        request["strategy"] = json!("manual");
    }
    let response = server
        .post_json("/api/visitors/bulk-sync", &request)
        .await
        .ok();
    let new_id = response["results"][0]["serverId"]
        .as_str()
        .expect("a server id for the create")
        .to_owned();
    assert_ne!(new_id, server_id);
    check_response(
        &response,
        &json!({
          "success": true,
          "results": [
            {
              "localId": "local_001",
              "serverId": new_id,
              "action": "create",
              "status": "success"
            },
            {
              "localId": "local_002",
              "serverId": "uuid-existing-456",
              "action": "update",
              "status": "conflict",
              "conflictData": seed_conflict_data()
            },
            {
              "localId": "local_003",
              "serverId": "uuid-to-delete-789",
              "action": "delete",
              "status": "success"
            }
          ],
          "conflicts": [
            {
              "localId": "local_002",
              "serverId": "uuid-existing-456",
              "conflictData": seed_conflict_data()
            }
          ],
          "errors": [],
          "syncTimestamp": "2023-12-01T11:20:00.000Z"
        }),
        &[
            &["opId", "version", "seq"],
            &["opId", "version", "conflictId", "strategy"],
            &["opId", "version", "seq"],
        ],
        &[
            "id",
            "strategy",
            "status",
            "resolvedData",
            "namespace",
            "collection",
            "opId",
            "user",
            "createdAt",
        ],
    );
    let (results, conflict) = (&response["results"], &response["conflicts"][0]);
    // The pending update changed nothing; the others each made a version.
    assert_eq!(
        [
            &results[0]["version"],
            &results[1]["version"],
            &results[2]["version"]
        ],
        [&json!(1), &json!(2), &json!(2)]
    );
    assert_eq!(results[1]["strategy"], "manual");
    assert_eq!(conflict["id"], results[1]["conflictId"]);
    assert_eq!(conflict["opId"], results[1]["opId"]);
    assert_eq!(conflict["strategy"], "manual");
    assert_eq!(conflict["status"], "pending");
    assert_eq!(conflict["resolvedData"], Value::Null);
    assert_eq!(conflict["namespace"], "default");
    assert_eq!(conflict["collection"], "visitors");
    assert_eq!(conflict["user"], "anonymous");
    assert_eq!(conflict["createdAt"], "2023-12-01T11:20:00.000Z");

    // What the store holds now.
    let alice = api.document("default", "visitors", &new_id).await;
    assert_eq!(alice["data"], bulk_mixed_request()["operations"][0]["data"]);
    let existing = api
        .document("default", "visitors", "uuid-existing-456")
        .await;
    assert_eq!(existing["version"], 2);
    assert_eq!(
        existing["data"],
        json!({"name": "Bob Lee", "company": "Acme", "title": "Lead Developer",
               "interests": ["technology", "leadership"]})
    );
    let deleted = api
        .document("default", "visitors", "uuid-to-delete-789")
        .await;
    assert_eq!(
        [&deleted["deleted"], &deleted["version"], &deleted["data"]],
        [&json!(true), &json!(2), &json!({})]
    );
    let pending = api.get_json("/v1/conflicts?status=pending").await.ok();
    assert_eq!(pending["conflicts"], json!([conflict]));
    server.shutdown().await;
}

#[tokio::test]
async fn seed_requests_with_manual_configured_for_the_collection() {
    seed_requests(false).await;
}

#[tokio::test]
async fn seed_requests_with_manual_asked_by_the_request() {
    seed_requests(true).await;
}

#[tokio::test]
async fn seed_update_under_the_default_strategy_merges() {
    let clock = Arc::new(ManualClock::new(at("2023-12-01T08:00:00.000Z")));
    let server = TestServer::start_at(&clock, |_| {}).await;
    prepare(&server, &clock).await;
    clock.set(at("2023-12-01T11:20:00.000Z"));
    let response = server
        .post_json("/api/visitors/bulk-sync", &bulk_mixed_request())
        .await
        .ok();
    let update = &response["results"][1];
    assert_eq!(update["status"], "merged", "{response}");
    assert_eq!(update["strategy"], "merge");
    assert_eq!(update["version"], 3);
    // Both arrays keep their additions; the titles do not merge as text,
    // so the later write (the client's 11:00 over the server's 10:00) wins.
    let merged = json!({
        "name": "Bob Lee", "company": "Acme", "title": "Senior Developer",
        "interests": ["technology", "programming", "AI", "leadership"]
    });
    assert_eq!(update["data"], merged);
    let conflict = &response["conflicts"][0];
    assert_eq!(conflict["status"], "resolved");
    assert_eq!(conflict["resolvedData"], merged);
    assert_eq!(conflict["conflictData"], seed_conflict_data());
    let stored = server
        .session(None)
        .document("default", "visitors", "uuid-existing-456")
        .await;
    assert_eq!(stored["data"], merged);
    server.shutdown().await;
}
