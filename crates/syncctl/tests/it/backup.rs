//! `backup`, `restore` and `verify`: a backup taken under a live write
//! load restores into an empty data directory as a server with the same
//! documents, history and cursors at the backup's log position; the
//! endpoint is admin-only in jwt mode, and an online restore needs an
//! empty server.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::{Value, json};

use crate::support::{
    TestServer, assert_exit, check_golden, get, json_out, mint, stderr, sync, syncctl, syncctl_as,
    upsert,
};

/// The history of every document of `server`, by key, as its versions.
async fn histories(url: &str, keys: &[String]) -> Vec<Value> {
    let mut all = Vec::new();
    for key in keys {
        all.push(get(url, None, &format!("/v1/ns/{key}/history")).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_under_load_restores_as_the_same_server_at_its_head() {
    let source = TestServer::start().await;
    for round in 0..5 {
        let operations: Vec<Value> = (0..40)
            .map(|n| {
                upsert(
                    &format!("seed-{round}-{n}"),
                    "default",
                    "todos",
                    &format!("t{n}"),
                    json!({"n": n, "round": round}),
                )
            })
            .collect();
        sync(&source.url, None, Value::Array(operations)).await;
    }
    // A device, so the devices go along too.
    let client = reqwest::Client::new();
    let registered = client
        .post(format!("{}/v1/devices", source.url))
        .json(&json!({"deviceId": "phone-1", "name": "phone", "platform": "iOS"}))
        .send()
        .await
        .unwrap();
    assert!(registered.status().is_success());

    // Writers keep going while the backup is taken.
    let writing = Arc::new(AtomicBool::new(true));
    let writer = {
        let (url, writing) = (source.url.clone(), Arc::clone(&writing));
        tokio::spawn(async move {
            let mut n = 0;
            while writing.load(Ordering::Relaxed) || n < 20 {
                sync(
                    &url,
                    None,
                    json!([upsert(
                        &format!("live-{n}"),
                        "default",
                        "todos",
                        &format!("t{}", n % 50),
                        json!({"live": n})
                    )]),
                )
                .await;
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();
    let backed_up = json_out(
        &syncctl(
            &source.url,
            &["backup", "--out", backup_arg, "--format", "json"],
        )
        .await,
    );
    writing.store(false, Ordering::Relaxed);
    let written = writer.await.unwrap();
    assert!(written >= 20);
    let head = backed_up["contents"]["head"].as_u64().unwrap();
    assert!(head > 5, "the backup holds the seed");
    let final_head = get(&source.url, None, "/ready").await["head"]
        .as_u64()
        .unwrap();
    assert!(final_head > head, "writes went on after the backup's head");

    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup_dir.join("manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["contents"], backed_up["contents"]);

    let data_dir = dir.path().join("restored");
    let data_arg = data_dir.to_str().unwrap();
    let restored = json_out(
        &syncctl(
            &source.url,
            &[
                "restore",
                backup_arg,
                "--data-dir",
                data_arg,
                "--format",
                "json",
            ],
        )
        .await,
    );
    assert_eq!(restored["contents"], backed_up["contents"]);
    let verified = json_out(
        &syncctl(
            &source.url,
            &["verify", "--data-dir", data_arg, "--format", "json"],
        )
        .await,
    );
    assert_eq!(verified["ok"], true);
    assert_eq!(verified["head"].as_u64(), Some(head));
    assert_eq!(verified["changes"].as_u64(), Some(head));
    check_golden(
        "verify",
        &json!({"ok": verified["ok"], "missingSeqs": verified["missingSeqs"], "outOfOrder": verified["outOfOrder"], "documentsDiffering": verified["documentsDiffering"], "lastIsHead": verified["lastIsHead"]}),
    );

    // Restoring again into the same (now full) directory is refused.
    let again = syncctl(
        &source.url,
        &["restore", backup_arg, "--data-dir", data_arg],
    )
    .await;
    assert_exit(&again, 1);
    assert!(
        stderr(&again).contains("is not empty"),
        "{}",
        stderr(&again)
    );

    let restored_server = TestServer::start_on(&data_dir).await;
    let url = &restored_server.url;
    assert_eq!(get(url, None, "/ready").await["head"].as_u64(), Some(head));

    // The same documents as the source had at the backup's head: each is
    // the source's version of that number.
    let keys: Vec<String> = (0..50).map(|n| format!("default/todos/t{n}")).collect();
    let mut present = Vec::new();
    for key in &keys {
        let client = reqwest::Client::new();
        let response = client
            .get(format!("{url}/v1/ns/{key}"))
            .send()
            .await
            .unwrap();
        if response.status() == 404 {
            continue;
        }
        let document: Value = response.json().await.unwrap();
        assert!(document["seq"].as_u64().unwrap() <= head);
        let version = document["version"].as_u64().unwrap();
        let then = get(
            &source.url,
            None,
            &format!("/v1/ns/{key}/versions/{version}"),
        )
        .await;
        assert_eq!(document["data"], then["data"], "{key} as at the backup");
        present.push(key.clone());
    }
    assert!(present.len() >= 40);

    // History: the source's, cut at the backup's head.
    let restored_histories = histories(url, &present).await;
    let source_histories = histories(&source.url, &present).await;
    for (restored, source) in restored_histories.iter().zip(&source_histories) {
        let cut: Vec<&Value> = source["versions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|v| v["seq"].as_u64().unwrap() <= head)
            .collect();
        let restored: Vec<&Value> = restored["versions"].as_array().unwrap().iter().collect();
        assert_eq!(restored, cut);
    }

    // Cursors: one handed out by the source resumes on the restored
    // server with the same changes up to the head.
    let middle = get(&source.url, None, "/v1/changes?cursor=now").await["cursor"]
        .as_str()
        .unwrap()
        .to_owned();
    let (log, _) = middle.rsplit_once('.').unwrap();
    let cursor = format!("{log}.{}", head / 2);
    let from_restored = get(
        url,
        None,
        &format!("/v1/changes?cursor={cursor}&limit=1000"),
    )
    .await;
    let from_source = get(
        &source.url,
        None,
        &format!("/v1/changes?cursor={cursor}&limit=1000"),
    )
    .await;
    let cut: Vec<&Value> = from_source["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["seq"].as_u64().unwrap() <= head)
        .collect();
    let restored_changes: Vec<&Value> = from_restored["changes"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(
        restored_changes, cut,
        "the cursor is valid on the restored server"
    );
    assert_eq!(restored_changes.len() as u64, head - head / 2);

    // Devices and opIds came along: a replayed write is a duplicate.
    let replay = sync(
        url,
        None,
        json!([upsert(
            "seed-0-1",
            "default",
            "todos",
            "t1",
            json!({"n": 1, "round": 0})
        )]),
    )
    .await;
    assert_eq!(replay["results"][0]["status"], "duplicate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_and_online_restore_need_an_admin_token_and_an_empty_server() {
    let source = TestServer::start_jwt().await;
    let admin = mint(true).await;
    let user = mint(false).await;
    sync(
        &source.url,
        Some(&admin),
        json!([upsert("op-1", "default", "todos", "t1", json!({"a": 1}))]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();

    let refused = syncctl_as(&source.url, Some(&user), &["backup", "--out", backup_arg]).await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("403 forbidden: this endpoint needs an admin token"),
        "{}",
        stderr(&refused)
    );
    let backed_up = json_out(
        &syncctl_as(
            &source.url,
            Some(&admin),
            &["backup", "--out", backup_arg, "--format", "json"],
        )
        .await,
    );
    check_golden("backup", &backed_up);
    // The backup's format, a compatibility boundary: pinned line by line.
    let lines: Vec<Value> = std::fs::read_to_string(backup_dir.join("snapshot.ndjson"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    check_golden("snapshot", &Value::Array(lines));

    let target = TestServer::start_jwt().await;
    let restored = json_out(
        &syncctl_as(
            &target.url,
            Some(&admin),
            &["restore", backup_arg, "--format", "json"],
        )
        .await,
    );
    check_golden("restore", &restored);
    let document = get(&target.url, Some(&admin), "/v1/ns/default/todos/t1").await;
    assert_eq!(document["data"], json!({"a": 1}));

    let full = syncctl_as(&target.url, Some(&admin), &["restore", backup_arg]).await;
    assert_exit(&full, 1);
    assert!(stderr(&full).contains("409 conflict"), "{}", stderr(&full));

    let unreadable = syncctl(&target.url, &["restore", dir.path().to_str().unwrap()]).await;
    assert_exit(&unreadable, 1);
    assert!(
        stderr(&unreadable).contains("not a backup directory"),
        "{}",
        stderr(&unreadable)
    );
}

/// Drops a test schema when dropped, on a thread of its own (the test's
/// runtime may be the one blocked in this drop).
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let (url, name) = (self.url.clone(), self.name.clone());
        sync_testkit::run_aside(move || async move {
            sync_store::PgStore::drop_schema_at(&url, &name).await
        });
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)]
async fn a_postgres_backup_restores_online_into_an_empty_postgres_server() {
    let Some(url) = std::env::var("SYNC_TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.trim().is_empty())
    else {
        eprintln!("SYNC_TEST_DATABASE_URL is not set: the PostgreSQL backup test did not run");
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let schemas: Vec<Schema> = ["a", "b"]
        .iter()
        .map(|side| Schema {
            url: url.clone(),
            name: format!("syncctl_test_{}_{nanos}_{side}", std::process::id()),
        })
        .collect();
    let start = |schema: &Schema| {
        let (url, name) = (url.clone(), schema.name.clone());
        TestServer::start_with(move |config| {
            config.store = sync_service::config::StoreKind::Postgres;
            config.database_url = Some(url);
            config.database_schema = name;
        })
    };
    let mut source = start(&schemas[0]).await;
    let operations: Vec<Value> = (0..30)
        .map(|n| {
            upsert(
                &format!("pg-{n}"),
                "default",
                "todos",
                &format!("t{n}"),
                json!({"n": n}),
            )
        })
        .collect();
    sync(&source.url, None, Value::Array(operations)).await;
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();
    let backed_up = json_out(
        &syncctl(
            &source.url,
            &["backup", "--out", backup_arg, "--format", "json"],
        )
        .await,
    );
    assert_eq!(backed_up["contents"]["head"].as_u64(), Some(30));

    let mut target = start(&schemas[1]).await;
    json_out(&syncctl(&target.url, &["restore", backup_arg, "--format", "json"]).await);
    assert_eq!(
        crate::support::documents(&target.url, None).await,
        crate::support::documents(&source.url, None).await
    );
    let cursor = get(&source.url, None, "/v1/changes?cursor=now").await["cursor"].clone();
    let resumed = get(
        &target.url,
        None,
        &format!("/v1/changes?cursor={}", cursor.as_str().unwrap()),
    )
    .await;
    assert_eq!(
        resumed["changes"],
        json!([]),
        "the source's cursor is valid on the restored server"
    );
    assert_eq!(resumed["cursor"], cursor);
    source.stop().await;
    target.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_documents_that_are_not_the_replay_of_the_log() {
    let source = TestServer::start().await;
    sync(
        &source.url,
        None,
        json!([
            upsert("op-1", "default", "todos", "t1", json!({"n": 1})),
            upsert("op-2", "default", "todos", "t2", json!({"n": 2}))
        ]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();
    assert_exit(
        &syncctl(&source.url, &["backup", "--out", backup_arg]).await,
        0,
    );

    // A document whose data no change of the log gives.
    let snapshot = backup_dir.join("snapshot.ndjson");
    let text = std::fs::read_to_string(&snapshot).unwrap();
    let tampered: Vec<String> = text
        .lines()
        .map(|line| {
            let mut record: Value = serde_json::from_str(line).unwrap();
            if record["kind"] == "document" && record["document"]["id"] == "t2" {
                record["document"]["data"] = json!({"n": 99});
            }
            record.to_string()
        })
        .collect();
    std::fs::write(&snapshot, tampered.join("\n") + "\n").unwrap();

    let data_dir = dir.path().join("restored");
    let data_arg = data_dir.to_str().unwrap();
    let restored = syncctl(
        &source.url,
        &["restore", backup_arg, "--data-dir", data_arg],
    )
    .await;
    assert_exit(&restored, 1);
    assert!(
        stderr(&restored).contains("differ from the log's replay for 1 documents"),
        "{}",
        stderr(&restored)
    );

    let verified = syncctl(
        &source.url,
        &["verify", "--data-dir", data_arg, "--format", "json"],
    )
    .await;
    assert_exit(&verified, 2);
    let report: Value = serde_json::from_slice(&verified.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["documentsDiffering"], json!(["default/todos/t2"]));
    let text = syncctl(&source.url, &["verify", "--data-dir", data_arg]).await;
    assert_exit(&text, 2);
    assert!(crate::support::stdout(&text).contains("documents: 1 differ from the log's replay"));
    assert!(crate::support::stdout(&text).trim_end().ends_with("FAILED"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_restore_takes_a_snapshot_of_several_megabytes() {
    let source = TestServer::start().await;
    let text = "x".repeat(1_200);
    for round in 0..5 {
        let operations: Vec<Value> = (0..500)
            .map(|n| {
                upsert(
                    &format!("big-{round}-{n}"),
                    "default",
                    "docs",
                    &format!("d{round}-{n}"),
                    json!({"text": text}),
                )
            })
            .collect();
        sync(&source.url, None, Value::Array(operations)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();
    assert_exit(
        &syncctl(&source.url, &["backup", "--out", backup_arg]).await,
        0,
    );
    let size = std::fs::metadata(backup_dir.join("snapshot.ndjson"))
        .unwrap()
        .len();
    assert!(size > 6 << 20, "a snapshot of {size} bytes");

    let target = TestServer::start().await;
    let restored =
        json_out(&syncctl(&target.url, &["restore", backup_arg, "--format", "json"]).await);
    assert_eq!(restored["contents"]["documents"].as_u64(), Some(2_500));
    assert_eq!(
        get(&target.url, None, "/ready").await["head"].as_u64(),
        Some(2_500)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_restores_encrypted_under_a_generated_key_and_verifies_with_it() {
    let mut source = TestServer::start().await;
    sync(
        &source.url,
        None,
        json!([upsert(
            "op-1",
            "default",
            "todos",
            "t1",
            json!({"text": "persimmon jam"})
        )]),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("storage.key");
    let key_arg = key_file.to_str().unwrap();
    let generated = syncctl(
        &source.url,
        &["key", "generate", key_arg, "--format", "json"],
    )
    .await;
    assert_exit(&generated, 0);
    let report: Value = serde_json::from_slice(&generated.stdout).unwrap();
    assert_eq!(report["keyId"].as_str().map(str::len), Some(8));
    let text = std::fs::read_to_string(&key_file).unwrap();
    assert_eq!(text.trim().len(), 64);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // An existing key is never overwritten.
    assert_exit(
        &syncctl(&source.url, &["key", "generate", key_arg]).await,
        1,
    );

    let backup_dir = dir.path().join("backup");
    let backup_arg = backup_dir.to_str().unwrap();
    assert_exit(
        &syncctl(&source.url, &["backup", "--out", backup_arg]).await,
        0,
    );
    let data_dir = dir.path().join("restored");
    let data_arg = data_dir.to_str().unwrap();
    let restored = syncctl(
        &source.url,
        &[
            "restore",
            backup_arg,
            "--data-dir",
            data_arg,
            "--encryption-key-file",
            key_arg,
        ],
    )
    .await;
    assert_exit(&restored, 0);

    let verified = syncctl(
        &source.url,
        &[
            "verify",
            "--data-dir",
            data_arg,
            "--encryption-key-file",
            key_arg,
        ],
    )
    .await;
    assert_exit(&verified, 0);
    // Without the key nothing can be read back.
    let refused = syncctl(&source.url, &["verify", "--data-dir", data_arg]).await;
    assert_ne!(refused.status.code(), Some(0));
    source.stop().await;
}
