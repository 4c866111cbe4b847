//! Crash rounds of a client process (guarantees 2 and 5 of
//! `docs/protocol.md`): a child process (this test binary, re-run with only
//! `crash_rounds_child` selected) opens a `SyncClient` on a data directory
//! against a reachable server and edits while its queue uploads, printing
//! each edit before it starts and once `save`/`update` has returned. The
//! parent kills it with SIGKILL at a random moment, opens a client on the
//! same directory, syncs, and checks that the queue drained and that every
//! returned edit reached the server exactly once: each document holds its
//! last edit (or the one in flight at the kill), and its changes in the log
//! carry strictly increasing edit numbers, never more changes than edits
//! (an edit applied twice would repeat a number or add a change). The
//! rounds go on over the same data.
//!
//! Each edit writes a field `e`, unique and increasing over the whole run.
//! `SYNC_CLIENT_CRASH_ROUNDS` sets the rounds (default 10),
//! `SYNC_CLIENT_CRASH_SEED` replays a seed; the seed is printed first.

// The child reports on stdout; the parent reports its figures on stderr.
#![allow(clippy::print_stderr)]

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sync_testkit::{ChildTest, Random, seed};

use crate::support::{Node, client, data_dir, obj};

const CHILD_DIR: &str = "SYNC_CLIENT_CRASH_ROUNDS_DIR";
const CHILD_URL: &str = "SYNC_CLIENT_CRASH_ROUNDS_URL";
const CHILD_ROUND: &str = "SYNC_CLIENT_CRASH_ROUNDS_ROUND";
const CHILD_SEED: &str = "SYNC_CLIENT_CRASH_ROUNDS_SEED";
/// Edit numbers of round r are r * ROUND_SPAN + n.
const ROUND_SPAN: u64 = 1_000_000;

/// The child: edits until killed. Prints `begin <n> <id> <e>` before an
/// edit and `done <n>` once it returned. Does nothing unless run by
/// `client_crash_rounds`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_rounds_child() {
    let (Ok(dir), Ok(url), Ok(round), Ok(seed)) = (
        std::env::var(CHILD_DIR),
        std::env::var(CHILD_URL),
        std::env::var(CHILD_ROUND),
        std::env::var(CHILD_SEED),
    ) else {
        return;
    };
    let round: u64 = round.parse().unwrap();
    let mut random = Random::new(seed.parse().unwrap());
    let a = client(&url, std::path::Path::new(&dir)).await;
    let todos = a.collection("todos").unwrap();
    let mut ids: Vec<String> = todos
        .list()
        .await
        .unwrap()
        .into_iter()
        .filter_map(|doc| doc.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut out = std::io::stdout();
    for n in 0..ROUND_SPAN {
        let e = round * ROUND_SPAN + n;
        let create = ids.is_empty() || random.next(3) == 0;
        let id = if create {
            format!("r{round}-{n}")
        } else {
            ids[random.next(ids.len() as u64) as usize].clone()
        };
        writeln!(out, "begin {n} {id} {e}").unwrap();
        out.flush().unwrap();
        if create {
            todos.save(obj(json!({"id": id, "e": e}))).await.unwrap();
            ids.push(id);
        } else {
            todos.update(&id, obj(json!({"e": e}))).await.unwrap();
        }
        writeln!(out, "done {n}").unwrap();
        out.flush().unwrap();
    }
}

/// What the parent learnt from a child's output.
#[derive(Debug, Default)]
struct Printed {
    /// Returned edits: (document, e), in order.
    done: Vec<(String, u64)>,
    /// The edit that had begun but not returned at the kill.
    in_flight: Option<(String, u64)>,
}

fn parse(lines: &[String]) -> Printed {
    let mut printed = Printed::default();
    let mut begun: Option<(u64, String, u64)> = None;
    for line in lines {
        // The harness may print `test ... ` before the child's first line.
        let start = ["begin ", "done "]
            .iter()
            .filter_map(|word| line.find(word))
            .min()
            .unwrap_or(0);
        let words: Vec<&str> = line[start..].split(' ').collect();
        match words.as_slice() {
            ["begin", n, id, e] => {
                begun = Some((n.parse().unwrap(), (*id).to_owned(), e.parse().unwrap()));
            }
            ["done", n] => {
                let (begun_n, id, e) = begun.take().expect("done without begin");
                assert_eq!(begun_n.to_string(), *n, "child output out of order");
                printed.done.push((id, e));
            }
            _ => {}
        }
    }
    printed.in_flight = begun.map(|(_, id, e)| (id, e));
    printed
}

/// Every change of `todos` in the log: document -> [(e, opId)], in log
/// order.
async fn log_of_todos(node: &Node) -> BTreeMap<String, Vec<(Option<u64>, String)>> {
    let mut changes: BTreeMap<String, Vec<(Option<u64>, String)>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(cursor) => format!("/v1/changes?limit=5000&cursor={cursor}"),
            None => "/v1/changes?limit=5000".to_owned(),
        };
        let page = node.get(&path).await;
        for change in page["changes"].as_array().unwrap() {
            if change["collection"] != "todos" {
                continue;
            }
            changes
                .entry(change["id"].as_str().unwrap().to_owned())
                .or_default()
                .push((
                    change["delta"]["e"].as_u64(),
                    change["opId"].as_str().unwrap().to_owned(),
                ));
        }
        cursor = Some(page["cursor"].as_str().unwrap().to_owned());
        if page["hasMore"] != true {
            return changes;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_crash_rounds() {
    let rounds: u64 = std::env::var("SYNC_CLIENT_CRASH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let seed = seed("SYNC_CLIENT_CRASH_SEED");
    eprintln!("client crash rounds: running {rounds} rounds");
    let mut random = Random::new(seed);
    let started = Instant::now();
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let dir = data_dir(&root, "crashy");
    // Per document: the edits that returned, and one that may have landed.
    let mut edits: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut maybe: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut returned_total = 0usize;

    for round in 0..rounds {
        let round_text = round.to_string();
        let child_seed = random.next(u64::MAX).to_string();
        let url = node.url();
        let mut child = ChildTest::spawn(
            "crash_rounds::crash_rounds_child",
            &[
                (CHILD_DIR, dir.as_os_str()),
                (CHILD_URL, url.as_ref()),
                (CHILD_ROUND, round_text.as_ref()),
                (CHILD_SEED, child_seed.as_ref()),
            ],
        );
        // The kill comes at a random moment after the first edit returned.
        let first = tokio::task::block_in_place(|| {
            child.wait_for(|line| line.contains("done "), Duration::from_secs(60))
        });
        let load_ms = 300 + random.next(1_201);
        if first {
            tokio::time::sleep(Duration::from_millis(load_ms)).await;
        }
        let lines = tokio::task::block_in_place(|| child.kill());
        assert!(first, "round {round}: the child made no edit (seed {seed})");
        let printed = parse(&lines);
        returned_total += printed.done.len();
        for (id, e) in &printed.done {
            edits.entry(id.clone()).or_default().push(*e);
        }
        if let Some((id, e)) = &printed.in_flight {
            maybe.entry(id.clone()).or_default().push(*e);
        }

        // A client on the same directory drains the queue.
        let a = client(&node.url(), &dir).await;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            a.sync_now().await.unwrap();
            if a.pending_count().await.unwrap() == 0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: the queue did not drain: {} pending, failed {:?} (seed {seed})",
                a.pending_count().await.unwrap(),
                a.failed().await.unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            a.failed().await.unwrap().len(),
            0,
            "round {round}: failed operations (seed {seed})"
        );
        a.close().await.unwrap();

        // Every returned edit is on the server, applied once.
        let server: BTreeMap<String, (Value, u64)> = node
            .todos()
            .await
            .into_iter()
            .map(|(id, data, version)| (id, (data, version)))
            .collect();
        let log = log_of_todos(&node).await;
        let mut op_ids = HashSet::new();
        for changes in log.values() {
            for (_, op_id) in changes {
                assert!(
                    op_ids.insert(op_id.clone()),
                    "round {round}: opId {op_id} applied twice (seed {seed})"
                );
            }
        }
        for (id, returned) in &edits {
            let in_flight = maybe.get(id).cloned().unwrap_or_default();
            let (data, version) = server.get(id).unwrap_or_else(|| {
                panic!("round {round}: {id} (edits {returned:?}) lost (seed {seed})")
            });
            let last = *returned.last().unwrap();
            let held = data["e"].as_u64().unwrap();
            assert!(
                held == last || (held > last && in_flight.contains(&held)),
                "round {round}: {id} holds edit {held}, its last returned edit is {last} \
                 (in flight at a kill: {in_flight:?}) (seed {seed})"
            );
            let changes = &log[id];
            let numbers: Vec<u64> = changes.iter().filter_map(|(e, _)| *e).collect();
            assert!(
                numbers.windows(2).all(|pair| pair[0] < pair[1]),
                "round {round}: {id}'s changes carry edits {numbers:?}: one applied twice \
                 (seed {seed})"
            );
            let made = returned.len() + in_flight.len();
            assert!(
                changes.len() <= made && *version as usize == changes.len(),
                "round {round}: {id} has {} changes (version {version}) for {made} edits \
                 (seed {seed})",
                changes.len()
            );
        }
        eprintln!(
            "round {round}: killed after {load_ms} ms, {} edits returned ({} in all, {} \
             documents), in flight: {:?} ({:.1} s)",
            printed.done.len(),
            returned_total,
            edits.len(),
            printed.in_flight,
            started.elapsed().as_secs_f64()
        );
    }
    eprintln!(
        "client crash rounds: {rounds} rounds, {returned_total} edits verified on {} documents, \
         seed {seed}, {:.1} s",
        edits.len(),
        started.elapsed().as_secs_f64()
    );
}
