//! `tail` against a real server: every change of a load, in order, once,
//! across a restart of the server, over WebSocket (one collection) and
//! over the change feed (every collection); `where` filters.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout};

use crate::support::{SYNCCTL, TestServer, check_golden, sync, upsert};

fn spawn_tail(url: &str, args: &[&str]) -> (Child, tokio::io::Lines<BufReader<ChildStdout>>) {
    let mut child = tokio::process::Command::new(SYNCCTL)
        .arg("tail")
        .args(args)
        .env("SYNC_URL", url)
        .env_remove("SYNC_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stdout.take().unwrap()).lines();
    (child, lines)
}

/// Reads `count` NDJSON lines, failing after 30 s.
async fn read(lines: &mut tokio::io::Lines<BufReader<ChildStdout>>, count: usize) -> Vec<Value> {
    let mut read = Vec::new();
    while read.len() < count {
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} changes printed", read.len()))
            .unwrap()
            .unwrap_or_else(|| panic!("tail ended after {} of {count} changes", read.len()));
        read.push(serde_json::from_str(&line).unwrap());
    }
    read
}

/// Writes `count` changes one request each: todo `t{n % 10}` gets `n`,
/// a note every third.
async fn load(url: &str, from: usize, count: usize) {
    for n in from..from + count {
        let collection = if n % 3 == 0 { "notes" } else { "todos" };
        sync(
            url,
            None,
            json!([upsert(
                &format!("load-{n}"),
                "default",
                collection,
                &format!("t{}", n % 10),
                json!({"n": n, "even": n % 2 == 0})
            )]),
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_every_change_of_a_load_in_order_across_a_restart() {
    let mut server = TestServer::start().await;
    let (mut todos_child, mut todos) = spawn_tail(
        &server.url,
        &[
            "--collection",
            "todos",
            "--from",
            "start",
            "--format",
            "ndjson",
            "--limit",
            "40",
        ],
    );
    let (mut all_child, mut all) = spawn_tail(
        &server.url,
        &["--from", "start", "--format", "ndjson", "--limit", "60"],
    );
    let (mut even_child, mut even) = spawn_tail(
        &server.url,
        &[
            "--collection",
            "todos",
            "--where",
            "even=true",
            "--from",
            "start",
            "--format",
            "ndjson",
            "--limit",
            "20",
        ],
    );

    load(&server.url, 0, 30).await;
    server.restart().await;
    load(&server.url, 30, 30).await;

    let every = read(&mut all, 60).await;
    let seqs: Vec<u64> = every.iter().map(|c| c["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=60).collect::<Vec<_>>(),
        "every change, in order, once"
    );
    let ns: Vec<u64> = every
        .iter()
        .map(|c| c["data"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..60).collect::<Vec<_>>());

    let todo_changes = read(&mut todos, 40).await;
    let expected: Vec<u64> = (0..60).filter(|n| n % 3 != 0).collect();
    assert_eq!(
        todo_changes
            .iter()
            .map(|c| c["data"]["n"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        expected,
        "the collection's changes, in order, once, across the restart"
    );
    assert!(todo_changes.iter().all(|c| c["collection"] == "todos"));
    check_golden("tail", &todo_changes[0]);

    let even_changes = read(&mut even, 20).await;
    assert!(
        even_changes
            .iter()
            .all(|c| c["data"]["even"] == true || c["matches"] == false),
        "only matching documents (or their last change out of the filter)"
    );

    // For people: one line per change.
    let (mut pretty_child, mut pretty) = spawn_tail(
        &server.url,
        &["--collection", "notes", "--from", "start", "--limit", "2"],
    );
    let mut printed = Vec::new();
    for _ in 0..2 {
        printed.push(pretty.next_line().await.unwrap().unwrap());
    }
    assert_eq!(
        printed,
        [
            r#"#1      insert default/notes/t0 v1 {"even":true,"n":0}"#,
            r#"#4      insert default/notes/t3 v1 {"even":false,"n":3}"#,
        ]
    );

    for child in [
        &mut todos_child,
        &mut all_child,
        &mut even_child,
        &mut pretty_child,
    ] {
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
            .await
            .unwrap()
            .unwrap();
        assert!(status.success(), "tail exits after --limit changes");
    }
}
