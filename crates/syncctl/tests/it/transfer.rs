//! `export` and `import` against real servers: a round trip between two
//! servers, a re-run that adds nothing, an import killed halfway and run
//! again, and bad lines reported by number.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{
    TestServer, assert_exit, check_golden, documents, head, json_out, stderr, sync, syncctl, upsert,
};

/// Writes `count` documents spread over two namespaces and collections,
/// with nested data, in requests of 100.
async fn seed(url: &str, count: usize) {
    let operations: Vec<Value> = (0..count)
        .map(|n| {
            let (namespace, collection) = match n % 3 {
                0 => ("default", "todos"),
                1 => ("default", "notes"),
                _ => ("team-a", "todos"),
            };
            upsert(
                &format!("seed-{n}"),
                namespace,
                collection,
                &format!("doc-{n:05}"),
                json!({"n": n, "text": format!("item {n} é ✓"), "tags": ["a", n % 7],
                       "nested": {"done": n % 2 == 0, "ratio": 0.5, "none": null}}),
            )
        })
        .collect();
    for chunk in operations.chunks(100) {
        sync(url, None, Value::Array(chunk.to_vec())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_then_import_gives_identical_documents_and_a_rerun_adds_nothing() {
    let source = TestServer::start().await;
    seed(&source.url, 120).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson");
    let file_arg = file.to_str().unwrap();

    let exported = json_out(
        &syncctl(
            &source.url,
            &["export", "--out", file_arg, "--format", "json"],
        )
        .await,
    );
    check_golden("export", &exported);
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 120);

    // To standard output as well, the same lines.
    let to_stdout = syncctl(&source.url, &["export"]).await;
    assert_exit(&to_stdout, 0);
    assert_eq!(String::from_utf8_lossy(&to_stdout.stdout), lines);

    // One collection of one namespace only.
    let one = syncctl(
        &source.url,
        &["export", "--namespace", "team-a", "--collection", "todos"],
    )
    .await;
    assert_exit(&one, 0);
    assert_eq!(String::from_utf8_lossy(&one.stdout).lines().count(), 40);

    let target = TestServer::start().await;
    let imported = json_out(
        &syncctl(
            &target.url,
            &["import", file_arg, "--chunk", "50", "--format", "json"],
        )
        .await,
    );
    check_golden("import", &imported);
    assert_eq!(
        documents(&target.url, None).await,
        documents(&source.url, None).await,
        "the imported documents are the exported ones"
    );

    let head_before = head(&target.url, None).await;
    let again = json_out(&syncctl(&target.url, &["import", file_arg, "--format", "json"]).await);
    assert_eq!(
        (again["imported"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(120))
    );
    assert_eq!(
        head(&target.url, None).await,
        head_before,
        "a re-run adds nothing"
    );

    // From standard input too.
    let piped = tokio::process::Command::new(crate::support::SYNCCTL)
        .args(["import", "-", "--format", "json"])
        .env("SYNC_URL", &target.url)
        .env_remove("SYNC_TOKEN")
        .stdin(std::fs::File::open(&file).unwrap())
        .output()
        .await
        .unwrap();
    let piped = json_out(&piped);
    assert_eq!(
        (piped["lines"].as_u64(), piped["duplicates"].as_u64()),
        (Some(120), Some(120))
    );

    // Text output for people.
    let text = syncctl(&target.url, &["import", file_arg]).await;
    assert_exit(&text, 0);
    assert_eq!(
        String::from_utf8_lossy(&text.stdout).trim(),
        "120 lines: 0 imported, 120 already there, 0 left as conflicts, 0 refused, 0 skipped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_halfway_ends_complete_when_run_again() {
    const DOCUMENTS: usize = 3_000;
    let source = TestServer::start().await;
    seed(&source.url, DOCUMENTS).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("export.ndjson");
    let file_arg = file.to_str().unwrap();
    assert_exit(
        &syncctl(&source.url, &["export", "--out", file_arg]).await,
        0,
    );

    let target = TestServer::start().await;
    let mut child = tokio::process::Command::new(crate::support::SYNCCTL)
        .args(["import", file_arg, "--chunk", "10"])
        .env("SYNC_URL", &target.url)
        .env_remove("SYNC_TOKEN")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed (SIGKILL) as soon as some but not all of it is in.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if head(&target.url, None).await >= 200 {
            break;
        }
        assert!(Instant::now() < deadline, "the import never started");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    child.start_kill().unwrap();
    let status = child.wait().await.unwrap();
    assert!(!status.success(), "killed before it finished");
    let partial = head(&target.url, None).await;
    assert!(
        (200..DOCUMENTS as u64).contains(&partial),
        "killed halfway: {partial} of {DOCUMENTS} in"
    );

    let rerun = json_out(&syncctl(&target.url, &["import", file_arg, "--format", "json"]).await);
    assert_eq!(
        rerun["imported"].as_u64().unwrap() + rerun["duplicates"].as_u64().unwrap(),
        DOCUMENTS as u64
    );
    assert!(
        rerun["duplicates"].as_u64().unwrap() >= partial,
        "what was in is not written again"
    );
    assert_eq!(
        head(&target.url, None).await,
        DOCUMENTS as u64,
        "each document written once"
    );
    assert_eq!(
        documents(&target.url, None).await,
        documents(&source.url, None).await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_are_reported_with_their_numbers_and_strict_stops() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.ndjson");
    let file_arg = file.to_str().unwrap();
    let lines = [
        r#"{"id": "a", "collection": "todos", "data": {"n": 1}}"#,
        r#"{"id": "b", "collection": "todos", "data": {"n": 2"#,
        r#"{"collection": "todos", "data": {"n": 3}}"#,
        "",
        r#"{"id": "d", "collection": "todos", "data": [1, 2]}"#,
        r#"{"id": "e", "collection": "no spaces", "data": {}}"#,
        r#"["not", "an", "object"]"#,
        r#"{"id": "g", "namespace": "team-a", "collection": "notes", "data": {"n": 7}}"#,
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();

    let server = TestServer::start().await;
    let strict = syncctl(&server.url, &["import", file_arg, "--strict"]).await;
    assert_exit(&strict, 1);
    let errors = stderr(&strict);
    for number in [2, 3, 5, 6, 7] {
        assert!(
            errors.contains(&format!("line {number}: ")),
            "line {number} reported:\n{errors}"
        );
    }
    assert!(
        errors.contains("5 bad line(s)") && errors.contains("nothing imported (--strict)"),
        "{errors}"
    );
    assert_eq!(head(&server.url, None).await, 0, "--strict wrote nothing");

    let lenient = syncctl(&server.url, &["import", file_arg, "--format", "json"]).await;
    assert_exit(&lenient, 3);
    let errors = stderr(&lenient);
    assert!(errors.contains("line 2: not JSON"), "{errors}");
    assert!(
        errors.contains("line 3: \"id\" is missing or not a string; skipped"),
        "{errors}"
    );
    let summary: Value = serde_json::from_slice(&lenient.stdout).unwrap();
    check_golden("import_bad_lines", &summary);
    let stored = documents(&server.url, None).await;
    assert_eq!(
        stored.keys().collect::<Vec<_>>(),
        ["default/todos/a", "team-a/notes/g"],
        "the good lines are in"
    );
}
