//! Diffs and applies the diff benchmark's documents a given number of
//! times in one format, for counting instructions: unlike the benchmark's
//! timings, counts do not move with the machine's load.
//!
//! ```text
//! cargo build --release -p sync-diff --example diff_apply_repeat
//! valgrind --tool=callgrind target/release/examples/diff_apply_repeat merge_patch 1200
//! ```
//!
//! The difference between two counts (1,200 and 200 repeats, say) over
//! the difference in repeats is the cost of one iteration, setup excluded.
//! `copy` copies and drops the new document instead: what returning a new
//! document costs at least, as every `apply` does. A third argument,
//! `borrowed`, applies the patch by reference instead of by value.

use std::hint::black_box;
use std::process::ExitCode;

use serde_json::Value;
use sync_core::DiffCalculator;
use sync_diff::{FieldDeltaDiff, JsonPatchDiff, MergePatchDiff};

#[path = "../benches/documents/mod.rs"]
mod documents;

/// One iteration: as the benchmark runs it, or with the patch borrowed.
fn diff_apply<D: DiffCalculator>(
    calculator: &D,
    old: &Value,
    new: &Value,
    borrowed: bool,
) -> Value {
    let patch = calculator.diff(old, new);
    let result = if borrowed {
        calculator.apply(old, &patch)
    } else {
        calculator.apply_owned(old, patch)
    };
    result.unwrap_or(Value::Null)
}

fn repeat<D: DiffCalculator>(
    calculator: &D,
    old: &Value,
    new: &Value,
    times: usize,
    borrowed: bool,
) {
    for _ in 0..times {
        black_box(diff_apply(
            calculator,
            black_box(old),
            black_box(new),
            borrowed,
        ));
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(format), Some(Ok(times))) = (args.next(), args.next().map(|n| n.parse())) else {
        return usage();
    };
    let borrowed = match args.next().as_deref() {
        None => false,
        Some("borrowed") => true,
        Some(_) => return usage(),
    };
    let old = documents::document(false);
    let new = documents::document(true);
    match format.as_str() {
        "field_delta" => repeat(&FieldDeltaDiff, &old, &new, times, borrowed),
        "json_patch" => repeat(&JsonPatchDiff, &old, &new, times, borrowed),
        "merge_patch" => repeat(&MergePatchDiff, &old, &new, times, borrowed),
        "copy" => {
            for _ in 0..times {
                black_box(black_box(&new).clone());
            }
        }
        _ => return usage(),
    }
    ExitCode::SUCCESS
}

#[allow(clippy::print_stderr)]
fn usage() -> ExitCode {
    eprintln!("usage: diff_apply_repeat field_delta|json_patch|merge_patch|copy TIMES [borrowed]");
    ExitCode::FAILURE
}
