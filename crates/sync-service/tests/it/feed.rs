//! The change feed: pull in bulk sync, `GET /v1/changes` after a cursor
//! with `cursor=now`, paging, filters, foreign and malformed cursors, and
//! the long-poll that a write wakes.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{Session, TestServer, keys};

/// The `(namespace, collection, id, op)` of each change of a feed.
fn summary(feed: &Value) -> Vec<(String, String, String, String)> {
    feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            let field = |key: &str| c[key].as_str().unwrap_or_default().to_owned();
            (
                field("namespace"),
                field("collection"),
                field("id"),
                field("op"),
            )
        })
        .collect()
}

fn entry(ns: &str, collection: &str, id: &str, op: &str) -> (String, String, String, String) {
    (ns.into(), collection.into(), id.into(), op.into())
}

async fn write(api: &Session<'_>, ns: &str, collection: &str, id: &str) {
    api.create(ns, collection, id, json!({"title": id}), "writer")
        .await;
}

#[tokio::test]
async fn pull_returns_only_the_changes_after_the_cursor() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    write(&api, "default", "todos", "a").await;
    let after_a = api.head().await;
    write(&api, "default", "todos", "b").await;
    write(&api, "default", "notes", "n").await;

    let pull = api
        .post_json(
            "/api/todos/bulk-sync",
            &json!({"cursor": after_a, "pull": true, "deviceId": "reader", "operations": []}),
        )
        .await
        .ok();
    assert_eq!(summary(&pull), [entry("default", "todos", "b", "insert")]);
    assert_eq!(pull["cursor"], api.head().await.as_str());
    assert_eq!(pull["hasMore"], false);
    let change = &pull["changes"][0];
    assert_eq!(
        keys(change),
        [
            "collection",
            "data",
            "delta",
            "deviceId",
            "id",
            "namespace",
            "op",
            "opId",
            "seq",
            "timestamp",
            "user",
            "version"
        ]
    );
    assert_eq!(change["data"], json!({"title": "b"}));
    assert_eq!(change["delta"], json!({"title": "b"}));
    assert_eq!(change["deviceId"], "writer");
    assert_eq!(change["version"], 1);
    assert_eq!(change["seq"], 2);

    // A push with pull: the changes of others, not the request's own.
    let push = api
        .post_json(
            "/api/todos/bulk-sync",
            &json!({"cursor": after_a, "pull": true, "deviceId": "reader",
                    "operations": [{"action": "create", "id": "c", "data": {"title": "c"}}]}),
        )
        .await
        .ok();
    assert_eq!(push["results"][0]["status"], "success");
    assert_eq!(summary(&push), [entry("default", "todos", "b", "insert")]);
    assert_eq!(push["cursor"], api.head().await.as_str());

    // `/v1/sync` pulls across collections, or the ones named.
    let all = api
        .sync(json!({"cursor": after_a, "pull": true, "operations": []}))
        .await;
    assert_eq!(
        summary(&all),
        [
            entry("default", "todos", "b", "insert"),
            entry("default", "notes", "n", "insert"),
            entry("default", "todos", "c", "insert"),
        ]
    );
    let notes = api
        .sync(json!({"pull": true, "collections": ["notes"], "operations": []}))
        .await;
    assert_eq!(summary(&notes), [entry("default", "notes", "n", "insert")]);
    // Paged pull.
    let page = api
        .sync(json!({"pull": true, "limit": 2, "operations": []}))
        .await;
    assert_eq!(summary(&page).len(), 2);
    assert_eq!(page["hasMore"], true);
    server.shutdown().await;
}

#[tokio::test]
async fn the_change_feed_after_a_cursor_with_paging_and_filters() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let start = api.head().await;
    write(&api, "team-a", "todos", "a1").await;
    write(&api, "team-b", "todos", "b1").await;
    let middle = api.head().await;
    write(&api, "team-a", "notes", "a2").await;
    write(&api, "default", "todos", "d1").await;
    let head = api.head().await;
    assert_ne!(start, head);

    let everything = vec![
        entry("team-a", "todos", "a1", "insert"),
        entry("team-b", "todos", "b1", "insert"),
        entry("team-a", "notes", "a2", "insert"),
        entry("default", "todos", "d1", "insert"),
    ];
    let all = api.get_json("/v1/changes").await.ok();
    assert_eq!(summary(&all), everything);
    assert_eq!(all["cursor"], head.as_str());
    assert_eq!(all["hasMore"], false);
    let from_start = api
        .get_json(&format!("/v1/changes?cursor={start}"))
        .await
        .ok();
    assert_eq!(summary(&from_start), everything);
    let later = api
        .get_json(&format!("/v1/changes?cursor={middle}"))
        .await
        .ok();
    assert_eq!(summary(&later), everything[2..]);
    let at_head = api
        .get_json(&format!("/v1/changes?cursor={head}"))
        .await
        .ok();
    assert_eq!(at_head["changes"], json!([]));
    assert_eq!(at_head["cursor"], head.as_str());
    let now = api.get_json("/v1/changes?cursor=now").await.ok();
    assert_eq!(
        now,
        json!({"changes": [], "cursor": head, "hasMore": false})
    );

    // One change a page, following the cursors: each once, in log order.
    let mut cursor = start.clone();
    let mut paged = Vec::new();
    let mut seqs = Vec::new();
    for page_number in 0.. {
        assert!(page_number < 10, "paging does not end");
        let page = api
            .get_json(&format!("/v1/changes?cursor={cursor}&limit=1"))
            .await
            .ok();
        let changes = page["changes"].as_array().expect("changes");
        assert!(changes.len() <= 1, "{page}");
        seqs.extend(changes.iter().map(|c| c["seq"].as_u64().expect("a seq")));
        paged.extend(summary(&page));
        cursor = page["cursor"].as_str().expect("a cursor").to_owned();
        if page["hasMore"] == false {
            break;
        }
    }
    assert_eq!(paged, everything);
    assert_eq!(seqs, [1, 2, 3, 4]);
    assert_eq!(cursor, head);

    for (query, expected) in [
        ("namespace=team-a", vec![0, 2]),
        ("namespace=team-a,team-b", vec![0, 1, 2]),
        ("namespace=team-a&namespace=default", vec![0, 2, 3]),
        ("collection=notes", vec![2]),
        ("namespace=team-a&collection=todos", vec![0]),
        ("namespace=nobody", vec![]),
    ] {
        let feed = api
            .get_json(&format!("/v1/changes?cursor={start}&{query}"))
            .await
            .ok();
        let wanted: Vec<_> = expected.iter().map(|&i| everything[i].clone()).collect();
        assert_eq!(summary(&feed), wanted, "{query}");
        // Filtered readers still move to the head.
        assert_eq!(feed["cursor"], head.as_str(), "{query}");
    }
    server.shutdown().await;
}

#[tokio::test]
async fn foreign_and_malformed_cursors() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    write(&api, "default", "todos", "a").await;
    let foreign = "c1.0000000000000001.5";
    api.get_json(&format!("/v1/changes?cursor={foreign}"))
        .await
        .assert_error(410, "cursor_expired");
    api.post_json(
        "/api/todos/bulk-sync",
        &json!({"cursor": foreign, "pull": true, "operations": []}),
    )
    .await
    .assert_error(410, "cursor_expired");
    sync_fails(
        &api,
        json!({"cursor": foreign, "pull": true}),
        410,
        "cursor_expired",
    )
    .await;
    for malformed in [
        "garbage",
        "c1.0000000000000001",
        "c1.00000000000000ZZ.1",
        "-1",
    ] {
        api.get_json(&format!("/v1/changes?cursor={malformed}"))
            .await
            .assert_error(400, "invalid_request");
        sync_fails(
            &api,
            json!({"cursor": malformed, "pull": true}),
            400,
            "invalid_request",
        )
        .await;
    }
    for query in ["limit=many", "wait=soon", "limit=-1"] {
        api.get_json(&format!("/v1/changes?{query}"))
            .await
            .assert_error(400, "invalid_request");
    }
    server.shutdown().await;
}

/// `POST /v1/sync` with `body`, which must fail with `status` and `code`.
async fn sync_fails(api: &Session<'_>, body: Value, status: u16, code: &str) {
    api.post_json("/v1/sync", &body)
        .await
        .assert_error(status, code);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_is_woken_by_a_write() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let head = api.head().await;
    let url = server.url(&format!("/v1/changes?cursor={head}&wait=10"));
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        let response = reqwest::get(url).await.expect("the server answers");
        assert_eq!(response.status(), 200);
        let feed: Value = response.json().await.expect("a feed");
        (feed, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !poll.is_finished(),
        "the long-poll returned before any write"
    );
    let written = Instant::now();
    write(&api, "default", "todos", "wake-up").await;
    let (feed, elapsed) = poll.await.expect("the poll");
    assert_eq!(
        summary(&feed),
        [entry("default", "todos", "wake-up", "insert")]
    );
    assert_eq!(feed["cursor"], api.head().await.as_str());
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(
        written.elapsed() < Duration::from_secs(2),
        "woken {:?} after the write",
        written.elapsed()
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_without_news_returns_empty_after_the_wait() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    write(&api, "team-b", "todos", "before").await;
    let head = api.head().await;
    let started = Instant::now();
    let feed = api
        .get_json(&format!("/v1/changes?cursor={head}&wait=1"))
        .await
        .ok();
    let elapsed = started.elapsed();
    assert_eq!(
        feed,
        json!({"changes": [], "cursor": head, "hasMore": false})
    );
    assert!(elapsed >= Duration::from_millis(950), "took {elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");

    // A write the reader does not see does not end its wait, but its
    // cursor moves past it.
    let url = server.url(&format!(
        "/v1/changes?cursor={head}&wait=1&namespace=team-a"
    ));
    let started = Instant::now();
    let poll = tokio::spawn(async move {
        let feed: Value = reqwest::get(url)
            .await
            .expect("the server answers")
            .json()
            .await
            .expect("a feed");
        (feed, started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    write(&api, "team-b", "todos", "elsewhere").await;
    let (feed, elapsed) = poll.await.expect("the poll");
    assert_eq!(feed["changes"], json!([]), "{feed}");
    assert_eq!(feed["cursor"], api.head().await.as_str());
    assert!(elapsed >= Duration::from_millis(950), "took {elapsed:?}");
    server.shutdown().await;
}
