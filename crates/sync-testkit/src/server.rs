//! The `sync-server` binary as a child process.

use std::fs::File;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server process on a free loopback port, killed with SIGKILL when
/// dropped.
#[derive(Debug)]
pub struct ChildServer {
    child: Child,
    addr: SocketAddr,
    output: Option<PathBuf>,
}

impl ChildServer {
    /// Starts `command` (the server binary with its settings) listening on
    /// a free port, its standard output and error appended to `output`
    /// (discarded when `None`), and waits up to a minute for `/ready`.
    /// Panics with its output when it exits first.
    pub async fn start(mut command: Command, output: Option<&Path>) -> ChildServer {
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port");
        command.arg("--listen").arg(addr.to_string());
        match output {
            Some(path) => {
                let file = File::options()
                    .create(true)
                    .append(true)
                    .open(path)
                    .expect("the output file opens");
                command
                    .stdout(file.try_clone().expect("the output file"))
                    .stderr(file);
            }
            None => {
                command.stdout(Stdio::null()).stderr(Stdio::null());
            }
        }
        let child = command.spawn().expect("the server starts");
        let mut server = ChildServer {
            child,
            addr,
            output: output.map(Path::to_path_buf),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if ready_status(addr).await == Some(200) {
                return server;
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                panic!("the server exited with {status}: {}", server.output());
            }
            assert!(
                Instant::now() < deadline,
                "the server did not get ready: {}",
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The address it serves on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The HTTP URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// What it wrote so far, when its output goes to a file.
    pub fn output(&self) -> String {
        self.output
            .as_ref()
            .and_then(|path| std::fs::read_to_string(path).ok())
            .unwrap_or_default()
    }

    /// Kills it with SIGKILL and reaps it.
    pub fn kill(&mut self) {
        // `Child::kill` sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The status `GET /ready` answers, if anything answers within two seconds.
async fn ready_status(addr: SocketAddr) -> Option<u16> {
    let ask = async {
        let mut stream = TcpStream::connect(addr).await.ok()?;
        let request = format!("GET /ready HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut head = Vec::new();
        let mut chunk = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") {
            let read = stream.read(&mut chunk).await.ok()?;
            if read == 0 {
                return None;
            }
            head.extend_from_slice(&chunk[..read]);
        }
        std::str::from_utf8(&head)
            .ok()?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}
