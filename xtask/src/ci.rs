//! `cargo xtask ci`: every check CI runs, in the order that fails fastest,
//! each step run even when an earlier one failed so one run shows every
//! problem. Ends with a single summary line of test counts.

use std::process::Command;
use std::time::Instant;

use anyhow::Result;

use crate::process::{available, run_echoed};
use crate::workspace_root;

/// Test counts gathered from the runners' own summary lines.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) passed: u64,
    pub(crate) failed: u64,
    pub(crate) skipped: u64,
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        self.passed += other.passed;
        self.failed += other.failed;
        self.skipped += other.skipped;
    }
}

struct Step {
    name: &'static str,
    args: Vec<&'static str>,
    env: Vec<(&'static str, &'static str)>,
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Runs every step; `Ok(false)` when one of them failed.
pub(crate) fn run() -> Result<bool> {
    let started = Instant::now();
    if std::env::var_os("SYNC_TEST_DATABASE_URL").is_none() {
        eprintln!(
            "xtask ci: NOTE: SYNC_TEST_DATABASE_URL is not set, so the PostgreSQL tests will \
             report that they did not run (.ci/run sets it)."
        );
    }
    let nextest = available(&cargo(), &["nextest", "--version"]);
    let test_step = if nextest {
        Step {
            name: "test",
            args: vec!["nextest", "run", "--workspace", "--no-fail-fast"],
            env: vec![],
        }
    } else {
        Step {
            name: "test",
            args: vec!["test", "--workspace", "--no-fail-fast"],
            env: vec![],
        }
    };
    let steps = [
        Step {
            name: "fmt",
            args: vec!["fmt", "--all", "--", "--check"],
            env: vec![],
        },
        Step {
            name: "clippy",
            args: vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
            env: vec![],
        },
        test_step,
        Step {
            name: "doctest",
            args: vec!["test", "--workspace", "--doc"],
            env: vec![],
        },
        Step {
            name: "doc",
            args: vec!["doc", "--workspace", "--no-deps"],
            env: vec![("RUSTDOCFLAGS", "-D warnings")],
        },
    ];

    let mut counts = Counts::default();
    let mut failed_steps = Vec::new();
    for step in &steps {
        eprintln!("xtask ci: == {} ({})", step.name, step.args.join(" "));
        let step_started = Instant::now();
        let mut command = Command::new(cargo());
        command.args(&step.args).current_dir(workspace_root());
        for (key, value) in &step.env {
            command.env(key, value);
        }
        let finished = run_echoed(&mut command)?;
        if matches!(step.name, "test" | "doctest") {
            counts += parse_counts(&finished.output);
        }
        let verdict = if finished.success { "ok" } else { "FAILED" };
        eprintln!(
            "xtask ci: == {} {verdict} in {:.0} s",
            step.name,
            step_started.elapsed().as_secs_f64()
        );
        if !finished.success {
            failed_steps.push(step.name);
        }
    }

    let elapsed = started.elapsed().as_secs_f64();
    if failed_steps.is_empty() {
        println!("xtask ci: every step passed in {elapsed:.0} s");
    } else {
        println!(
            "xtask ci: failed steps: {} ({elapsed:.0} s)",
            failed_steps.join(", ")
        );
    }
    println!(
        "ci: {} passed, {} failed, {} skipped",
        counts.passed, counts.failed, counts.skipped
    );
    Ok(failed_steps.is_empty())
}

/// Sums the counts of nextest's `N tests run: X passed, Y failed, Z skipped`
/// lines and libtest's `test result: ok. X passed; Y failed; Z ignored` lines.
pub(crate) fn parse_counts(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines() {
        if line.contains(" run: ") && line.contains(" passed") {
            let tail = line.split(" run: ").nth(1).unwrap_or_default();
            counts += Counts {
                passed: number_before(tail, "passed"),
                failed: number_before(tail, "failed"),
                skipped: number_before(tail, "skipped"),
            };
        } else if let Some(tail) = line.trim_start().strip_prefix("test result: ") {
            counts += Counts {
                passed: number_before(tail, "passed"),
                failed: number_before(tail, "failed"),
                skipped: number_before(tail, "ignored"),
            };
        }
    }
    counts
}

/// The number written just before `word` in `text` (`"3 passed"` gives 3).
fn number_before(text: &str, word: &str) -> u64 {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';' || c == '.')
        .filter(|w| !w.is_empty())
        .collect();
    words
        .windows(2)
        .find(|pair| pair[1] == word)
        .and_then(|pair| pair[0].parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(output: &str, expected: (u64, u64, u64)) {
        let counts = parse_counts(output);
        assert_eq!(
            (counts.passed, counts.failed, counts.skipped),
            expected,
            "{output}"
        );
    }

    #[test]
    fn reads_runner_summaries() {
        check(
            "     Summary [  12.345s] 123 tests run: 123 passed, 0 skipped",
            (123, 0, 0),
        );
        check(
            "     Summary [   1.000s] 10 tests run: 7 passed, 3 failed, 2 skipped",
            (7, 3, 2),
        );
        check(
            "     Summary [   1.000s] 1 test run: 1 passed, 0 skipped",
            (1, 0, 0),
        );
        check(
            "test result: ok. 41 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out\n\
             test result: FAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            (43, 1, 1),
        );
        check("nothing to see", (0, 0, 0));
    }
}
