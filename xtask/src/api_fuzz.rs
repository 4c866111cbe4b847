//! `cargo xtask api-fuzz`: schemathesis against a live `sync-server`, once
//! in each auth mode (`none`, and `jwt` with an admin token), driven by the
//! server's own `/openapi.json`: no answer may be a 5xx, and every answer
//! must match the document (status, content type, body schema). The number
//! of examples per operation is bounded so the run fits in CI; the seed
//! schemathesis prints replays a failure.
//!
//! schemathesis comes from PyPI, into a virtual environment under
//! `target/schemathesis` that the first run creates.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};

use crate::process::run_echoed;
use crate::workspace_root;

/// The schemathesis release the checks were written against.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "20";
/// The HS256 secret of the `jwt` run.
const SECRET: &str = "api-fuzz-secret-0123456789abcdef";
/// Settings of both runs: a long poll of at most a second, so a generated
/// `wait` does not outlast the request timeout.
const CONFIG: &str = "[limits]\nlong_poll_secs_max = 1\n";

/// Runs both modes with the `sync-server` binary at `server`; `Ok(false)`
/// when a check failed.
pub(crate) fn run(server: &Path) -> Result<bool> {
    let schemathesis = install()?;
    let dir = workspace_root().join("target").join("api-fuzz");
    std::fs::create_dir_all(&dir)?;
    let config = dir.join("sync.toml");
    std::fs::write(&config, CONFIG)?;
    let mut passed = true;
    for jwt in [false, true] {
        let data = dir.join(if jwt { "data-jwt" } else { "data-none" });
        let _ = std::fs::remove_dir_all(&data);
        let running = Running::start(server, &config, &data, jwt)?;
        let mut command = Command::new(&schemathesis);
        // Its reports and example database stay under `target/`.
        command.current_dir(&dir).args([
            "run",
            &format!("http://{}/openapi.json", running.addr),
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,\
             content_type_conformance",
            "--max-examples",
            MAX_EXAMPLES,
            "--request-timeout",
            "15",
            // The snapshot load takes NDJSON, which schemathesis cannot
            // generate; `syncctl`'s tests cover it.
            "--exclude-operation-id",
            "load",
        ]);
        if jwt {
            command.args(["-H", &format!("Authorization: Bearer {}", admin_token()?)]);
        }
        eprintln!(
            "xtask api-fuzz: auth {}",
            if jwt { "jwt (admin token)" } else { "none" }
        );
        let finished = run_echoed(&mut command)?;
        passed &= finished.success;
    }
    Ok(passed)
}

/// The schemathesis executable, installed first if needed.
fn install() -> Result<PathBuf> {
    let venv = workspace_root().join("target").join("schemathesis");
    let executable = venv.join("bin").join("schemathesis");
    if executable.is_file() {
        return Ok(executable);
    }
    let created = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .context("python3 (with venv) is needed for schemathesis")?;
    if !created.success() {
        bail!("python3 -m venv {} failed", venv.display());
    }
    let installed = Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", SCHEMATHESIS])
        .status()?;
    if !installed.success() {
        bail!("pip install {SCHEMATHESIS} failed");
    }
    Ok(executable)
}

/// An HS256 token of an admin with every namespace, valid for an hour.
fn admin_token() -> Result<String> {
    let exp = SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs() + 3_600;
    let claims = serde_json::json!({"sub": "api-fuzz", "ns": ["*"], "admin": true, "exp": exp});
    Ok(jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// A server on a free port, killed when dropped.
struct Running {
    child: Child,
    addr: SocketAddr,
}

impl Running {
    fn start(server: &Path, config: &Path, data: &Path, jwt: bool) -> Result<Running> {
        let addr = TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(server);
        command
            .arg("--config")
            .arg(config)
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", &addr.to_string(), "--durability", "os"])
            .args(["--console", "false"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null());
        if jwt {
            command
                .args(["--auth", "jwt"])
                .env("SYNC_JWT_SECRET", SECRET);
        }
        let child = command
            .spawn()
            .with_context(|| format!("starting {}", server.display()))?;
        let mut running = Running { child, addr };
        let deadline = Instant::now() + Duration::from_secs(60);
        while !ready(addr) {
            if let Some(status) = running.child.try_wait()? {
                bail!("sync-server exited with {status}");
            }
            if Instant::now() > deadline {
                bail!("sync-server did not get ready");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(running)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether `GET /ready` answers 200.
fn ready(addr: SocketAddr) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}
