//! The harness: a real server on `127.0.0.1:0` over a sled store in a
//! temporary directory, a real HTTP client, JWT tokens, and small helpers
//! for the requests every test makes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sync_core::{ManualClock, Timestamp};
use sync_service::config::{AuthMode, DurabilityMode, JwtAlgorithm};
use sync_service::{Config, Server, ServerBuilder};
use tempfile::TempDir;

/// The HS256 secret of the servers in `jwt` mode.
pub(crate) const SECRET: &str = "integration-test-secret-0123456789";

/// A running server and a client for it.
pub(crate) struct TestServer {
    server: Option<Server>,
    dir: Option<TempDir>,
    addr: SocketAddr,
    client: reqwest::Client,
}

impl TestServer {
    /// A server with the test defaults (fast durability, auth `none`), then
    /// `tweak` applied to its settings.
    pub(crate) async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start_with(tweak, |builder| builder).await
    }

    /// Like [`TestServer::start`], with a say over the builder (a clock).
    pub(crate) async fn start_with(
        tweak: impl FnOnce(&mut Config),
        build: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        Self::start_in(
            dir,
            |config| {
                config.durability = DurabilityMode::Os;
                tweak(config);
            },
            build,
        )
        .await
    }

    /// A server over the store in `dir` (durability `fsync` unless `tweak`
    /// says otherwise).
    pub(crate) async fn start_in(
        dir: TempDir,
        tweak: impl FnOnce(&mut Config),
        build: impl FnOnce(ServerBuilder) -> ServerBuilder,
    ) -> TestServer {
        let mut config = Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: dir.path().join("store"),
            compaction_interval_secs: 0,
            ..Config::default()
        };
        tweak(&mut config);
        let server = build(ServerBuilder::new(config))
            .start()
            .await
            .expect("the server starts");
        let addr = server.local_addr();
        TestServer {
            server: Some(server),
            dir: Some(dir),
            addr,
            client: reqwest::Client::new(),
        }
    }

    /// A server in `jwt` mode with HS256 and [`SECRET`].
    pub(crate) async fn start_jwt() -> TestServer {
        Self::start(|config| {
            config.auth.mode = AuthMode::Jwt;
            config.auth.algorithm = JwtAlgorithm::HS256;
            config.auth.secret = Some(SECRET.into());
        })
        .await
    }

    /// A server whose clock stands where the test puts it.
    pub(crate) async fn start_at(
        clock: &Arc<ManualClock>,
        tweak: impl FnOnce(&mut Config),
    ) -> TestServer {
        let clock = Arc::clone(clock);
        Self::start_with(tweak, move |builder| builder.clock(clock)).await
    }

    /// The URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests made with `token` (none in auth mode `none`).
    pub(crate) fn session(&self, token: Option<&str>) -> Session<'_> {
        Session {
            server: self,
            token: token.map(str::to_owned),
        }
    }

    /// A request to `path`, without credentials.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// `POST path` with a JSON body, without credentials.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        self.session(None).post_json(path, body).await
    }

    /// `GET path`, without credentials.
    pub(crate) async fn get_json(&self, path: &str) -> Reply {
        self.session(None).get_json(path).await
    }

    /// Stops the server and hands back its data directory.
    pub(crate) async fn shutdown(mut self) -> TempDir {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("a clean shutdown");
        }
        self.dir.take().expect("the data directory")
    }
}

/// Requests on behalf of one caller.
pub(crate) struct Session<'a> {
    server: &'a TestServer,
    token: Option<String>,
}

impl Session<'_> {
    /// A request to `path` carrying the session's token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.server.request(method, path);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// `POST path` with a JSON body.
    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Reply {
        send(self.request(Method::POST, path).json(body)).await
    }

    /// `GET path`.
    pub(crate) async fn get_json(&self, path: &str) -> Reply {
        send(self.request(Method::GET, path)).await
    }

    /// `DELETE path`.
    pub(crate) async fn delete(&self, path: &str) -> Reply {
        send(self.request(Method::DELETE, path)).await
    }

    /// `POST /v1/sync` with `body`, which must succeed at the HTTP level.
    pub(crate) async fn sync(&self, body: Value) -> Value {
        self.post_json("/v1/sync", &body).await.ok()
    }

    /// The head cursor (`GET /v1/changes?cursor=now`).
    pub(crate) async fn head(&self) -> String {
        let feed = self.get_json("/v1/changes?cursor=now").await.ok();
        assert_eq!(feed["changes"], json!([]), "{feed}");
        feed["cursor"].as_str().expect("a cursor").to_owned()
    }

    /// Creates `ns/collection/id` from `device` and returns its result.
    pub(crate) async fn create(
        &self,
        ns: &str,
        collection: &str,
        id: &str,
        data: Value,
        device: &str,
    ) -> Value {
        let response = self
            .sync(json!({
                "deviceId": device,
                "operations": [{
                    "action": "create", "namespace": ns, "collection": collection,
                    "id": id, "data": data
                }]
            }))
            .await;
        let result = response["results"][0].clone();
        assert_eq!(result["status"], "success", "{response}");
        result
    }

    /// The document `ns/collection/id`, which must exist.
    pub(crate) async fn document(&self, ns: &str, collection: &str, id: &str) -> Value {
        self.get_json(&format!("/v1/ns/{ns}/{collection}/{id}"))
            .await
            .ok()
    }
}

/// Sends `request` and reads the answer (JSON when it is JSON).
pub(crate) async fn send(request: RequestBuilder) -> Reply {
    let response = request.send().await.expect("the server answers");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Reply {
        status,
        headers,
        body,
    }
}

/// A response: status, headers and body.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
}

impl Reply {
    /// The body of a 200 response.
    pub(crate) fn ok(self) -> Value {
        assert_eq!(self.status, 200, "{}", self.body);
        self.body
    }

    /// Checks that this is the error `code` with `status`, in the
    /// protocol's shape `{"error": {"code", "message"}}`.
    pub(crate) fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "{}", self.body);
        assert_error_body(&self.body["error"], code);
    }
}

/// Checks an error object `{"code", "message", "details"?}`.
pub(crate) fn assert_error_body(error: &Value, code: &str) {
    assert_eq!(error["code"], code, "{error}");
    let message = error["message"].as_str().unwrap_or_default();
    assert!(!message.is_empty(), "an error without a message: {error}");
    let keys: Vec<&str> = error
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    assert!(
        keys.iter()
            .all(|k| ["code", "message", "details"].contains(k)),
        "{error}"
    );
}

/// Milliseconds since the epoch of an ISO-8601 time.
pub(crate) fn at(iso: &str) -> u64 {
    Timestamp::parse(iso).expect("a valid time").as_millis()
}

/// Seconds since the epoch now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}

/// An HS256 token with `claims` signed with [`SECRET`]; `exp` is an hour
/// away unless `claims` sets it (`"exp": null` leaves it out).
pub(crate) fn token(claims: Value) -> String {
    token_signed_with(claims, SECRET)
}

/// An HS256 token signed with `secret`.
pub(crate) fn token_signed_with(mut claims: Value, secret: &str) -> String {
    match claims.get("exp") {
        None => claims["exp"] = json!(now_secs() + 3_600),
        Some(Value::Null) => {
            claims.as_object_mut().map(|o| o.remove("exp"));
        }
        Some(_) => {}
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("a token")
}

/// An unsigned token (`alg: none`) with `claims`.
pub(crate) fn unsigned_token(mut claims: Value) -> String {
    if claims.get("exp").is_none() {
        claims["exp"] = json!(now_secs() + 3_600);
    }
    let header = base64url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64url(claims.to_string().as_bytes());
    format!("{header}.{payload}.")
}

/// Base64url without padding (RFC 7515).
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Gzip of `bytes`.
pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip in memory");
    encoder.finish().expect("gzip in memory")
}

/// The keys of a JSON object, sorted.
pub(crate) fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    keys
}

#[test]
fn base64url_matches_rfc_4648_vectors() {
    for (input, expected) in [
        ("", ""),
        ("f", "Zg"),
        ("fo", "Zm8"),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg"),
        ("fooba", "Zm9vYmE"),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64url(input.as_bytes()), expected);
    }
    assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
}
