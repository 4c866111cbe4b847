//! Test helpers: a real server on a chosen or free port, client configs
//! with short delays, operations and event collection.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};
use sync_core::realtime::{RealTimeEvent, Subscription};
use sync_core::{Action, DeviceId, Filter, Operation};
use sync_realtime::{ClientConfig, ConnectionState, RealtimeClient};
use sync_service::config::DurabilityMode;
use sync_service::{Config, Server, ServerBuilder};

/// The server config for `dir` listening on `listen`.
pub(crate) fn server_config(dir: &Path, listen: SocketAddr) -> Config {
    Config {
        listen,
        data_dir: dir.join("store"),
        durability: DurabilityMode::Os,
        compaction_interval_secs: 0,
        ..Config::default()
    }
}

/// Starts a server.
pub(crate) async fn start(config: Config) -> Server {
    ServerBuilder::new(config).start().await.unwrap()
}

/// A loopback address nothing listens on (right now).
pub(crate) fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// A client config for the server at `addr`, with short reconnect delays.
pub(crate) fn client_config(addr: SocketAddr, device: &str) -> ClientConfig {
    let mut config = ClientConfig::new(
        format!("ws://{addr}/ws"),
        device.parse::<DeviceId>().unwrap(),
    );
    config.reconnect_delay = Duration::from_millis(50);
    config.reconnect_delay_max = Duration::from_millis(400);
    config.request_timeout = Duration::from_secs(5);
    config
}

/// Waits (at most 10 s) until `client` is in `state`.
pub(crate) async fn wait_state(client: &RealtimeClient, state: ConnectionState) {
    tokio::time::timeout(Duration::from_secs(10), client.wait_for(state))
        .await
        .unwrap_or_else(|_| panic!("never {state:?}; still {:?}", client.state()));
    assert_eq!(client.state(), state);
}

/// A subscription to a whole collection from its current documents.
pub(crate) fn subscription(collection: &str) -> Subscription {
    Subscription {
        id: Some(format!("sub-{collection}")),
        namespace: Default::default(),
        collection: collection.parse().unwrap(),
        filter: Filter::all(),
        cursor: None,
    }
}

/// An upsert of document `id` in `todos`, with the given op id.
pub(crate) fn upsert(op_id: &str, id: &str, data: Value) -> Operation {
    let mut op = Operation::new(Action::Upsert);
    op.op_id = Some(op_id.parse().unwrap());
    op.collection = Some("todos".parse().unwrap());
    op.id = Some(id.parse().unwrap());
    op.data = Some(data.as_object().unwrap().clone());
    op
}

/// The next event, failing after 10 s.
pub(crate) async fn next_event(client: &RealtimeClient) -> RealTimeEvent {
    tokio::time::timeout(Duration::from_secs(10), client.next_event())
        .await
        .expect("no event within 10 s")
        .expect("event stream ended")
}

/// The next event within `wait`, if any.
pub(crate) async fn try_event(client: &RealtimeClient, wait: Duration) -> Option<RealTimeEvent> {
    tokio::time::timeout(wait, client.next_event())
        .await
        .ok()
        .flatten()
}

/// Writes through bulk sync (`POST /v1/sync`).
pub(crate) async fn bulk(addr: SocketAddr, operations: Value) -> Value {
    reqwest::Client::new()
        .post(format!("http://{addr}/v1/sync"))
        .json(&json!({ "operations": operations }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
