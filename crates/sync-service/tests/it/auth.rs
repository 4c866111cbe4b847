//! Authentication and access in `jwt` mode (`docs/protocol.md`, "Security
//! and limits"): bad tokens (missing, malformed, expired, `alg: none`,
//! another key, and for the asymmetric algorithms HS256 signed with the
//! public key) are refused with 401 on every endpoint and before every
//! WebSocket upgrade, a token sees nothing of a namespace it was not
//! granted (403, or simply absent from lists, on every endpoint and every
//! WebSocket message), read-only namespaces refuse writes, operator
//! endpoints need `admin`, a device belongs to the user who registered it,
//! WebSocket origins are checked before the upgrade, and tokens never reach
//! the logs.

use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey};
use reqwest::Method;
use serde_json::{Value, json};

use sync_testkit::ws::{OP_TEXT, RawWs, ws_frame};

use crate::support::{
    ChildServer, Credential, ED25519, RSA, Reply, SECRET, Session, TestServer, WsClient,
    assert_error_body, now_secs, send, signed, token, token_signed_with, unsigned_token,
    upgrade_request,
};

fn admin() -> String {
    token(json!({"sub": "ops", "ns": ["*"], "admin": true}))
}

fn alice() -> String {
    token(json!({"sub": "alice", "ns": ["a"], "ro": ["pub"]}))
}

fn bob() -> String {
    // A single namespace may be a string.
    token(json!({"sub": "bob", "ns": "b"}))
}

/// A pending conflict on `ns/notes/id`, made by two devices of the admin.
async fn pending_conflict(api: &Session<'_>, ns: &str, id: &str) -> String {
    api.create(ns, "notes", id, json!({"title": "v1"}), "ops-1")
        .await;
    for (device, title) in [("ops-2", "online"), ("ops-1", "offline")] {
        api.sync(json!({
            "deviceId": device, "strategy": "manual",
            "operations": [{"action": "update", "namespace": ns, "collection": "notes",
                            "id": id, "baseVersion": 1, "data": {"title": title}}]
        }))
        .await;
    }
    let conflicts = api
        .get_json(&format!("/v1/conflicts?status=pending&namespace={ns}"))
        .await
        .ok();
    let conflict = &conflicts["conflicts"][0];
    assert_eq!(conflict["serverId"], id, "{conflicts}");
    conflict["id"].as_str().expect("a conflict id").to_owned()
}

/// The `(namespace, id)` of each change in a feed.
fn seen(feed: &Value) -> Vec<(String, String)> {
    feed["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["namespace"].as_str().unwrap_or_default().to_owned(),
                c["id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// An HTTP endpoint that needs credentials.
struct Endpoint {
    method: Method,
    path: String,
    body: Option<Value>,
}

fn get(path: &str) -> Endpoint {
    Endpoint {
        method: Method::GET,
        path: path.to_owned(),
        body: None,
    }
}

fn post(path: &str, body: Value) -> Endpoint {
    Endpoint {
        method: Method::POST,
        path: path.to_owned(),
        body: Some(body),
    }
}

/// Every HTTP endpoint but liveness and readiness, in
/// namespace `a` where it names one (document `a-doc`, conflict `c-1`,
/// device `d-1`).
fn endpoints() -> Vec<Endpoint> {
    vec![
        post(
            "/api/notes/bulk-sync",
            json!({"namespace": "a", "pull": true, "operations": [
                {"action": "create", "namespace": "a", "id": "via-bulk", "data": {"x": 1}}
            ]}),
        ),
        post(
            "/v1/sync",
            json!({"pull": true, "operations": [
                {"action": "create", "namespace": "a", "collection": "notes", "id": "via-sync",
                 "data": {"x": 1}}
            ]}),
        ),
        get("/v1/changes"),
        get("/v1/changes?cursor=now&namespace=a"),
        get("/v1/ns/a/notes"),
        get("/v1/ns/a/notes/a-doc"),
        get("/v1/ns/a/notes/a-doc/history"),
        get("/v1/ns/a/notes/a-doc/versions/1"),
        post("/v1/ns/a/notes/a-doc/restore/1", json!({})),
        get("/v1/conflicts?status=pending"),
        get("/v1/conflicts/c-1"),
        post(
            "/v1/conflicts/c-1/resolve",
            json!({"strategy": "server_wins"}),
        ),
        post("/v1/devices", json!({"deviceId": "d-1", "name": "phone"})),
        get("/v1/devices"),
        Endpoint {
            method: Method::DELETE,
            path: "/v1/devices/d-1".into(),
            body: None,
        },
        get("/v1/stats"),
        get("/v1/stats/devices"),
        get("/metrics"),
        get("/v1/collections"),
        get("/v1/admin/snapshot"),
        post("/v1/admin/reload", json!({})),
    ]
}

impl Endpoint {
    /// Calls it on behalf of `credential` (`api` carries no token).
    async fn call(&self, api: &Session<'_>, credential: Credential<'_>) -> Reply {
        let (path, headers) = credential.apply(&self.path);
        let mut request = api.request(self.method.clone(), &path);
        for (name, value) in headers {
            request = request.header(name, value);
        }
        if let Some(body) = &self.body {
            request = request.json(body);
        }
        send(request).await
    }
}

/// Tokens that must be refused, for alice in namespace `a`, with what is
/// wrong with each.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let claims = || json!({"sub": "alice", "ns": ["a"]});
    let altered = {
        let mut parts: Vec<String> = token(claims()).split('.').map(str::to_owned).collect();
        parts[1] = unsigned_token(json!({"sub": "alice", "ns": ["*"], "admin": true}))
            .split('.')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        parts.join(".")
    };
    let unsigned_copy = {
        let good = token(claims());
        good[..good.rfind('.').unwrap_or_default() + 1].to_owned()
    };
    vec![
        (
            "an expired token",
            token(json!({"sub": "alice", "ns": ["a"], "exp": now_secs() - 3_600})),
        ),
        (
            "a token signed with another key",
            token_signed_with(claims(), "another-secret-of-enough-length"),
        ),
        ("an unsigned token (alg none)", unsigned_token(claims())),
        ("a valid token with its signature cut off", unsigned_copy),
        // `exp` is required: a token without it would never expire.
        (
            "a token without exp",
            token(json!({"sub": "alice", "ns": ["a"], "exp": null})),
        ),
        ("a token without sub", token(json!({"ns": ["a"]}))),
        ("a token whose claims were altered", altered),
        ("a malformed token", "not.a.token".to_owned()),
    ]
}

#[tokio::test]
async fn bad_credentials_are_refused() {
    let server = TestServer::start_jwt().await;
    let api = server.session(None);
    let bad = bad_tokens();
    let mut credentials = vec![
        ("no token", Credential::None),
        (
            "basic credentials",
            Credential::Authorization("Basic YWxpY2U6c2VjcmV0"),
        ),
    ];
    for (what, token) in &bad {
        credentials.push((what, Credential::Header(token)));
        credentials.push((what, Credential::Query(token)));
    }
    for endpoint in endpoints() {
        for (what, credential) in &credentials {
            let reply = endpoint.call(&api, *credential).await;
            assert_eq!(
                reply.status, 401,
                "{what} ({credential:?}) on {} {}: {}",
                endpoint.method, endpoint.path, reply.body
            );
            assert_error_body(&reply.body["error"], "unauthorized");
        }
    }
    // The WebSocket upgrade is refused the same way.
    for (what, credential) in &credentials {
        let refused = WsClient::open(server.addr(), *credential, None).await;
        assert_eq!(refused.err(), Some(401), "{what} ({credential:?})");
    }
    send(upgrade_request(server.request(Method::GET, "/ws")))
        .await
        .assert_error(401, "unauthorized");
    let no_exp = &bad
        .iter()
        .find(|(what, _)| what.contains("without exp"))
        .expect("a token without exp")
        .1;
    let expired = &bad[0].1;
    let reply = server.session(Some(no_exp)).get_json("/v1/changes").await;
    let message = reply.body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("claim is missing"), "{message}");
    // The token in the query, for clients that cannot set headers.
    let query = format!("/v1/ns/a/notes?token={}", alice());
    let list = server.get_json(&query).await.ok();
    assert_eq!(list["documents"], json!([]));
    server
        .get_json(&format!("/v1/ns/a/notes?token={expired}"))
        .await
        .assert_error(401, "unauthorized");
    // A good header wins over a bad query token, and liveness needs none.
    let reply = server
        .session(Some(&alice()))
        .get_json("/v1/ns/a/notes?token=garbage")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(server.get_json("/health").await.ok()["status"], "ok");
    assert_eq!(server.get_json("/ready").await.ok()["status"], "ready");
    server.shutdown().await;
}

#[tokio::test]
async fn a_token_sees_nothing_of_a_namespace_it_was_not_granted() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    let ops = server.session(Some(&admin));
    let a_conflict = pending_conflict(&ops, "a", "a-doc").await;
    let b_conflict = pending_conflict(&ops, "b", "b-doc").await;
    ops.create("pub", "notes", "p-doc", json!({"title": "news"}), "ops-1")
        .await;
    let api = server.session(Some(&alice));

    // Writes in b fail, each alone.
    for (path, mine) in [("/v1/sync", "mine-1"), ("/api/notes/bulk-sync", "mine-2")] {
        let response = api
            .post_json(
                path,
                &json!({"operations": [
                    {"action": "create", "namespace": "b", "collection": "notes",
                     "id": "intruder", "localId": "local-intruder", "data": {"x": 1}},
                    {"action": "create", "namespace": "a", "collection": "notes",
                     "id": mine, "data": {"x": 1}}
                ]}),
            )
            .await
            .ok();
        assert_eq!(response["success"], false, "{path}: {response}");
        assert_eq!(response["results"][0]["status"], "error");
        assert_error_body(&response["results"][0]["error"], "forbidden");
        assert_eq!(response["errors"][0]["code"], "forbidden");
        assert_eq!(response["errors"][0]["index"], 0);
        assert_eq!(response["errors"][0]["localId"], "local-intruder");
        assert_eq!(response["results"][0]["serverId"], "intruder");
        assert_eq!(
            response["results"][1]["status"], "success",
            "{path}: {response}"
        );
    }
    ops.get_json("/v1/ns/b/notes/intruder")
        .await
        .assert_error(404, "not_found");

    // Pulls of b are refused, and a refused pull applies nothing.
    api.post_json(
        "/v1/sync",
        &json!({"pull": true, "namespaces": ["b"], "operations": []}),
    )
    .await
    .assert_error(403, "forbidden");
    let head = api.head().await;
    api.post_json(
        "/api/notes/bulk-sync",
        &json!({"pull": true, "namespace": "b",
                "operations": [{"action": "create", "namespace": "a", "id": "sneaky",
                                "data": {"x": 1}}]}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(api.head().await, head, "a refused request wrote");
    api.get_json("/v1/ns/a/notes/sneaky")
        .await
        .assert_error(404, "not_found");

    // Every read of b.
    for path in [
        "/v1/ns/b/notes",
        "/v1/ns/b/notes/b-doc",
        "/v1/ns/b/notes/b-doc/history",
        "/v1/ns/b/notes/b-doc/versions/1",
        "/v1/ns/b/notes/missing",
        "/v1/changes?namespace=b",
        "/v1/changes?namespace=a,b",
        "/v1/conflicts?namespace=b",
    ] {
        api.get_json(path).await.assert_error(403, "forbidden");
    }
    api.post_json("/v1/ns/b/notes/b-doc/restore/1", &json!({}))
        .await
        .assert_error(403, "forbidden");
    // Its conflicts do not exist for alice.
    api.get_json(&format!("/v1/conflicts/{b_conflict}"))
        .await
        .assert_error(404, "not_found");
    api.post_json(
        &format!("/v1/conflicts/{b_conflict}/resolve"),
        &json!({"strategy": "server_wins"}),
    )
    .await
    .assert_error(404, "not_found");
    let conflicts = api.get_json("/v1/conflicts").await.ok();
    let ids: Vec<&Value> = conflicts["conflicts"]
        .as_array()
        .expect("conflicts")
        .iter()
        .map(|c| &c["id"])
        .collect();
    assert_eq!(ids, [&json!(a_conflict)]);
    // The feed and pulls without a namespace show only a and pub.
    let namespaces_seen = |feed: &Value| {
        let mut namespaces: Vec<String> = seen(feed).into_iter().map(|(ns, _)| ns).collect();
        namespaces.sort();
        namespaces.dedup();
        namespaces
    };
    let feed = api.get_json("/v1/changes").await.ok();
    assert_eq!(namespaces_seen(&feed), ["a", "pub"], "{feed}");
    assert_eq!(
        seen(&feed).len(),
        2 + 1 + 2,
        "a-doc's 2 versions, p-doc, mine-1 and -2"
    );
    let pull = api.sync(json!({"pull": true, "operations": []})).await;
    assert_eq!(seen(&pull), seen(&feed));
    // The admin still sees b, and b is unchanged.
    let b_doc = ops.document("b", "notes", "b-doc").await;
    assert_eq!(b_doc["version"], 2);
    server.shutdown().await;
}

#[tokio::test]
async fn read_only_namespaces_can_be_read_but_not_written() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    let ops = server.session(Some(&admin));
    let conflict = pending_conflict(&ops, "pub", "p-doc").await;
    let api = server.session(Some(&alice));
    let list = api.get_json("/v1/ns/pub/notes").await.ok();
    assert_eq!(list["documents"][0]["id"], "p-doc");
    assert_eq!(api.document("pub", "notes", "p-doc").await["version"], 2);
    for path in [
        "/v1/ns/pub/notes/p-doc/history",
        "/v1/ns/pub/notes/p-doc/versions/1",
        "/v1/changes?namespace=pub",
        "/v1/conflicts?namespace=pub",
    ] {
        let reply = api.get_json(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let pull = api
        .sync(json!({"pull": true, "namespaces": ["pub"], "operations": []}))
        .await;
    assert_eq!(pull["changes"].as_array().map(Vec::len), Some(2));
    api.get_json(&format!("/v1/conflicts/{conflict}"))
        .await
        .ok();

    let head = api.head().await;
    // Every write action through both doors fails alone, saying why.
    for path in ["/v1/sync", "/api/notes/bulk-sync"] {
        for action in ["create", "upsert", "update", "delete"] {
            let write = api
                .post_json(
                    path,
                    &json!({"namespace": "pub", "operations": [
                        {"action": action, "namespace": "pub", "collection": "notes",
                         "id": if action == "create" { "p-new" } else { "p-doc" },
                         "data": {"title": "mine now"}}
                    ]}),
                )
                .await
                .ok();
            let result = &write["results"][0];
            assert_eq!(result["status"], "error", "{action} via {path}: {write}");
            assert_error_body(&result["error"], "forbidden");
            assert!(
                result["error"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("read-only"),
                "{write}"
            );
        }
    }
    api.post_json("/v1/ns/pub/notes/p-doc/restore/1", &json!({}))
        .await
        .assert_error(403, "forbidden");
    api.post_json(
        &format!("/v1/conflicts/{conflict}/resolve"),
        &json!({"strategy": "client_wins"}),
    )
    .await
    .assert_error(403, "forbidden");
    assert_eq!(api.head().await, head);
    let p_doc = ops.document("pub", "notes", "p-doc").await;
    assert_eq!(p_doc["data"], json!({"title": "online"}));
    server.shutdown().await;
}

#[tokio::test]
async fn operator_endpoints_need_an_admin_token() {
    let server = TestServer::start_jwt().await;
    let (admin, alice) = (admin(), alice());
    for path in [
        "/v1/stats",
        "/metrics",
        "/v1/devices?user=bob",
        "/v1/stats/devices?user=bob",
    ] {
        server
            .session(Some(&alice))
            .get_json(path)
            .await
            .assert_error(403, "forbidden");
        let reply = server.session(Some(&admin)).get_json(path).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
    }
    let own = server
        .session(Some(&alice))
        .get_json("/v1/stats/devices")
        .await
        .ok();
    assert_eq!(own, json!({"devices": []}));
    server.shutdown().await;
}

#[tokio::test]
async fn a_device_belongs_to_the_user_who_registered_it() {
    let server = TestServer::start_jwt().await;
    let (alice_token, bob_token) = (alice(), bob());
    let (alice, bob) = (
        server.session(Some(&alice_token)),
        server.session(Some(&bob_token)),
    );
    let registered = alice
        .post_json(
            "/v1/devices",
            &json!({"deviceId": "alice-phone", "name": "Alice's iPhone"}),
        )
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    // First seen in a sync: registered to alice as well.
    alice
        .sync(json!({"deviceId": "alice-laptop", "operations": []}))
        .await;

    let head = bob.head().await;
    for device in ["alice-phone", "alice-laptop"] {
        bob.post_json(
            "/v1/sync",
            &json!({"deviceId": device, "operations": [
                {"action": "create", "namespace": "b", "collection": "notes", "id": "x",
                 "data": {"x": 1}}
            ]}),
        )
        .await
        .assert_error(403, "forbidden");
        bob.post_json(
            "/api/notes/bulk-sync",
            &json!({"deviceId": device, "namespace": "b", "pull": true, "operations": []}),
        )
        .await
        .assert_error(403, "forbidden");
        bob.get_json(&format!("/v1/changes?deviceId={device}"))
            .await
            .assert_error(403, "forbidden");
        bob.post_json("/v1/devices", &json!({"deviceId": device, "name": "mine"}))
            .await
            .assert_error(403, "forbidden");
        bob.delete(&format!("/v1/devices/{device}"))
            .await
            .assert_error(404, "not_found");
    }
    // Over WebSocket, a `hello` naming alice's device is refused and the
    // connection closed.
    for device in ["alice-phone", "alice-laptop"] {
        let mut socket = WsClient::open(server.addr(), Credential::Header(&bob_token), None)
            .await
            .expect("bob connects");
        let refused = socket.hello(device).await;
        assert_eq!(
            (&refused["type"], &refused["code"]),
            (&json!("error"), &json!("forbidden")),
            "{refused}"
        );
        assert_eq!(socket.next().await, json!({"type": "closed", "code": 1008}));
    }
    assert_eq!(bob.head().await, head);
    let bobs = bob.get_json("/v1/devices").await.ok();
    assert_eq!(bobs, json!({"devices": []}));
    let alices = alice.get_json("/v1/devices").await.ok();
    let mut ids: Vec<&str> = alices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .map(|d| d["deviceId"].as_str().unwrap_or_default())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["alice-laptop", "alice-phone"]);
    let phone = alices["devices"]
        .as_array()
        .expect("devices")
        .iter()
        .find(|d| d["deviceId"] == "alice-phone")
        .cloned()
        .expect("alice-phone");
    assert_eq!(phone["name"], "Alice's iPhone", "bob renamed it");
    assert_eq!(phone["user"], "alice");
    server.shutdown().await;
}

#[tokio::test]
async fn asymmetric_keys_refuse_every_other_signature() {
    for (keys, other) in [(ED25519, RSA), (RSA, ED25519)] {
        let server = TestServer::start(|config| keys.configure(config)).await;
        let api = server.session(None);
        let claims = || json!({"sub": "ops", "ns": ["*"], "admin": true});
        let algorithm = keys.jwt_algorithm();
        let hs256_with = |secret: &str| {
            signed(
                Algorithm::HS256,
                &EncodingKey::from_secret(secret.as_bytes()),
                claims(),
            )
        };
        let forged = [
            // The classic key confusion: the public key is no secret.
            ("HS256 signed with the public key", hs256_with(keys.public)),
            (
                "HS256 signed with the public key, trimmed",
                hs256_with(keys.public.trim()),
            ),
            ("HS256 signed with the test secret", hs256_with(SECRET)),
            (
                "signed with another key",
                signed(algorithm, &keys.encoding_key(keys.other_private), claims()),
            ),
            ("signed with the other algorithm", other.token(claims())),
            ("unsigned (alg none)", unsigned_token(claims())),
            (
                "expired",
                keys.token(json!({"sub": "ops", "ns": ["*"], "exp": now_secs() - 3_600})),
            ),
        ];
        let good = keys.token(claims());
        for endpoint in endpoints() {
            // An admin token of the pinned algorithm may do everything.
            let reply = endpoint.call(&api, Credential::Header(&good)).await;
            assert!(
                ![401, 403].contains(&reply.status),
                "{:?}: the good token on {}: {} {}",
                keys.algorithm,
                endpoint.path,
                reply.status,
                reply.body
            );
            for (what, token) in &forged {
                for credential in [Credential::Header(token), Credential::Query(token)] {
                    let reply = endpoint.call(&api, credential).await;
                    assert_eq!(
                        reply.status, 401,
                        "{:?}: {what} ({credential:?}) on {}: {}",
                        keys.algorithm, endpoint.path, reply.body
                    );
                    assert_error_body(&reply.body["error"], "unauthorized");
                }
            }
        }
        for (what, token) in &forged {
            for credential in [Credential::Header(token), Credential::Query(token)] {
                let refused = WsClient::open(server.addr(), credential, None).await;
                assert_eq!(refused.err(), Some(401), "{:?}: {what}", keys.algorithm);
            }
        }
        WsClient::connect(server.addr(), Credential::Query(&good), "ops-1")
            .await
            .assert_answers()
            .await;
        server.shutdown().await;
    }
}

/// One WebSocket message of each type a client sends, for
/// `ns/notes/<id>`.
fn every_message(ns: &str, id: &str, cursor: &str) -> Vec<(&'static str, Value)> {
    let write = |kind: &str, data: Value| {
        json!({"type": kind, "namespace": ns, "collection": "notes", "recordId": id,
               "opId": format!("op-{kind}-{id}"), "data": data})
    };
    vec![
        (
            "hello",
            json!({"type": "hello", "deviceId": format!("device-{id}")}),
        ),
        (
            "subscribe",
            json!({"type": "subscribe", "id": "sub", "namespace": ns, "collection": "notes",
                   "cursor": cursor}),
        ),
        ("insert", write("insert", json!({"v": 1}))),
        ("update", write("update", json!({"v": 2}))),
        ("delete", write("delete", json!({}))),
        ("unsubscribe", json!({"type": "unsubscribe", "id": "sub"})),
        ("ping", json!({"type": "ping"})),
    ]
}

#[tokio::test]
async fn every_websocket_message_is_checked_against_the_token() {
    let server = TestServer::start_jwt().await;
    let ops = server.session(Some(&admin()));
    let head = ops.head().await;

    // With a bad token the upgrade is refused, and messages sent right
    // behind the upgrade request are never read.
    let pipelined: Vec<u8> = every_message("a", "pipelined", &head)
        .iter()
        .flat_map(|(_, message)| ws_frame(OP_TEXT, true, message.to_string().as_bytes()))
        .collect();
    for (what, token) in bad_tokens() {
        for credential in [Credential::Header(&token), Credential::Query(&token)] {
            let (target, headers) = credential.apply("/ws");
            let (status, _) = RawWs::upgrade(server.addr(), &target, &headers, &pipelined).await;
            assert_eq!(status, 401, "{what} ({credential:?})");
        }
    }
    assert_eq!(
        ops.head().await,
        head,
        "a message behind a refused upgrade was applied"
    );

    // With a good token, each message in a namespace the token may write,
    // only read, or not touch at all: (who, token, namespace, read, write).
    let (alice, bob) = (alice(), bob());
    let admin = admin();
    let rows = [
        ("alice in a", &alice, "a", true, true),
        ("alice in pub (read-only)", &alice, "pub", true, false),
        ("alice in default", &alice, "default", false, false),
        ("bob in a", &bob, "a", false, false),
        ("an admin in b", &admin, "b", true, true),
    ];
    for (n, (who, token, ns, read, write)) in rows.into_iter().enumerate() {
        // Half the rows put the token in the header, half in the query.
        let credential = if n % 2 == 0 {
            Credential::Header(token)
        } else {
            Credential::Query(token)
        };
        let mut socket = WsClient::open(server.addr(), credential, None)
            .await
            .expect("a good token connects");
        let id = format!("doc-{n}");
        for (kind, message) in every_message(ns, &id, &head) {
            let answer = socket.request(message).await;
            let refused = |code: &str| answer["type"] == "error" && answer["code"] == code;
            let refusal = |code: &str| assert!(refused(code), "{who}: {kind} answered {answer}");
            match kind {
                "hello" => assert_eq!(answer["type"], "welcome", "{who}: {answer}"),
                "ping" => assert_eq!(answer["type"], "pong", "{who}: {answer}"),
                "subscribe" if read => assert_eq!(answer["type"], "subscribed", "{who}: {answer}"),
                "unsubscribe" if read => {
                    assert_eq!(answer["type"], "unsubscribed", "{who}: {answer}");
                }
                // There was no subscription to end.
                "unsubscribe" => refusal("not_found"),
                "subscribe" => refusal("forbidden"),
                _ if write => {
                    assert_eq!(answer["type"], "ack", "{who}: {kind} answered {answer}");
                }
                _ => {
                    refusal("forbidden");
                    assert_eq!(answer["opId"], format!("op-{kind}-{id}"), "{answer}");
                    if read {
                        let message = answer["message"].as_str().unwrap_or_default();
                        assert!(message.contains("read-only"), "{answer}");
                    }
                }
            }
        }
        // What was allowed happened, and nothing else.
        let stored = ops.get_json(&format!("/v1/ns/{ns}/notes/{id}")).await;
        if write {
            let (version, deleted) = (&stored.body["version"], &stored.body["deleted"]);
            assert_eq!((version, deleted), (&json!(3), &json!(true)), "{who}");
        } else {
            stored.assert_error(404, "not_found");
        }
    }
}

#[tokio::test]
async fn nothing_of_a_namespace_leaks_to_a_token_of_another() {
    /// In every id, name and value of namespace `a` that can hold it.
    const MARKER: &str = "qz7-marker-of-a";
    let server = TestServer::start_jwt().await;
    let start = server.session(Some(&admin())).head().await;
    let alice_token = token(json!({"sub": "alice", "ns": ["a"]}));
    let alice = server.session(Some(&alice_token));
    let phone = format!("{MARKER}-phone");
    let registered = alice
        .post_json("/v1/devices", &json!({"deviceId": phone, "name": MARKER}))
        .await;
    assert_eq!(registered.status, 201, "{}", registered.body);
    let marked = |id: String, data: Value| {
        json!({"opId": format!("{MARKER}-op-{id}"), "action": "create", "namespace": "a",
               "collection": "notes", "id": id, "data": data})
    };
    alice
        .sync(json!({"deviceId": phone, "operations": [
            marked(format!("{MARKER}-doc"), json!({"title": MARKER})),
            marked("plain".into(), json!({"title": MARKER})),
            {"action": "create", "namespace": "a", "collection": format!("{MARKER}-coll"),
             "id": "x", "data": {"title": MARKER}}
        ]}))
        .await;
    // A pending conflict on `plain` whose both sides carry the marker.
    for (device, title) in [
        (phone.clone(), "online"),
        (format!("{MARKER}-laptop"), "offline"),
    ] {
        alice
            .sync(
                json!({"deviceId": device, "strategy": "manual", "operations": [
                    {"action": "update", "namespace": "a", "collection": "notes", "id": "plain",
                     "baseVersion": 1, "data": {"title": format!("{MARKER}-{title}")}}
                ]}),
            )
            .await;
    }
    let conflicts = alice.get_json("/v1/conflicts?status=pending").await.ok();
    let conflict = conflicts["conflicts"][0]["id"]
        .as_str()
        .expect("a pending conflict")
        .to_owned();
    // Alice online, so presence and the device stats show her device.
    let _online = WsClient::connect(server.addr(), Credential::Header(&alice_token), &phone).await;

    // Everything a token can ask that could show namespace a, none of it
    // naming the marker.
    let probe = |token: String, device: &'static str| {
        let server = &server;
        let start = start.clone();
        let conflict = conflict.clone();
        async move {
            let api = server.session(Some(&token));
            let mut seen = String::new();
            let conflict_one = format!("/v1/conflicts/{conflict}");
            let mut endpoints = endpoints();
            endpoints.extend([
                get("/v1/changes?namespace=a"),
                get("/v1/ns/a/notes/plain"),
                get("/v1/ns/a/notes/plain/history"),
                get("/v1/ns/a/notes/plain/versions/1"),
                post("/v1/ns/a/notes/plain/restore/1", json!({})),
                get("/v1/conflicts?namespace=a"),
                get(&conflict_one),
                post(
                    &format!("{conflict_one}/resolve"),
                    json!({"strategy": "server_wins"}),
                ),
                get("/v1/devices?user=alice"),
                get("/v1/stats/devices?user=alice"),
                post(
                    "/v1/sync",
                    json!({"pull": true, "cursor": start, "operations": []}),
                ),
            ]);
            for endpoint in &endpoints {
                let reply = endpoint.call(&api, Credential::None).await;
                seen.push_str(&format!("{:?} {}\n", reply.headers, reply.body));
            }
            let mut socket =
                WsClient::connect(server.addr(), Credential::Query(&token), device).await;
            for ns in ["a", "b", "default"] {
                socket
                    .send(
                        json!({"type": "subscribe", "id": format!("{ns}-log"), "namespace": ns,
                                 "collection": "notes", "cursor": start}),
                    )
                    .await;
                socket
                    .send(
                        json!({"type": "subscribe", "id": format!("{ns}-now"), "namespace": ns,
                                 "collection": "notes"}),
                    )
                    .await;
            }
            socket
                .send(
                    json!({"type": "update", "namespace": "a", "collection": "notes",
                             "recordId": "plain", "opId": "probe-op", "data": {"y": 1}}),
                )
                .await;
            while let Some(message) = socket.try_next(Duration::from_millis(300)).await {
                seen.push_str(&format!("{message}\n"));
            }
            seen
        }
    };
    let bob_saw = probe(bob(), "bob-probe").await;
    assert!(
        !bob_saw.contains(MARKER),
        "namespace a leaked to bob:\n{bob_saw}"
    );
    // The same probes do show it to alice.
    let alice_saw = probe(alice_token.clone(), "alice-probe").await;
    for part in ["-doc", "-coll", "-op-", "-phone", "-laptop", "-online"] {
        assert!(
            alice_saw.contains(&format!("{MARKER}{part}")),
            "the probes would not see {part}"
        );
    }
}

#[tokio::test]
async fn websocket_origins_are_checked_before_the_upgrade() {
    const APP: &str = "https://app.example";
    let server = TestServer::start_jwt_with(|config| {
        config.cors.websocket_origins = vec![APP.into()];
    })
    .await;
    let alice = alice();
    for origin in [
        "https://evil.example",
        "http://app.example",
        "https://app.example.evil.example",
        "https://app.example:8443",
        "null",
    ] {
        let refused = WsClient::open(server.addr(), Credential::Header(&alice), Some(origin)).await;
        assert_eq!(refused.err(), Some(403), "{origin}");
        send(upgrade_request(
            server
                .request(Method::GET, "/ws")
                .bearer_auth(&alice)
                .header("origin", origin),
        ))
        .await
        .assert_error(403, "forbidden");
    }
    // The allowed origin, and clients that are not browsers (no origin).
    for origin in [Some(APP), None] {
        let mut client = WsClient::open(server.addr(), Credential::Query(&alice), origin)
            .await
            .unwrap_or_else(|status| panic!("{origin:?} refused with {status}"));
        assert_eq!(client.hello("alice-phone").await["type"], "welcome");
    }
    // (CORS for the HTTP API: `operations::cors_allows_the_configured_origins_only`.)
}

#[tokio::test]
async fn tokens_never_appear_in_the_logs() {
    let server = ChildServer::start(&[
        ("RUST_LOG", "trace"),
        ("SYNC_AUTH", "jwt"),
        ("SYNC_JWT_SECRET", SECRET),
    ])
    .await;
    let api = server.session(None);
    let good = token(json!({"sub": "alice", "ns": ["a"], "ro": ["pub"]}));
    let mut tokens = vec![good.clone()];
    tokens.extend(bad_tokens().into_iter().map(|(_, token)| token));
    for token in &tokens {
        for credential in [Credential::Header(token), Credential::Query(token)] {
            for endpoint in endpoints() {
                endpoint.call(&api, credential).await;
            }
            let Ok(mut socket) = WsClient::open(server.addr(), credential, None).await else {
                continue;
            };
            for (_, message) in every_message("a", "logged", "") {
                socket.send(message).await;
            }
            while socket.try_next(Duration::from_millis(200)).await.is_some() {}
        }
    }
    let log = server.output();
    // The log is the real one, at trace level, with the requests in it.
    for expected in [
        "sync server listening",
        "sync operation",
        "TRACE",
        "/v1/sync",
    ] {
        assert!(log.contains(expected), "no {expected:?} in the log:\n{log}");
    }
    for token in &tokens {
        // Nor any part of one: its claims or its signature.
        for part in token.split('.').skip(1).filter(|part| part.len() > 8) {
            assert!(!log.contains(part), "a token part is in the log: {part}");
        }
        assert!(!log.contains(token.as_str()), "a token is in the log");
    }
    assert!(!log.contains(SECRET), "the secret is in the log");
}
