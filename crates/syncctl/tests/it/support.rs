//! What the tests share: a real server in this process on `127.0.0.1:0`
//! over a temporary data directory (restartable on the same port and
//! directory), the `syncctl` binary run as a child, writes and reads over
//! HTTP, and golden files for the JSON output with the values that change
//! from run to run (times, ids, paths, tokens) replaced by placeholders.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use serde_json::{Value, json};
use sync_service::config::{AuthMode, DurabilityMode};
use sync_service::{Config, Server, ServerBuilder};

/// The binary under test.
pub(crate) const SYNCCTL: &str = env!("CARGO_BIN_EXE_syncctl");

/// The HS256 secret of the servers started with jwt.
pub(crate) const SECRET: &str = "syncctl-test-secret-0123456789";

/// A server of this process over its own data directory.
pub(crate) struct TestServer {
    server: Option<Server>,
    config: Config,
    pub(crate) url: String,
    _dir: Option<tempfile::TempDir>,
}

impl TestServer {
    /// A server with no authentication over a fresh directory.
    pub(crate) async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// A server over a fresh directory, with `adjust` applied to its config.
    pub(crate) async fn start_with(adjust: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let mut config = config(dir.path());
        adjust(&mut config);
        let mut server = TestServer::on(config).await;
        server._dir = Some(dir);
        server
    }

    /// A server on `data_dir` (kept by the caller).
    pub(crate) async fn start_on(data_dir: &Path) -> TestServer {
        TestServer::on(config(data_dir)).await
    }

    /// A server with jwt authentication over a fresh directory.
    pub(crate) async fn start_jwt() -> TestServer {
        TestServer::start_with(|config| {
            config.auth.mode = AuthMode::Jwt;
            config.auth.secret = Some(SECRET.into());
        })
        .await
    }

    async fn on(mut config: Config) -> TestServer {
        let server = ServerBuilder::new(config.clone()).start().await.unwrap();
        config.listen = server.local_addr();
        TestServer {
            url: format!("http://{}", server.local_addr()),
            server: Some(server),
            config,
            _dir: None,
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.config.listen
    }

    /// Stops the server (gracefully: sockets closed, store flushed).
    pub(crate) async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }

    /// Stops it and starts it again on the same port and directory.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let server = ServerBuilder::new(self.config.clone())
            .start()
            .await
            .unwrap();
        assert_eq!(server.local_addr(), self.addr());
        self.server = Some(server);
    }
}

/// Quick settings: loopback, no console, acknowledgements without fsync
/// (no test here kills the server).
pub(crate) fn config(data_dir: &Path) -> Config {
    Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: data_dir.to_owned(),
        durability: DurabilityMode::Os,
        console: false,
        compaction_interval_secs: 0,
        ..Config::default()
    }
}

/// Runs `syncctl` with `args` against `url` (and `token`).
pub(crate) async fn syncctl_as(url: &str, token: Option<&str>, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(SYNCCTL);
    command
        .args(args)
        .env("SYNC_URL", url)
        .env_remove("SYNC_TOKEN")
        .env_remove("SYNC_JWT_SECRET")
        .stdin(Stdio::null());
    if let Some(token) = token {
        command.env("SYNC_TOKEN", token);
    }
    command.output().await.unwrap()
}

/// Runs `syncctl` with `args` against `url` without a token.
pub(crate) async fn syncctl(url: &str, args: &[&str]) -> Output {
    syncctl_as(url, None, args).await
}

/// Standard output as text.
pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error as text.
pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Fails with both outputs unless the command exited with `code`.
pub(crate) fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status; stdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

/// Standard output as one JSON value, after a successful run.
pub(crate) fn json_out(output: &Output) -> Value {
    assert_exit(output, 0);
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not JSON ({error}):\n{}", stdout(output)))
}

/// A development token for `sub` with every namespace.
pub(crate) async fn mint(admin: bool) -> String {
    let mut args = vec![
        "token", "mint", "--secret", SECRET, "--sub", "ops", "--ns", "*",
    ];
    if admin {
        args.push("--admin");
    }
    let output = syncctl("http://127.0.0.1:1", &args).await;
    assert_exit(&output, 0);
    stdout(&output).trim().to_owned()
}

/// `POST /v1/sync` with `operations`; the answer.
pub(crate) async fn sync(url: &str, token: Option<&str>, operations: Value) -> Value {
    let client = reqwest::Client::new();
    let mut request = client
        .post(format!("{url}/v1/sync"))
        .json(&json!({"operations": operations, "deviceId": "test-device"}));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    response.json().await.unwrap()
}

/// A `GET` of `path` answered with JSON.
pub(crate) async fn get(url: &str, token: Option<&str>, path: &str) -> Value {
    let client = reqwest::Client::new();
    let mut request = client.get(format!("{url}{path}"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap()
}

/// An upsert of document `id` of `namespace`/`collection`.
pub(crate) fn upsert(
    op_id: &str,
    namespace: &str,
    collection: &str,
    id: &str,
    data: Value,
) -> Value {
    json!({"opId": op_id, "action": "upsert", "namespace": namespace,
           "collection": collection, "id": id, "data": data})
}

/// Every live document of the server, by (namespace, collection, id), with
/// its data.
pub(crate) async fn documents(url: &str, token: Option<&str>) -> BTreeMap<String, Value> {
    let catalog = get(url, token, "/v1/collections").await;
    let mut all = BTreeMap::new();
    for entry in catalog["collections"].as_array().unwrap() {
        let (namespace, collection) = (
            entry["namespace"].as_str().unwrap(),
            entry["collection"].as_str().unwrap(),
        );
        let mut after = String::new();
        loop {
            let page = get(
                url,
                token,
                &format!("/v1/ns/{namespace}/{collection}?limit=1000{after}"),
            )
            .await;
            for document in page["documents"].as_array().unwrap() {
                let id = document["id"].as_str().unwrap();
                all.insert(
                    format!("{namespace}/{collection}/{id}"),
                    document["data"].clone(),
                );
            }
            match page["next"].as_str() {
                Some(next) => after = format!("&after={next}"),
                None => break,
            }
        }
    }
    all
}

/// The log head of the server.
pub(crate) async fn head(url: &str, token: Option<&str>) -> u64 {
    get(url, token, "/ready").await["head"].as_u64().unwrap()
}

/// Keys whose values change from run to run.
const VOLATILE: &[&str] = &[
    "updatedAt",
    "timestamp",
    "createdAt",
    "resolvedAt",
    "exp",
    "iat",
    "token",
    "cursor",
    "logId",
    "url",
    "server",
    "dir",
    "out",
    "file",
    "dataDir",
    "restoredTo",
    "operationsPerSecond",
    "operationsTotal",
    "connections",
];

/// `value` with the volatile values replaced by `"<key>"`, ids that look
/// generated (UUIDs) by `"<uuid>"` and times (ISO-8601, HLC) by `"<time>"`.
pub(crate) fn normalize(value: &Value) -> Value {
    match value {
        Value::Object(object) => Value::Object(
            object
                .iter()
                .map(|(key, value)| {
                    let value = if VOLATILE.contains(&key.as_str()) && !value.is_null() {
                        Value::String(format!("<{key}>"))
                    } else {
                        normalize(value)
                    };
                    (key.clone(), value)
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::String(text) if looks_generated(text) => Value::String("<uuid>".into()),
        Value::String(text) if looks_like_time(text) => Value::String("<time>".into()),
        other => other.clone(),
    }
}

/// An ISO-8601 time or an HLC (`2026-12-04T15:00:00.000Z-...`).
fn looks_like_time(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 20
        && bytes[..4].iter().all(u8::is_ascii_digit)
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes[10] == b'T'
}

fn looks_generated(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    parts.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&parts)
            .all(|(len, part)| part.len() == *len && part.chars().all(|c| c.is_ascii_hexdigit()))
}

fn golden_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/it/golden")
        .join(format!("{name}.json"))
}

/// Checks `value`, normalised, against `tests/it/golden/NAME.json`;
/// `UPDATE_GOLDEN=1` writes the file instead.
pub(crate) fn check_golden(name: &str, value: &Value) {
    let actual = serde_json::to_string_pretty(&normalize(value)).unwrap() + "\n";
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no golden file {}; run with UPDATE_GOLDEN=1 to write it:\n{actual}",
            path.display()
        )
    });
    assert_eq!(
        actual, expected,
        "the JSON output of {name} changed (UPDATE_GOLDEN=1 to accept)"
    );
}
