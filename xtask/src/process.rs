//! Running cargo as a child process while keeping its output, so a step's
//! output reaches the terminal as it happens and can still be read for its
//! counts afterwards.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::thread;

use anyhow::{Context, Result};

/// A finished child process: whether it succeeded and everything it printed.
pub(crate) struct Finished {
    pub(crate) success: bool,
    pub(crate) output: String,
}

/// Runs `command`, echoing its stdout and stderr line by line, and returns
/// its exit status with the combined output.
pub(crate) fn run_echoed(command: &mut Command) -> Result<Finished> {
    let description = format!("{command:?}");
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("could not start {description}"))?;
    let stdout = child.stdout.take().context("child stdout")?;
    let stderr = child.stderr.take().context("child stderr")?;
    let echo_stdout = thread::spawn(move || echo(stdout, false));
    let echo_stderr = thread::spawn(move || echo(stderr, true));
    let status = child
        .wait()
        .with_context(|| format!("waiting for {description}"))?;
    let mut output = echo_stdout.join().unwrap_or_default();
    output.push_str(&echo_stderr.join().unwrap_or_default());
    Ok(Finished {
        success: status.success(),
        output,
    })
}

/// Echoes `stream` line by line (to stderr or stdout) and keeps what it read.
pub(crate) fn echo(stream: impl Read, to_stderr: bool) -> String {
    let mut kept = String::new();
    for line in BufReader::new(stream).lines().map_while(Result::ok) {
        if to_stderr {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        kept.push_str(&line);
        kept.push('\n');
    }
    kept
}

/// Whether `program args...` runs and exits successfully.
pub(crate) fn available(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}
