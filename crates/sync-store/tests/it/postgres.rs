//! The PostgreSQL store: the conformance suite, two nodes on one schema
//! (gap-free seqs in commit order under concurrent commits, read gap-free
//! on each node while both commit, one log id, compare-and-swap and
//! exactly-once across nodes, killed connections, a commit left unsettled,
//! wake-ups by notification and by polling), reopen, the upgrade of an
//! earlier schema, exact JSON round trips and the projection check.
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

/// The database and a fresh schema in it, dropped with the guard; `None`
/// (after saying so) without a database.
fn fresh_database() -> Option<(String, String, SchemaGuard)> {
    let url = database_url()?;
    let schema = fresh_schema();
    let guard = SchemaGuard::new(&url, &schema);
    Some((url, schema, guard))
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
    let (url, schema, guard) = fresh_database()?;
    let store = PgStore::connect(&url, config(&schema)).await.unwrap();
    Some((Arc::new(store), guard))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_assign_gap_free_seqs_in_commit_order() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
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
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
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
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
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
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
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
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
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

/// A plain connection to the test database, its driver spawned.
async fn raw_client(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// Reads `node`'s log from after `Seq::ZERO` until `done` is set and the
/// node's head is `until()`, asserting at every page that no seq is
/// skipped and none comes before an earlier one; returns the op ids read.
async fn read_gap_free(
    node: Arc<dyn SyncStore>,
    done: Arc<std::sync::atomic::AtomicBool>,
    until: impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Seq> + Send>>,
) -> Vec<String> {
    let mut after = Seq::ZERO;
    let mut op_ids = Vec::new();
    loop {
        let finished = done.load(Ordering::Acquire);
        let page = node
            .changes_after(after, &ChangeFilter::default(), 5)
            .await
            .unwrap();
        for change in &page.changes {
            assert_eq!(
                change.seq,
                after.next(),
                "a gap, or a later seq before an earlier one"
            );
            after = change.seq;
            op_ids.push(change.op_id.as_str().to_owned());
        }
        assert_eq!(page.last_seq, after);
        if finished && !page.has_more && after >= until().await {
            return op_ids;
        }
        if !page.has_more {
            let _ =
                tokio::time::timeout(Duration::from_millis(50), node.wait_for_head(after)).await;
        }
    }
}

/// The committed head of `schema`, which the settled head must reach.
fn committed_head(
    url: String,
    schema: String,
) -> impl Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Seq> + Send>> {
    move || {
        let (url, schema) = (url.clone(), schema.clone());
        Box::pin(async move {
            let client = raw_client(&url).await;
            let row = client
                .query_one(&format!("SELECT head FROM {schema}.log_head"), &[])
                .await
                .unwrap();
            Seq(u64::try_from(row.get::<_, i64>(0)).unwrap())
        })
    }
}

/// Two nodes write at once while a reader on each reads its own node's log:
/// each reader sees every seq, in order, none before the one below it,
/// while commits of both nodes are in flight.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_on_each_node_reads_gap_free_while_both_nodes_commit() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
    let a: Arc<dyn SyncStore> = Arc::new(PgStore::connect(&url, config(&schema)).await.unwrap());
    let b: Arc<dyn SyncStore> = Arc::new(PgStore::connect(&url, config(&schema)).await.unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let readers: Vec<_> = [&a, &b]
        .into_iter()
        .map(|node| {
            tokio::spawn(read_gap_free(
                Arc::clone(node),
                Arc::clone(&done),
                committed_head(url.clone(), schema.clone()),
            ))
        })
        .collect();
    let mut writers = Vec::new();
    for (n, node) in [&a, &b].into_iter().enumerate() {
        for w in 0..8 {
            let node = Arc::clone(node);
            writers.push(tokio::spawn(async move {
                for round in 0..20 {
                    let op = |i: usize| format!("n{n}-w{w}-r{round}-{i}");
                    let writes = (0..1 + round % 3)
                        .map(|i| insert(&op(i), &key("default", "todos", &op(i)), json!({"i": i})))
                        .collect();
                    let outcomes = node.apply(writes).await.unwrap();
                    assert!(
                        outcomes
                            .iter()
                            .all(|o| matches!(o, CommitOutcome::Committed(_)))
                    );
                }
            }));
        }
    }
    for writer in writers {
        writer.await.unwrap();
    }
    done.store(true, Ordering::Release);
    // Each writer: 7 rounds of one write, 7 of two, 6 of three.
    let total = 2 * 8 * 39;
    for reader in readers {
        let read = tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("the reader catches up")
            .unwrap();
        assert_eq!(read.len(), total);
    }
    assert_eq!(a.head().await.unwrap(), Seq(total as u64));
    assert_eq!(b.verify_projection().await.unwrap(), Vec::new());
}

/// One node's connections are killed (`pg_terminate_backend`) again and
/// again while both nodes write: the killed transactions leave no gap and
/// no reader waiting, every acknowledged write is in the log once, and the
/// node writes again afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_connections_lose_nothing_acknowledged_and_leave_no_reader_stuck() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
    let victim_name = format!("victim_{schema}");
    let separator = if url.contains('?') { '&' } else { '?' };
    let victim_url = format!("{url}{separator}application_name={victim_name}");
    let fast_poll = PgConfig {
        head_poll_interval_ms: 100,
        ..config(&schema)
    };
    let a: Arc<dyn SyncStore> = Arc::new(
        PgStore::connect(&victim_url, fast_poll.clone())
            .await
            .unwrap(),
    );
    let b: Arc<dyn SyncStore> = Arc::new(PgStore::connect(&url, fast_poll).await.unwrap());
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = tokio::spawn(read_gap_free(
        Arc::clone(&b),
        Arc::clone(&done),
        committed_head(url.clone(), schema.clone()),
    ));

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let killer = {
        let (url, stop, victim_name) = (url.clone(), Arc::clone(&stop), victim_name.clone());
        tokio::spawn(async move {
            let client = raw_client(&url).await;
            let mut killed = 0i64;
            while !stop.load(Ordering::Acquire) {
                let row = client
                    .query_one(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                         WHERE application_name = $1",
                        &[&victim_name],
                    )
                    .await
                    .unwrap();
                killed += row.get::<_, i64>(0);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
            killed
        })
    };
    let mut writers = Vec::new();
    for (n, node) in [&a, &b].into_iter().enumerate() {
        for w in 0..6 {
            let node = Arc::clone(node);
            writers.push(tokio::spawn(async move {
                let (mut acknowledged, mut failed) = (Vec::new(), 0usize);
                for round in 0..40 {
                    let op_id = format!("n{n}-w{w}-r{round}");
                    let doc = key("default", "todos", &op_id);
                    match node.apply(vec![insert(&op_id, &doc, json!({}))]).await {
                        Ok(outcomes) => {
                            assert!(matches!(outcomes[0], CommitOutcome::Committed(_)));
                            acknowledged.push(op_id);
                        }
                        Err(_) => failed += 1,
                    }
                }
                (acknowledged, failed)
            }));
        }
    }
    let (mut acknowledged, mut failed) = (Vec::new(), 0);
    for writer in writers {
        let (acked, lost) = writer.await.unwrap();
        acknowledged.extend(acked);
        failed += lost;
    }
    stop.store(true, Ordering::Release);
    let killed = killer.await.unwrap();
    done.store(true, Ordering::Release);
    let read = tokio::time::timeout(Duration::from_secs(20), reader)
        .await
        .expect("no reader is left waiting for a killed transaction")
        .unwrap();
    eprintln!(
        "killed {killed} connections: {} writes acknowledged, {failed} failed, {} in the log",
        acknowledged.len(),
        read.len()
    );
    assert!(killed > 0 && failed > 0, "the kills hit writes");
    let logged: std::collections::BTreeSet<&String> = read.iter().collect();
    assert_eq!(logged.len(), read.len(), "every op id once");
    for op_id in &acknowledged {
        assert!(logged.contains(op_id), "acknowledged {op_id} is in the log");
    }
    // The victim writes again, and sees the same log.
    let outcome = a
        .apply(vec![insert(
            "after-kills",
            &key("default", "todos", "after-kills"),
            json!({}),
        )])
        .await
        .unwrap();
    assert!(
        matches!(&outcome[0], CommitOutcome::Committed(r) if r.seq == Some(Seq(read.len() as u64 + 1)))
    );
    assert_eq!(a.verify_projection().await.unwrap(), Vec::new());
}

/// A node that committed and died before it settled (simulated by taking
/// the settled head back under a commit) leaves readers waiting for one
/// poll at most: the poll of any node settles the commit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_its_node_never_settled_is_settled_by_a_poll() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
    let polling = PgConfig {
        head_poll_interval_ms: 100,
        ..config(&schema)
    };
    let a = PgStore::connect(&url, polling.clone()).await.unwrap();
    a.apply(vec![insert(
        "op-1",
        &key("default", "todos", "t1"),
        json!({}),
    )])
    .await
    .unwrap();
    a.close().await.unwrap();
    let client = raw_client(&url).await;
    client
        .batch_execute(&format!("UPDATE {schema}.log_settled SET up_to = 0"))
        .await
        .unwrap();

    // Slow enough to look before the poll settles, which takes two polls:
    // one that sees the commit, one that finds it still unsettled.
    let slow_poll = PgConfig {
        head_poll_interval_ms: 1_000,
        ..polling
    };
    let b = PgStore::connect(&url, slow_poll).await.unwrap();
    assert_eq!(b.head().await.unwrap(), Seq::ZERO, "committed, not settled");
    assert!(
        b.changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
            .await
            .unwrap()
            .changes
            .is_empty(),
        "readers read settled changes only"
    );
    let woken = tokio::time::timeout(Duration::from_secs(5), b.wait_for_head(Seq::ZERO))
        .await
        .expect("settled by a poll")
        .unwrap();
    assert_eq!(woken, Seq(1));
    let page = b
        .changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 1);
    assert_eq!(page.changes[0].op_id.as_str(), "op-1");
}

/// Both nodes apply the same operation, and then two updates of the same
/// document from one version, at the same moment, round after round: one
/// commit each time, the other node answered with a duplicate or a
/// version mismatch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compare_and_swap_and_exactly_once_hold_across_two_nodes() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
    let a: Arc<dyn SyncStore> = Arc::new(PgStore::connect(&url, config(&schema)).await.unwrap());
    let b: Arc<dyn SyncStore> = Arc::new(PgStore::connect(&url, config(&schema)).await.unwrap());
    let rounds = 60usize;
    let tasks: Vec<_> = (0..rounds)
        .map(|round| {
            let (a, b) = (Arc::clone(&a), Arc::clone(&b));
            tokio::spawn(async move {
                let doc = key("default", "todos", &format!("d{round}"));
                let op_id = format!("create-{round}");
                let create = insert(&op_id, &doc, json!({"n": 0}));
                let (first, second) =
                    tokio::join!(a.apply(vec![create.clone()]), b.apply(vec![create]));
                let outcomes = [first.unwrap().remove(0), second.unwrap().remove(0)];
                let committed: Vec<_> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        CommitOutcome::Committed(r) => Some(r.seq),
                        _ => None,
                    })
                    .collect();
                let duplicates: Vec<_> = outcomes
                    .iter()
                    .filter_map(|o| match o {
                        CommitOutcome::Duplicate(r) => Some(r.seq),
                        _ => None,
                    })
                    .collect();
                assert_eq!(committed.len(), 1, "{outcomes:?}");
                assert_eq!(
                    duplicates, committed,
                    "the duplicate answers the first result"
                );

                let update = |node: &str| {
                    let data = json!({"n": 1, "by": node});
                    write(
                        &format!("update-{round}-{node}"),
                        &doc,
                        1,
                        ChangeOp::Update,
                        data.clone(),
                        data,
                    )
                };
                let (first, second) =
                    tokio::join!(a.apply(vec![update("a")]), b.apply(vec![update("b")]));
                let outcomes = [first.unwrap().remove(0), second.unwrap().remove(0)];
                let committed = outcomes
                    .iter()
                    .filter(|o| matches!(o, CommitOutcome::Committed(_)))
                    .count();
                let mismatched = outcomes
                    .iter()
                    .filter(|o| {
                        matches!(o, CommitOutcome::VersionMismatch { current: Some(c) }
                            if c.document.version == Version(2))
                    })
                    .count();
                assert_eq!((committed, mismatched), (1, 1), "{outcomes:?}");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let head = a.head().await.unwrap();
    assert_eq!(head, Seq(2 * rounds as u64));
    let all = b
        .changes_after(Seq::ZERO, &ChangeFilter::default(), usize::MAX)
        .await
        .unwrap();
    assert_eq!(
        all.changes.iter().map(|c| c.seq.get()).collect::<Vec<_>>(),
        (1..=head.get()).collect::<Vec<_>>()
    );
    for round in 0..rounds {
        let doc = key("default", "todos", &format!("d{round}"));
        assert_eq!(a.history(&doc).await.unwrap().len(), 2);
    }
    assert_eq!(a.verify_projection().await.unwrap(), Vec::new());
}

/// A database of the schema before the settled head (no `log_settled`)
/// upgrades in place when a node connects: its whole log is settled.
#[tokio::test]
async fn a_log_of_an_earlier_schema_is_settled_by_the_upgrade() {
    let Some((url, schema, _guard)) = fresh_database() else {
        return;
    };
    let store = PgStore::connect(&url, config(&schema)).await.unwrap();
    for n in 1..=3 {
        let op_id = format!("op-{n}");
        store
            .apply(vec![insert(
                &op_id,
                &key("default", "todos", &op_id),
                json!({}),
            )])
            .await
            .unwrap();
    }
    store.close().await.unwrap();
    let client = raw_client(&url).await;
    let current = latest_migration(&client, &schema).await;
    client
        .batch_execute(&format!(
            "DROP TABLE {schema}.log_settled;
             DELETE FROM {schema}.schema_migrations WHERE version >= 3"
        ))
        .await
        .unwrap();

    let store = PgStore::connect(&url, config(&schema)).await.unwrap();
    assert_eq!(store.head().await.unwrap(), Seq(3));
    let page = store
        .changes_after(Seq::ZERO, &ChangeFilter::default(), 10)
        .await
        .unwrap();
    assert_eq!(page.changes.len(), 3);
    let next = store
        .apply(vec![insert(
            "op-4",
            &key("default", "todos", "op-4"),
            json!({}),
        )])
        .await
        .unwrap();
    assert!(matches!(&next[0], CommitOutcome::Committed(r) if r.seq == Some(Seq(4))));
    assert_eq!(latest_migration(&client, &schema).await, current);
}

async fn latest_migration(client: &tokio_postgres::Client, schema: &str) -> Option<i32> {
    let row = client
        .query_one(
            &format!("SELECT max(version) FROM {schema}.schema_migrations"),
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}
