//! `cargo xtask ci`: every check CI runs, in the order that fails fastest,
//! each step run even when an earlier one failed so one run shows every
//! problem: the Rust workspace first (then each library crate as its users
//! get it: packaged, checked alone with and without default features, its
//! example run), then the server's HTTP API checked by
//! schemathesis against its own `/openapi.json` (`api_fuzz`), then the
//! TypeScript client in
//! `clients/typescript` (its unit tests, its tests against the real server
//! binary and its browser tests), then the console and demo in `web/` (the
//! committed assets the server embeds checked against a rebuild of their
//! sources, and their browser tests); `SYNC_CI_SKIP_TS=1` leaves the
//! TypeScript steps out. Ends with a single summary line of test counts.

use std::path::{Path, PathBuf};
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

/// How a step's output is read for test counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Runner {
    /// Not a test run.
    None,
    /// nextest or libtest.
    Cargo,
    /// vitest's summary.
    Vitest,
    /// Playwright's summary.
    Playwright,
}

struct Step {
    name: &'static str,
    program: String,
    args: Vec<&'static str>,
    dir: PathBuf,
    env: Vec<(&'static str, String)>,
    runner: Runner,
    /// Run just before the program.
    before: Option<fn() -> Result<()>>,
}

impl Step {
    fn cargo(name: &'static str, args: Vec<&'static str>) -> Step {
        Step {
            name,
            program: cargo(),
            args,
            dir: workspace_root(),
            env: vec![],
            runner: Runner::None,
            before: None,
        }
    }

    /// A task of this runner, run as its own process (so its output is
    /// echoed and its exit status read like any other step's).
    fn xtask(name: &'static str, args: Vec<&'static str>) -> Step {
        Step {
            name,
            program: std::env::current_exe()
                .map(|exe| exe.display().to_string())
                .unwrap_or_else(|_| "xtask".to_owned()),
            args,
            dir: workspace_root(),
            env: vec![],
            runner: Runner::None,
            before: None,
        }
    }

    /// An npm script of the TypeScript client, which finds the server
    /// binary through `SYNC_SERVER_BIN`.
    fn npm(name: &'static str, args: Vec<&'static str>, server: &Path) -> Step {
        Step {
            name,
            program: "npm".to_owned(),
            args,
            dir: workspace_root().join("clients").join("typescript"),
            env: vec![
                ("SYNC_SERVER_BIN", server.display().to_string()),
                // Plain summary lines, whatever the terminal.
                ("NO_COLOR", "1".to_owned()),
            ],
            runner: Runner::None,
            before: None,
        }
    }

    /// The same npm step in `web/`, the console's and the demo's package.
    fn in_web(mut self) -> Step {
        self.dir = workspace_root().join("web");
        self
    }

    fn env(mut self, key: &'static str, value: &str) -> Step {
        self.env.push((key, value.to_owned()));
        self
    }

    fn counted(mut self, runner: Runner) -> Step {
        self.runner = runner;
        self
    }

    fn before(mut self, action: fn() -> Result<()>) -> Step {
        self.before = Some(action);
        self
    }
}

/// The crates published for library users, in dependency order.
const LIBRARY_CRATES: [&str; 8] = [
    "sync-core",
    "sync-diff",
    "sync-conflict",
    "sync-queue",
    "sync-realtime",
    "sync-store",
    "sync-engine",
    "sync-client",
];

/// Each library crate's example (`crates/<crate>/examples/<name>.rs`),
/// run as a CI step: each finishes on its own, starting a server
/// in-process where it needs one.
const LIBRARY_EXAMPLES: [&str; 8] = [
    "vocabulary",
    "diff",
    "resolve",
    "queue",
    "tail",
    "store",
    "write_path",
    "quickstart",
];

/// The steps that check each library crate as a user gets it. `cargo
/// package` packs the eight and builds each from its package alone, with
/// its default features, as `cargo publish --dry-run` does (the crates that
/// are not published yet come from a local registry cargo makes of the
/// others); then each is checked alone without its default features. A
/// feature or a dependency that only the workspace's feature unification
/// supplied shows up in one or the other.
fn library_steps() -> Vec<Step> {
    let mut package = vec![
        "package",
        "--allow-dirty",
        "--quiet",
        "--target-dir",
        PACKAGE_TARGET_DIR,
    ];
    for name in LIBRARY_CRATES {
        package.extend(["-p", name]);
    }
    let mut steps = vec![Step::cargo("package", package).before(forget_earlier_packages)];
    for name in LIBRARY_CRATES {
        steps.push(Step::cargo(
            step_name(format!("alone {name} --no-default-features")),
            vec![
                "check",
                "--quiet",
                "-p",
                name,
                "--lib",
                "--no-default-features",
            ],
        ));
    }
    steps
}

/// Where `cargo package` builds: a directory of its own, so that
/// [`forget_earlier_packages`] can clear what it must without touching the
/// other steps' builds.
const PACKAGE_TARGET_DIR: &str = "target/package-verify";

/// `cargo package` checks each crate against the others as packed in this
/// run, from a local registry. cargo takes a registry crate of a given
/// version to be the same forever, so the sources it unpacked
/// (`$CARGO_HOME/registry/src`, the local registry's directory starts with
/// `-`) and what it built from them in an earlier run of the same version
/// would stand in for this run's: a crate using another's new API would
/// fail to build, or an old one pass. Both are removed first.
fn forget_earlier_packages() -> Result<()> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    let ours = |file: &str| {
        LIBRARY_CRATES.iter().any(|name| {
            let under = name.replace('-', "_");
            [
                format!("{name}-"),
                format!("{under}-"),
                format!("lib{under}-"),
            ]
            .iter()
            .any(|prefix| file.starts_with(prefix.as_str()))
        })
    };
    let mut dirs = Vec::new();
    if let Some(home) = cargo_home {
        for registry in std::fs::read_dir(home.join("registry").join("src"))
            .into_iter()
            .flatten()
            .flatten()
        {
            if registry.file_name().to_string_lossy().starts_with('-') {
                dirs.push(registry.path());
            }
        }
    }
    let built = workspace_root().join(PACKAGE_TARGET_DIR).join("debug");
    dirs.extend([built.join(".fingerprint"), built.join("deps")]);
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if !ours(&entry.file_name().to_string_lossy()) {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// The example binaries, built by the `examples-build` step.
fn example_steps() -> Vec<Step> {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    LIBRARY_EXAMPLES
        .iter()
        .map(|name| Step {
            name: step_name(format!("example {name}")),
            program: target
                .join("debug")
                .join("examples")
                .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
                .display()
                .to_string(),
            args: vec![],
            dir: root.clone(),
            env: vec![],
            runner: Runner::None,
            before: None,
        })
        .collect()
}

/// A step name made at run time; the runner lives for one run, so the
/// few names it makes are simply kept.
fn step_name(name: String) -> &'static str {
    Box::leak(name.into_boxed_str())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// Where cargo puts the dev build of `sync-server`: `CARGO_TARGET_DIR`
/// when set (relative to the workspace), else the workspace's `target`.
pub(crate) fn server_binary() -> PathBuf {
    let root = workspace_root();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(|dir| root.join(dir))
        .unwrap_or_else(|| root.join("target"));
    target
        .join("debug")
        .join(format!("sync-server{}", std::env::consts::EXE_SUFFIX))
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
        Step::cargo(
            "test",
            vec!["nextest", "run", "--workspace", "--no-fail-fast"],
        )
    } else {
        Step::cargo("test", vec!["test", "--workspace", "--no-fail-fast"])
    };
    let mut steps = vec![
        Step::cargo("fmt", vec!["fmt", "--all", "--", "--check"]),
        Step::cargo(
            "clippy",
            vec![
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
        test_step.counted(Runner::Cargo),
        Step::cargo("doctest", vec!["test", "--workspace", "--doc"]).counted(Runner::Cargo),
        Step::cargo("doc", vec!["doc", "--workspace", "--no-deps"])
            .env("RUSTDOCFLAGS", "-D warnings"),
    ];
    steps.extend(library_steps());
    steps.extend([Step::cargo(
        "server-build",
        // With --workspace, features resolve as in the test step, so
        // the binaries it built are reused instead of rebuilt.
        vec!["build", "--workspace", "--bin", "sync-server", "--examples"],
    )]);
    steps.extend(example_steps());
    steps.push(Step::xtask("api-fuzz", vec!["api-fuzz"]));
    if std::env::var_os("SYNC_CI_SKIP_TS").is_some_and(|value| value == "1") {
        eprintln!(
            "xtask ci: NOTE: SYNC_CI_SKIP_TS=1, so the TypeScript client's steps are skipped."
        );
    } else {
        let server = server_binary();
        steps.extend([
            Step::npm("ts-install", vec!["ci"], &server),
            Step::npm("ts-build", vec!["run", "build"], &server),
            Step::npm("ts-test", vec!["test"], &server).counted(Runner::Vitest),
            Step::npm("ts-browser", vec!["run", "test:browser"], &server)
                .counted(Runner::Playwright),
            Step::npm("web-install", vec!["ci"], &server).in_web(),
            // Fails when crates/sync-service/assets is not the build of web/src.
            Step::npm("web-build", vec!["run", "check"], &server).in_web(),
            Step::npm("web-test", vec!["test"], &server)
                .in_web()
                .counted(Runner::Playwright),
        ]);
    }
    let npm = steps.iter().any(|step| step.program == "npm") && available("npm", &["--version"]);

    let mut counts = Counts::default();
    let mut failed_steps = Vec::new();
    for step in &steps {
        eprintln!(
            "xtask ci: == {} ({} {})",
            step.name,
            step.program,
            step.args.join(" ")
        );
        let step_started = Instant::now();
        if step.program == "npm" && !npm {
            eprintln!(
                "xtask ci: npm is not available: the TypeScript client's steps need Node.js 20 \
                 or later with npm on PATH (SYNC_CI_SKIP_TS=1 skips them)."
            );
            eprintln!("xtask ci: == {} FAILED", step.name);
            failed_steps.push(step.name);
            continue;
        }
        if let Some(before) = step.before
            && let Err(error) = before()
        {
            eprintln!("xtask ci: == {} FAILED before it ran: {error:#}", step.name);
            failed_steps.push(step.name);
            continue;
        }
        let mut command = Command::new(&step.program);
        command.args(&step.args).current_dir(&step.dir);
        for (key, value) in &step.env {
            command.env(key, value);
        }
        let finished = run_echoed(&mut command)?;
        counts += match step.runner {
            Runner::None => Counts::default(),
            Runner::Cargo => parse_counts(&finished.output),
            Runner::Vitest => parse_vitest_counts(&finished.output),
            Runner::Playwright => parse_playwright_counts(&finished.output),
        };
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

/// Sums vitest's `Tests  1 failed | 3 passed | 1 skipped | 1 todo (6)`
/// lines (not its `Test Files` lines); todo tests count as skipped.
pub(crate) fn parse_vitest_counts(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines().map(strip_ansi) {
        let Some(tail) = line.trim_start().strip_prefix("Tests ") else {
            continue;
        };
        counts += Counts {
            passed: number_before(tail, "passed"),
            failed: number_before(tail, "failed"),
            skipped: number_before(tail, "skipped") + number_before(tail, "todo"),
        };
    }
    counts
}

/// Sums Playwright's summary lines: `2 passed (3.0s)`, `1 failed`,
/// `1 flaky` (passed on a retry), `1 skipped`, `3 did not run` and
/// `1 interrupted`, each alone on its line.
pub(crate) fn parse_playwright_counts(output: &str) -> Counts {
    let mut counts = Counts::default();
    for line in output.lines().map(strip_ansi) {
        let line = line.trim();
        let line = match line.find(" (") {
            Some(at) if line.ends_with(')') => &line[..at],
            _ => line,
        };
        let Some((number, kind)) = line.split_once(' ') else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        match kind {
            "passed" | "flaky" => counts.passed += number,
            "failed" | "interrupted" => counts.failed += number,
            "skipped" | "did not run" => counts.skipped += number,
            _ => {}
        }
    }
    counts
}

/// `line` without ANSI colour sequences (`ESC [ ... letter`).
fn strip_ansi(line: &str) -> String {
    let mut plain = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
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

    fn counts(counts: Counts) -> (u64, u64, u64) {
        (counts.passed, counts.failed, counts.skipped)
    }

    #[test]
    fn reads_vitest_summaries() {
        let passed = " Test Files  1 passed (1)\n      Tests  1 passed (1)\n   Start at  12:07:17\n   \
                      Duration  726ms (transform 134ms, setup 0ms, import 165ms, tests 319ms, \
                      environment 0ms)";
        assert_eq!(counts(parse_vitest_counts(passed)), (1, 0, 0));
        let mixed = " Test Files  1 failed | 1 passed (2)\n      \
                     Tests  1 failed | 3 passed | 1 skipped | 1 todo (6)";
        assert_eq!(counts(parse_vitest_counts(mixed)), (3, 1, 2));
        let coloured = "\u{1b}[2m      Tests \u{1b}[22m \u{1b}[1m\u{1b}[31m1 failed\u{1b}[39m\
                        \u{1b}[22m\u{1b}[2m | \u{1b}[22m\u{1b}[1m\u{1b}[32m3 passed\u{1b}[39m\
                        \u{1b}[22m\u{1b}[2m | \u{1b}[22m\u{1b}[33m1 skipped\u{1b}[39m\u{1b}[2m | \
                        \u{1b}[22m\u{1b}[90m1 todo\u{1b}[39m\u{1b}[90m (6)\u{1b}[39m";
        assert_eq!(counts(parse_vitest_counts(coloured)), (3, 1, 2));
        // The runners of other steps are not counted twice.
        assert_eq!(
            counts(parse_vitest_counts(
                "test result: ok. 41 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out"
            )),
            (0, 0, 0)
        );
    }

    #[test]
    fn reads_playwright_summaries() {
        let passed = "Running 2 tests using 1 worker\n\n  \
                      \u{2713}  1 [chromium] \u{203a} test/browser/smoke.test.ts:7:1 \u{203a} a page \
                      says hello (700ms)\n\n  2 passed (3.5s)";
        assert_eq!(counts(parse_playwright_counts(passed)), (2, 0, 0));
        let mixed = "  1 failed\n    a.test.mjs:3:1 \u{203a} f1 \u{2500}\u{2500}\u{2500}\n  \
                     1 flaky\n    a.test.mjs:5:1 \u{203a} flaky \u{2500}\u{2500}\u{2500}\n  \
                     1 skipped\n  2 passed (3.0s)";
        assert_eq!(counts(parse_playwright_counts(mixed)), (3, 1, 1));
        let stopped = "  1 failed\n  3 did not run\n  2 passed (977ms)\n  \
                       1 error was not a part of any test, see above for details\n  \
                       1 interrupted";
        assert_eq!(counts(parse_playwright_counts(stopped)), (2, 2, 3));
        let coloured = "\u{1b}[31m  1 failed\u{1b}[39m\n\u{1b}[33m  1 skipped\u{1b}[39m\n\
                        \u{1b}[32m  2 passed\u{1b}[39m\u{1b}[2m (2.7s)\u{1b}[22m";
        assert_eq!(counts(parse_playwright_counts(coloured)), (2, 1, 1));
        assert_eq!(
            counts(parse_playwright_counts(
                "     Summary [   1.000s] 10 tests run: 7 passed, 3 failed, 2 skipped"
            )),
            (0, 0, 0)
        );
    }
}
