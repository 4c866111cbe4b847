//! Crash test: a child process writes through the store and reports every
//! acknowledged write; the parent kills it with SIGKILL at random moments,
//! reopens the data directory and checks that every acknowledged write is
//! there with its result, the log is gap-free and the documents are still
//! the log's projection.
//!
//! The child is this same test binary, re-run with only `crash_child`
//! selected and the data directory in an environment variable. The store
//! is encrypted and its documents are long enough to be compressed, so
//! the crashes also hit records being sealed (the server's crash rounds
//! run the plain store).

// The child reports to the parent on stdout; the parent logs its seed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use sync_core::store::{ChangeFilter, CommitOutcome};
use sync_core::{OpId, Seq, SyncStore};
use sync_store::{Compression, Encryption, EncryptionKey, SledStore, StoreConfig};
use sync_testkit::{ChildTest, Random, seed};

use crate::support::{insert, key};

const CHILD_DIR: &str = "SYNC_STORE_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "SYNC_STORE_CRASH_CHILD_ROUND";
const ROUNDS: u64 = 6;

/// The store as both the child and the parent open it: encrypted under a
/// fixed test key, compressed.
fn sealed_config() -> StoreConfig {
    let key = EncryptionKey::from_hex(&"5e".repeat(32)).unwrap();
    StoreConfig {
        encryption: Some(Encryption::new(key, [])),
        compression: Compression::Zstd,
        ..StoreConfig::default()
    }
}

/// Writes until killed; prints `ACK <opId> <seq>` for each durable write.
#[test]
#[ignore = "run by `crash_kill_and_recover` as its child process"]
fn crash_child() {
    let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) else {
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let store: std::sync::Arc<dyn SyncStore> =
            std::sync::Arc::new(SledStore::open(&dir, sealed_config()).unwrap());
        let mut writers = Vec::new();
        for writer in 0..8 {
            let store = std::sync::Arc::clone(&store);
            let round = round.clone();
            writers.push(tokio::spawn(async move {
                for n in 0.. {
                    let op_id = format!("r{round}-w{writer}-{n}");
                    let doc = key("default", "crash", &op_id);
                    let outcome = store
                        .apply(vec![insert(
                            &op_id,
                            &doc,
                            json!({"n": n, "text": "a note long enough to compress ".repeat(20)}),
                        )])
                        .await
                        .unwrap();
                    if let CommitOutcome::Committed(result) = &outcome[0] {
                        println!("ACK {op_id} {}", result.seq.unwrap_or_default());
                    }
                }
            }));
        }
        for writer in writers {
            let _ = writer.await;
        }
    });
}

#[test]
fn crash_kill_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed("SYNC_STORE_CRASH_SEED");
    let mut random = Random::new(seed);
    let mut acknowledged: BTreeMap<String, u64> = BTreeMap::new();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..ROUNDS {
        let round_text = round.to_string();
        let child = ChildTest::spawn(
            "crash::crash_child",
            &[
                (CHILD_DIR, dir.path().as_os_str()),
                (CHILD_ROUND, round_text.as_ref()),
            ],
        );
        std::thread::sleep(Duration::from_millis(300 + random.next(900)));
        let acks: Vec<(String, u64)> = child
            .kill()
            .iter()
            .filter_map(|line| {
                let mut parts = line.strip_prefix("ACK ")?.split(' ');
                Some((parts.next()?.to_owned(), parts.next()?.parse().ok()?))
            })
            .collect();
        assert!(
            !acks.is_empty() || round > 0,
            "the child acknowledged nothing in round {round}"
        );
        acknowledged.extend(acks);

        let verified = runtime.block_on(async {
            let store = SledStore::open(dir.path(), sealed_config()).unwrap();
            for (op_id, seq) in &acknowledged {
                let result = store
                    .lookup_op(&op_id.parse::<OpId>().unwrap())
                    .await
                    .unwrap();
                let result =
                    result.unwrap_or_else(|| panic!("acknowledged {op_id} lost (seed {seed})"));
                assert_eq!(result.seq, Some(Seq(*seq)), "{op_id} (seed {seed})");
            }
            let head = store.head().await.unwrap();
            let log = store
                .changes_after(Seq::ZERO, &ChangeFilter::default(), usize::MAX)
                .await
                .unwrap();
            let seqs: Vec<u64> = log.changes.iter().map(|c| c.seq.get()).collect();
            assert_eq!(
                seqs,
                (1..=head.get()).collect::<Vec<_>>(),
                "gap in the log (seed {seed})"
            );
            assert_eq!(
                store.verify_projection().unwrap(),
                Vec::new(),
                "projection differs (seed {seed})"
            );
            store.close().unwrap();
            head
        });
        eprintln!(
            "round {round}: {} acknowledged so far, log head {verified}",
            acknowledged.len()
        );
    }
    assert!(
        acknowledged.len() > 100,
        "too few writes to mean anything: {}",
        acknowledged.len()
    );
}
