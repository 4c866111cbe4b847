//! The crash harness: one test of the current test binary, run as a child
//! process that works until the parent kills it with SIGKILL.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

/// A test of the current binary running as a child process; what it
/// prints on standard output is read line by line.
#[derive(Debug)]
pub struct ChildTest {
    child: Child,
    lines: Receiver<String>,
    read: Vec<String>,
}

impl ChildTest {
    /// Runs the test at `path` (module path inside the test binary, e.g.
    /// `crash::crash_child`), ignored or not, with `env` set. The child
    /// test should do nothing when its variables are absent, so that a
    /// normal run of the suite passes it.
    pub fn spawn<V: AsRef<OsStr>>(path: &str, env: &[(&str, V)]) -> ChildTest {
        let mut child = Command::new(std::env::current_exe().expect("the test binary"))
            .args([
                path,
                "--exact",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .envs(env.iter().map(|(name, value)| (name, value.as_ref())))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the child test starts");
        let stdout = child.stdout.take().expect("a piped stdout");
        let (sender, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        ChildTest {
            child,
            lines,
            read: Vec::new(),
        }
    }

    /// Reads lines until `found` is true of one, for at most `wait`;
    /// whether it was. The lines read are kept for [`ChildTest::kill`].
    pub fn wait_for(&mut self, mut found: impl FnMut(&str) -> bool, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = found(&line);
                    self.read.push(line);
                    if hit {
                        return true;
                    }
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return false,
            }
        }
    }

    /// Kills the child with SIGKILL, reaps it, and returns every line it
    /// printed.
    pub fn kill(mut self) -> Vec<String> {
        self.stop();
        // The pipe is closed now: the reader ends once it has read all.
        let mut read = std::mem::take(&mut self.read);
        read.extend(self.lines.iter());
        read
    }

    fn stop(&mut self) {
        // `Child::kill` sends SIGKILL.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChildTest {
    fn drop(&mut self) {
        self.stop();
    }
}
