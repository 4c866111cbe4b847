//! The PostgreSQL store: the conformance suite, two nodes on one schema
//! (gap-free seqs in commit order under concurrent commits, one log id,
//! compare-and-swap across nodes, wake-ups by notification and by polling),
//! reopen, exact JSON round trips and the projection check.
//!
//! Every test runs against `SYNC_TEST_DATABASE_URL` in a fresh schema of
//! its own, dropped afterwards. Without that variable each test says
//! loudly that it did NOT run, and returns.

#![allow(clippy::print_stderr)]

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use sync_core::store::{ChangeFilter, CommitOutcome};
use sync_core::{ChangeOp, Seq, SyncStore, Version};
use sync_store::{PgConfig, PgStore};
use sync_testkit::run_aside;

use crate::conformance::conformance_suite;
use crate::support::{insert, key, obj, write};

conformance_suite!(async crate::postgres::pg_store);

/// The database to test against, or `None` (after saying so) when unset.
fn database_url() -> Option<String> {
    match std::env::var("SYNC_TEST_DATABASE_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url),
        _ => {
            let test = std::thread::current()
                .name()
                .unwrap_or("a postgres test")
                .to_owned();
            // Straight to stderr, past the test harness's output capture,
            // so a skipped run is visible without `--nocapture`.
            let _ = writeln!(
                std::io::stderr(),
                "!!! SKIPPED: {test} did NOT run: set SYNC_TEST_DATABASE_URL \
                 (e.g. postgres://postgres@127.0.0.1:5432/test) to test the PostgreSQL store !!!"
            );
            None
        }
    }
}

/// A schema name no other test (of this run or an earlier one) uses.
fn fresh_schema() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "sync_test_{}_{}_{nanos}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

fn config(schema: &str) -> PgConfig {
    PgConfig {
        pool_connections_max: 8,
        ..PgConfig::with_schema(schema)
    }
}

/// Drops its schema when dropped. The drop runs on a thread of its own
/// with its own runtime: the test's runtime may be single-threaded and is
/// blocked in this `drop`.
pub(crate) struct SchemaGuard {
    url: String,
    schema: String,
}

impl SchemaGuard {
    fn new(url: &str, schema: &str) -> SchemaGuard {
        SchemaGuard {
            url: url.to_owned(),
            schema: schema.to_owned(),
        }
    }
}

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        let (url, schema) = (self.url.clone(), self.schema.clone());
        let dropped =
            run_aside(move || async move { PgStore::drop_schema_at(&url, &schema).await });
        match dropped {
            Some(Ok(())) => {}
            Some(Err(error)) => eprintln!("could not drop test schema {}: {error}", self.schema),
            None => eprintln!("could not drop test schema {}: no runtime", self.schema),
        }
    }
}

/// The conformance suite's factory: a store in a fresh schema.
pub(crate) async fn pg_store() -> Option<(Arc<dyn SyncStore>, SchemaGuard)> {
    let url = database_url()?;
    let schema = fresh_schema();
    let guard = SchemaGuard::new(&url, &schema);
    let store = PgStore::connect(&url, config(&schema)).await.unwrap();
    Some((Arc::new(store), guard))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_assign_gap_free_seqs_in_commit_order() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    // Both nodes start at once on a fresh schema: the migration lock makes
    // one wait for the other, and both end up with the same log.
    let (a, b) = tokio::join!(
        PgStore::connect(&url, config(&schema)),
        PgStore::connect(&url, config(&schema))
    );
    let (a, b) = (Arc::new(a.unwrap()), Arc::new(b.unwrap()));
    assert_eq!(a.log_id(), b.log_id(), "one database, one log");
    let nodes: [Arc<dyn SyncStore>; 2] = [a.clone(), b.clone()];

    let shared_docs = 4usize;
    let mut setup = Vec::new();
    for d in 0..shared_docs {
        setup.push(insert(
            &format!("setup-{d}"),
            &key("default", "shared", &format!("s{d}")),
            json!({"n": 0}),
        ));
    }
    nodes[0].apply(setup).await.unwrap();

    let writers_per_node = 8usize;
    let rounds = 12usize;
    // Per round: a batch of two inserts of the writer's own documents and
    // one compare-and-swap update of a shared document.
    let per_writer = rounds * 3;
    let total = (shared_docs + 2 * writers_per_node * per_writer) as u64;

    let reader = {
        let nodes = nodes.clone();
        tokio::spawn(async move {
            let mut after = Seq::ZERO;
            let mut page_number = 0usize;
            while after < Seq(total) {
                // Alternate nodes: both must show the same gap-free log.
                let node = &nodes[page_number % 2];
                page_number += 1;
                let page = node
                    .changes_after(after, &ChangeFilter::default(), 7)
                    .await
                    .unwrap();
                for change in &page.changes {
                    assert_eq!(
                        change.seq,
                        after.next(),
                        "a gap or a later seq before an earlier one"
                    );
                    after = change.seq;
                }
                assert_eq!(
                    page.last_seq, after,
                    "unfiltered pages end at their last change"
                );
                if !page.has_more && after < Seq(total) {
                    let woken =
                        tokio::time::timeout(Duration::from_secs(10), node.wait_for_head(after))
                            .await
                            .expect("a commit on either node wakes the reader")
                            .unwrap();
                    assert!(woken > after);
                }
            }
            (after, page_number)
        })
    };

    let mut writers = Vec::new();
    for (n, node) in nodes.iter().enumerate() {
        for w in 0..writers_per_node {
            let node = Arc::clone(node);
            writers.push(tokio::spawn(async move {
                let mut retries = 0u64;
                for round in 0..rounds {
                    let own = |i: usize| key("default", "own", &format!("n{n}-w{w}-{round}-{i}"));
                    let outcomes = node
                        .apply(vec![
                            insert(&format!("n{n}-w{w}-r{round}-a"), &own(0), json!({"i": 0})),
                            insert(&format!("n{n}-w{w}-r{round}-b"), &own(1), json!({"i": 1})),
                        ])
                        .await
                        .unwrap();
                    assert!(
                        outcomes
                            .iter()
                            .all(|o| matches!(o, CommitOutcome::Committed(_)))
                    );
                    let shared = key(
                        "default",
                        "shared",
                        &format!("s{}", (w + round) % shared_docs),
                    );
                    let op_id = format!("n{n}-w{w}-r{round}-u");
                    loop {
                        let version = node
                            .get(&shared)
                            .await
                            .unwrap()
                            .unwrap()
                            .document
                            .version
                            .get();
                        let data = json!({"n": version, "by": op_id.clone()});
                        let outcome = node
                            .apply(vec![write(
                                &op_id,
                                &shared,
                                version,
                                ChangeOp::Update,
                                data.clone(),
                                data,
                            )])
                            .await
                            .unwrap();
                        match &outcome[0] {
                            CommitOutcome::Committed(_) => break,
                            CommitOutcome::VersionMismatch { .. } => retries += 1,
                            other => panic!("unexpected {other:?}"),
                        }
                    }
                }
                retries
            }));
        }
    }
    let mut retries = 0;
    for writer in writers {
        retries += writer.await.unwrap();
    }
    let (read_up_to, pages) = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("the reader catches up")
        .unwrap();
    eprintln!("two nodes: {total} changes, {pages} pages read, {retries} CAS retries");
    assert_eq!(read_up_to, Seq(total));
    for node in &nodes {
        assert_eq!(node.head().await.unwrap(), Seq(total));
        let all = node
            .changes_after(Seq::ZERO, &ChangeFilter::default(), usize::MAX)
            .await
            .unwrap();
        assert_eq!(
            all.changes.iter().map(|c| c.seq.get()).collect::<Vec<_>>(),
            (1..=total).collect::<Vec<_>>()
        );
        let stats = node.stats().await.unwrap();
        assert_eq!(
            stats.operations.get(&sync_core::OpStatus::Success),
            Some(&total)
        );
        assert_eq!(stats.head, Seq(total));
    }
    // Compare-and-swap held across nodes: every update made one version.
    let mut shared_versions = 0;
    for d in 0..shared_docs {
        let stored = nodes[1]
            .get(&key("default", "shared", &format!("s{d}")))
            .await
            .unwrap()
            .unwrap();
        shared_versions += stored.document.version.get();
        assert_eq!(
            nodes[0]
                .history(&stored.document.key())
                .await
                .unwrap()
                .len() as u64,
            stored.document.version.get()
        );
    }
    assert_eq!(
        shared_versions,
        (shared_docs + 2 * writers_per_node * rounds) as u64
    );
    assert_eq!(a.verify_projection().await.unwrap(), Vec::new());
    assert_eq!(b.verify_projection().await.unwrap(), Vec::new());
}

/// Waits on `waiter` for a commit made on `writer` a little later.
async fn commit_elsewhere_wakes(waiter: &PgStore, writer: &PgStore, op_id: &str) -> Seq {
    let head = waiter.head().await.unwrap();
    let (woken, ()) = tokio::join!(
        tokio::time::timeout(Duration::from_secs(5), waiter.wait_for_head(head)),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            writer
                .apply(vec![insert(
                    op_id,
                    &key("default", "todos", op_id),
                    json!({}),
                )])
                .await
                .unwrap();
        }
    );
    woken.expect("woken within 5 s").unwrap()
}

#[tokio::test]
async fn a_notification_wakes_waiters_on_another_node() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    // The poll is far too slow to be what wakes the waiter here.
    let slow_poll = PgConfig {
        head_poll_interval_ms: 600_000,
        ..config(&schema)
    };
    let a = PgStore::connect(&url, slow_poll.clone()).await.unwrap();
    let b = PgStore::connect(&url, slow_poll).await.unwrap();
    // Let the listener connect and LISTEN before the commit.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(commit_elsewhere_wakes(&b, &a, "op-1").await, Seq(1));
    assert_eq!(commit_elsewhere_wakes(&a, &b, "op-2").await, Seq(2));
}

#[tokio::test]
async fn without_notifications_the_poll_wakes_waiters() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let polling = PgConfig {
        listen: false,
        head_poll_interval_ms: 100,
        ..config(&schema)
    };
    let a = PgStore::connect(&url, polling.clone()).await.unwrap();
    let b = PgStore::connect(&url, polling).await.unwrap();
    assert_eq!(commit_elsewhere_wakes(&b, &a, "op-1").await, Seq(1));
}

#[tokio::test]
async fn acknowledged_writes_and_the_log_id_survive_a_reconnect() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let log_id;
    {
        let store = PgStore::connect(&url, config(&schema)).await.unwrap();
        log_id = store.log_id();
        store
            .apply(vec![insert(
                "op-1",
                &key("default", "todos", "t1"),
                json!({"n": 1}),
            )])
            .await
            .unwrap();
        store.close().await.unwrap();
    }
    let store = PgStore::connect(&url, config(&schema)).await.unwrap();
    assert_eq!(store.log_id(), log_id, "the log keeps its identity");
    assert_eq!(store.head().await.unwrap(), Seq(1));
    assert_eq!(
        store
            .get(&key("default", "todos", "t1"))
            .await
            .unwrap()
            .unwrap()
            .document
            .data,
        obj(json!({"n": 1}))
    );
    let next = store
        .apply(vec![insert(
            "op-2",
            &key("default", "todos", "t2"),
            json!({}),
        )])
        .await
        .unwrap();
    assert!(matches!(&next[0], CommitOutcome::Committed(r) if r.seq == Some(Seq(2))));
    let again = store
        .apply(vec![insert(
            "op-1",
            &key("default", "todos", "t1"),
            json!({"n": 1}),
        )])
        .await
        .unwrap();
    assert!(matches!(&again[0], CommitOutcome::Duplicate(r) if r.seq == Some(Seq(1))));
}

#[tokio::test]
async fn json_round_trips_exactly() {
    let Some((store, _guard)) = pg_store().await else {
        return;
    };
    let doc = key("default", "todos", "j1");
    // Numbers jsonb would rewrite (1e17 as an integer), the escape it
    // refuses (\u0000), and keys in an order it would change.
    let data = json!({
        "float_big": 1e17,
        "float_small": 1.5e-300,
        "tenth": 0.1,
        "whole_float": 3.0,
        "max": u64::MAX,
        "min": i64::MIN,
        "text": "nul \u{0} and é and 🦀",
        "zz": [1, 2.5, {"b": null, "a": [true, false]}],
        "a": {}
    });
    store
        .apply(vec![insert("op-1", &doc, data.clone())])
        .await
        .unwrap();
    let stored = store.get(&doc).await.unwrap().unwrap();
    assert_eq!(stored.document.data, obj(data.clone()));
    assert_eq!(
        serde_json::to_string(&stored.document.data).unwrap(),
        serde_json::to_string(&obj(data.clone())).unwrap()
    );
    let change = &store
        .changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
        .await
        .unwrap()
        .changes[0];
    assert_eq!(change.data, Some(obj(data.clone())));
    assert_eq!(change.delta, obj(data.clone()));
    assert_eq!(
        store
            .document_at(&doc, Version(1))
            .await
            .unwrap()
            .unwrap()
            .data,
        obj(data)
    );
}

/// A group commit held up by a lock another session holds on the log head
/// makes the store not ready once it has waited past `stall_after_ms`, and
/// ready again once it goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_committer_is_not_ready() {
    let Some(url) = database_url() else { return };
    let schema = fresh_schema();
    let _guard = SchemaGuard::new(&url, &schema);
    let store = Arc::new(
        PgStore::connect(
            &url,
            PgConfig {
                stall_after_ms: 300,
                ..config(&schema)
            },
        )
        .await
        .unwrap(),
    );
    store.check_writable().await.unwrap();

    let (blocker, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    blocker
        .batch_execute(&format!(
            "BEGIN; SELECT head FROM {schema}.log_head WHERE id = 1 FOR UPDATE"
        ))
        .await
        .unwrap();
    let writer = {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            store
                .apply(vec![insert(
                    "op-1",
                    &key("default", "todos", "t1"),
                    json!({"n": 1}),
                )])
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(800)).await;
    let stalled = store.check_writable().await.unwrap_err();
    assert_eq!(
        stalled.code(),
        sync_core::ErrorCode::Unavailable,
        "{stalled}"
    );
    assert!(!writer.is_finished(), "the write waits for the lock");

    blocker.batch_execute("ROLLBACK").await.unwrap();
    let outcome = writer.await.unwrap().unwrap();
    assert!(
        matches!(outcome[0], CommitOutcome::Committed(_)),
        "{outcome:?}"
    );
    store.check_writable().await.unwrap();
}
