//! The client against a scripted WebSocket server: a server that goes
//! silent, one that closes with 1008, one that drops the connection while
//! a write waits for its answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use sync_core::realtime::TransportError;
use sync_realtime::{ConnectionState, RealtimeClient};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::support::{client_config, upsert, wait_state};

type Socket = WebSocketStream<TcpStream>;

/// Serves every connection with `script` after answering `hello`; counts
/// the connections.
async fn serve<F, Fut>(script: F) -> (SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(Socket) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&connections);
    let script = Arc::new(script);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else {
                continue;
            };
            counted.fetch_add(1, Ordering::SeqCst);
            let hello = next_json(&mut socket).await;
            assert_eq!(hello["type"], "hello", "{hello}");
            let welcome = json!({"type": "welcome", "serverTime": "2023-12-01T10:30:00.000Z",
                                 "cursor": "c1.0000000000000001.0", "heartbeatSecs": 30});
            socket
                .send(Message::text(welcome.to_string()))
                .await
                .unwrap();
            tokio::spawn(script(socket));
        }
    });
    (addr, connections)
}

async fn next_json(socket: &mut Socket) -> Value {
    loop {
        match socket.next().await {
            Some(Ok(Message::Text(text))) => return serde_json::from_str(&text).unwrap(),
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_silent_connection_is_taken_for_dead_and_replaced() {
    let (addr, connections) = serve(|socket: Socket| async move {
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(socket);
    })
    .await;
    let mut config = client_config(addr, "device-A");
    config.heartbeat_timeout = Duration::from_millis(300);
    let client = RealtimeClient::connect(config);
    wait_state(&client, ConnectionState::Connected).await;
    wait_state(&client, ConnectionState::Reconnecting).await;
    wait_state(&client, ConnectionState::Connected).await;
    assert!(connections.load(Ordering::SeqCst) >= 2);
    client.close().await;
}

#[tokio::test]
async fn a_policy_close_ends_in_error_without_retrying() {
    let (addr, connections) = serve(|mut socket: Socket| async move {
        let frame = CloseFrame {
            code: CloseCode::Policy,
            reason: "token expired".into(),
        };
        let _ = socket.send(Message::Close(Some(frame))).await;
        while let Some(Ok(_)) = socket.next().await {}
    })
    .await;
    let client = RealtimeClient::connect(client_config(addr, "device-A"));
    wait_state(&client, ConnectionState::Error).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(client.state(), ConnectionState::Error);
}

#[tokio::test]
async fn a_write_whose_connection_drops_is_handed_back() {
    let (addr, _) = serve(|mut socket: Socket| async move {
        let write = next_json(&mut socket).await;
        assert_eq!(write["type"], "insert", "{write}");
        assert_eq!(write["opId"], "op-lost");
        drop(socket);
    })
    .await;
    let client = RealtimeClient::connect(client_config(addr, "device-A"));
    wait_state(&client, ConnectionState::Connected).await;
    let op = upsert("op-lost", "t1", json!({"n": 1}));
    match client.send(op.clone()).await {
        Err(TransportError::Closed {
            unsent: Some(unsent),
        }) => assert_eq!(*unsent, op),
        other => panic!("not handed back: {other:?}"),
    }
    client.close().await;
}
