//! Branches of a document against the real server, on sled and (with
//! `SYNC_TEST_DATABASE_URL`) PostgreSQL: fork, edits on the branch that
//! the document's subscribers never see, a merge without and with a
//! concurrent edit of the document, a `manual` merge left pending, branch
//! subscriptions, list and delete, and the errors.

use std::time::Duration;

use serde_json::{Value, json};
use sync_core::Strategy;
use sync_service::config::{CollectionSettings, Config, StoreKind};

use crate::support::{Reply, Session, TestServer, database_url};

/// Runs `scenario` on a sled server, then on a PostgreSQL one when the
/// database is configured, each with `tweak` applied.
async fn on_both_stores<F>(tweak: fn(&mut Config), scenario: F)
where
    F: AsyncFn(&TestServer),
{
    let server = TestServer::start(tweak).await;
    scenario(&server).await;
    drop(server);
    let Some(url) = database_url("branch tests on PostgreSQL") else {
        return;
    };
    let schema = format!("branches_{}_{}", std::process::id(), rand_suffix());
    let server = TestServer::start({
        let (url, schema) = (url.clone(), schema.clone());
        move |config: &mut Config| {
            config.store = StoreKind::Postgres;
            config.database_url = Some(url);
            config.database_schema = schema;
            tweak(config);
        }
    })
    .await;
    scenario(&server).await;
    server.shutdown().await;
    sync_store::PgStore::drop_schema_at(&url, &schema)
        .await
        .expect("the test schema is dropped");
}

fn rand_suffix() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos().into())
}

async fn write(api: &Session<'_>, op: Value) -> Value {
    let response = api
        .sync(json!({"deviceId": "phone", "operations": [op]}))
        .await;
    response["results"][0].clone()
}

/// The body of a `201 Created`.
fn created(reply: Reply) -> Value {
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

fn no_frame_within(frame: Option<Value>) {
    assert!(frame.is_none(), "unexpected frame {frame:?}");
}

#[tokio::test]
async fn fork_edit_and_merge_reach_the_document_only_at_the_merge() {
    on_both_stores(
        |_| {},
        async |server: &TestServer| {
            let api = server.session(None);
            let made = write(
                &api,
                json!({"opId": "n1", "action": "create", "collection": "notes", "id": "n1",
                   "data": {"title": "Plan", "body": "one", "tags": ["a"]}}),
            )
            .await;
            assert_eq!(made["status"], "success", "{made}");

            // A subscriber of the document's collection.
            let mut main = server.ws_client("watcher").await;
            main.hello("watcher").await;
            main.subscribe(json!({"type": "subscribe", "collection": "notes"}))
                .await;
            let initial = main.next().await;
            assert_eq!(initial["recordId"], "n1", "{initial}");

            let forked = api
                .post_json(
                    "/v1/ns/default/notes/n1/branches",
                    &json!({"name": "draft"}),
                )
                .await;
            let forked = created(forked);
            assert_eq!(forked["branch"]["forkVersion"], 1);
            assert_eq!(forked["branch"]["collection"], "notes");
            assert_eq!(forked["document"]["collection"], "notes@draft");
            assert_eq!(forked["document"]["data"]["title"], "Plan");
            api.post_json(
                "/v1/ns/default/notes/n1/branches",
                &json!({"name": "draft"}),
            )
            .await
            .assert_error(409, "conflict");

            // A subscriber of the branch, by name.
            let mut drafter = server.ws_client("drafter").await;
            drafter.hello("drafter").await;
            drafter
                .subscribe(json!({"type": "subscribe", "collection": "notes", "branch": "draft"}))
                .await;
            assert_eq!(drafter.next().await["data"]["body"], "one");

            // Edits on the branch: by the `branch` field and by its address.
            let on_branch = write(
                &api,
                json!({"opId": "b1", "action": "update", "collection": "notes", "branch": "draft",
                   "id": "n1", "baseVersion": 1, "data": {"body": "one, rewritten"}}),
            )
            .await;
            assert_eq!(on_branch["status"], "success", "{on_branch}");
            let by_address = write(
                &api,
                json!({"opId": "b2", "action": "update", "collection": "notes@draft",
                   "id": "n1", "baseVersion": 2, "data": {"tags": ["a", "b"]}}),
            )
            .await;
            assert_eq!(by_address["status"], "success", "{by_address}");
            let pushed = drafter.next().await;
            assert_eq!(pushed["collection"], "notes@draft", "{pushed}");
            assert_eq!(pushed["data"]["body"], "one, rewritten");
            assert_eq!(drafter.next().await["data"]["tags"], json!(["a", "b"]));
            no_frame_within(main.try_next(Duration::from_millis(300)).await);
            assert_eq!(api.document("default", "notes", "n1").await["version"], 1);
            let feed = api.get_json("/v1/changes").await.ok();
            assert!(
                feed["changes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|c| c["collection"] == "notes"),
                "the plain feed leaves branches out: {feed}"
            );
            let history = api
                .get_json("/v1/ns/default/notes@draft/n1/history")
                .await
                .ok();
            assert_eq!(history["versions"].as_array().unwrap().len(), 3);

            // The document moves on meanwhile, in another field.
            let concurrent = write(
                &api,
                json!({"opId": "m1", "action": "update", "collection": "notes", "id": "n1",
                   "baseVersion": 1, "data": {"title": "Plan B"}}),
            )
            .await;
            assert_eq!(concurrent["status"], "success", "{concurrent}");
            assert_eq!(main.next().await["data"]["title"], "Plan B");

            let merged = api
                .post_json("/v1/ns/default/notes/n1/branches/draft/merge", &json!({}))
                .await
                .ok();
            // The two sides changed different fields: no conflict.
            assert_eq!(merged["result"]["status"], "success", "{merged}");
            let expected = json!({"title": "Plan B", "body": "one, rewritten", "tags": ["a", "b"]});
            assert_eq!(merged["document"]["data"], expected);
            assert_eq!(merged["document"]["version"], 3);
            assert_eq!(
                merged["branch"]["forkVersion"], 3,
                "the branch took the merge in"
            );
            let seen = main.next().await;
            assert_eq!(
                (&seen["data"], &seen["version"]),
                (&expected, &json!(3)),
                "{seen}"
            );
            // The branch now holds the merged document too.
            assert_eq!(drafter.next().await["data"]["title"], "Plan B");
            let branch = api
                .get_json("/v1/ns/default/notes/n1/branches/draft")
                .await
                .ok();
            assert_eq!(branch["document"]["data"], expected);

            // Merging again changes nothing; more branch edits merge on top.
            let again = api
                .post_json("/v1/ns/default/notes/n1/branches/draft/merge", &json!({}))
                .await
                .ok();
            assert_eq!(again["document"]["version"], 3, "{again}");
            write(
                &api,
                json!({"opId": "b3", "action": "update", "collection": "notes@draft",
                   "id": "n1", "data": {"tags": null}}),
            )
            .await;
            let untagged = drafter.next().await;
            assert!(untagged["data"].get("tags").is_none(), "{untagged}");
            let second = api
                .post_json("/v1/ns/default/notes/n1/branches/draft/merge", &json!({}))
                .await
                .ok();
            assert_eq!(second["result"]["status"], "success", "{second}");
            assert_eq!(
                second["document"]["data"],
                json!({"title": "Plan B", "body": "one, rewritten"})
            );

            // Listing and deleting.
            api.post_json(
                "/v1/ns/default/notes/n1/branches",
                &json!({"name": "old", "version": 1}),
            )
            .await;
            let list = api.get_json("/v1/ns/default/notes/n1/branches").await.ok();
            let names: Vec<&str> = list["branches"]
                .as_array()
                .unwrap()
                .iter()
                .map(|b| b["name"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["draft", "old"]);
            let old = api
                .get_json("/v1/ns/default/notes/n1/branches/old")
                .await
                .ok();
            assert_eq!(
                old["document"]["data"]["title"], "Plan",
                "forked at version 1"
            );
            let deleted = api.delete("/v1/ns/default/notes/n1/branches/draft").await;
            assert_eq!(deleted.status, 204);
            let gone = drafter.next().await;
            assert_eq!(gone["type"], "delete", "{gone}");
            api.get_json("/v1/ns/default/notes/n1/branches/draft")
                .await
                .assert_error(404, "not_found");
            let refused = write(
                &api,
                json!({"opId": "b4", "action": "update", "collection": "notes@draft",
                   "id": "n1", "data": {"x": 1}}),
            )
            .await;
            assert_eq!(refused["status"], "error", "{refused}");
            assert_eq!(refused["error"]["code"], "not_found");
            // A fork of the same name starts over from the document.
            let reforked = api
                .post_json(
                    "/v1/ns/default/notes/n1/branches",
                    &json!({"name": "draft"}),
                )
                .await;
            let reforked = created(reforked);
            assert_eq!(reforked["document"]["data"], second["document"]["data"]);
        },
    )
    .await;
}

#[tokio::test]
async fn a_manual_collection_leaves_a_conflicting_merge_pending() {
    on_both_stores(
        |config| {
            config.collections.insert(
                "contracts".into(),
                CollectionSettings {
                    strategy: Some(Strategy::Manual),
                    ..CollectionSettings::default()
                },
            );
        },
        async |server: &TestServer| {
            let api = server.session(None);
            write(
                &api,
                json!({"opId": "c1", "action": "create", "collection": "contracts", "id": "k1",
                       "data": {"price": 100}}),
            )
            .await;
            api.post_json(
                "/v1/ns/default/contracts/k1/branches",
                &json!({"name": "offer"}),
            )
            .await;
            write(
                &api,
                json!({"opId": "c2", "action": "update", "collection": "contracts",
                       "branch": "offer", "id": "k1", "baseVersion": 1, "data": {"price": 90}}),
            )
            .await;
            write(
                &api,
                json!({"opId": "c3", "action": "update", "collection": "contracts", "id": "k1",
                       "baseVersion": 1, "data": {"price": 120}}),
            )
            .await;
            let merged = api
                .post_json(
                    "/v1/ns/default/contracts/k1/branches/offer/merge",
                    &json!({}),
                )
                .await
                .ok();
            assert_eq!(merged["result"]["status"], "conflict", "{merged}");
            assert_eq!(merged["conflict"]["status"], "pending");
            assert_eq!(merged["document"]["data"]["price"], 120, "unchanged");
            assert_eq!(merged["branch"]["forkVersion"], 1, "the fork point stays");
            let id = merged["conflict"]["id"].as_str().unwrap();
            let resolved = api
                .post_json(
                    &format!("/v1/conflicts/{id}/resolve"),
                    &json!({"resolvedData": {"price": 95}}),
                )
                .await
                .ok();
            assert_eq!(resolved["document"]["data"]["price"], 95, "{resolved}");
        },
    )
    .await;
}

#[tokio::test]
async fn bad_branch_requests_are_refused_and_change_nothing() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    write(
        &api,
        json!({"opId": "t1", "action": "create", "collection": "todos", "id": "t1",
               "data": {"n": 1}}),
    )
    .await;
    let head = api.head().await;
    for (path, body, status, code) in [
        (
            "/v1/ns/default/todos/none/branches",
            json!({"name": "b"}),
            404,
            "not_found",
        ),
        (
            "/v1/ns/default/todos/t1/branches",
            json!({"name": "b c"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/ns/default/todos/t1/branches",
            json!({}),
            400,
            "invalid_request",
        ),
        (
            "/v1/ns/default/todos/t1/branches",
            json!({"name": "b", "version": 9}),
            404,
            "not_found",
        ),
        (
            "/v1/ns/default/todos/t1/branches",
            json!({"name": "b", "extra": 1}),
            400,
            "invalid_request",
        ),
        (
            "/v1/ns/default/todos@x/t1/branches",
            json!({"name": "b"}),
            400,
            "invalid_request",
        ),
        (
            "/v1/ns/default/todos/t1/branches/none/merge",
            json!({}),
            404,
            "not_found",
        ),
    ] {
        api.post_json(path, &body).await.assert_error(status, code);
    }
    api.delete("/v1/ns/default/todos/t1/branches/none")
        .await
        .assert_error(404, "not_found");
    let unknown = write(
        &api,
        json!({"opId": "t2", "action": "update", "collection": "todos", "branch": "none",
               "id": "t1", "data": {"n": 2}}),
    )
    .await;
    assert_eq!(unknown["error"]["code"], "not_found", "{unknown}");
    let list = api.get_json("/v1/ns/default/todos/t1/branches").await.ok();
    assert_eq!(list["branches"], json!([]));
    let doc = api.document("default", "todos", "t1").await;
    assert_eq!(
        (&doc["version"], &doc["data"]),
        (&json!(1), &json!({"n": 1}))
    );
    assert_eq!(api.head().await, head, "nothing was written");
}

#[tokio::test]
async fn a_merge_into_a_deleted_document_leaves_the_branch_alive() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    write(
        &api,
        json!({"opId": "d1", "action": "create", "collection": "notes", "id": "n1",
               "data": {"title": "Plan"}}),
    )
    .await;
    created(
        api.post_json(
            "/v1/ns/default/notes/n1/branches",
            &json!({"name": "draft"}),
        )
        .await,
    );
    let deleted = write(
        &api,
        json!({"opId": "d2", "action": "delete", "collection": "notes", "id": "n1",
               "baseVersion": 1}),
    )
    .await;
    assert_eq!(deleted["status"], "success", "{deleted}");
    write(
        &api,
        json!({"opId": "d3", "action": "update", "collection": "notes", "branch": "draft",
               "id": "n1", "baseVersion": 1, "data": {"title": "Plan, kept"}}),
    )
    .await;
    let merged = api
        .post_json("/v1/ns/default/notes/n1/branches/draft/merge", &json!({}))
        .await
        .ok();
    // Under `merge` the delete stands against a concurrent edit.
    assert_eq!(merged["document"]["deleted"], true, "{merged}");
    assert_eq!(merged["branch"]["forkVersion"], 1, "the fork point stays");
    let branch = api
        .get_json("/v1/ns/default/notes/n1/branches/draft")
        .await
        .ok();
    assert_eq!(branch["document"]["deleted"], false, "{branch}");
    assert_eq!(branch["document"]["data"]["title"], "Plan, kept");
}
