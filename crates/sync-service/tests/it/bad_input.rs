//! Hostile and broken input: each gets its documented status and a
//! `{"error": {"code", "message"}}` body, or a per-operation error; none
//! changes stored data, takes the server down or makes its memory grow with
//! what the input claims (a gzip body that inflates to 1 GiB is refused
//! after reading past the limit, no more).

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{Reply, TestServer, assert_error_body, gzip_repeated, memory_kib, send};

const MIB: usize = 1024 * 1024;

/// How much the peak resident memory may grow while one bad request is
/// handled; far below what inflating or buffering the input would take.
const GROWTH_MAX_MIB: u64 = 64;

/// `n` creates of `todos/t-<i>`.
fn creates(n: usize) -> Value {
    let operations: Vec<Value> = (0..n)
        .map(|i| {
            json!({"action": "create", "collection": "todos", "id": format!("t-{i}"),
                   "data": {"n": i}})
        })
        .collect();
    json!({ "operations": operations })
}

/// A request body: `{"operations": [], "padding": "xxx..."}` of `bytes`.
fn padded_body(bytes: usize) -> Vec<u8> {
    let frame = r#"{"operations": [], "padding": ""}"#.len();
    format!(
        r#"{{"operations": [], "padding": "{}"}}"#,
        "x".repeat(bytes - frame)
    )
    .into_bytes()
}

/// A body whose arrays nest so that the whole request is `depth` deep.
fn nested_body(depth: usize) -> Vec<u8> {
    let inner = depth - 1;
    format!(
        r#"{{"operations": [], "padding": {}{}}}"#,
        "[".repeat(inner),
        "]".repeat(inner)
    )
    .into_bytes()
}

/// One row of the matrix: what is sent, and the error expected.
struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, &'static str)>,
    body: Option<Vec<u8>>,
    status: u16,
    code: &'static str,
}

fn case(name: &'static str, method: Method, path: &str, status: u16, code: &'static str) -> Case {
    Case {
        name,
        method,
        path: path.to_owned(),
        headers: Vec::new(),
        body: None,
        status,
        code,
    }
}

impl Case {
    fn body(mut self, body: impl Into<Vec<u8>>) -> Case {
        self.body = Some(body.into());
        self.headers.push(("content-type", "application/json"));
        self
    }

    fn header(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }
}

fn cases() -> Vec<Case> {
    let post = |name, path: &str, body: &str, status, code| {
        case(name, Method::POST, path, status, code).body(body.to_owned())
    };
    let get = |name, path: &str, status, code| case(name, Method::GET, path, status, code);
    vec![
        post(
            "invalid JSON",
            "/v1/sync",
            r#"{"operations": ["#,
            400,
            "invalid_request",
        ),
        post(
            "invalid JSON to bulk sync",
            "/api/todos/bulk-sync",
            "{,}",
            400,
            "invalid_request",
        ),
        post(
            "a body that is not an object",
            "/v1/sync",
            "[1, 2]",
            400,
            "invalid_request",
        ),
        post("an empty body", "/v1/sync", "", 400, "invalid_request"),
        post(
            "operations of the wrong type",
            "/v1/sync",
            r#"{"operations": "x"}"#,
            400,
            "invalid_request",
        ),
        post(
            "pull of the wrong type",
            "/v1/sync",
            r#"{"operations": [], "pull": "yes"}"#,
            400,
            "invalid_request",
        ),
        post(
            "an unknown strategy",
            "/v1/sync",
            r#"{"operations": [], "strategy": "coin_flip"}"#,
            400,
            "invalid_request",
        ),
        post(
            "a bad lastSyncTimestamp",
            "/api/todos/bulk-sync",
            r#"{"operations": [], "lastSyncTimestamp": "yesterday"}"#,
            400,
            "invalid_request",
        ),
        post(
            "a bad device id",
            "/v1/sync",
            r#"{"operations": [], "deviceId": ""}"#,
            400,
            "invalid_request",
        ),
        get(
            "a bad namespace in the path",
            "/v1/ns/bad%20ns/c",
            400,
            "invalid_request",
        ),
        get(
            "a bad collection in the path",
            "/v1/ns/default/bad%20c",
            400,
            "invalid_request",
        ),
        get(
            "a namespace that is too long",
            &format!("/v1/ns/{}/c", "n".repeat(65)),
            400,
            "invalid_request",
        ),
        get(
            "a document id that is too long",
            &format!("/v1/ns/default/todos/{}", "i".repeat(129)),
            400,
            "invalid_request",
        ),
        post(
            "a bad collection for bulk sync",
            "/api/bad%20name/bulk-sync",
            r#"{"operations": []}"#,
            400,
            "invalid_request",
        ),
        get(
            "a version that is not a number",
            "/v1/ns/default/todos/keep/versions/abc",
            400,
            "invalid_request",
        ),
        get(
            "version 0",
            "/v1/ns/default/todos/keep/versions/0",
            400,
            "invalid_request",
        ),
        case(
            "restore of version 0",
            Method::POST,
            "/v1/ns/default/todos/keep/restore/0",
            400,
            "invalid_request",
        ),
        get(
            "a missing document",
            "/v1/ns/default/todos/nothing-here",
            404,
            "not_found",
        ),
        get(
            "a version never written",
            "/v1/ns/default/todos/keep/versions/9",
            404,
            "not_found",
        ),
        get("an unknown route", "/v2/everything", 404, "not_found"),
        get("a wrong method", "/v1/sync", 405, "invalid_request"),
        get(
            "a where without a value",
            "/v1/ns/default/todos?where=title",
            400,
            "invalid_request",
        ),
        get(
            "an unknown conflict status",
            "/v1/conflicts?status=weird",
            400,
            "invalid_request",
        ),
        get(
            "a limit that is not a number",
            "/v1/ns/default/todos?limit=lots",
            400,
            "invalid_request",
        ),
        post(
            "a resolution with an unknown field",
            "/v1/conflicts/c-1/resolve",
            r#"{"strategy": "server_wins", "winner": "me"}"#,
            400,
            "invalid_request",
        ),
        post(
            "a device with a wrong type",
            "/v1/devices",
            r#"{"name": 7}"#,
            400,
            "invalid_request",
        ),
        post(
            "a bad X-Sync-Chunk",
            "/api/todos/bulk-sync",
            r#"{"operations": []}"#,
            400,
            "invalid_request",
        )
        .header("x-sync-chunk", "0/3"),
        post(
            "an X-Sync-Chunk past its total",
            "/api/todos/bulk-sync",
            r#"{"operations": []}"#,
            400,
            "invalid_request",
        )
        .header("x-sync-chunk", "4/3"),
        case(
            "a body over 1 MiB",
            Method::POST,
            "/v1/sync",
            413,
            "too_large",
        )
        .body(padded_body(MIB + 1)),
        case(
            "a gzip body that inflates to 1 GiB",
            Method::POST,
            "/v1/sync",
            413,
            "too_large",
        )
        .body(gzip_repeated(b' ', 1024 * MIB))
        .header("content-encoding", "gzip"),
        case(
            "a body that claims gzip but is not",
            Method::POST,
            "/v1/sync",
            400,
            "invalid_request",
        )
        .body(r#"{"operations": []}"#)
        .header("content-encoding", "gzip"),
        case(
            "nesting 65 deep",
            Method::POST,
            "/v1/sync",
            400,
            "invalid_request",
        )
        .body(nested_body(65)),
        case(
            "nesting 100,000 deep",
            Method::POST,
            "/v1/sync",
            400,
            "invalid_request",
        )
        .body("[".repeat(100_000)),
        case(
            "nesting 100,000 deep in bulk sync",
            Method::POST,
            "/api/todos/bulk-sync",
            400,
            "invalid_request",
        )
        .body(format!(
            r#"{{"operations": [{{"data": {}}}]}}"#,
            "{\"a\":".repeat(100_000)
        )),
        case(
            "1,001 operations",
            Method::POST,
            "/v1/sync",
            413,
            "too_large",
        )
        .body(creates(1_001).to_string()),
        case(
            "1,001 operations to bulk sync",
            Method::POST,
            "/api/todos/bulk-sync",
            413,
            "too_large",
        )
        .body(creates(1_001).to_string()),
    ]
}

async fn run(server: &TestServer, case: &Case) -> Reply {
    let mut request = server.request(case.method.clone(), &case.path);
    for (name, value) in &case.headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = &case.body {
        request = request.body(body.clone());
    }
    send(request).await
}

/// What must not change: the log head and a document.
async fn snapshot(server: &TestServer) -> (String, Value) {
    let api = server.session(None);
    (
        api.head().await,
        api.document("default", "todos", "keep").await,
    )
}

#[tokio::test]
async fn every_bad_request_gets_its_error_and_changes_nothing() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    api.create(
        "default",
        "todos",
        "keep",
        json!({"title": "unchanged"}),
        "d",
    )
    .await;
    let before = snapshot(&server).await;
    for case in cases() {
        let peak_before = memory_kib("VmHWM");
        let reply = run(&server, &case).await;
        let grown_mib = memory_kib("VmHWM").saturating_sub(peak_before) / 1024;
        assert!(
            grown_mib < GROWTH_MAX_MIB,
            "{}: the peak resident memory grew {grown_mib} MiB",
            case.name
        );
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.body);
        assert_eq!(
            reply
                .headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json"),
            "{}",
            case.name
        );
        assert_error_body(&reply.body["error"], case.code);
        if case.status == 405 {
            assert_eq!(
                reply.headers.get("allow").map(|v| v.as_bytes()),
                Some(&b"POST"[..])
            );
        }
        let health = server.get_json("/health").await;
        assert_eq!(health.body, json!({"status": "ok"}), "after {}", case.name);
    }
    assert_eq!(snapshot(&server).await, before);
    // The limits are reported with the limit that applies.
    let big = run(
        &server,
        &case("", Method::POST, "/v1/sync", 413, "").body(padded_body(MIB + 1)),
    )
    .await;
    assert_eq!(big.body["error"]["details"], json!({"limit": MIB}));
    let ready = server.get_json("/ready").await.ok();
    assert_eq!(ready["status"], "ready");
    server.shutdown().await;
}

#[tokio::test]
async fn requests_at_the_limits_are_accepted() {
    let server = TestServer::start(|_| {}).await;
    let response = server.session(None).sync(creates(1_000)).await;
    assert_eq!(response["success"], true, "1,000 operations");
    let reply = run(
        &server,
        &case("nesting 64 deep", Method::POST, "/v1/sync", 200, "").body(nested_body(64)),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = padded_body(MIB);
    assert_eq!(body.len(), MIB);
    let reply = run(
        &server,
        &case("a body of exactly 1 MiB", Method::POST, "/v1/sync", 200, "").body(body),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    server.shutdown().await;
}

#[tokio::test]
async fn bad_operations_and_oversize_documents_fail_alone() {
    let server = TestServer::start(|_| {}).await;
    let api = server.session(None);
    let big = "b".repeat(300 * 1024);
    let half = "h".repeat(200 * 1024);
    let response = api
        .sync(json!({"operations": [
            {"action": "create", "collection": "todos", "id": "small", "data": {"title": "s"}},
            {"action": "create", "collection": "todos", "id": "huge", "data": {"blob": big}},
            {"action": "drop", "collection": "todos", "id": "small"},
            {"action": "create", "collection": "todos", "id": "half", "data": {"blob": half}},
            // Within the limit alone, past it once merged into the document.
            {"action": "update", "collection": "todos", "id": "half", "baseVersion": 1,
             "data": {"more": half}},
            {"action": "create", "collection": "todos", "id": "after", "data": {"title": "a"}}
        ]}))
        .await;
    assert_eq!(response["success"], false);
    let statuses: Vec<&str> = response["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        statuses,
        ["success", "error", "error", "success", "error", "success"],
        "{response}"
    );
    let results = &response["results"];
    assert_error_body(&results[1]["error"], "too_large");
    assert_eq!(results[1]["serverId"], "huge");
    assert_eq!(results[1]["action"], "create");
    assert_error_body(&results[2]["error"], "invalid_request");
    assert_error_body(&results[4]["error"], "too_large");
    api.get_json("/v1/ns/default/todos/huge")
        .await
        .assert_error(404, "not_found");
    let half_doc = api.document("default", "todos", "half").await;
    assert_eq!(half_doc["version"], 1);
    assert_eq!(half_doc["data"].as_object().map(|o| o.len()), Some(1));
    assert_eq!(
        api.document("default", "todos", "after").await["version"],
        1
    );
    assert_eq!(
        server.get_json("/health").await.ok(),
        json!({"status": "ok"})
    );
    server.shutdown().await;
}
