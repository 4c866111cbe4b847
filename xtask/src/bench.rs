//! `cargo xtask bench`: runs every benchmark target of the workspace, then
//! writes the figures, with the machine, the date, the command and each
//! budget, into `docs/benchmarks.md`.
//!
//! Two kinds of benchmark feed the report: criterion benchmarks (read from
//! `target/criterion`) and plain benchmarks that write an array of
//! `{"name", "value", "unit", "budget", "higher_is_better"}` records into
//! `$SYNC_BENCH_OUT/<bench>.json`. Charts a benchmark writes there as
//! `*.svg` are copied into `docs/` and shown under the table.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::process::run_echoed;
use crate::workspace_root;

/// Budgets for criterion groups measured in bytes per second (MB/s).
const CRITERION_BUDGETS_MB_PER_S: &[(&str, f64)] = &[("diff_apply_10kb", 300.0)];

const BEGIN: &str = "<!-- bench:begin (written by cargo xtask bench) -->";
const END: &str = "<!-- bench:end -->";

/// One measured figure.
#[derive(Debug, Clone, PartialEq)]
struct Figure {
    name: String,
    value: f64,
    unit: String,
    budget: Option<f64>,
    higher_is_better: bool,
}

impl Figure {
    fn verdict(&self) -> &'static str {
        match self.budget {
            None => "",
            Some(budget) if self.higher_is_better == (self.value >= budget) => "within budget",
            Some(_) => "**misses budget**",
        }
    }
}

pub(crate) fn run(quick: bool) -> Result<()> {
    let root = workspace_root();
    let out_dir = root.join("target").join("bench-results");
    if out_dir.exists() {
        fs::remove_dir_all(&out_dir).context("clearing old bench results")?;
    }
    fs::create_dir_all(&out_dir)?;
    let started = SystemTime::now();

    let mut failures = Vec::new();
    for (package, bench) in bench_targets(&root)? {
        eprintln!("xtask bench: == {package} / {bench}");
        let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
        command
            // Every store: sync-store's benchmark compares sled and PostgreSQL.
            .args([
                "bench",
                "-p",
                &package,
                "--all-features",
                "--bench",
                &bench,
                "--",
            ])
            .current_dir(&root)
            .env("SYNC_BENCH_OUT", &out_dir);
        if quick {
            command.arg("--quick").env("SYNC_BENCH_QUICK", "1");
        }
        if !run_echoed(&mut command)?.success {
            failures.push(format!("{package}/{bench}"));
        }
    }

    if let Err(error) = browser_client_bench(&root, quick) {
        eprintln!("xtask bench: the browser client's benchmark failed: {error:#}");
        failures.push("clients/typescript".to_owned());
    }

    let mut figures = criterion_figures(&root.join("target").join("criterion"), started)?;
    figures.extend(plain_figures(&out_dir)?);
    figures.extend(ceiling_ratio(&figures));
    let command = if quick {
        "cargo xtask bench --quick"
    } else {
        "cargo xtask bench"
    };
    let charts = copy_charts(&out_dir, &root.join("docs"))?;
    let report = render(&figures, &charts, command, &machine_description(), &today());
    let path = root.join("docs").join("benchmarks.md");
    write_report(&path, &report)?;
    println!("{report}");
    eprintln!("xtask bench: wrote {}", path.display());
    if !failures.is_empty() {
        bail!("benchmarks failed: {}", failures.join(", "));
    }
    Ok(())
}

/// The TypeScript client's benchmark in Chromium (`npm run bench` in
/// `clients/typescript`) against the release `sync-server`; it writes its
/// own section of docs/benchmarks.md.
fn browser_client_bench(root: &Path, quick: bool) -> Result<()> {
    eprintln!("xtask bench: == clients/typescript (Chromium)");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let built = run_echoed(
        Command::new(&cargo)
            .args(["build", "--release", "--workspace", "--bin", "sync-server"])
            .current_dir(root),
    )?;
    if !built.success {
        bail!("building the release sync-server failed");
    }
    let package = root.join("clients").join("typescript");
    for args in [&["ci"][..], &["run", "build"][..]] {
        if !run_echoed(Command::new("npm").args(args).current_dir(&package))?.success {
            bail!("npm {} failed in {}", args.join(" "), package.display());
        }
    }
    let server = root.join("target").join("release").join("sync-server");
    let mut bench = Command::new("npm");
    bench
        .args(["run", "bench"])
        .current_dir(&package)
        .env("SYNC_SERVER_BIN", server)
        .env("NO_COLOR", "1");
    if quick {
        bench
            .env("BENCH_INITIAL_DOCS", "2000")
            .env("BENCH_REMOTE_WRITES", "100");
    }
    if !run_echoed(&mut bench)?.success {
        bail!("npm run bench failed");
    }
    Ok(())
}

/// Every `(package, bench target)` of the workspace, from `cargo metadata`.
fn bench_targets(root: &Path) -> Result<Vec<(String, String)>> {
    let output = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Value = serde_json::from_slice(&output.stdout)?;
    let mut targets = Vec::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let package_name = package["name"].as_str().unwrap_or_default();
        for target in package["targets"].as_array().into_iter().flatten() {
            let is_bench = target["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|kind| kind == "bench"));
            if is_bench {
                let name = target["name"].as_str().unwrap_or_default();
                targets.push((package_name.to_owned(), name.to_owned()));
            }
        }
    }
    targets.sort();
    Ok(targets)
}

/// Criterion results written since `since`, as throughput figures.
fn criterion_figures(dir: &Path, since: SystemTime) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    for group in sorted_dirs(dir) {
        for function in sorted_dirs(&group) {
            let new = function.join("new");
            let benchmark_path = new.join("benchmark.json");
            let fresh = fs::metadata(&benchmark_path)
                .and_then(|meta| meta.modified())
                .is_ok_and(|modified| modified >= since);
            if !fresh {
                continue;
            }
            let benchmark: Value = serde_json::from_str(&fs::read_to_string(&benchmark_path)?)?;
            let estimates: Value =
                serde_json::from_str(&fs::read_to_string(new.join("estimates.json"))?)?;
            let mean_ns = estimates["mean"]["point_estimate"]
                .as_f64()
                .unwrap_or(f64::NAN);
            let group_id = benchmark["group_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let name = benchmark["full_id"].as_str().unwrap_or_default().to_owned();
            let figure = if let Some(bytes) = benchmark["throughput"]["Bytes"].as_f64() {
                Figure {
                    name,
                    value: bytes / (mean_ns / 1e9) / 1e6,
                    unit: "MB/s".into(),
                    budget: CRITERION_BUDGETS_MB_PER_S
                        .iter()
                        .find(|(group, _)| *group == group_id)
                        .map(|(_, budget)| *budget),
                    higher_is_better: true,
                }
            } else {
                Figure {
                    name,
                    value: mean_ns / 1e3,
                    unit: "µs per iteration".into(),
                    budget: None,
                    higher_is_better: false,
                }
            };
            figures.push(figure);
        }
    }
    Ok(figures)
}

fn sorted_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// The records plain benchmarks wrote into `dir`.
fn plain_figures(dir: &Path) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    for file in files {
        let records: Value = serde_json::from_str(&fs::read_to_string(&file)?)
            .with_context(|| format!("reading {}", file.display()))?;
        for record in records.as_array().into_iter().flatten() {
            figures.push(Figure {
                name: record["name"].as_str().unwrap_or_default().to_owned(),
                value: record["value"].as_f64().unwrap_or(f64::NAN),
                unit: record["unit"].as_str().unwrap_or_default().to_owned(),
                budget: record["budget"].as_f64(),
                higher_is_better: record["higher_is_better"].as_bool().unwrap_or(true),
            });
        }
    }
    Ok(figures)
}

/// The server's WebSocket write rate over the store's raw ceiling, both of
/// this run (they come from two benchmarks): at least half is the budget.
fn ceiling_ratio(figures: &[Figure]) -> Option<Figure> {
    let value_of = |name: &str| {
        figures
            .iter()
            .find(|figure| figure.name == name)
            .map(|figure| figure.value)
    };
    let writes = value_of(WEBSOCKET_WRITES)?;
    let ceiling = value_of(SLED_CEILING)?;
    Some(Figure {
        name: format!("{WEBSOCKET_WRITES} / {SLED_CEILING}"),
        value: writes / ceiling.max(f64::MIN_POSITIVE),
        unit: "x".into(),
        budget: Some(0.5),
        higher_is_better: true,
    })
}

/// The realtime benchmark's row of durable acknowledged WebSocket writes.
const WEBSOCKET_WRITES: &str = "realtime: durable acked writes, 64 WebSocket writers";

/// The store benchmark's reference row: sled's batched ceiling.
const SLED_CEILING: &str = "reference: sled alone, durable records in batches of 100";

/// Copies the `*.svg` charts of `out_dir` into `docs`; their file names.
fn copy_charts(out_dir: &Path, docs: &Path) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(out_dir)?.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|ext| ext == "svg") {
            let name = entry.file_name().to_string_lossy().into_owned();
            fs::copy(&path, docs.join(&name)).with_context(|| format!("copying {name}"))?;
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

fn render(
    figures: &[Figure],
    charts: &[String],
    command: &str,
    machine: &str,
    date: &str,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{BEGIN}");
    let _ = writeln!(out, "Measured with `{command}` on {date}.\n");
    let _ = writeln!(out, "Machine: {machine}.\n");
    let _ = writeln!(out, "| benchmark | result | budget | verdict |");
    let _ = writeln!(out, "|---|---:|---:|---|");
    for figure in figures {
        let budget = figure.budget.map_or_else(String::new, |budget| {
            let relation = if figure.higher_is_better {
                "over"
            } else {
                "under"
            };
            format!("{relation} {} {}", format_number(budget), figure.unit)
        });
        let _ = writeln!(
            out,
            "| {} | {} {} | {budget} | {} |",
            figure.name,
            format_number(figure.value),
            figure.unit,
            figure.verdict()
        );
    }
    for chart in charts {
        let title = chart.trim_end_matches(".svg").replace('-', " ");
        let _ = writeln!(out, "\n![{title}]({chart})");
    }
    let _ = writeln!(out, "{END}");
    out
}

fn format_number(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.3}")
    }
}

/// Replaces the generated region of the report, keeping the hand-written
/// text around it.
fn write_report(path: &Path, region: &str) -> Result<()> {
    let existing = fs::read_to_string(path).unwrap_or_default();
    let updated = match (existing.find(BEGIN), existing.find(END)) {
        (Some(begin), Some(end)) if begin < end => format!(
            "{}{}{}",
            &existing[..begin],
            region.trim_end(),
            &existing[end + END.len()..]
        ),
        _ => format!("# Benchmarks\n\n{region}"),
    };
    fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}

fn machine_description() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .and_then(|rest| rest.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let memory_gib = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let rustc = Command::new("rustc")
        .arg("-V")
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "{cpu}, {cores} cores, {memory_gib:.0} GiB, Linux {}, {rustc}",
        kernel.trim()
    )
}

fn today() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .map(|output| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_rows_say_whether_each_budget_is_met() {
        let figures = [
            Figure {
                name: "diff".into(),
                value: 250.0,
                unit: "MB/s".into(),
                budget: Some(100.0),
                higher_is_better: true,
            },
            Figure {
                name: "catch-up".into(),
                value: 3.0,
                unit: "s".into(),
                budget: Some(2.0),
                higher_is_better: false,
            },
        ];
        let charts = ["fanout-latency.svg".to_owned()];
        let report = render(
            &figures,
            &charts,
            "cargo xtask bench",
            "test machine",
            "2026-01-01",
        );
        assert!(
            report.contains("\n![fanout latency](fanout-latency.svg)\n"),
            "{report}"
        );
        assert!(
            report.contains("| diff | 250 MB/s | over 100 MB/s | within budget |"),
            "{report}"
        );
        assert!(
            report.contains("| catch-up | 3.0 s | under 2.0 s | **misses budget** |"),
            "{report}"
        );
    }

    #[test]
    fn writing_keeps_the_hand_written_text() {
        let dir = std::env::temp_dir().join(format!("xtask-bench-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("benchmarks.md");
        fs::write(
            &path,
            format!("# Title\n\nintro\n\n{BEGIN}\nold\n{END}\n\nnotes\n"),
        )
        .unwrap();
        write_report(&path, &format!("{BEGIN}\nnew\n{END}\n")).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(
            text,
            format!("# Title\n\nintro\n\n{BEGIN}\nnew\n{END}\n\nnotes\n")
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
