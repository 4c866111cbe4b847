//! The client transport end to end: send and ack, fan-out to another
//! client, resume after a server restart, giving up, offline sends and
//! refused credentials.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use sync_core::realtime::{RealTimeEvent, TransportError};
use sync_core::{ChangeOp, OpStatus};
use sync_realtime::{ConnectionState, RealtimeClient};
use sync_service::config::{AuthMode, JwtAlgorithm};

use crate::support::*;

/// The record id and seq of a change event.
fn change_of(event: &RealTimeEvent) -> (String, u64, ChangeOp) {
    match event {
        RealTimeEvent::Change { change, .. } => (change.id.to_string(), change.seq.0, change.op),
        other => panic!("not a change: {other:?}"),
    }
}

#[tokio::test]
async fn a_write_is_acked_to_its_sender_and_pushed_to_the_other_client() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(server_config(
        dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .await;
    let addr = server.local_addr();
    let a = RealtimeClient::connect(client_config(addr, "device-A"));
    let b = RealtimeClient::connect(client_config(addr, "device-B"));
    wait_state(&a, ConnectionState::Connected).await;
    wait_state(&b, ConnectionState::Connected).await;
    assert_eq!(
        b.subscribe(subscription("todos")).await.unwrap(),
        "sub-todos"
    );

    let result = a
        .send(upsert("op-1", "t1", json!({"text": "milk", "done": false})))
        .await
        .unwrap();
    assert_eq!(result.status, OpStatus::Success);
    assert_eq!(result.op_id.unwrap().to_string(), "op-1");
    assert_eq!(result.server_id.unwrap().to_string(), "t1");
    assert_eq!(result.version.unwrap().0, 1);
    let seq = result.seq.unwrap();

    let event = next_event(&b).await;
    let RealTimeEvent::Change {
        subscription,
        change,
        matches,
    } = event
    else {
        panic!("not a change: {event:?}");
    };
    assert_eq!(subscription, "sub-todos");
    assert!(matches);
    assert_eq!(change.seq, seq);
    assert_eq!(change.id.to_string(), "t1");
    assert_eq!(change.op_id.to_string(), "op-1");
    assert_eq!(change.device_id.unwrap().to_string(), "device-A");
    assert_eq!(change.data.unwrap()["text"], "milk");

    // The same op id again is deduplicated by the server.
    let again = a
        .send(upsert("op-1", "t1", json!({"text": "milk", "done": false})))
        .await
        .unwrap();
    assert_eq!(again.status, OpStatus::Duplicate);
    // A refused write comes back as Rejected.
    let mut bad = upsert("op-bad", "t2", json!({}));
    bad.action = sync_core::Action::Update;
    bad.id = Some("missing".parse().unwrap());
    assert!(matches!(
        a.send(bad).await,
        Err(TransportError::Rejected(_))
    ));
    assert_eq!(try_event(&b, Duration::from_millis(200)).await, None);

    a.close().await;
    assert_eq!(a.state(), ConnectionState::Disconnected);
    assert_eq!(a.next_event().await, None);
    b.close().await;
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_subscriber_resumes_after_a_server_restart_with_exactly_what_it_missed() {
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr();
    let server = start(server_config(dir.path(), addr)).await;
    let b = RealtimeClient::connect(client_config(addr, "device-B"));
    let seen_states = Arc::new(Mutex::new(Vec::new()));
    let mut states = b.states();
    let recorder = {
        let seen_states = Arc::clone(&seen_states);
        tokio::spawn(async move {
            while let Some(state) = states.changed().await {
                seen_states.lock().unwrap().push(state);
            }
        })
    };
    wait_state(&b, ConnectionState::Connected).await;

    bulk(
        addr,
        json!([{"opId": "before-1", "action": "upsert", "collection": "todos",
                       "id": "t1", "data": {"n": 1}}]),
    )
    .await;
    b.subscribe(subscription("todos")).await.unwrap();
    // The current document arrives as an insert; then a live change.
    let (id, _, op) = change_of(&next_event(&b).await);
    assert_eq!((id.as_str(), op), ("t1", ChangeOp::Insert));
    bulk(
        addr,
        json!([{"opId": "before-2", "action": "upsert", "collection": "todos",
                       "id": "t2", "data": {"n": 2}}]),
    )
    .await;
    let (id, before_seq, _) = change_of(&next_event(&b).await);
    assert_eq!(id, "t2");

    server.shutdown().await.unwrap();
    wait_state(&b, ConnectionState::Reconnecting).await;
    let server = start(server_config(dir.path(), addr)).await;
    let written = bulk(
        addr,
        json!([
            {"opId": "after-1", "action": "update", "collection": "todos", "id": "t1",
             "data": {"n": 10}},
            {"opId": "after-2", "action": "upsert", "collection": "todos", "id": "t3",
             "data": {"n": 3}},
            {"opId": "after-3", "action": "delete", "collection": "todos", "id": "t2"}
        ]),
    )
    .await;
    assert_eq!(written["results"].as_array().unwrap().len(), 3, "{written}");
    wait_state(&b, ConnectionState::Connected).await;

    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(change_of(&next_event(&b).await));
    }
    let ids: Vec<(&str, ChangeOp)> = got.iter().map(|(id, _, op)| (id.as_str(), *op)).collect();
    assert_eq!(
        ids,
        [
            ("t1", ChangeOp::Update),
            ("t3", ChangeOp::Insert),
            ("t2", ChangeOp::Delete)
        ]
    );
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "{got:?}");
    assert!(got[0].1 > before_seq);
    assert_eq!(
        try_event(&b, Duration::from_millis(500)).await,
        None,
        "nothing twice"
    );

    let states = seen_states.lock().unwrap().clone();
    let reconnecting = states
        .iter()
        .position(|s| *s == ConnectionState::Reconnecting)
        .expect("never reconnecting");
    assert!(
        states[reconnecting..].contains(&ConnectionState::Connected),
        "{states:?}"
    );
    assert!(!states.contains(&ConnectionState::Error), "{states:?}");
    b.close().await;
    recorder.abort();
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn gives_up_into_error_after_the_last_attempt() {
    let mut config = client_config(free_addr(), "device-A");
    config.reconnect_delay = Duration::from_millis(20);
    config.reconnect_delay_max = Duration::from_millis(40);
    config.reconnect_attempts_max = Some(3);
    let started = Instant::now();
    let client = RealtimeClient::connect(config);
    wait_state(&client, ConnectionState::Error).await;
    assert!(started.elapsed() >= Duration::from_millis(10 + 20 + 20));
    assert_eq!(client.next_event().await, None);
    let op = upsert("op-late", "t1", json!({"n": 1}));
    assert!(matches!(
        client.send(op).await,
        Err(TransportError::Closed { unsent: Some(_) })
    ));
}

#[tokio::test]
async fn a_send_while_disconnected_hands_the_operation_back() {
    let mut config = client_config(free_addr(), "device-A");
    config.reconnect_attempts_max = None;
    let client = RealtimeClient::connect(config);
    let op = upsert("op-offline", "t1", json!({"n": 1}));
    match client.send(op.clone()).await {
        Err(TransportError::Closed {
            unsent: Some(unsent),
        }) => assert_eq!(*unsent, op),
        other => panic!("not handed back: {other:?}"),
    }
    // Without an op id one is assigned, so a retry deduplicates.
    let mut anonymous = op.clone();
    anonymous.op_id = None;
    match client.send(anonymous).await {
        Err(TransportError::Closed {
            unsent: Some(unsent),
        }) => assert!(unsent.op_id.is_some()),
        other => panic!("not handed back: {other:?}"),
    }
    // Subscribing offline registers the subscription for later.
    assert_eq!(
        client.subscribe(subscription("todos")).await.unwrap(),
        "sub-todos"
    );
    assert_ne!(client.state(), ConnectionState::Connected);
    client.close().await;
    assert_eq!(client.state(), ConnectionState::Disconnected);
}

#[tokio::test]
async fn a_refused_token_ends_in_error_without_retrying() {
    let dir = tempfile::tempdir().unwrap();
    let mut server_config = server_config(dir.path(), SocketAddr::from(([127, 0, 0, 1], 0)));
    server_config.auth.mode = AuthMode::Jwt;
    server_config.auth.algorithm = JwtAlgorithm::HS256;
    server_config.auth.secret = Some("realtime-client-test-secret-0123".into());
    let server = start(server_config).await;
    let mut config = client_config(server.local_addr(), "device-A");
    config.token = Some("not-a-valid-token".into());
    // A retry would wait this long first; the error comes well before.
    config.reconnect_delay = Duration::from_secs(5);
    let started = Instant::now();
    let client = RealtimeClient::connect(config);
    wait_state(&client, ConnectionState::Error).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_cursor_of_another_log_resets_the_copy_and_sends_the_documents() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(server_config(
        dir.path(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    ))
    .await;
    let addr = server.local_addr();
    bulk(addr, json!([
        {"opId": "r-1", "action": "upsert", "collection": "todos", "id": "t1", "data": {"n": 1}},
        {"opId": "r-2", "action": "upsert", "collection": "todos", "id": "t2", "data": {"n": 2}}
    ]))
    .await;
    let client = RealtimeClient::connect(client_config(addr, "device-B"));
    wait_state(&client, ConnectionState::Connected).await;
    let mut stale = subscription("todos");
    stale.cursor = Some(sync_core::Cursor::new(
        sync_core::LogId(0xdead),
        sync_core::Seq(50),
    ));
    client.subscribe(stale).await.unwrap();
    assert_eq!(
        next_event(&client).await,
        RealTimeEvent::Resync {
            cursor: None,
            reset: true
        }
    );
    let mut ids = vec![
        change_of(&next_event(&client).await).0,
        change_of(&next_event(&client).await).0,
    ];
    ids.sort();
    assert_eq!(ids, ["t1", "t2"]);
    // Live changes continue after the reset.
    bulk(
        addr,
        json!([{"opId": "r-3", "action": "upsert", "collection": "todos", "id": "t3",
                       "data": {"n": 3}}]),
    )
    .await;
    assert_eq!(change_of(&next_event(&client).await).0, "t3");
    assert_eq!(try_event(&client, Duration::from_millis(300)).await, None);
    client.close().await;
    server.shutdown().await.unwrap();
}
