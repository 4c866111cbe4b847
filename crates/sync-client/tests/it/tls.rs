//! The whole path over TLS: the server serves HTTPS and WSS with a
//! certificate made here (rcgen), clients that trust it write and receive
//! pushed changes over `wss://`, and a client that does not trust it gets
//! nowhere.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use sync_client::SyncClient;
use sync_service::config::DurabilityMode;
use sync_service::{Config, ServerBuilder};

use crate::support::{connected, data_dir, eventually, local_todos};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_and_its_pushed_change_go_over_wss() {
    let dir = tempfile::tempdir().unwrap();
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap();
    let cert_pem = made.cert.pem();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, &cert_pem).unwrap();
    std::fs::write(&key_file, made.signing_key.serialize_pem()).unwrap();
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("store"),
        durability: DurabilityMode::Os,
        compaction_interval_secs: 0,
        ..Config::default()
    };
    config.tls.cert_file = Some(cert_file);
    config.tls.key_file = Some(key_file);
    let server = ServerBuilder::new(config).start().await.unwrap();
    let url = format!("https://localhost:{}", server.local_addr().port());

    let trusting = |name: &str| {
        SyncClient::builder()
            .server_url(url.clone())
            .data_dir(data_dir(&dir, name))
            .collections(["todos"])
            .reconnect_delay(Duration::from_millis(100))
            .poll_wait_secs(2)
            .add_root_certificate_pem(&cert_pem)
    };
    let writer = trusting("writer").build().await.unwrap();
    let reader = trusting("reader").build().await.unwrap();
    for client in [&writer, &reader] {
        connected(client, 10).await;
    }

    let id = writer
        .collection("todos")
        .unwrap()
        .save(json!({"text": "over TLS"}))
        .await
        .unwrap();
    eventually(10, "the write pushed to the reader", || async {
        local_todos(&reader).await == vec![(id.to_string(), json!({"text": "over TLS"}))]
    })
    .await;
    writer.sync_now().await.unwrap();
    assert_eq!(writer.pending_count().await.unwrap(), 0);

    // Without the certificate among its roots, a client reaches nothing.
    let stranger = SyncClient::builder()
        .server_url(url.clone())
        .data_dir(data_dir(&dir, "stranger"))
        .collections(["todos"])
        .realtime(false)
        .build()
        .await
        .unwrap();
    stranger
        .collection("todos")
        .unwrap()
        .save(json!({"text": "refused"}))
        .await
        .unwrap();
    assert!(stranger.sync_now().await.is_err());

    for client in [writer, reader, stranger] {
        client.close().await.unwrap();
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_root_certificate_that_is_not_pem_fails_the_build() {
    let dir = tempfile::tempdir().unwrap();
    let error = SyncClient::builder()
        .server_url("https://localhost:1")
        .data_dir(dir.path())
        .collections(["todos"])
        .add_root_certificate_pem("not a certificate")
        .build()
        .await
        .unwrap_err();
    assert!(matches!(error, sync_client::Error::Config(_)), "{error}");
}

#[tokio::test]
async fn a_server_refuses_to_start_with_a_key_that_is_not_pem() {
    let dir = tempfile::tempdir().unwrap();
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_file = dir.path().join("cert.pem");
    let key_file = dir.path().join("key.pem");
    std::fs::write(&cert_file, made.cert.pem()).unwrap();
    std::fs::write(&key_file, "not a key").unwrap();
    let mut config = Config {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.path().join("store"),
        ..Config::default()
    };
    config.tls.cert_file = Some(cert_file);
    config.tls.key_file = Some(key_file);
    let error = ServerBuilder::new(config).start().await.unwrap_err();
    assert!(
        matches!(error, sync_service::ServerError::Tls(ref message) if message.contains("key.pem")),
        "{error}"
    );
}
