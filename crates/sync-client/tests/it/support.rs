//! Shared helpers: a real server on 127.0.0.1:0 over a temp dir, clients
//! with temp data dirs, and waiting for a condition.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sync_client::{ConnectionState, JsonObject, SyncClient};
use sync_core::Strategy;
use sync_service::config::{CollectionSettings, DurabilityMode};
use sync_service::{Config, Server, ServerBuilder};
use tempfile::TempDir;

pub(crate) struct Node {
    pub(crate) server: Option<Server>,
    pub(crate) dir: TempDir,
    pub(crate) addr: SocketAddr,
    strategy: Option<Strategy>,
}

fn config(dir: &Path, listen: SocketAddr, strategy: Option<Strategy>) -> Config {
    let mut config = Config {
        listen,
        data_dir: dir.join("store"),
        durability: DurabilityMode::Fsync,
        compaction_interval_secs: 0,
        ..Config::default()
    };
    if let Some(strategy) = strategy {
        config.collections.insert(
            "todos".into(),
            CollectionSettings {
                strategy: Some(strategy),
                ..CollectionSettings::default()
            },
        );
    }
    config
}

impl Node {
    pub(crate) async fn start(strategy: Option<Strategy>) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let server = ServerBuilder::new(config(
            dir.path(),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            strategy,
        ))
        .start()
        .await
        .unwrap();
        let addr = server.local_addr();
        Node {
            server: Some(server),
            dir,
            addr,
            strategy,
        }
    }

    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) async fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.unwrap();
        }
    }

    /// Starts again on the same port over the same data.
    pub(crate) async fn restart(&mut self) {
        self.stop().await;
        let mut tries = 0;
        loop {
            match ServerBuilder::new(config(self.dir.path(), self.addr, self.strategy))
                .start()
                .await
            {
                Ok(server) => {
                    self.server = Some(server);
                    return;
                }
                Err(error) if tries < 50 => {
                    tries += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("restart failed: {error}"),
            }
        }
    }

    pub(crate) async fn get(&self, path: &str) -> Value {
        reqwest::get(format!("{}{path}", self.url()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// The server's live documents of `todos`: id -> (data, version).
    pub(crate) async fn todos(&self) -> Vec<(String, Value, u64)> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(next) => format!("/v1/ns/default/todos?limit=1000&after={next}"),
                None => "/v1/ns/default/todos?limit=1000".to_owned(),
            };
            let page = self.get(&path).await;
            for doc in page["documents"].as_array().unwrap() {
                if doc["deleted"] == true {
                    continue;
                }
                out.push((
                    doc["id"].as_str().unwrap().to_owned(),
                    doc["data"].clone(),
                    doc["version"].as_u64().unwrap(),
                ));
            }
            match page["next"].as_str() {
                Some(next) => after = Some(next.to_owned()),
                None => break,
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

pub(crate) async fn client(url: &str, dir: &Path) -> SyncClient {
    SyncClient::builder()
        .server_url(url)
        .data_dir(dir)
        .collections(["todos"])
        .reconnect_delay(Duration::from_millis(100))
        .max_reconnect_attempts(None)
        .poll_wait_secs(2)
        .build()
        .await
        .unwrap()
}

/// Waits until `client` is connected, at most `secs` seconds.
pub(crate) async fn connected(client: &SyncClient, secs: u64) {
    tokio::time::timeout(
        Duration::from_secs(secs),
        client
            .connection_state()
            .wait_for(|state| *state == ConnectionState::Connected),
    )
    .await
    .expect("connected in time")
    .unwrap();
}

pub(crate) fn data_dir(root: &TempDir, name: &str) -> PathBuf {
    root.path().join(name)
}

pub(crate) fn obj(value: Value) -> JsonObject {
    value.as_object().cloned().unwrap()
}

/// The local documents as sorted (id, data without id).
pub(crate) async fn local_todos(client: &SyncClient) -> Vec<(String, Value)> {
    let mut docs: Vec<(String, Value)> = client
        .collection("todos")
        .unwrap()
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|mut doc| {
            let id = doc.remove("id").unwrap().as_str().unwrap().to_owned();
            (id, Value::Object(doc))
        })
        .collect();
    docs.sort_by(|a, b| a.0.cmp(&b.0));
    docs
}

/// Polls `check` until it is true, failing after `secs`.
pub(crate) async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port where nothing listens.
pub(crate) fn dead_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}
