//! `cargo xtask soak [--quick] [--max-minutes N]`: the long reliability
//! runs, in the release profile: 500 crash rounds of the real server
//! process (`sync-service` test `crash_rounds`), 100 crash rounds of a
//! client process (`sync-client` test `crash_rounds`) and, when the crate
//! exists, the seeded simulation (`sync-sim`) over 10,000 seeds. Each step
//! is bounded by what is left of `--max-minutes` (default 120) and killed
//! when it runs over; `--quick` runs small counts. Prints each step's
//! counts and one summary line at the end.

use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::echo;
use crate::workspace_root;

/// One soak step: a filtered `cargo test` of one package's `it` target.
struct Step {
    name: &'static str,
    package: &'static str,
    filter: &'static str,
    count_var: &'static str,
    count: u64,
    /// How the test's closing line starts (`<summary>N <unit>...`).
    summary: &'static str,
    unit: &'static str,
}

/// What a step did.
struct Outcome {
    name: &'static str,
    status: &'static str,
    detail: String,
}

/// The options of `cargo xtask soak`.
pub(crate) struct Options {
    pub(crate) quick: bool,
    pub(crate) max_minutes: u64,
}

/// Reads `--quick` and `--max-minutes N`.
pub(crate) fn parse_options(args: &[&str]) -> Result<Options> {
    let mut options = Options {
        quick: false,
        max_minutes: 120,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match *arg {
            "--quick" => options.quick = true,
            "--max-minutes" => {
                let value = args.next().context("--max-minutes needs a number")?;
                options.max_minutes = value
                    .parse()
                    .with_context(|| format!("--max-minutes {value:?} is not a number"))?;
            }
            other => bail!("unknown soak option {other:?}"),
        }
    }
    Ok(options)
}

/// Runs every step; `Ok(false)` when one failed or ran out of time.
pub(crate) fn run(options: &Options) -> Result<bool> {
    let root = workspace_root();
    let started = Instant::now();
    let deadline = started + Duration::from_secs(options.max_minutes * 60);
    let (server, client, seeds) = if options.quick {
        (3, 2, 200)
    } else {
        (500, 100, 10_000)
    };
    let mut steps = vec![
        Step {
            name: "server crash rounds",
            package: "sync-service",
            filter: "crash_rounds::server_crash_rounds",
            count_var: "SYNC_CRASH_ROUNDS",
            count: server,
            summary: "server crash rounds: ",
            unit: "rounds",
        },
        Step {
            name: "client crash rounds",
            package: "sync-client",
            filter: "crash_rounds::client_crash_rounds",
            count_var: "SYNC_CLIENT_CRASH_ROUNDS",
            count: client,
            summary: "client crash rounds: ",
            unit: "rounds",
        },
    ];
    if root.join("crates").join("sync-sim").exists() {
        steps.push(Step {
            name: "simulation",
            package: "sync-sim",
            filter: "",
            count_var: "SYNC_SIM_SEEDS",
            count: seeds,
            summary: "sync-sim: ",
            unit: "seeds",
        });
    } else {
        eprintln!("xtask soak: crates/sync-sim does not exist: the simulation step is skipped");
    }

    let mut outcomes = Vec::new();
    for step in &steps {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            outcomes.push(Outcome {
                name: step.name,
                status: "NOT RUN",
                detail: "no time left".into(),
            });
            continue;
        }
        eprintln!(
            "xtask soak: == {} ({}={}, {} min left)",
            step.name,
            step.count_var,
            step.count,
            left.as_secs() / 60
        );
        let step_started = Instant::now();
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            .args(["test", "--release", "-p", step.package, "--test", "it"])
            .current_dir(&root)
            .env(step.count_var, step.count.to_string());
        if !step.filter.is_empty() {
            command.arg(step.filter);
        }
        command.args(["--", "--nocapture"]);
        let (finished, output) = run_bounded(&mut command, left)?;
        let minutes = step_started.elapsed().as_secs_f64() / 60.0;
        let detail = figures(&output, step);
        let status = match finished {
            Finished::Passed => "ok",
            Finished::Failed => "FAILED",
            Finished::TimedOut => "TIMED OUT",
        };
        eprintln!(
            "xtask soak: == {} {status} in {minutes:.1} min: {detail}",
            step.name
        );
        outcomes.push(Outcome {
            name: step.name,
            status,
            detail: format!("{detail}, {minutes:.1} min"),
        });
    }

    let all_ok = outcomes.iter().all(|outcome| outcome.status == "ok");
    for outcome in &outcomes {
        println!(
            "xtask soak: {}: {} ({})",
            outcome.name, outcome.status, outcome.detail
        );
    }
    println!(
        "soak: {} in {:.1} min: {}",
        if all_ok { "ok" } else { "FAILED" },
        started.elapsed().as_secs_f64() / 60.0,
        outcomes
            .iter()
            .map(|outcome| format!("{} {}", outcome.name, outcome.status))
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(all_ok)
}

/// The closing line of the step's test (`<summary>N <unit>...`) or, when
/// the run ended before it, how many `round N: killed after ...` lines a
/// crash-round test printed.
fn figures(output: &str, step: &Step) -> String {
    let closing = output.lines().rev().find_map(|line| {
        let rest = line.strip_prefix(step.summary)?;
        let count = rest.trim_start_matches(|c: char| c.is_ascii_digit());
        let counted = count.len() < rest.len() && count.starts_with(&format!(" {}", step.unit));
        counted.then_some(rest)
    });
    if let Some(line) = closing {
        return line.to_owned();
    }
    if step.unit != "rounds" {
        return format!(
            "{} run: unknown (the run ended before its last line)",
            step.unit
        );
    }
    let done = output
        .lines()
        .filter(|line| line.starts_with("round ") && line.contains(": killed after "))
        .count();
    format!("{done} of {} rounds done", step.count)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finished {
    Passed,
    Failed,
    TimedOut,
}

/// Runs `command` in its own process group, echoing its output, and kills
/// the group when it runs longer than `limit`.
fn run_bounded(command: &mut Command, limit: Duration) -> Result<(Finished, String)> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
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
    let deadline = Instant::now() + limit;
    let finished = loop {
        if let Some(status) = child.try_wait()? {
            break if status.success() {
                Finished::Passed
            } else {
                Finished::Failed
            };
        }
        if Instant::now() >= deadline {
            kill_group(&mut child);
            break Finished::TimedOut;
        }
        thread::sleep(Duration::from_millis(200));
    };
    let mut output = echo_stdout.join().unwrap_or_default();
    output.push_str(&echo_stderr.join().unwrap_or_default());
    Ok((finished, output))
}

/// Kills the process group this soak started (cargo and its test
/// processes), then reaps cargo.
fn kill_group(child: &mut Child) {
    let group = format!("-{}", child.id());
    let killed = Command::new("kill")
        .args(["-KILL", "--", &group])
        .status()
        .is_ok_and(|status| status.success());
    if !killed {
        let _ = child.kill();
    }
    let _ = child.wait();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_options() {
        let options = parse_options(&["--quick", "--max-minutes", "5"]).unwrap();
        assert!(options.quick);
        assert_eq!(options.max_minutes, 5);
        let options = parse_options(&[]).unwrap();
        assert!(!options.quick);
        assert_eq!(options.max_minutes, 120);
        assert!(parse_options(&["--max-minutes"]).is_err());
        assert!(parse_options(&["--slow"]).is_err());
    }

    #[test]
    fn reads_figures() {
        let step = Step {
            name: "server crash rounds",
            package: "sync-service",
            filter: "",
            count_var: "SYNC_CRASH_ROUNDS",
            count: 5,
            summary: "server crash rounds: ",
            unit: "rounds",
        };
        let output = "server crash rounds: seed 3 (SYNC_CRASH_SEED=3 replays it), 5 rounds\n\
                      round 0: killed after 1 ms, restart 9 ms\n\
                      round 1: killed after 2 ms, restart 8 ms\n\
                      server crash rounds: 2 rounds, 900 writes acknowledged, seed 3\n";
        assert_eq!(
            figures(output, &step),
            "2 rounds, 900 writes acknowledged, seed 3"
        );
        let cut_short = "server crash rounds: running 5 rounds\n\
                         round 0: killed after 9 ms, restart 9 ms\nround 1: wedged\n";
        assert_eq!(figures(cut_short, &step), "1 of 5 rounds done");

        let sim = Step {
            name: "simulation",
            package: "sync-sim",
            filter: "",
            count_var: "SYNC_SIM_SEEDS",
            count: 10,
            summary: "sync-sim: ",
            unit: "seeds",
        };
        let output = "sync-sim: 12 seeds run (2 regressions), 0 failed, 400 steps each, in 1.0 s\n";
        assert_eq!(
            figures(output, &sim),
            "12 seeds run (2 regressions), 0 failed, 400 steps each, in 1.0 s"
        );
        assert_eq!(
            figures("sync-sim: seed 4 passed\n", &sim),
            "seeds run: unknown (the run ended before its last line)"
        );
    }
}
