//! Encryption at rest (`docs/security.md`): with a key configured the data
//! directory holds no plaintext of a document, and a new key takes over
//! from an old one without a document lost.

use std::path::{Path, PathBuf};

use serde_json::json;
use sync_service::config::StorageConfig;
use sync_store::EncryptionKey;
use tempfile::TempDir;

use crate::support::TestServer;

/// A new key in a file under `dir`.
fn key_file(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, EncryptionKey::generate_hex() + "\n").expect("the key file");
    path
}

/// Whether any file under `dir` holds `needle`.
fn directory_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir)
        .expect("a directory")
        .flatten()
        .any(|entry| {
            let path = entry.path();
            if path.is_dir() {
                directory_holds(&path, needle)
            } else {
                let bytes = std::fs::read(&path).unwrap_or_default();
                bytes.windows(needle.len()).any(|window| window == needle)
            }
        })
}

async fn start(dir: TempDir, storage: StorageConfig) -> TestServer {
    TestServer::start_in(dir, |config| config.storage = storage, |builder| builder).await
}

async fn note_text(server: &TestServer, id: &str) -> Option<String> {
    let document = server.session(None).document("default", "notes", id).await;
    document["data"]["text"].as_str().map(str::to_owned)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn documents_are_encrypted_at_rest_and_move_to_a_new_key() {
    let keys = tempfile::tempdir().expect("a key directory");
    let old_key = key_file(keys.path(), "old.key");
    let new_key = key_file(keys.path(), "new.key");
    let encrypted_under = |current: &Path, previous: &[&Path]| StorageConfig {
        encryption_key_file: Some(current.to_path_buf()),
        previous_key_files: previous.iter().map(|p| p.to_path_buf()).collect(),
        ..StorageConfig::default()
    };

    let server = start(
        tempfile::tempdir().expect("a data directory"),
        encrypted_under(&old_key, &[]),
    )
    .await;
    let api = server.session(None);
    for n in 0..20 {
        let body = api
            .sync(
                json!({"operations": [{"action": "create", "collection": "notes",
                "id": format!("n{n}"), "opId": format!("op-{n}"),
                "data": {"text": format!("the vault code is marmalade-{n}")}}]}),
            )
            .await;
        assert_eq!(body["results"][0]["status"], "success", "{body}");
    }
    let dir = server.shutdown().await;
    assert!(
        !directory_holds(dir.path(), b"marmalade"),
        "a document's text is on disk in plaintext"
    );
    assert!(!directory_holds(dir.path(), b"vault code"));

    // The new key, with the old one beside it while records move over.
    let server = start(dir, encrypted_under(&new_key, &[&old_key])).await;
    assert_eq!(
        note_text(&server, "n7").await.as_deref(),
        Some("the vault code is marmalade-7")
    );
    // Shutting down waits for the re-encryption to let go of the store.
    let dir = server.shutdown().await;

    // The old key gone: everything still reads.
    let server = start(dir, encrypted_under(&new_key, &[])).await;
    for n in [0, 13, 19] {
        assert_eq!(
            note_text(&server, &format!("n{n}")).await,
            Some(format!("the vault code is marmalade-{n}"))
        );
    }
    let history = server.get_json("/v1/ns/default/notes/n3/history").await;
    assert_eq!(history.status, 200, "{}", history.body);
    let dir = server.shutdown().await;
    assert!(!directory_holds(dir.path(), b"marmalade"));
}

#[tokio::test]
async fn a_missing_or_malformed_key_file_stops_the_server_with_its_name() {
    let keys = tempfile::tempdir().expect("a key directory");
    let malformed = keys.path().join("short.key");
    std::fs::write(&malformed, "abcd").expect("a file");
    for (file, expected) in [
        (keys.path().join("missing.key"), "missing.key"),
        (malformed, "64 hexadecimal digits"),
    ] {
        let config = sync_service::config::Config {
            listen: ([127, 0, 0, 1], 0).into(),
            data_dir: keys.path().join("store"),
            storage: StorageConfig {
                encryption_key_file: Some(file),
                ..StorageConfig::default()
            },
            ..Default::default()
        };
        let Err(error) = sync_service::ServerBuilder::new(config).start().await else {
            panic!("the server started without its key");
        };
        assert!(error.to_string().contains(expected), "{error}");
    }
}
