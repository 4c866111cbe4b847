//! The harness: a real server on `127.0.0.1:0` over a sled store in a
//! temporary directory (in this process, or the `sync-server` binary as a
//! child), a real HTTP client, WebSocket clients (tungstenite, and a raw
//! one that writes frames by hand and never answers pings), JWT tokens
//! for every algorithm, and small helpers for the requests every test
//! makes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use sync_core::{ManualClock, Timestamp};
use sync_service::config::{AuthMode, DurabilityMode, JwtAlgorithm};
use sync_service::{Config, Server, ServerBuilder};
use tempfile::TempDir;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// The HS256 secret of the servers in `jwt` mode.
pub(crate) const SECRET: &str = "integration-test-secret-0123456789";

/// The test database's URL (`SYNC_TEST_DATABASE_URL`), or `None` after
/// saying loudly that `what` did not run.
pub(crate) fn database_url(what: &str) -> Option<String> {
    use std::io::Write as _;
    let url = std::env::var("SYNC_TEST_DATABASE_URL").ok();
    if url.is_none() {
        // Straight to stderr: the harness would hide `eprintln!` output.
        let _ = writeln!(
            std::io::stderr(),
            "\n*** {what} NOT RUN: set SYNC_TEST_DATABASE_URL \
             (postgres://postgres@127.0.0.1:5432/test) to run them ***\n"
        );
    }
    url
}

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
        Self::start_jwt_with(|_| {}).await
    }

    /// Like [`TestServer::start_jwt`], then `tweak` applied.
    pub(crate) async fn start_jwt_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        Self::start(|config| {
            config.auth.mode = AuthMode::Jwt;
            config.auth.algorithm = JwtAlgorithm::HS256;
            config.auth.secret = Some(SECRET.into());
            tweak(config);
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

    /// The address it serves on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL of `path` on this server.
    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Requests made with `token` (none in auth mode `none`).
    pub(crate) fn session(&self, token: Option<&str>) -> Session<'_> {
        Session::new(&self.client, self.addr, token)
    }

    /// A WebSocket client without credentials that said `hello` as `device`.
    pub(crate) async fn ws_client(&self, device: &str) -> WsClient {
        WsClient::connect(self.addr, Credential::None, device).await
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
    client: &'a reqwest::Client,
    addr: SocketAddr,
    token: Option<String>,
}

impl<'a> Session<'a> {
    fn new(client: &'a reqwest::Client, addr: SocketAddr, token: Option<&str>) -> Session<'a> {
        Session {
            client,
            addr,
            token: token.map(str::to_owned),
        }
    }

    /// A request to `path` carrying the session's token.
    pub(crate) fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self
            .client
            .request(method, format!("http://{}{path}", self.addr));
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
pub(crate) fn token_signed_with(claims: Value, secret: &str) -> String {
    signed(
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
        claims,
    )
}

/// A token of `algorithm` signed with `key`; `exp` as in [`token`].
pub(crate) fn signed(algorithm: Algorithm, key: &EncodingKey, mut claims: Value) -> String {
    match claims.get("exp") {
        None => claims["exp"] = json!(now_secs() + 3_600),
        Some(Value::Null) => {
            claims.as_object_mut().map(|o| o.remove("exp"));
        }
        Some(_) => {}
    }
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).expect("a token")
}

/// A fixed key pair of the tests (`tests/it/keys`, made with `openssl
/// genpkey`): the PEM private key that signs, the PEM public key the
/// server is configured with, and another private key of the same kind.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TestKeys {
    /// The algorithm the server pins.
    pub(crate) algorithm: JwtAlgorithm,
    /// The private key (PKCS#8 PEM).
    pub(crate) private: &'static str,
    /// The public key file name under `tests/it/keys`.
    pub(crate) public_file: &'static str,
    /// The public key (SPKI PEM), as the server reads it.
    pub(crate) public: &'static str,
    /// Another private key of the same algorithm.
    pub(crate) other_private: &'static str,
}

/// Ed25519 keys.
pub(crate) const ED25519: TestKeys = TestKeys {
    algorithm: JwtAlgorithm::EdDSA,
    private: include_str!("keys/ed25519.pem"),
    public_file: "ed25519.pub.pem",
    public: include_str!("keys/ed25519.pub.pem"),
    other_private: include_str!("keys/ed25519-other.pem"),
};

/// RSA 2048 keys.
pub(crate) const RSA: TestKeys = TestKeys {
    algorithm: JwtAlgorithm::RS256,
    private: include_str!("keys/rsa.pem"),
    public_file: "rsa.pub.pem",
    public: include_str!("keys/rsa.pub.pem"),
    other_private: include_str!("keys/rsa-other.pem"),
};

impl TestKeys {
    /// The `jsonwebtoken` algorithm.
    pub(crate) fn jwt_algorithm(&self) -> Algorithm {
        match self.algorithm {
            JwtAlgorithm::EdDSA => Algorithm::EdDSA,
            JwtAlgorithm::RS256 => Algorithm::RS256,
            JwtAlgorithm::HS256 => Algorithm::HS256,
        }
    }

    /// The path of the public key file.
    pub(crate) fn public_path(&self) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/it/keys")
            .join(self.public_file)
    }

    /// The signing key of a private PEM.
    pub(crate) fn encoding_key(&self, private: &str) -> EncodingKey {
        let made = match self.algorithm {
            JwtAlgorithm::EdDSA => EncodingKey::from_ed_pem(private.as_bytes()),
            _ => EncodingKey::from_rsa_pem(private.as_bytes()),
        };
        made.expect("a test key")
    }

    /// A token signed with the private key.
    pub(crate) fn token(&self, claims: Value) -> String {
        signed(
            self.jwt_algorithm(),
            &self.encoding_key(self.private),
            claims,
        )
    }

    /// Makes `config` a `jwt` server pinned to these keys.
    pub(crate) fn configure(&self, config: &mut Config) {
        config.auth.mode = AuthMode::Jwt;
        config.auth.algorithm = self.algorithm;
        config.auth.secret = None;
        config.auth.public_key_file = Some(self.public_path());
    }
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

/// Gzip of `len` bytes of `byte`, compressed as they are produced (an
/// inflation bomb of any size costs only its compressed size).
pub(crate) fn gzip_repeated(byte: u8, len: usize) -> Vec<u8> {
    use std::io::Write as _;
    let chunk = vec![byte; 1024 * 1024];
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        encoder.write_all(&chunk[..n]).expect("gzip in memory");
        left -= n;
    }
    encoder.finish().expect("gzip in memory")
}

/// A figure of this process's memory from `/proc/self/status`, in KiB:
/// `"VmRSS"` (resident now) or `"VmHWM"` (the resident peak so far). The
/// servers of these tests run in the test process, and nextest runs each
/// test in its own process, so these are the server's figures plus the
/// test's own.
pub(crate) fn memory_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
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

/// How a WebSocket client presents its token.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Credential<'a> {
    /// Not at all.
    None,
    /// `Authorization: Bearer`.
    Header(&'a str),
    /// `?token=`.
    Query(&'a str),
    /// This `Authorization` header, as it is.
    Authorization(&'a str),
}

impl Credential<'_> {
    /// `path` (which may have a query) with this credential, and the
    /// headers it needs.
    pub(crate) fn apply(&self, path: &str) -> (String, Vec<(&'static str, String)>) {
        match self {
            Credential::None => (path.into(), Vec::new()),
            Credential::Header(token) => (
                path.into(),
                vec![("authorization", format!("Bearer {token}"))],
            ),
            Credential::Query(token) => {
                let joint = if path.contains('?') { '&' } else { '?' };
                (format!("{path}{joint}token={token}"), Vec::new())
            }
            Credential::Authorization(value) => {
                (path.into(), vec![("authorization", (*value).to_owned())])
            }
        }
    }
}

/// A WebSocket client (tungstenite: it answers pings as it reads).
pub(crate) struct WsClient {
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl WsClient {
    /// Upgrades `/ws` at `addr` with `credential` and, if given, an
    /// `Origin`; a refused upgrade is its HTTP status.
    pub(crate) async fn open(
        addr: SocketAddr,
        credential: Credential<'_>,
        origin: Option<&str>,
    ) -> Result<WsClient, u16> {
        let (target, headers) = credential.apply("/ws");
        let mut request = format!("ws://{addr}{target}")
            .into_client_request()
            .expect("a WebSocket URL");
        for (name, value) in headers
            .into_iter()
            .chain(origin.map(|o| ("origin", o.to_owned())))
        {
            request
                .headers_mut()
                .insert(name, value.parse().expect("a header value"));
        }
        match tokio_tungstenite::connect_async(request).await {
            Ok((socket, _)) => Ok(WsClient { socket }),
            Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
                Err(response.status().as_u16())
            }
            Err(error) => panic!("the upgrade failed: {error}"),
        }
    }

    /// Upgrades (which must succeed) and says `hello` as `device`.
    pub(crate) async fn connect(
        addr: SocketAddr,
        credential: Credential<'_>,
        device: &str,
    ) -> WsClient {
        let mut client = Self::open(addr, credential, None)
            .await
            .unwrap_or_else(|status| panic!("the upgrade was refused with {status}"));
        let welcome = client.hello(device).await;
        assert_eq!(welcome["type"], "welcome", "{welcome}");
        let heartbeat = welcome["heartbeatSecs"].as_u64();
        assert!(heartbeat.is_some_and(|secs| secs > 0), "{welcome}");
        client
    }

    /// Says `hello` as `device` and returns the answer.
    pub(crate) async fn hello(&mut self, device: &str) -> Value {
        self.request(json!({"type": "hello", "deviceId": device}))
            .await
    }

    /// Sends a message.
    pub(crate) async fn send(&mut self, message: Value) {
        self.send_text(&message.to_string()).await;
    }

    /// Sends a text frame as it is.
    pub(crate) async fn send_text(&mut self, text: &str) {
        self.socket
            .send(Message::Text(text.into()))
            .await
            .expect("the socket takes the message");
    }

    /// Sends a message and returns the next one.
    pub(crate) async fn request(&mut self, message: Value) -> Value {
        self.send(message).await;
        self.next().await
    }

    /// The next JSON message (pings skipped; a close is
    /// `{"type": "closed", "code"}`), failing after 10 s.
    pub(crate) async fn next(&mut self) -> Value {
        self.try_next(Duration::from_secs(10))
            .await
            .expect("a message within 10 s")
    }

    /// The next JSON message within `wait`, if any.
    pub(crate) async fn try_next(&mut self, wait: Duration) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match frame {
                Ok(Message::Text(text)) => {
                    return Some(serde_json::from_str(&text).expect("a JSON message"));
                }
                Ok(Message::Close(frame)) => {
                    return Some(
                        json!({"type": "closed", "code": frame.map(|f| u16::from(f.code))}),
                    );
                }
                Ok(_) => continue,
                Err(error) => return Some(json!({"type": "closed", "error": error.to_string()})),
            }
        }
    }

    /// The next text frame as it came (pings skipped), within `wait`;
    /// `None` at the deadline or when the connection ends.
    pub(crate) async fn try_next_text(&mut self, wait: Duration) -> Option<String> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let frame = tokio::time::timeout_at(deadline, self.socket.next())
                .await
                .ok()??;
            match frame {
                Ok(Message::Text(text)) => return Some(text.as_str().to_owned()),
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    }

    /// Subscribes with `message`, which must be answered `subscribed`.
    pub(crate) async fn subscribe(&mut self, message: Value) -> Value {
        let subscribed = self.request(message).await;
        assert_eq!(subscribed["type"], "subscribed", "{subscribed}");
        subscribed
    }

    /// Inserts `todos/id` (opId `op-<id>`) and returns the answer.
    pub(crate) async fn insert(&mut self, id: &str, data: Value) -> Value {
        self.request(
            json!({"type": "insert", "collection": "todos", "recordId": id,
                            "opId": format!("op-{id}"), "data": data}),
        )
        .await
    }

    /// Checks that the connection answers a `ping`.
    pub(crate) async fn assert_answers(&mut self) {
        let pong = self.request(json!({"type": "ping"})).await;
        assert_eq!(pong["type"], "pong", "{pong}");
    }
}

/// `request` (a `GET` of `/ws`) with the headers of a WebSocket upgrade,
/// for reading a refused upgrade's answer as plain HTTP.
pub(crate) fn upgrade_request(request: RequestBuilder) -> RequestBuilder {
    request
        .header("connection", "Upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-version", "13")
        .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
}

/// The `sync-server` binary, run as a child over a store in a temporary
/// directory, its output (standard output and error) kept in a file there.
pub(crate) struct ChildServer {
    server: sync_testkit::ChildServer,
    client: reqwest::Client,
    _dir: TempDir,
}

impl ChildServer {
    /// Starts the binary with only `env` (and the listen address, the data
    /// directory and `os` durability) set, and waits until it is ready.
    pub(crate) async fn start(env: &[(&str, &str)]) -> ChildServer {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut command = Command::new(env!("CARGO_BIN_EXE_sync-server"));
        command
            .env_clear()
            .env("SYNC_DATA_DIR", dir.path().join("store"))
            .env("SYNC_DURABILITY", "os")
            .envs(env.iter().copied());
        let output = dir.path().join("output.log");
        let server = sync_testkit::ChildServer::start(command, Some(&output)).await;
        ChildServer {
            server,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// The address it serves on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// Requests made with `token`.
    pub(crate) fn session(&self, token: Option<&str>) -> Session<'_> {
        Session::new(&self.client, self.addr(), token)
    }

    /// What it wrote so far (its logs).
    pub(crate) fn output(&self) -> String {
        self.server.output()
    }

    /// Its process id.
    pub(crate) fn pid(&self) -> u32 {
        self.server.id()
    }
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
