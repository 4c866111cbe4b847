//! Offline edits: 500 edits with the server unreachable survive a restart
//! and a real SIGKILL, then reach the server exactly once.

use std::io::Write;
use std::time::Duration;

use serde_json::json;
use sync_testkit::ChildTest;

use crate::support::{Node, client, data_dir, dead_url, local_todos, obj};

const CRASH_DIR: &str = "SYNC_CLIENT_CRASH_DIR";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_offline_edits_survive_a_restart_and_arrive_once() {
    let node = Node::start(None).await;
    let root = tempfile::tempdir().unwrap();
    let dir = data_dir(&root, "a");
    let offline = dead_url();

    let a = client(&offline, &dir).await;
    let todos = a.collection("todos").unwrap();
    let mut edits = 0;
    for n in 0..300 {
        todos
            .save(obj(
                json!({"id": format!("t{n:03}"), "n": n, "done": false}),
            ))
            .await
            .unwrap();
        edits += 1;
    }
    for n in 0..150 {
        todos
            .update(&format!("t{n:03}"), obj(json!({"done": true})))
            .await
            .unwrap();
        edits += 1;
    }
    for n in 250..300 {
        todos.delete(&format!("t{n:03}")).await.unwrap();
        edits += 1;
    }
    assert_eq!(edits, 500);
    let before = local_todos(&a).await;
    assert_eq!(before.len(), 250);
    // Gone without syncing: the process "dies" here.
    a.close().await.unwrap();

    let a = client(&offline, &dir).await;
    assert_eq!(
        local_todos(&a).await,
        before,
        "the view survives the restart"
    );
    let pending = a.pending_count().await.unwrap();
    assert!(pending >= 250, "{pending} queued");
    a.close().await.unwrap();

    // Now with the server reachable.
    let a = client(&node.url(), &dir).await;
    a.sync_now().await.unwrap();
    assert_eq!(a.pending_count().await.unwrap(), 0);
    assert_eq!(local_todos(&a).await, before);
    let server = node.todos().await;
    assert_eq!(server.len(), 250);
    for ((id, data, version), (local_id, local)) in server.iter().zip(&before) {
        assert_eq!(id, local_id);
        assert_eq!(data, local);
        // Edits made before the first push attempt are folded into their
        // create; a create and its update are two versions; never more.
        let n: u64 = id[1..].parse().unwrap();
        let most = if n < 150 { 2 } else { 1 };
        assert!(*version <= most, "{id} at version {version}: applied twice");
    }
    let stats = node.get("/v1/stats").await;
    assert!(
        stats["operations"].get("duplicate").is_none_or(|d| d == 0),
        "{stats}"
    );

    let b = client(&node.url(), &data_dir(&root, "b")).await;
    b.sync_now().await.unwrap();
    assert_eq!(local_todos(&b).await, before);
    a.close().await.unwrap();
    b.close().await.unwrap();
}

/// The child of the crash test: writes until killed, printing each id
/// once its save has returned. Does nothing unless run by the crash test.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_child() {
    let Ok(dir) = std::env::var(CRASH_DIR) else {
        return;
    };
    let a = client(&dead_url(), std::path::Path::new(&dir)).await;
    let todos = a.collection("todos").unwrap();
    let mut out = std::io::stdout();
    for n in 0.. {
        let id = format!("c{n:05}");
        todos.save(obj(json!({"id": id, "n": n}))).await.unwrap();
        if n % 3 == 0 {
            todos
                .update(&id, obj(json!({"edited": true})))
                .await
                .unwrap();
        }
        writeln!(out, "saved {id} {}", n % 3 == 0).unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_edit_returned_before_a_sigkill_is_kept() {
    let root = tempfile::tempdir().unwrap();
    let dir = data_dir(&root, "crashy");
    let mut child = ChildTest::spawn("offline::crash_child", &[(CRASH_DIR, dir.as_os_str())]);
    let mut saved = 0;
    let enough = child.wait_for(
        |line| {
            saved += usize::from(line.starts_with("saved "));
            saved == 120
        },
        Duration::from_secs(120),
    );
    let printed: Vec<(String, bool)> = child
        .kill()
        .iter()
        .filter_map(|line| {
            let (id, edited) = line.strip_prefix("saved ")?.split_once(' ')?;
            Some((id.to_owned(), edited == "true"))
        })
        .collect();
    assert!(enough, "the child saved {} edits", printed.len());

    let node = Node::start(None).await;
    let a = client(&dead_url(), &dir).await;
    let local = local_todos(&a).await;
    for (id, edited) in &printed {
        let doc = local
            .iter()
            .find(|(local_id, _)| local_id == id)
            .unwrap_or_else(|| panic!("{id} lost in the crash"));
        if *edited {
            assert_eq!(doc.1["edited"], true, "{id}'s update lost");
        }
    }
    a.close().await.unwrap();
    let a = client(&node.url(), &dir).await;
    a.sync_now().await.unwrap();
    let server = node.todos().await;
    for (id, _) in &printed {
        assert!(
            server.iter().any(|(server_id, _, _)| server_id == id),
            "{id} reached the server"
        );
    }
    a.close().await.unwrap();
}
