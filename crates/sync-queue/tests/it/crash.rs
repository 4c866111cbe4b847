//! Crash test: a child process enqueues in a loop from several tasks and
//! prints every id `enqueue` returned; the parent kills it with SIGKILL at
//! random moments, reopens the directory and checks that every returned
//! operation is there exactly once, under its id, in enqueue order, with
//! the merges it was told about; between rounds the parent acknowledges and
//! fails some entries and checks those changes survive too.
//!
//! The child is this same test binary, re-run with only `crash_child`
//! selected and the directory in an environment variable.

// The child reports to the parent on stdout; the parent logs its seed.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use sync_core::OfflineQueue;
use sync_core::queue::QueueId;
use sync_queue::{Enqueued, QueueConfig, SledQueue};
use sync_testkit::{ChildTest, Random, seed};

use crate::support::{create, update};

const CHILD_DIR: &str = "SYNC_QUEUE_CRASH_CHILD_DIR";
const CHILD_ROUND: &str = "SYNC_QUEUE_CRASH_CHILD_ROUND";
const ROUNDS: u64 = 5;
const WRITERS: u64 = 4;

fn crash_config() -> QueueConfig {
    QueueConfig {
        max_entries: 1_000_000,
        ..QueueConfig::default()
    }
}

/// Enqueues until killed. Prints `ACK <id> <opId> .` for each new entry and
/// `MERGED <id> <opId> .` for each update merged into an entry, once the
/// call has returned (the final `.` tells a whole line from a cut one).
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
        let queue = SledQueue::open(&dir, crash_config()).unwrap();
        let dyn_queue: Arc<dyn OfflineQueue> = Arc::new(queue.clone());
        let mut writers = Vec::new();
        for writer in 0..WRITERS {
            let dyn_queue = Arc::clone(&dyn_queue);
            let queue = queue.clone();
            let round = round.clone();
            writers.push(tokio::spawn(async move {
                for n in 0u64.. {
                    let op_id = format!("r{round}-w{writer}-{n}");
                    let op = create(&op_id, &op_id, json!({"writer": writer, "n": n}));
                    let id = dyn_queue.enqueue(op).await.unwrap();
                    println!("ACK {} {op_id} .", id.0);
                    if n % 3 == 2 {
                        // Folds into the create just made (never sent).
                        let touch = format!("{op_id}-touch");
                        let op = update(&op_id, &touch, json!({"touched": true}));
                        let queue = queue.clone();
                        let merged = tokio::task::spawn_blocking(move || queue.push(op))
                            .await
                            .unwrap()
                            .unwrap();
                        assert_eq!(merged, Enqueued::Coalesced(id));
                        println!("MERGED {} {op_id} .", id.0);
                    }
                }
            }));
        }
        for writer in writers {
            let _ = writer.await;
        }
    });
}

/// One line of the child's report.
enum Report {
    Ack(QueueId, String),
    Merged(QueueId),
}

fn parse(line: &str) -> Option<Report> {
    let parts: Vec<&str> = line.split(' ').collect();
    let [kind, id, op_id, "."] = parts.as_slice() else {
        return None;
    };
    let id = QueueId(id.parse().ok()?);
    match *kind {
        "ACK" => Some(Report::Ack(id, (*op_id).to_owned())),
        "MERGED" => Some(Report::Merged(id)),
        _ => None,
    }
}

#[test]
fn crash_kill_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let seed = seed("SYNC_QUEUE_CRASH_SEED");
    let mut random = Random::new(seed);
    // opId -> id of every entry enqueue returned and the parent did not
    // remove; opIds the parent removed; ids that were told to hold a merge.
    let mut expected: BTreeMap<String, QueueId> = BTreeMap::new();
    let mut removed: BTreeSet<String> = BTreeSet::new();
    let mut merged: BTreeSet<QueueId> = BTreeSet::new();
    let mut failed_once: BTreeSet<QueueId> = BTreeSet::new();
    let mut highest_before = QueueId(0);
    let mut total = 0;
    for round in 0..ROUNDS {
        let round_text = round.to_string();
        let child = ChildTest::spawn(
            "crash::crash_child",
            &[
                (CHILD_DIR, dir.path().as_os_str()),
                (CHILD_ROUND, round_text.as_ref()),
            ],
        );
        std::thread::sleep(Duration::from_millis(250 + random.next(650)));
        let reports = child
            .kill()
            .iter()
            .filter_map(|line| parse(line))
            .collect::<Vec<_>>();
        let mut acked = 0;
        for report in reports {
            match report {
                Report::Ack(id, op_id) => {
                    assert!(
                        id > highest_before,
                        "{id:?} not above the last round's {highest_before:?} (seed {seed})"
                    );
                    assert!(expected.insert(op_id, id).is_none(), "seed {seed}");
                    acked += 1;
                }
                Report::Merged(id) => {
                    merged.insert(id);
                }
            }
        }
        assert!(acked > 0, "the child enqueued nothing in round {round}");
        total += acked;

        let queue = SledQueue::open(dir.path(), crash_config()).unwrap();
        let entries = queue.entries();
        let mut by_op: BTreeMap<String, QueueId> = BTreeMap::new();
        let mut last_n: BTreeMap<String, (QueueId, u64)> = BTreeMap::new();
        for entry in &entries {
            let op_id = entry.queued.op.op_id.clone().unwrap().into_string();
            assert!(
                by_op.insert(op_id.clone(), entry.queued.id).is_none(),
                "{op_id} stored twice (seed {seed})"
            );
            assert!(
                !removed.contains(&op_id),
                "removed {op_id} is back (seed {seed})"
            );
            // Each writer's entries are in the order it enqueued them.
            let data = entry.queued.op.data.clone().unwrap();
            let writer = format!("{}-{}", &op_id[..op_id.find("-w").unwrap()], data["writer"]);
            let n = data["n"].as_u64().unwrap();
            if let Some((previous_id, previous_n)) = last_n.insert(writer, (entry.queued.id, n)) {
                assert!(
                    previous_id < entry.queued.id && previous_n < n,
                    "{op_id} out of order (seed {seed})"
                );
            }
            if merged.contains(&entry.queued.id) {
                assert_eq!(data.get("touched"), Some(&json!(true)), "seed {seed}");
            }
            if failed_once.contains(&entry.queued.id) {
                assert_eq!(entry.queued.attempts, 1, "seed {seed}");
                assert!(entry.sent, "seed {seed}");
            }
        }
        for (op_id, id) in &expected {
            assert_eq!(
                by_op.get(op_id),
                Some(id),
                "acknowledged {op_id} lost or moved (seed {seed})"
            );
        }
        highest_before = entries.last().map_or(highest_before, |e| e.queued.id);

        // Acknowledge the older half of the acknowledged entries and fail a
        // few, for the next round to check.
        let mut known: Vec<(String, QueueId)> =
            expected.iter().map(|(op, id)| (op.clone(), *id)).collect();
        known.sort_by_key(|(_, id)| *id);
        let half = known.len() / 2;
        let to_ack: Vec<QueueId> = known[..half].iter().map(|(_, id)| *id).collect();
        assert_eq!(queue.ack(&to_ack).unwrap(), half, "seed {seed}");
        for (op_id, _) in &known[..half] {
            expected.remove(op_id);
            removed.insert(op_id.clone());
        }
        for (_, id) in known[half..].iter().take(3) {
            if failed_once.insert(*id) {
                queue.fail(*id, "crash test", 0).unwrap();
            }
        }
        queue.close().unwrap();
        eprintln!(
            "round {round}: {acked} enqueued, {} entries held, {} removed",
            entries.len(),
            removed.len()
        );
    }
    assert!(total > 100, "too few enqueues to mean anything: {total}");
}
