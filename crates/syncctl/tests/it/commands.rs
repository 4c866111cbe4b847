//! `status`, `conflicts` and `token mint` against a real server, their
//! JSON output pinned by golden files, and the errors an operator sees
//! when the server is unreachable or refuses.

use serde_json::{Value, json};

use crate::support::{
    SECRET, TestServer, assert_exit, check_golden, get, json_out, mint, stderr, stdout, sync,
    syncctl, syncctl_as, upsert,
};

/// Leaves one pending conflict on `default/todos/x` (title changed on both
/// sides, resolved `manual`); its id.
async fn pending_conflict(url: &str) -> String {
    sync(
        url,
        None,
        json!([upsert(
            "op-1",
            "default",
            "todos",
            "x",
            json!({"title": "a", "n": 0})
        )]),
    )
    .await;
    sync(
        url,
        None,
        json!([{"opId": "op-2", "action": "update", "collection": "todos", "id": "x",
                "baseVersion": 1, "data": {"title": "server side"}}]),
    )
    .await;
    let client = reqwest::Client::new();
    let answer: Value = client
        .post(format!("{url}/v1/sync"))
        .json(
            &json!({"strategy": "manual", "deviceId": "phone", "operations": [
            {"opId": "op-3", "action": "update", "collection": "todos", "id": "x",
             "baseVersion": 1, "data": {"title": "client side", "n": 5}}]}),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(answer["results"][0]["status"], "conflict", "{answer}");
    answer["results"][0]["conflictId"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_and_conflicts_list_show_and_resolve() {
    let server = TestServer::start().await;
    let id = pending_conflict(&server.url).await;

    let status = json_out(
        &syncctl(
            &server.url,
            &["status", "--sample-ms", "100", "--format", "json"],
        )
        .await,
    );
    check_golden("status", &status);
    let text = syncctl(&server.url, &["status", "--sample-ms", "0"]).await;
    assert_exit(&text, 0);
    assert!(
        stdout(&text).contains("conflicts   1 pending"),
        "{}",
        stdout(&text)
    );

    let listed = json_out(&syncctl(&server.url, &["conflicts", "list", "--format", "json"]).await);
    check_golden("conflicts_list", &listed);
    let shown =
        json_out(&syncctl(&server.url, &["conflicts", "show", &id, "--format", "json"]).await);
    assert_eq!(shown, listed["conflicts"][0]);
    let text = syncctl(&server.url, &["conflicts", "show", &id]).await;
    assert_exit(&text, 0);
    assert!(
        stdout(&text).contains("\"title\": \"client side\""),
        "{}",
        stdout(&text)
    );

    let dir = tempfile::tempdir().unwrap();
    let resolution = dir.path().join("resolved.json");
    std::fs::write(&resolution, r#"{"title": "both sides", "n": 5}"#).unwrap();
    let resolved = json_out(
        &syncctl(
            &server.url,
            &[
                "conflicts",
                "resolve",
                &id,
                "--data",
                resolution.to_str().unwrap(),
                "--format",
                "json",
            ],
        )
        .await,
    );
    check_golden("conflicts_resolve", &resolved);
    assert_eq!(
        get(&server.url, None, "/v1/ns/default/todos/x").await["data"],
        json!({"title": "both sides", "n": 5})
    );
    let empty = syncctl(&server.url, &["conflicts", "list"]).await;
    assert_exit(&empty, 0);
    assert_eq!(stdout(&empty).trim(), "no pending conflicts");

    let again = syncctl(
        &server.url,
        &["conflicts", "resolve", &id, "--use", "server"],
    )
    .await;
    assert_exit(&again, 1);
    assert!(
        stderr(&again).contains("409 conflict"),
        "{}",
        stderr(&again)
    );
    let missing = syncctl(&server.url, &["conflicts", "show", "no-such-conflict"]).await;
    assert_exit(&missing, 1);
    assert!(
        stderr(&missing).contains("404 not_found"),
        "{}",
        stderr(&missing)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minted_tokens_carry_the_claims_the_server_reads() {
    let minted = json_out(
        &syncctl(
            "http://127.0.0.1:1",
            &[
                "token",
                "mint",
                "--secret",
                SECRET,
                "--sub",
                "alice",
                "--ns",
                "team-a,team-b",
                "--ro",
                "default",
                "--ttl",
                "15m",
                "--format",
                "json",
            ],
        )
        .await,
    );
    check_golden("token", &minted);
    let claims = &minted["claims"];
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        900
    );

    let server = TestServer::start_jwt().await;
    let token = minted["token"].as_str().unwrap();
    // Readable only: a write to `default` is refused, to `team-a` applied.
    let status = reqwest::Client::new()
        .get(format!("{}/v1/ns/default/todos", server.url))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let answer = sync(
        &server.url,
        Some(token),
        json!([
            upsert("w1", "default", "todos", "a", json!({})),
            upsert("w2", "team-a", "todos", "a", json!({}))
        ]),
    )
    .await;
    assert_eq!(answer["results"][0]["status"], "error", "{answer}");
    assert_eq!(answer["results"][1]["status"], "success", "{answer}");

    // Not an admin: status is refused, with the server's reason.
    let refused = syncctl_as(&server.url, Some(token), &["status", "--sample-ms", "0"]).await;
    assert_exit(&refused, 1);
    assert!(
        stderr(&refused).contains("403 forbidden"),
        "{}",
        stderr(&refused)
    );
    let admin = mint(true).await;
    assert_exit(
        &syncctl_as(&server.url, Some(&admin), &["status", "--sample-ms", "0"]).await,
        0,
    );

    let short = syncctl(
        "http://127.0.0.1:1",
        &["token", "mint", "--secret", "short", "--sub", "a"],
    )
    .await;
    assert_exit(&short, 1);
    assert!(
        stderr(&short).contains("at least 16 bytes"),
        "{}",
        stderr(&short)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_in_the_error() {
    let output = syncctl("http://127.0.0.1:1", &["status"]).await;
    assert_exit(&output, 1);
    let errors = stderr(&output);
    assert!(
        errors.contains("cannot reach the server at http://127.0.0.1:1"),
        "{errors}"
    );
    let dir = tempfile::tempdir().unwrap();
    let output = syncctl(
        "http://127.0.0.1:1",
        &["verify", "--data-dir", dir.path().to_str().unwrap()],
    )
    .await;
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("is not a sled data directory"),
        "{}",
        stderr(&output)
    );
    let output = syncctl("ftp://example", &["export"]).await;
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("must start with http://"),
        "{}",
        stderr(&output)
    );
}
