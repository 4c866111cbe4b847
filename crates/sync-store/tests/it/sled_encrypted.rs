//! The sled store encrypted at rest: the conformance suite, no plaintext
//! in the data directory, keys that rotate.

use std::path::Path;

use serde_json::json;
use sync_core::{StoreError, SyncStore};
use sync_store::{Compression, Durability, Encryption, EncryptionKey, SledStore, StoreConfig};

use crate::conformance::conformance_suite;
use crate::support::{encryption_key, insert, key};

conformance_suite!(crate::support::encrypted_sled_store);

/// Whether any file under `dir` holds `needle`.
fn directory_holds(dir: &Path, needle: &[u8]) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|entry| {
        let path = entry.path();
        if path.is_dir() {
            directory_holds(&path, needle)
        } else {
            let bytes = std::fs::read(&path).unwrap_or_default();
            bytes.windows(needle.len()).any(|window| window == needle)
        }
    })
}

fn config(encryption: Option<Encryption>) -> StoreConfig {
    StoreConfig {
        durability: Durability::Fsync,
        // Uncompressed, so that an unencrypted record would show its text.
        compression: Compression::None,
        encryption,
        ..StoreConfig::default()
    }
}

async fn write_secret(store: &SledStore, op_id: &str, id: &str) {
    store
        .apply(vec![insert(
            op_id,
            &key("default", "notes", id),
            json!({"text": format!("launch code {id} is tangerine-{id}")}),
        )])
        .await
        .unwrap();
    store.flush().await.unwrap();
}

#[tokio::test]
async fn the_data_directory_holds_no_plaintext_of_a_document() {
    // The check can fail: without a key the text is on disk.
    let plain = tempfile::tempdir().unwrap();
    let store = SledStore::open(plain.path(), config(None)).unwrap();
    write_secret(&store, "op-1", "a").await;
    store.close().unwrap();
    assert!(directory_holds(plain.path(), b"tangerine-a"));

    let dir = tempfile::tempdir().unwrap();
    let key_a = encryption_key();
    let store =
        SledStore::open(dir.path(), config(Some(Encryption::new(key_a.clone(), [])))).unwrap();
    for n in 0..20 {
        write_secret(&store, &format!("op-{n}"), &format!("doc{n}")).await;
    }
    let found = store.get(&key("default", "notes", "doc3")).await.unwrap();
    assert_eq!(
        found.unwrap().document.data["text"],
        "launch code doc3 is tangerine-doc3"
    );
    store.close().unwrap();
    assert!(!directory_holds(dir.path(), b"tangerine"));
    assert!(!directory_holds(dir.path(), b"launch code"));

    // Opened without the key: the records are refused, not misread.
    let store = SledStore::open(dir.path(), config(None)).unwrap();
    let refused = store.get(&key("default", "notes", "doc3")).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    store.close().unwrap();
}

#[tokio::test]
async fn records_are_reencrypted_under_a_new_key_and_the_old_one_can_go() {
    let dir = tempfile::tempdir().unwrap();
    let old = encryption_key();
    let new = encryption_key();
    let store =
        SledStore::open(dir.path(), config(Some(Encryption::new(old.clone(), [])))).unwrap();
    for n in 0..10 {
        write_secret(&store, &format!("op-{n}"), &format!("doc{n}")).await;
    }
    store.close().unwrap();

    // The new key with the old one beside it: everything reads, and new
    // writes go under the new key.
    let rotating = config(Some(Encryption::new(new.clone(), [old.clone()])));
    let store = SledStore::open(dir.path(), rotating).unwrap();
    write_secret(&store, "op-new", "fresh").await;
    let rewritten = store.reencrypt().unwrap();
    // Ten documents, their changes and results, at least.
    assert!(rewritten >= 30, "{rewritten} records rewritten");
    assert_eq!(
        store.reencrypt().unwrap(),
        0,
        "nothing left under the old key"
    );
    store.close().unwrap();

    let store = SledStore::open(dir.path(), config(Some(Encryption::new(new, [])))).unwrap();
    assert!(store.verify_projection().unwrap().is_empty());
    let history = store
        .history(&key("default", "notes", "doc7"))
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert!(
        store.snapshot().await.is_ok(),
        "every record opens under the new key alone"
    );
    store.close().unwrap();
}

#[test]
fn a_key_is_64_hex_digits_and_its_id_does_not_reveal_it() {
    let text = EncryptionKey::generate_hex();
    assert_eq!(text.len(), 64);
    let key = EncryptionKey::from_hex(&format!("  {text}\n")).unwrap();
    assert_eq!(key.id(), EncryptionKey::from_hex(&text).unwrap().id());
    assert!(!text.contains(&format!("{:08x}", key.id())));
    assert!(EncryptionKey::from_hex(&text[..63]).is_err());
}

#[tokio::test]
async fn turning_encryption_on_leaves_a_reencryption_to_do_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = SledStore::open(dir.path(), config(None)).unwrap();
    assert!(!store.reencryption_pending().unwrap());
    write_secret(&store, "op-1", "a").await;
    store.close().unwrap();
    assert!(readable_without_a_key(dir.path()).await);

    let key = encryption_key();
    let store =
        SledStore::open(dir.path(), config(Some(Encryption::new(key.clone(), [])))).unwrap();
    assert!(store.reencryption_pending().unwrap());
    assert!(store.reencrypt().unwrap() >= 3);
    assert!(!store.reencryption_pending().unwrap());
    store.close().unwrap();
    assert!(!readable_without_a_key(dir.path()).await);

    // A new store under a key has nothing to re-encrypt.
    let fresh = tempfile::tempdir().unwrap();
    let store = SledStore::open(fresh.path(), config(Some(Encryption::new(key, [])))).unwrap();
    assert!(!store.reencryption_pending().unwrap());
    store.close().unwrap();
}

/// Whether a document of the store in `dir` reads without a key: it is
/// still plaintext.
async fn readable_without_a_key(dir: &Path) -> bool {
    let store = SledStore::open(dir, config(None)).unwrap();
    let plain = store.get(&key("default", "notes", "a")).await.is_ok();
    store.close().unwrap();
    plain
}
