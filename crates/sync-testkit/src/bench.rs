//! The figures a benchmark hands to `cargo xtask bench`: each a JSON record
//! (name, value, unit, budget, which way is better), written as one array
//! per benchmark to `$SYNC_BENCH_OUT/<file>` (`target/bench-results` when
//! run by hand), which `xtask` reads into the report's table.

use std::path::PathBuf;

use serde_json::{Value, json};

/// Whether this is a quick run (`cargo xtask bench --quick`, which sets
/// `SYNC_BENCH_QUICK` and passes `--quick`): shorter runs, smaller counts.
pub fn quick() -> bool {
    std::env::var_os("SYNC_BENCH_QUICK").is_some() || std::env::args().any(|arg| arg == "--quick")
}

/// One figure, printed as it is recorded.
pub fn record(
    name: &str,
    value: f64,
    unit: &str,
    budget: Option<f64>,
    higher_is_better: bool,
) -> Value {
    #[allow(clippy::print_stdout)]
    {
        println!("{name}: {value:.3} {unit}");
    }
    json!({
        "name": name,
        "value": value,
        "unit": unit,
        "budget": budget,
        "higher_is_better": higher_is_better,
    })
}

/// Where the figures and any charts go, created if needed.
pub fn output_dir() -> PathBuf {
    let out = std::env::var_os("SYNC_BENCH_OUT").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-results"),
        PathBuf::from,
    );
    std::fs::create_dir_all(&out).expect("bench output dir");
    out
}

/// Writes a benchmark's figures to `file` in [`output_dir`].
pub fn write_records(file: &str, records: &[Value]) {
    let json = serde_json::to_vec_pretty(records).expect("records as JSON");
    std::fs::write(output_dir().join(file), json).expect("write the figures");
}
